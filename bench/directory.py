"""Cost of signing in through a directory (LDAP) or an identity provider (SAML).

A ``workeros serve`` on a fresh SQLite data dir with the ``ldap`` and ``saml``
plugins pointed at Debian's slapd (started here, as the tests start it) and at
the tests' SAML identity provider (its responses made and signed with xmlsec
before timing). Baseline: the median ``POST /api/auth/login`` (password, default
argon2id cost) in the same run. Measured: the median ``POST
/api/auth/ldap/login`` (search with the service account, bind as the user,
memberOf, account lookup, session) and the median ``POST
/api/auth/saml/<idp>/acs`` (parse, schema and XML-signature check, replay
record, account lookup, session), each for an existing account.
"""

from __future__ import annotations

import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import PYTHON, ROOT, clean_env, report, wait_http_ok

PASSWORD = "bench password 42"
PUBLIC = "http://wos.test"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read() or b"{}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _post_form(url: str, form: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _timed(fn: Any, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run(quick: bool = False) -> dict[str, Any]:
    import sys

    sys.path.insert(0, str(ROOT))
    try:
        from tests.plugins.ldap.slapd_server import Slapd, slapd_missing
        from tests.plugins.saml.saml_idp import TestIdP
    except ImportError as exc:  # the saml extra (xmlsec) or the test helpers are missing
        print(f"  skipped: {exc}")
        return {"skipped": str(exc)}
    if slapd_missing():
        print(f"  skipped: {slapd_missing()}")
        return {"skipped": slapd_missing()}
    runs = 5 if quick else 15
    work = Path(tempfile.mkdtemp(prefix="wos-bench-directory-"))
    slapd = Slapd(work / "slapd")
    (work / "slapd").mkdir()
    slapd.start()
    idp = TestIdP(sp_entity_id=f"{PUBLIC}/api/auth/saml/bench/metadata", acs_url=f"{PUBLIC}/api/auth/saml/bench/acs")
    port = _port()
    base = f"http://127.0.0.1:{port}"
    idps = {"bench": {"entity_id": idp.entity_id, "sso_url": "https://idp.test/sso",
                      "x509cert": idp.cert_pem.decode()}}
    env = clean_env(WORKEROS_LOG_ACCESS="false", WORKEROS_RATELIMIT_ENABLED="false",
                    WORKEROS_SERVER_PUBLIC_URL=PUBLIC, WORKEROS_LDAP_URL=slapd.url,
                    WORKEROS_LDAP_BIND_DN=slapd.service_dn, WORKEROS_LDAP_BIND_PASSWORD=slapd.service_password,
                    WORKEROS_LDAP_USER_BASE_DN=f"ou=people,{slapd.suffix}", WORKEROS_SAML_IDPS=json.dumps(idps))
    log = open(work / "serve.log", "wb")  # noqa: SIM115 (open while the server runs)
    proc = subprocess.Popen([str(Path(PYTHON).parent / "workeros"), "serve", "--port", str(port), "--data-dir",
                             str(work / "data")], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        try:
            wait_http_ok(base + "/api/server/health", proc, timeout=120)
        except RuntimeError:
            print((work / "serve.log").read_text()[-3000:])
            raise
        _post_json(base + "/api/auth/sign-up", {"email": "bench@example.com", "password": PASSWORD})
        responses = [idp.response(email="grace@example.org") for _ in range(runs + 1)]

        def password() -> None:
            _post_json(base + "/api/auth/login", {"email": "bench@example.com", "password": PASSWORD, "mode": "json"})

        def ldap() -> None:
            _post_json(base + "/api/auth/ldap/login", {"username": "ada", "password": "ada-secret", "mode": "json"})

        def saml() -> None:
            status = _post_form(base + "/api/auth/saml/bench/acs", {"SAMLResponse": responses.pop()})
            assert status == 303, status

        ldap()  # the accounts exist before timing
        saml()
        login = _timed(password, runs)
        ldap_s = _timed(ldap, runs)
        saml_s = _timed(saml, runs)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
        slapd.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "ldap_login_median_s": report("POST /auth/ldap/login (s)", ldap_s, login, "s"),
        "saml_acs_median_s": report("POST /auth/saml/<idp>/acs (s)", saml_s, login, "s"),
        "password_login_median_s": report("POST /auth/login, argon2id 64 MiB t=3 (s)", login, login, "s"),
    }
