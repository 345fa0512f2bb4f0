"""Talking to the directory (ldap3, blocking: every call runs in a worker thread).

Search-then-bind: a service account (or an anonymous bind) finds the one entry
``ldap.user_filter`` names, with the user name escaped for a filter (RFC 4515),
then a second connection binds as that entry with the password. Without a
``ldap.user_filter`` search, ``ldap.user_dn_template`` binds directly with the
user name escaped for a DN (RFC 4514). Groups come from the entry's
``ldap.group_attribute`` (``memberOf``) and, with ``ldap.group_base_dn``, from a
search for groups listing the user (``groupOfNames``/``groupOfUniqueNames``;
``ldap.nested_groups`` follows groups of groups).
"""

from __future__ import annotations

import logging
import math
import ssl
from dataclasses import dataclass, field
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

log = logging.getLogger("workeros.ldap")

#: Bit of Active Directory's userAccountControl meaning "account disabled".
AD_ACCOUNT_DISABLE = 0x2
#: How deep ``ldap.nested_groups`` follows groups of groups.
NESTING_DEPTH = 8


class DirectoryUnavailable(Exception):
    """The directory could not be reached, or refused the service account."""


@dataclass(frozen=True)
class DirectoryUser:
    dn: str
    attributes: dict[str, list[str]]
    groups: list[str] = field(default_factory=list)
    disabled: bool = False

    def first(self, name: str | None) -> str | None:
        if not name:
            return None
        for key, values in self.attributes.items():
            if key.lower() == name.lower() and values:
                return values[0]
        return None


def _strings(values: Any) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, list | tuple):
        values = [values]
    out = []
    for value in values:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        out.append(str(value))
    return out


def _close(conn: ldap3.Connection) -> None:
    try:
        conn.unbind()
    except (LDAPException, OSError):
        pass  # the connection is already gone


class Directory:
    """One configured directory (built once from the settings)."""

    def __init__(self, settings: Any) -> None:
        s = settings
        self.url: str | None = s["ldap.url"] or None
        self.start_tls: bool = s["ldap.start_tls"]
        self.tls_verify: bool = s["ldap.tls_verify"]
        self.tls_ca_file: str | None = s["ldap.tls_ca_file"] or None
        self.timeout: float = s["ldap.timeout"]
        self.bind_dn: str | None = s["ldap.bind_dn"] or None
        self.bind_password: str | None = s["ldap.bind_password"] or None
        self.user_base_dn: str | None = s["ldap.user_base_dn"] or None
        self.user_filter: str = s["ldap.user_filter"]
        self.user_dn_template: str | None = s["ldap.user_dn_template"] or None
        self.email_attribute: str = s["ldap.email_attribute"]
        self.first_name_attribute: str | None = s["ldap.first_name_attribute"] or None
        self.last_name_attribute: str | None = s["ldap.last_name_attribute"] or None
        self.group_attribute: str | None = s["ldap.group_attribute"] or None
        self.group_base_dn: str | None = s["ldap.group_base_dn"] or None
        self.group_filter: str = s["ldap.group_filter"]
        self.nested_groups: bool = s["ldap.nested_groups"]
        self.disabled_filter: str | None = s["ldap.disabled_filter"] or None

    # -- connections ---------------------------------------------------------------
    def _server(self) -> ldap3.Server:
        tls = None
        if self.start_tls or (self.url or "").lower().startswith("ldaps://"):
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED if self.tls_verify else ssl.CERT_NONE,
                            ca_certs_file=self.tls_ca_file or None, version=ssl.PROTOCOL_TLS_CLIENT)
        return ldap3.Server(self.url, get_info=ldap3.NONE, connect_timeout=self.timeout, tls=tls)

    def _bind(self, user: str | None, password: str | None) -> tuple[ldap3.Connection, bool]:
        """An open connection and whether binding as ``user`` worked."""
        conn = ldap3.Connection(self._server(), user=user, password=password, receive_timeout=max(1, math.ceil(self.timeout)),
                                auto_referrals=False, read_only=True, raise_exceptions=False)
        try:
            conn.open()
            if self.start_tls and not conn.start_tls():
                raise DirectoryUnavailable("StartTLS failed")
            return conn, bool(conn.bind())
        except (LDAPException, ssl.SSLError, OSError) as exc:
            _close(conn)
            log.warning("LDAP: cannot talk to %s: %s", self.url, exc)
            tls = "TLS" in str(exc) or "SSL" in str(exc) or "tls" in type(exc).__name__.lower()
            raise DirectoryUnavailable("TLS negotiation failed" if tls else "connection failed") from None

    def _attributes(self) -> list[str]:
        names = [self.email_attribute, self.first_name_attribute, self.last_name_attribute, self.group_attribute,
                 "userAccountControl", "pwdAccountLockedTime", "nsAccountLock"]
        return [n for n in dict.fromkeys(names) if n]

    @staticmethod
    def _entries(conn: ldap3.Connection) -> list[dict[str, Any]]:
        return [r for r in (conn.response or []) if r.get("type") == "searchResEntry"]

    def _search(self, conn: ldap3.Connection, base: str, query: str, *, scope: Any = ldap3.SUBTREE,
                attributes: list[str] | None = None, size_limit: int = 0) -> list[dict[str, Any]]:
        try:
            conn.search(base, query, search_scope=scope, attributes=attributes or [ldap3.NO_ATTRIBUTES],
                        size_limit=size_limit, time_limit=max(1, int(self.timeout)))
        except LDAPException as exc:
            log.warning("LDAP: search failed: %s", exc)
            raise DirectoryUnavailable("search failed") from None
        if conn.result and conn.result.get("result") not in (0, 4, 32):  # success, size limit, no such object
            raise DirectoryUnavailable(f"search failed: {conn.result.get('description')}")
        return self._entries(conn)

    # -- sign-in -------------------------------------------------------------------
    def authenticate(self, username: str, password: str) -> DirectoryUser | None:
        """The directory entry ``username`` names when ``password`` binds as it,
        else ``None``. Raises :class:`DirectoryUnavailable` when the directory
        cannot answer."""
        if self.user_base_dn:
            return self._search_then_bind(username, password)
        if not self.user_dn_template:
            raise DirectoryUnavailable("neither ldap.user_base_dn nor ldap.user_dn_template is set")
        dn = self.user_dn_template.replace("{username}", escape_rdn(username))
        conn, ok = self._bind(dn, password)
        try:
            if not ok:
                return None
            found = self._search(conn, dn, "(objectClass=*)", scope=ldap3.BASE, attributes=self._attributes())
            if len(found) != 1:
                return None
            return self._user(conn, found[0])
        finally:
            _close(conn)

    def _search_then_bind(self, username: str, password: str) -> DirectoryUser | None:
        service, ok = self._bind(self.bind_dn, self.bind_password)
        try:
            if not ok:
                log.error("LDAP: the service account %r cannot bind: %s", self.bind_dn,
                          (service.result or {}).get("description"))
                raise DirectoryUnavailable("the service account cannot bind")
            query = self.user_filter.replace("{username}", escape_filter_chars(username))
            found = self._search(service, self.user_base_dn or "", query, attributes=self._attributes(), size_limit=2)
            if len(found) != 1:  # nobody, or a filter that names more than one entry
                return None
            entry = found[0]
            user, bound = self._bind(entry["dn"], password)
            _close(user)
            if not bound:
                return None
            return self._user(service, entry)
        finally:
            _close(service)

    def _user(self, conn: ldap3.Connection, entry: dict[str, Any]) -> DirectoryUser:
        dn = entry["dn"]
        attributes = {k: _strings(v) for k, v in (entry.get("attributes") or {}).items()}
        groups = []
        if self.group_attribute:
            for key, values in attributes.items():
                if key.lower() == self.group_attribute.lower():
                    groups += values
        if self.group_base_dn:
            groups += self._group_search(conn, dn)
        return DirectoryUser(dn=dn, attributes=attributes, groups=list(dict.fromkeys(groups)),
                             disabled=self._disabled(conn, dn, attributes))

    def _group_search(self, conn: ldap3.Connection, dn: str) -> list[str]:
        found: list[str] = []
        members = [dn]
        for _ in range(NESTING_DEPTH if self.nested_groups else 1):
            query = "(|" + "".join(self.group_filter.replace("{dn}", escape_filter_chars(m)) for m in members) + ")"
            new = [e["dn"] for e in self._search(conn, self.group_base_dn or "", query) if e["dn"] not in found]
            if not new:
                break
            found += new
            members = new
        return found

    def _disabled(self, conn: ldap3.Connection, dn: str, attributes: dict[str, list[str]]) -> bool:
        lowered = {k.lower(): v for k, v in attributes.items()}
        for value in lowered.get("useraccountcontrol", []):
            try:
                if int(value) & AD_ACCOUNT_DISABLE:
                    return True
            except ValueError:
                pass
        if lowered.get("pwdaccountlockedtime"):
            return True
        if any(v.strip().lower() == "true" for v in lowered.get("nsaccountlock", [])):
            return True
        if self.disabled_filter:
            return bool(self._search(conn, dn, self.disabled_filter, scope=ldap3.BASE))
        return False
