"""Passkey ceremonies over HTTP with a software authenticator (soft-webauthn),
both dialects."""

from __future__ import annotations

import base64
from typing import Any

from soft_webauthn import SoftWebauthnDevice

ORIGIN = "http://wos.test"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def for_device(options: dict[str, Any]) -> dict[str, Any]:
    """The server's JSON options as the browser API (and soft-webauthn) takes them."""
    pk = dict(options, challenge=unb64(options["challenge"]))
    if "user" in pk:
        pk["user"] = dict(pk["user"], id=unb64(pk["user"]["id"]))
    return {"publicKey": pk}


def as_json(credential: dict[str, Any]) -> dict[str, Any]:
    response = {k: b64(v) for k, v in credential["response"].items() if v is not None}
    return {"id": b64(credential["rawId"]), "rawId": b64(credential["rawId"]), "type": "public-key",
            "response": response}


async def register(caller: Any, device: SoftWebauthnDevice, *, origin: str = ORIGIN, **body: Any) -> Any:
    name = body.pop("name", None)
    options = await caller.post("/api/auth/passkey/register/options", json=body)
    assert options.status == 200, options
    credential = as_json(device.create(for_device(options.data), origin))
    return await caller.post("/api/auth/passkey/register/verify",
                             json={"credential": credential, "mode": "json", **({"name": name} if name else {})})


async def assertion(api: Any, device: SoftWebauthnDevice, *, origin: str = ORIGIN, **body: Any) -> dict[str, Any]:
    options = await api.anonymous().post("/api/auth/passkey/login/options", json=body)
    assert options.status == 200, options
    return as_json(device.get(for_device(options.data), origin))


async def login(api: Any, device: SoftWebauthnDevice, **body: Any) -> Any:
    credential = await assertion(api, device, **body)
    return await api.anonymous().post("/api/auth/passkey/login/verify", json={"credential": credential,
                                                                             "mode": "json"})


async def me(api: Any, session: Any) -> Any:
    return (await api.with_token(session.data["access_token"]).get("/api/users/me")).data


async def test_passkey_first_sign_up_then_discoverable_sign_in(api):
    device = SoftWebauthnDevice()
    r = await register(api.anonymous(), device, email="Ada@Example.com")
    assert r.status == 201 and set(r.data) == {"access_token", "refresh_token", "expires"}
    ada = await me(api, r)
    assert ada["email"] == "ada@example.com" and ada["role"] == "admin"  # the first user, whichever way
    # The passkey's user handle is the account's id: username-less sign-in finds it.
    assert device.user_handle == ada["id"].encode()
    signed_in = await login(api, device)
    assert signed_in.status == 200, signed_in
    assert (await me(api, signed_in))["id"] == ada["id"]
    # With an email, the options name that account's passkeys.
    options = await api.anonymous().post("/api/auth/passkey/login/options", json={"email": "ada@example.com"})
    assert [c["id"] for c in options.data["allowCredentials"]] == [b64(device.credential_id)]
    assert options.data["rpId"] == "wos.test"
    activity = (await api.as_admin().get("/api/activity")).data
    providers = {a["meta"]["provider"] for a in activity if a["action"] == "auth.login"}
    assert providers == {"passkey"}
    # A second account made this way gets the default role (none here).
    bob = await register(api.anonymous(), SoftWebauthnDevice(), email="bob@example.com")
    assert (await me(api, bob))["role"] is None


async def test_sign_up_cannot_claim_an_existing_address(api, sign_up):
    await sign_up("ada@example.com")
    r = await register(api.anonymous(), SoftWebauthnDevice(), email="ada@example.com")
    assert (r.status, r.code) == (401, "INVALID_CREDENTIALS")


async def test_signed_in_user_adds_named_passkeys(api, sign_up, password):
    user = await sign_up("ada@example.com")
    ada = await api.sign_in("ada@example.com", password)
    laptop, phone = SoftWebauthnDevice(), SoftWebauthnDevice()
    first = await register(ada, laptop, name="Laptop")
    second = await register(ada, phone, name="Phone")
    assert first.status == 201 and first.data["name"] == "Laptop" and second.status == 201
    listed = (await ada.get("/api/auth/passkey/credentials")).data
    assert [p["name"] for p in listed] == ["Laptop", "Phone"]
    # Registering again from the same account excludes the passkeys it has.
    options = await ada.post("/api/auth/passkey/register/options", json={})
    assert {c["id"] for c in options.data["excludeCredentials"]} == {b64(laptop.credential_id),
                                                                      b64(phone.credential_id)}
    renamed = await ada.patch(f"/api/auth/passkey/credentials/{listed[1]['id']}", json={"name": "Old phone"})
    assert renamed.data["name"] == "Old phone"
    for device in (laptop, phone):
        r = await login(api, device)
        assert r.status == 200 and (await me(api, r))["id"] == user["id"]
    assert (await ada.delete(f"/api/auth/passkey/credentials/{listed[1]['id']}")).status == 204
    r = await login(api, phone)
    assert (r.status, r.code) == (401, "INVALID_CREDENTIALS")
    # Someone else's passkey cannot be renamed or deleted.
    other = await api.sign_in("ada@example.com", password)
    assert (await api.anonymous().delete(f"/api/auth/passkey/credentials/{listed[0]['id']}")).status == 401
    assert (await other.delete("/api/auth/passkey/credentials/not-an-id")).status == 404


async def test_sign_counter_regression_is_refused(api):
    device = SoftWebauthnDevice()
    await register(api.anonymous(), device, email="ada@example.com")
    assert (await login(api, device)).status == 200
    assert (await login(api, device)).status == 200
    device.sign_count = 0  # a cloned authenticator replays an older count
    r = await login(api, device)
    assert (r.status, r.code) == (401, "INVALID_CREDENTIALS")
    assert r.json["errors"][0]["extensions"]["reason"] == "sign_count"
    failed = [a for a in (await api.as_admin().get("/api/activity")).data if a["action"] == "auth.login_failed"]
    assert failed[0]["meta"]["reason"] == "sign_count" and failed[0]["meta"]["provider"] == "passkey"


async def test_challenges_work_once(api):
    device = SoftWebauthnDevice()
    options = await api.anonymous().post("/api/auth/passkey/register/options", json={"email": "ada@example.com"})
    credential = as_json(device.create(for_device(options.data), ORIGIN))
    body = {"credential": credential, "mode": "json"}
    assert (await api.anonymous().post("/api/auth/passkey/register/verify", json=body)).status == 201
    again = await api.anonymous().post("/api/auth/passkey/register/verify", json=body)
    assert (again.status, again.code) == (401, "INVALID_CREDENTIALS")
    signed = await assertion(api, device)
    body = {"credential": signed, "mode": "json"}
    assert (await api.anonymous().post("/api/auth/passkey/login/verify", json=body)).status == 200
    replay = await api.anonymous().post("/api/auth/passkey/login/verify", json=body)
    assert (replay.status, replay.code) == (401, "INVALID_CREDENTIALS")


async def test_wrong_origin_and_made_up_challenges_are_refused(api):
    device = SoftWebauthnDevice()
    await register(api.anonymous(), device, email="ada@example.com")
    r = await api.anonymous().post("/api/auth/passkey/login/verify",
                                   json={"credential": await assertion(api, device, origin="http://evil.test")})
    assert (r.status, r.code) == (401, "INVALID_CREDENTIALS")
    forged = device.get(for_device({"challenge": b64(b"x" * 32), "rpId": "wos.test"}), ORIGIN)
    r = await api.anonymous().post("/api/auth/passkey/login/verify", json={"credential": as_json(forged)})
    assert (r.status, r.code) == (401, "INVALID_CREDENTIALS")
    for bad in ({}, {"credential": "x"}, {"credential": {"response": {"clientDataJSON": "!!"}}}):
        r = await api.anonymous().post("/api/auth/passkey/login/verify", json=bad)
        assert (r.status, r.code) == (400, "INVALID_PAYLOAD"), bad


async def test_listed_with_start_url(api):
    r = await api.anonymous().get("/api/auth/providers")
    entry = next(p for p in r.data if p["name"] == "passkey")
    assert entry == {"name": "passkey", "kind": "credential", "type": "passkey", "label": "Passkey",
                     "start_url": "/api/auth/passkey/login/options"}


async def test_failed_sign_ins_are_rate_limited(make_server):
    from aiohttp.test_utils import TestClient
    from callers import Api

    async with make_server(ratelimit__login__per_ip=3) as server, TestClient(server) as client:
        api = Api(client)
        device = SoftWebauthnDevice()
        device.cred_init("wos.test", b"nobody")
        statuses = []
        for _ in range(5):
            credential = await assertion(api, device)
            statuses.append((await api.post("/api/auth/passkey/login/verify", json={"credential": credential})).status)
    assert statuses == [401, 401, 401, 429, 429]
