"""Passkeys (WebAuthn): passwordless sign-in, passkey-first sign-up, several
named passkeys per user.

Ceremonies, each a pair of ``options`` (the server's challenge) and ``verify``:

- ``POST /api/auth/passkey/register/options`` — signed in: add a passkey to your
  account; anonymous with ``{email}``: passkey-first sign-up (the account is
  created, without a password, when the passkey is verified).
  ``POST /api/auth/passkey/register/verify {credential, name?}`` stores the
  passkey (201) or, for a sign-up, creates the account and signs it in.
- ``POST /api/auth/passkey/login/options {email?}`` — with an email the options
  list that account's passkeys; without, any discoverable passkey of this site
  may answer (username-less sign-in). ``POST /api/auth/passkey/login/verify
  {credential, mode?}`` signs in like a password login.
- ``GET /api/auth/passkey/credentials``, ``PATCH``/``DELETE
  /api/auth/passkey/credentials/{id}``: the caller's passkeys.

The relying party ID is the host of ``server.public_url`` and the expected
origin its scheme and host (plus ``passkey.origins``). Challenges are one-time
tokens: used once, expire after ``passkey.challenge_ttl`` seconds. A sign
counter that does not grow (a cloned authenticator) is refused. Failed sign-ins
write ``auth.login_failed`` and count against the ``login`` rate limit.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from aiohttp import web
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from workeros.api import (
    InvalidCredentials,
    InvalidPayload,
    NotFound,
    WorkerosError,
    accountability,
    client,
    no_content,
    normalize_email,
    now,
    ok,
    read_object,
    services,
    session_response,
    wants_cookies,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.auth import AuthProvider
from workeros.hookspecs.data import ExportSection
from workeros.hookspecs.lifecycle import ConfigKey, Migrations

from .tables import passkeys

REGISTER = "passkey_register"
LOGIN = "passkey_login"
routes = web.RouteTableDef()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str) or not text or len(text) > 4096:
        raise InvalidPayload(f"{what} must be base64url text", field="credential")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise InvalidPayload(f"{what} is not base64url", field="credential") from None


def _relying_party(svc: Any) -> tuple[str, list[str]]:
    public = svc.settings["server.public_url"]
    if not public:
        # Not offered here (GET /api/auth/providers names the reason).
        raise NotFound("Passkeys are not available: server.public_url is not set")
    parts = urlsplit(public)
    origins = [f"{parts.scheme}://{parts.netloc}", *(svc.settings["passkey.origins"] or [])]
    return parts.hostname or "", origins


def _credential(data: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """The credential object of a verify call and the challenge its client data names."""
    credential = data.get("credential")
    if not isinstance(credential, dict) or not isinstance(credential.get("response"), dict):
        raise InvalidPayload("credential must be the PublicKeyCredential as JSON", field="credential")
    raw = _unb64(credential["response"].get("clientDataJSON"), "clientDataJSON")
    try:
        challenge = json.loads(raw)["challenge"]
    except (ValueError, KeyError, TypeError):
        raise InvalidPayload("clientDataJSON is not valid", field="credential") from None
    return credential, _unb64(challenge, "challenge")


def _options(options: Any) -> web.Response:
    return ok(json.loads(options_to_json(options)))


def _name(value: Any, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip() or len(value) > 128:
        raise InvalidPayload("name must be text of at most 128 characters", field="name")
    return value.strip()


# -- registration ---------------------------------------------------------------------------

@routes.post("/passkey/register/options")
async def register_options(request: web.Request) -> web.Response:
    svc = services(request)
    accounts = svc.accounts
    rp_id, _ = _relying_party(svc)
    data = await read_object(request)
    acc = accountability(request)
    who = client(request)
    if acc.user is not None:
        user = await accounts.user_row(acc.user)
        if user is None:
            raise InvalidCredentials("Not signed in")
        meta: dict[str, Any] = {"user": user["id"]}
        email, user_id = user["email"], user["id"]
        async with accounts.db.read() as conn:
            existing = (await conn.execute(sa.select(passkeys.c.credential_id).where(
                passkeys.c.user == user_id))).scalars().all()
    else:
        email = normalize_email(data.get("email"))
        await accounts.limiter.hit("sign_up", account=email, ip=who["ip"])
        user_id, meta, existing = str(uuid.uuid4()), {"email": email}, []
        meta["new_user"] = user_id
    challenge_ttl = svc.settings["passkey.challenge_ttl"]
    options = generate_registration_options(
        rp_id=rp_id, rp_name=svc.settings["passkey.rp_name"], user_name=email, user_id=user_id.encode(),
        user_display_name=email, timeout=challenge_ttl * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=_unb64(c, "id")) for c in existing])
    async with accounts.db.transaction() as conn:
        await accounts.create_token(conn, REGISTER, user=None, email=None, ttl=challenge_ttl,
                                    token=_b64(options.challenge), meta=meta)
    return _options(options)


@routes.post("/passkey/register/verify")
async def register_verify(request: web.Request) -> web.Response:
    svc = services(request)
    accounts = svc.accounts
    rp_id, origins = _relying_party(svc)
    data = await read_object(request)
    credential, challenge = _credential(data)
    name = _name(data.get("name"), "Passkey")
    async with accounts.db.transaction() as conn:
        token = await accounts.consume_token(conn, REGISTER, _b64(challenge))
    meta = token["meta"] or {}
    acc = accountability(request)
    if meta.get("user") is not None and acc.user != meta["user"]:
        raise InvalidCredentials("This passkey was started by another account")
    try:
        verified = verify_registration_response(credential=credential, expected_challenge=challenge,
                                                expected_rp_id=rp_id, expected_origin=origins)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise InvalidCredentials(f"The passkey could not be verified: {str(exc)[:200]}",
                                 reason="passkey_invalid") from None
    response = credential.get("response") or {}
    transports = response.get("transports") if isinstance(response.get("transports"), list) else None
    row = {"id": str(uuid.uuid4()), "credential_id": _b64(verified.credential_id),
           "public_key": _b64(verified.credential_public_key), "sign_count": verified.sign_count, "name": name,
           "transports": transports, "aaguid": str(verified.aaguid)[:64], "created_at": now()}

    async def store(conn: Any, user: str) -> None:
        taken = (await conn.execute(sa.select(passkeys.c.id).where(
            passkeys.c.credential_id == row["credential_id"]))).first()
        if taken is not None:
            raise InvalidCredentials("This passkey is already registered", reason="passkey_exists")
        await conn.execute(passkeys.insert().values(user=user, **row))

    if meta.get("user") is not None:
        async with accounts.db.transaction() as conn:
            await store(conn, meta["user"])
        return ok(_public({**row, "user": meta["user"]}), status=201)
    # Passkey-first sign-up: the account is created now, with the id the passkey carries as its user handle.
    cookies = wants_cookies(data)
    session = await accounts.external_login(provider="passkey", email=meta["email"], email_verified=False,
                                            on_user=store, browser=cookies, new_user_id=meta["new_user"],
                                            **client(request))
    return session_response(request, session, cookies=cookies, status=201)


# -- sign-in --------------------------------------------------------------------------------

@routes.post("/passkey/login/options")
async def login_options(request: web.Request) -> web.Response:
    svc = services(request)
    accounts = svc.accounts
    rp_id, _ = _relying_party(svc)
    data = await read_object(request)
    allow: list[PublicKeyCredentialDescriptor] = []
    if data.get("email") is not None:
        user = await accounts.find_user(normalize_email(data.get("email")))
        if user is not None:
            async with accounts.db.read() as conn:
                ids = (await conn.execute(sa.select(passkeys.c.credential_id).where(
                    passkeys.c.user == user["id"]))).scalars().all()
            allow = [PublicKeyCredentialDescriptor(id=_unb64(c, "id")) for c in ids]
    challenge_ttl = svc.settings["passkey.challenge_ttl"]
    options = generate_authentication_options(rp_id=rp_id, timeout=challenge_ttl * 1000, allow_credentials=allow,
                                              user_verification=UserVerificationRequirement.PREFERRED)
    async with accounts.db.transaction() as conn:
        await accounts.create_token(conn, LOGIN, user=None, email=None, ttl=challenge_ttl,
                                    token=_b64(options.challenge))
    return _options(options)


@routes.post("/passkey/login/verify")
async def login_verify(request: web.Request) -> web.Response:
    svc = services(request)
    accounts = svc.accounts
    rp_id, origins = _relying_party(svc)
    who = client(request)
    await accounts.limiter.hit("login", ip=who["ip"])
    data = await read_object(request)
    cookies = wants_cookies(data)
    credential, challenge = _credential(data)
    user: str | None = None
    try:
        async with accounts.db.transaction() as conn:
            await accounts.consume_token(conn, LOGIN, _b64(challenge))
        raw_id = credential.get("rawId") or credential.get("id")
        async with accounts.db.read() as conn:
            row = (await conn.execute(sa.select(passkeys).where(
                passkeys.c.credential_id == _b64(_unb64(raw_id, "rawId"))))).mappings().first()
        if row is None:
            raise InvalidCredentials("This passkey is not registered here", reason="passkey_unknown")
        user = row["user"]
        handle = (credential.get("response") or {}).get("userHandle")
        if handle and _unb64(handle, "userHandle") != user.encode():
            raise InvalidCredentials("This passkey belongs to another account", reason="passkey_invalid")
        try:
            verified = verify_authentication_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=rp_id, expected_origin=origins,
                credential_public_key=_unb64(row["public_key"], "public_key"),
                credential_current_sign_count=row["sign_count"])
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            reason = "sign_count" if "sign count" in str(exc).lower() else "passkey_invalid"
            raise InvalidCredentials(f"The passkey could not be verified: {str(exc)[:200]}", reason=reason) from None

        async def advance(conn: Any, _user: str) -> None:
            # Conditional on the count read: two sign-ins racing with one assertion cannot both pass.
            done = await conn.execute(passkeys.update().where(
                passkeys.c.id == row["id"], passkeys.c.sign_count == row["sign_count"])
                .values(sign_count=verified.new_sign_count, last_used_at=now()))
            if done.rowcount != 1:
                raise InvalidCredentials("This passkey was just used; try again", reason="sign_count")

        session = await accounts.external_login(provider="passkey", user=user, on_user=advance, browser=cookies,
                                                **who)
    except WorkerosError as exc:
        if isinstance(exc, InvalidCredentials) or exc.status == 401:
            await accounts.login_failed(provider="passkey", user=user,
                                        reason=str(exc.extensions.get("reason", "refused")), **who)
        raise
    return session_response(request, session, cookies=cookies)


# -- the caller's passkeys -------------------------------------------------------------------

def _public(row: Any) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "name", "created_at", "last_used_at", "transports") if k in row}


def _caller(request: web.Request) -> str:
    user = accountability(request).user
    if user is None:
        raise InvalidCredentials("Not signed in")
    return user


@routes.get("/passkey/credentials")
async def list_credentials(request: web.Request) -> web.Response:
    user = _caller(request)
    async with services(request).accounts.db.read() as conn:
        rows = (await conn.execute(sa.select(passkeys).where(passkeys.c.user == user)
                                   .order_by(passkeys.c.created_at, passkeys.c.id))).mappings().all()
    return ok([_public(r) for r in rows])


@routes.patch("/passkey/credentials/{id}")
async def rename_credential(request: web.Request) -> web.Response:
    user = _caller(request)
    data = await read_object(request)
    name = _name(data.get("name"), "")
    db = services(request).accounts.db
    async with db.transaction() as conn:
        done = await conn.execute(passkeys.update().where(passkeys.c.id == request.match_info["id"],
                                                          passkeys.c.user == user).values(name=name))
        if done.rowcount != 1:
            raise NotFound("Passkey not found")
        row = (await conn.execute(sa.select(passkeys).where(passkeys.c.id == request.match_info["id"])
                                  )).mappings().first()
    return ok(_public(row))


@routes.delete("/passkey/credentials/{id}")
async def delete_credential(request: web.Request) -> web.Response:
    user = _caller(request)
    db = services(request).accounts.db
    async with db.transaction() as conn:
        done = await conn.execute(passkeys.delete().where(passkeys.c.id == request.match_info["id"],
                                                          passkeys.c.user == user))
        if done.rowcount != 1:
            raise NotFound("Passkey not found")
    return no_content()


def _ready(svc: Any) -> str | None:
    if not svc.settings["server.public_url"]:
        return "server.public_url is not set, so passkeys have no relying party ID"
    return None


def _entries(svc: Any) -> list[dict[str, Any]]:
    return [{"name": "passkey", "type": "passkey", "label": "Passkey",
             "start_url": "/api/auth/passkey/login/options"}]


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return [
        ConfigKey("passkey.rp_name", "str", "workeros", "Name of this site shown by authenticators"),
        ConfigKey("passkey.challenge_ttl", "int", 300, "Seconds a passkey challenge works (once)"),
        ConfigKey("passkey.origins", "list", [], "Origins accepted besides server.public_url's (apps on "
                  "sub-domains of the relying party ID)"),
    ]


@hookimpl
def workeros_register_export_sections() -> list[ExportSection]:
    """Full exports carry the passkey plugin's rows."""
    return [ExportSection("passkey", tables=[passkeys])]


@hookimpl
def workeros_register_migrations() -> list[Migrations]:
    return [Migrations("passkey", str(Path(__file__).parent / "migrations"))]


@hookimpl
def workeros_register_auth_providers() -> list[AuthProvider]:
    return [AuthProvider(name="passkey", kind="credential", routes=lambda: routes, ready=_ready, entries=_entries,
                         description="Passkeys (WebAuthn)")]
