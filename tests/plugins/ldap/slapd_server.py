"""Debian's slapd on loopback for the LDAP tests: a temporary slapd.conf and MDB
database, the ``memberof`` overlay (``memberOf`` on users, as Active Directory
has), a read-only service account, and a small directory of people and groups.

People (password ``<uid>-secret``): ada (editors), grace (admins), linus
(editors, but ``employeeType: disabled``), ken (no group, no ``mail``), and
two entries sharing ``cn: Twin`` (so a filter on ``cn`` is ambiguous). Groups:
editors, admins, and staff (whose member is the editors group: nesting).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret"
SERVICE_DN = f"cn=reader,{SUFFIX}"
SERVICE_PASSWORD = "reader-secret"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")

CONFIG = """\
{includes}
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
TLSCACertificateFile {dir}/ca.pem
TLSCertificateFile {dir}/server.pem
TLSCertificateKeyFile {dir}/server.key

database mdb
maxsize 20971520
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_password}
directory {dir}/db
overlay memberof

access to attrs=userPassword
  by anonymous auth
  by self write
  by * none
access to *
  by users read
  by * none
"""


def person(uid: str, given: str, family: str, *, mail: bool = True, extra: str = "") -> str:
    lines = [f"dn: uid={uid},ou=people,{SUFFIX}", "objectClass: inetOrgPerson", f"uid: {uid}",
             f"cn: {given} {family}", f"givenName: {given}", f"sn: {family}", f"userPassword: {uid}-secret"]
    if mail:
        lines.append(f"mail: {uid}@example.org")
    return "\n".join(lines) + ("\n" + extra if extra else "") + "\n"


def group(cn: str, *members: str) -> str:
    lines = [f"dn: cn={cn},ou=groups,{SUFFIX}", "objectClass: groupOfNames", f"cn: {cn}"]
    lines += [f"member: {m}" for m in members]
    return "\n".join(lines) + "\n"


def people_dn(uid: str) -> str:
    return f"uid={uid},ou=people,{SUFFIX}"


DATA = "\n".join([
    f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n",
    f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n",
    f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n",
    f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\n"
    f"userPassword: {SERVICE_PASSWORD}\n",
    person("ada", "Ada", "Lovelace"),
    person("grace", "Grace", "Hopper"),
    person("linus", "Linus", "Torvalds", extra="employeeType: disabled"),
    person("ken", "Ken", "Thompson", mail=False),
    person("twin1", "Twin", "One", extra="cn: Twin"),
    person("twin2", "Twin", "Two", extra="cn: Twin"),
    group("editors", people_dn("ada"), people_dn("linus")),
    group("admins", people_dn("grace")),
    group("staff", f"cn=editors,ou=groups,{SUFFIX}"),
])


def slapd_missing() -> str | None:
    if not Path("/usr/sbin/slapd").exists() and not shutil.which("slapd"):
        return "slapd is not installed (apt-get install slapd ldap-utils; listed in system-packages.txt)"
    if not shutil.which("ldapadd"):
        return "ldapadd is not installed (apt-get install ldap-utils; listed in system-packages.txt)"
    if not Path("/usr/lib/ldap/back_mdb.la").exists():
        return "slapd's modules are not in /usr/lib/ldap"
    return None


def write_certificates(folder: Path) -> None:
    """A CA (``ca.pem``) and a server certificate it signed for 127.0.0.1 and
    localhost (``server.pem``, ``server.key``), made with ``cryptography``."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test directory CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "server.pem").write_bytes(cert.public_bytes(pem))
    (folder / "server.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                                          serialization.NoEncryption()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Slapd:
    suffix = SUFFIX
    service_dn = SERVICE_DN
    service_password = SERVICE_PASSWORD

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.ldaps_url = ""
        self.ca_file = str(folder / "ca.pem")
        self._log: Any = None

    def start(self) -> None:
        (self.folder / "db").mkdir()
        write_certificates(self.folder)
        includes = "\n".join(f"include /etc/ldap/schema/{name}.schema" for name in SCHEMAS)
        conf = self.folder / "slapd.conf"
        conf.write_text(CONFIG.format(includes=includes, dir=self.folder, suffix=SUFFIX, root_dn=ROOT_DN,
                                      root_password=ROOT_PASSWORD))
        slapd = shutil.which("slapd") or "/usr/sbin/slapd"
        for _ in range(5):  # the free port may be taken between choosing and binding it
            port, tls_port = _free_port(), _free_port()
            self.url = f"ldap://127.0.0.1:{port}"
            self.ldaps_url = f"ldaps://127.0.0.1:{tls_port}"
            self._log = open(self.folder / "slapd.log", "wb")  # noqa: SIM115 (open while slapd runs)
            self.process = subprocess.Popen([slapd, "-f", str(conf), "-h", f"{self.url}/ {self.ldaps_url}/",
                                             "-d", "0"],
                                            stdout=self._log, stderr=subprocess.STDOUT)
            if self._wait(port) and self._wait(tls_port):
                break
            self.stop()
        else:
            raise RuntimeError(f"slapd did not start: {(self.folder / 'slapd.log').read_text()[-2000:]}")
        ldif = self.folder / "data.ldif"
        ldif.write_text(DATA)
        self.ldap("ldapadd", "-f", str(ldif))

    def _wait(self, port: int) -> bool:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def ldap(self, tool: str, *args: str, stdin: str | None = None) -> str:
        """Run an ldap-utils tool as the directory's root (ldapadd, ldapmodify…)."""
        result = subprocess.run([tool, "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD, *args],
                                input=stdin.encode() if stdin is not None else None, capture_output=True,
                                timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stderr.decode()}")
        return result.stdout.decode()

    def modify(self, ldif: str) -> None:
        self.ldap("ldapmodify", stdin=ldif)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
