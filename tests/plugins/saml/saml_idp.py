"""A SAML identity provider for the tests, on loopback over real HTTP.

Its RSA key and self-signed certificate are made with ``cryptography``; its
assertions are signed with xmlsec (enveloped XML signature, RSA-SHA256,
exclusive canonicalisation), as Okta, Entra ID or Keycloak sign theirs.
``GET /sso`` takes an HTTP-Redirect AuthnRequest and answers with the
auto-posting HTML form a real IdP sends the browser; ``response()`` builds an
unsolicited (IdP-initiated) one, or a broken one for the refusal tests.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import uuid
import zlib
from typing import Any

import xmlsec
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XS = "http://www.w3.org/2001/XMLSchema"
NSMAP = {"samlp": SAMLP, "saml": SAML}


def key_and_cert(common_name: str) -> tuple[bytes, bytes]:
    """A fresh RSA key and a self-signed certificate for it (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
            cert.public_bytes(serialization.Encoding.PEM))


def instant(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(element: Any, key_pem: bytes, cert_pem: bytes) -> None:
    """Sign ``element`` (which has an ``ID``) in place, the signature right after its Issuer."""
    signature = xmlsec.template.create(element, xmlsec.Transform.EXCL_C14N, xmlsec.Transform.RSA_SHA256, ns="ds")
    element.find(f"{{{SAML}}}Issuer").addnext(signature)
    ref = xmlsec.template.add_reference(signature, xmlsec.Transform.SHA256, uri="#" + element.get("ID"))
    xmlsec.template.add_transform(ref, xmlsec.Transform.ENVELOPED)
    xmlsec.template.add_transform(ref, xmlsec.Transform.EXCL_C14N)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    key = xmlsec.Key.from_memory(key_pem, xmlsec.KeyFormat.PEM)
    key.load_cert_from_memory(cert_pem, xmlsec.KeyFormat.PEM)
    ctx = xmlsec.SignatureContext()
    ctx.key = key
    ctx.register_id(element, "ID")
    ctx.sign(signature)


class TestIdP:
    """One IdP: ``entity_id``, ``cert_pem`` (give it to the SP), ``url`` once started."""

    __test__ = False

    def __init__(self, sp_entity_id: str, acs_url: str, entity_id: str = "https://idp.test/saml") -> None:
        self.entity_id = entity_id
        self.sp_entity_id = sp_entity_id
        self.acs_url = acs_url
        self.key_pem, self.cert_pem = key_and_cert("test idp")
        self.user: dict[str, Any] = {"email": "ada@example.org", "attributes": {}}
        self.requests: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    def response(self, *, in_response_to: str | None = None, email: str | None = None,
                 attributes: dict[str, list[str]] | None = None, signed: bool = True,
                 signer: tuple[bytes, bytes] | None = None, issued: dt.datetime | None = None,
                 lifetime: int = 300, audience: str | None = None, destination: str | None = None,
                 assertion_id: str | None = None) -> str:
        """A base64 ``SAMLResponse`` for ``email`` (default: the current user)."""
        email = email or self.user["email"]
        attributes = self.user["attributes"] if attributes is None else attributes
        issued = issued or dt.datetime.now(dt.UTC)
        expires = issued + dt.timedelta(seconds=lifetime)
        destination = destination or self.acs_url
        response = etree.Element(f"{{{SAMLP}}}Response", nsmap=NSMAP, ID=f"_r{uuid.uuid4().hex}", Version="2.0",
                                 IssueInstant=instant(issued), Destination=destination)
        if in_response_to:
            response.set("InResponseTo", in_response_to)
        etree.SubElement(response, f"{{{SAML}}}Issuer").text = self.entity_id
        status = etree.SubElement(response, f"{{{SAMLP}}}Status")
        etree.SubElement(status, f"{{{SAMLP}}}StatusCode", Value="urn:oasis:names:tc:SAML:2.0:status:Success")
        assertion = etree.SubElement(response, f"{{{SAML}}}Assertion", ID=assertion_id or f"_a{uuid.uuid4().hex}",
                                     Version="2.0", IssueInstant=instant(issued))
        etree.SubElement(assertion, f"{{{SAML}}}Issuer").text = self.entity_id
        subject = etree.SubElement(assertion, f"{{{SAML}}}Subject")
        name_id = etree.SubElement(subject, f"{{{SAML}}}NameID",
                                   Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress")
        name_id.text = email
        confirmation = etree.SubElement(subject, f"{{{SAML}}}SubjectConfirmation",
                                        Method="urn:oasis:names:tc:SAML:2.0:cm:bearer")
        data = etree.SubElement(confirmation, f"{{{SAML}}}SubjectConfirmationData", NotOnOrAfter=instant(expires),
                                Recipient=destination)
        if in_response_to:
            data.set("InResponseTo", in_response_to)
        conditions = etree.SubElement(assertion, f"{{{SAML}}}Conditions", NotBefore=instant(issued),
                                      NotOnOrAfter=instant(expires))
        restriction = etree.SubElement(conditions, f"{{{SAML}}}AudienceRestriction")
        etree.SubElement(restriction, f"{{{SAML}}}Audience").text = audience or self.sp_entity_id
        authn = etree.SubElement(assertion, f"{{{SAML}}}AuthnStatement", AuthnInstant=instant(issued),
                                 SessionIndex=f"_s{uuid.uuid4().hex}")
        context = etree.SubElement(authn, f"{{{SAML}}}AuthnContext")
        etree.SubElement(context, f"{{{SAML}}}AuthnContextClassRef").text = (
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")
        if attributes:
            statement = etree.SubElement(assertion, f"{{{SAML}}}AttributeStatement")
            for name, values in attributes.items():
                attribute = etree.SubElement(statement, f"{{{SAML}}}Attribute", Name=name,
                                             NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic")
                for value in values:
                    v = etree.SubElement(attribute, f"{{{SAML}}}AttributeValue", nsmap={"xs": XS, "xsi": XSI})
                    v.set(f"{{{XSI}}}type", "xs:string")
                    v.text = value
        if signed:
            key_pem, cert_pem = signer or (self.key_pem, self.cert_pem)
            sign(assertion, key_pem, cert_pem)
        return base64.b64encode(etree.tostring(response, xml_declaration=True, encoding="UTF-8")).decode()

    # -- the HTTP face ---------------------------------------------------------------------
    async def sso(self, request: web.Request) -> web.Response:
        raw = request.query.get("SAMLRequest")
        if not raw:
            return web.Response(status=400, text="SAMLRequest is missing")
        xml = zlib.decompress(base64.b64decode(raw), -15)
        authn = etree.fromstring(xml)
        self.requests.append({"id": authn.get("ID"), "acs": authn.get("AssertionConsumerServiceURL"),
                              "issuer": authn.findtext(f"{{{SAML}}}Issuer"),
                              "relay_state": request.query.get("RelayState")})
        saml_response = self.response(in_response_to=authn.get("ID"))
        relay = html.escape(request.query.get("RelayState", ""), quote=True)
        page = (f'<html><body onload="document.forms[0].submit()"><form method="post" action="{self.acs_url}">'
                f'<input type="hidden" name="SAMLResponse" value="{saml_response}"/>'
                f'<input type="hidden" name="RelayState" value="{relay}"/></form></body></html>')
        return web.Response(text=page, content_type="text/html")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/sso", self.sso)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
