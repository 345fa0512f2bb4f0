"""The Lambda handler invoked with recorded event documents (API Gateway HTTP
API payload 2.0 and a Function URL event), on both dialects: sign-in with
cookies, a Bearer write, a filtered read with an encoded query, and what the
handler refuses."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from workeros_lambda import LambdaHandler, build_response

EVENTS = Path(__file__).parent / "events"
ADMIN = {"email": "admin@wos.test", "password": "correct horse battery staple"}


def event(name: str, **values: str) -> dict[str, Any]:
    text = (EVENTS / f"{name}.json").read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return json.loads(text)


@pytest.fixture
def handler(wos_settings: Any) -> Iterator[LambdaHandler]:
    settings = wos_settings.with_overrides(**{"admin.email": ADMIN["email"], "admin.password": ADMIN["password"]})
    h = LambdaHandler(settings)
    try:
        yield h
    finally:
        h.close()


def body(response: dict[str, Any]) -> Any:
    raw = response["body"]
    if response.get("isBase64Encoded"):
        raw = base64.b64decode(raw)
    return json.loads(raw)


def sign_in(handler: LambdaHandler) -> dict[str, Any]:
    payload = json.dumps(ADMIN).encode()
    r = handler(event("http_api_login", BODY=base64.b64encode(payload).decode(), LENGTH=str(len(payload))), None)
    assert r["statusCode"] == 200, r
    return r


def test_cold_start_then_sign_in_sets_cookies_and_runtime_is_lambda(handler: LambdaHandler) -> None:
    r = sign_in(handler)
    assert handler.cold_start is not None and handler.cold_start > 0
    assert r["headers"]["content-type"].startswith("application/json")
    assert r["isBase64Encoded"] is False
    assert body(r)["data"]["access_token"]
    # Set-Cookie travels in the 2.0 "cookies" list, not as a folded header.
    assert "set-cookie" not in r["headers"]
    names = {c.split("=", 1)[0] for c in r["cookies"]}
    assert "wos_csrf" in names and len(names) >= 2
    from workeros.http.keys import REGISTRY

    runtime = handler.inner.app[REGISTRY].get("runtime")
    assert runtime.name == "lambda" and runtime.realtime is False


def test_function_url_event_with_the_session_cookies(handler: LambdaHandler) -> None:
    login = sign_in(handler)
    cookies = '","'.join(c.split(";", 1)[0] for c in login["cookies"])
    r = handler(event("function_url_me", COOKIES=cookies), None)
    assert r["statusCode"] == 200, r
    assert body(r)["data"]["email"] == ADMIN["email"]


def test_bearer_write_then_filtered_read_with_an_encoded_query(handler: LambdaHandler) -> None:
    token = body(sign_in(handler))["data"]["access_token"]
    r = handler(event("http_api_create_collection", TOKEN=token), None)
    assert r["statusCode"] in (200, 201), r
    for title in ("café au lait", "café noir", "tea"):
        e = event("http_api_create_collection", TOKEN=token)
        e["rawPath"] = e["requestContext"]["http"]["path"] = "/api/items/notes"
        e["body"] = base64.b64encode(json.dumps({"title": title}).encode()).decode()
        e["isBase64Encoded"] = True
        assert handler(e, None)["statusCode"] in (200, 201)
    r = handler(event("http_api_list_filtered", TOKEN=token), None)
    assert r["statusCode"] == 200, r
    assert [row["title"] for row in body(r)["data"]] == ["café au lait", "café noir"]


def test_errors_keep_the_envelope(handler: LambdaHandler) -> None:
    e = event("http_api_create_collection", TOKEN="not-a-token")
    r = handler(e, None)
    assert r["statusCode"] == 401
    assert body(r)["errors"][0]["extensions"]["code"] in ("INVALID_CREDENTIALS", "TOKEN_EXPIRED")
    e = event("http_api_create_collection", TOKEN="x")
    del e["headers"]["authorization"]
    e["body"] = "{broken"
    r = handler(e, None)
    assert r["statusCode"] in (400, 403)
    assert "Traceback" not in r["body"]
    # No realtime on this runtime.
    e = event("http_api_list_filtered", TOKEN="x")
    e["rawPath"], e["rawQueryString"] = "/api/realtime", ""
    del e["headers"]["authorization"]
    assert handler(e, None)["statusCode"] == 404


def test_payload_1_0_events_are_refused(handler: LambdaHandler) -> None:
    r = handler(event("rest_api_v1"), None)
    assert r["statusCode"] == 400
    assert json.loads(r["body"])["errors"][0]["extensions"]["code"] == "INVALID_PAYLOAD"


def test_binary_bodies_are_base64_and_repeated_headers_fold() -> None:
    r = build_response(200, [("Content-Type", "image/png"), ("Vary", "Origin"), ("Vary", "Accept"),
                             ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")], b"\x89PNG\x00")
    assert r["isBase64Encoded"] is True and base64.b64decode(r["body"]) == b"\x89PNG\x00"
    assert r["headers"]["vary"] == "Origin, Accept"
    assert r["cookies"] == ["a=1", "b=2"]
    empty = build_response(204, [], b"")
    assert empty["body"] == "" and empty["isBase64Encoded"] is False
