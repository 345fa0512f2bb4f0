"""The service provider side of SAML 2.0, on python3-saml (signatures by xmlsec).

One :class:`IdentityProvider` per entry of ``saml.idps``. Everything here is
synchronous and quick (parsing and one signature check); the routes call it
directly.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
POST_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
REDIRECT_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
#: Attribute names IdPs commonly use, tried in order when none is configured.
EMAIL_ATTRIBUTES = ("email", "mail", "emailAddress", "urn:oid:0.9.2342.19200300.100.1.3",
                    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress")
FIRST_NAME_ATTRIBUTES = ("firstName", "first_name", "givenName", "urn:oid:2.5.4.42",
                         "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname")
LAST_NAME_ATTRIBUTES = ("lastName", "last_name", "sn", "surname", "urn:oid:2.5.4.4",
                        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname")
GROUP_ATTRIBUTES = ("groups", "memberOf", "Role", "role",
                    "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
                    "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")


class SamlConfigError(Exception):
    """``saml.idps`` (or the server's public URL) does not make a working set-up."""


class SamlRefused(Exception):
    """The response is not acceptable; the message says why (safe to show)."""


@dataclass(frozen=True)
class Assertion:
    """What a valid response says."""

    assertion_id: str
    in_response_to: str | None
    not_on_or_after: float | None
    name_id: str
    name_id_format: str | None
    attributes: dict[str, list[str]]
    session_index: str | None = None
    issuer: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _pem_body(value: str) -> str:
    """A certificate or key as python3-saml wants it (PEM armour optional)."""
    return value.strip()


def _first(attributes: dict[str, list[str]], configured: str | None, fallbacks: tuple[str, ...]) -> str | None:
    lowered = {k.lower(): v for k, v in attributes.items()}
    for name in ((configured,) if configured else fallbacks):
        values = lowered.get(name.lower()) or []
        for value in values:
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


class IdentityProvider:
    """One configured IdP and this server as its service provider."""

    def __init__(self, name: str, config: Any, settings: Any) -> None:
        if not NAME_RE.match(name):
            raise SamlConfigError(f"saml.idps: {name!r} is not a valid name (a-z, 0-9, _ and -)")
        if not isinstance(config, dict):
            raise SamlConfigError(f"saml.idps.{name} must be a table")
        for key in ("entity_id", "sso_url", "x509cert"):
            if not isinstance(config.get(key), str) or not config[key].strip():
                raise SamlConfigError(f"saml.idps.{name}.{key} is required")
        public = (settings["server.public_url"] or "").rstrip("/")
        if not public:
            raise SamlConfigError("server.public_url is not set (the IdP needs this server's address)")
        self.name = name
        self.config = config
        base = f"{public}/api/auth/saml/{name}"
        self.acs_url = f"{base}/acs"
        self.metadata_url = f"{base}/metadata"
        self.login_url = f"{base}/login"
        self.sp_entity_id = (settings["saml.sp_entity_id"] or "").replace("{idp}", name) or self.metadata_url
        self.label = str(config.get("label") or name)
        self.clock_skew = max(0, int(settings["saml.clock_skew"]))
        self.allow_idp_initiated = bool(config.get("allow_idp_initiated", True))
        self.role_map: dict[str, str] = dict(config.get("role_map") or {})
        sp_cert = settings["saml.sp_x509cert"] or ""
        sp_key = settings["saml.sp_private_key"] or ""
        sp: dict[str, Any] = {
            "entityId": self.sp_entity_id,
            "assertionConsumerService": {"url": self.acs_url, "binding": POST_BINDING},
            "NameIDFormat": config.get("name_id_format") or EMAIL_FORMAT,
            "x509cert": _pem_body(sp_cert), "privateKey": _pem_body(sp_key),
        }
        idp: dict[str, Any] = {
            "entityId": config["entity_id"],
            "singleSignOnService": {"url": config["sso_url"], "binding": REDIRECT_BINDING},
            "x509cert": _pem_body(config["x509cert"]),
        }
        self.settings_dict = {
            "strict": True, "debug": False, "sp": sp, "idp": idp,
            "security": {
                "wantAssertionsSigned": True,  # never accept an assertion the IdP did not sign
                "wantMessagesSigned": bool(config.get("want_messages_signed", False)),
                "authnRequestsSigned": bool(sp_key and sp_cert),
                "signMetadata": False,
                "wantNameId": True,
                "wantAttributeStatement": False,
                "requestedAuthnContext": False,
                "rejectDeprecatedAlgorithm": True,
                "rejectUnsolicitedResponsesWithInResponseTo": False,
                "signatureAlgorithm": OneLogin_Saml2_Constants.RSA_SHA256,
                "digestAlgorithm": OneLogin_Saml2_Constants.SHA256,
            },
        }
        try:
            self.settings = OneLogin_Saml2_Settings(self.settings_dict, sp_validation_only=False)
        except Exception as exc:  # python3-saml raises its own error with the list of problems
            raise SamlConfigError(f"saml.idps.{name}: {exc}") from None
        parts = urlsplit(self.acs_url)
        #: The ACS as python3-saml's "request" sees it: checks of Destination and
        #: Recipient compare against the configured address, whatever proxy is in front.
        self.request_data = {"https": "on" if parts.scheme == "https" else "off", "http_host": parts.hostname,
                             "server_port": parts.port or (443 if parts.scheme == "https" else 80),
                             "script_name": parts.path, "get_data": {}, "post_data": {}}

    # -- SP metadata and SP-initiated sign-in ----------------------------------------------
    def metadata(self) -> str:
        xml = self.settings.get_sp_metadata()
        return xml.decode() if isinstance(xml, bytes) else xml

    def login_redirect(self, relay_state: str | None) -> tuple[str, str]:
        """The IdP URL carrying a new AuthnRequest, and the request's ID."""
        auth = OneLogin_Saml2_Auth(self.request_data, old_settings=self.settings)
        url = auth.login(return_to=relay_state)
        return url, auth.get_last_request_id()

    # -- the assertion consumer --------------------------------------------------------------
    def parse(self, saml_response: str, *, expected_request: str | None) -> Assertion:
        """Validate a posted ``SAMLResponse`` (signature, issuer, audience,
        destination, times, status) and read it. ``expected_request`` is the ID
        of the AuthnRequest it must answer (``None``: unsolicited)."""
        try:
            response = OneLogin_Saml2_Response(self.settings, saml_response)
        except Exception:
            raise SamlRefused("SAMLResponse is not a SAML response") from None
        data = {**self.request_data, "post_data": {"SAMLResponse": saml_response}}
        # python3-saml reads the allowed skew from one process-wide constant: set
        # it for this server right before the (synchronous) check.
        OneLogin_Saml2_Constants.ALLOWED_CLOCK_DRIFT = self.clock_skew
        try:
            valid = response.is_valid(data, request_id=expected_request, raise_exceptions=False)
        except Exception as exc:
            raise SamlRefused(f"invalid SAML response ({type(exc).__name__})") from None
        if not valid:
            raise SamlRefused(response.get_error() or "invalid SAML response")
        assertion_id = response.get_assertion_id()
        if not assertion_id:
            raise SamlRefused("the assertion has no ID")
        not_after = response.get_assertion_not_on_or_after()
        name_id = response.get_nameid() or ""
        return Assertion(assertion_id=assertion_id, in_response_to=response.get_in_response_to(),
                         not_on_or_after=float(not_after) if not_after else None, name_id=name_id,
                         name_id_format=response.get_nameid_format(),
                         attributes={k: [str(v) for v in vs if v is not None]
                                     for k, vs in (response.get_attributes() or {}).items()},
                         session_index=response.get_session_index(),
                         issuer=(response.get_issuers() or [None])[0])

    def profile(self, assertion: Assertion) -> dict[str, Any]:
        """``email``, ``first_name``, ``last_name``, ``groups`` and the mapped
        ``role`` (``None`` when no mapping matched)."""
        attrs = assertion.attributes
        cfg = self.config
        email = _first(attrs, cfg.get("email_attribute"), EMAIL_ATTRIBUTES)
        if not email and "@" in assertion.name_id:
            email = assertion.name_id
        groups: list[str] = []
        wanted = cfg.get("groups_attribute")
        lowered = {k.lower(): v for k, v in attrs.items()}
        for name in ((wanted,) if wanted else GROUP_ATTRIBUTES):
            groups += lowered.get(name.lower(), [])
        role = None
        lowered_map = {str(k).strip().lower(): v for k, v in self.role_map.items()}
        for group in groups:
            mapped = lowered_map.get(group.strip().lower())
            if isinstance(mapped, str) and mapped:
                role = mapped
                break
        return {"email": email, "first_name": _first(attrs, cfg.get("first_name_attribute"), FIRST_NAME_ATTRIBUTES),
                "last_name": _first(attrs, cfg.get("last_name_attribute"), LAST_NAME_ATTRIBUTES),
                "groups": groups, "role": role}


def seconds_until(epoch: float | None, default: int) -> int:
    if epoch is None:
        return default
    return max(60, int(epoch - dt.datetime.now(dt.UTC).timestamp()) + 1)
