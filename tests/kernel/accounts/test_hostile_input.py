"""Hostile input outside (and around) the items API: NUL characters in bodies,
query strings and paths, integers beyond 64 bits in ids, offsets and pages,
over-long names at sign-up. Each answers a clear 4xx in the contract's envelope
(or an ordinary success), never a 5xx, on both dialects."""

from __future__ import annotations

from typing import Any

from tests.kernel.schema.schema_helpers import LEAKS
from tests.plugins.rest.items_setup import create_blog

BIG = "99999999999999999999999"
NUL = "a\x00b"


async def test_hostile_input_gets_a_client_error_never_a_server_error(api: Any, sign_up: Any) -> None:
    admin = api.as_admin()
    await create_blog(api)
    u = await sign_up("ada@example.com")
    anon = api.anonymous()
    reqs = [
      ("post", "/api/auth/login", {"json": {"email": NUL + "@x.com", "password": "pw"}}),
      ("post", "/api/auth/login", {"json": {"email": "ada@example.com", "password": NUL}}),
      ("post", "/api/auth/sign-up", {"json": {"email": NUL + "@x.com", "password": "correct horse 42"}}),
      ("post", "/api/auth/sign-up", {"json": {"email": "n@x.com", "password": "correct horse 42", "first_name": NUL}}),
      ("post", "/api/auth/sign-up", {"json": {"email": "n2@x.com", "password": "correct horse 42", "first_name": "x" * 5000}}),
      ("post", "/api/auth/sign-up", {"json": {"email": "n3@x.com", "password": "correct horse 42", "last_name": "x" * 5000}}),
      ("post", "/api/auth/sign-up", {"json": {"email": ("x" * 400) + "@x.com", "password": "correct horse 42"}}),
      ("post", "/api/auth/sign-up", {"json": {"email": "n4@x.com", "password": "x" * 100000}}),
      ("post", "/api/auth/password/request", {"json": {"email": NUL + "@x.com"}}),
      ("post", "/api/auth/password/reset", {"json": {"token": NUL, "password": "correct horse 43"}}),
      ("post", "/api/auth/magic-link", {"json": {"email": NUL + "@x.com"}}),
      ("post", "/api/auth/magic-link/verify", {"json": {"token": NUL}}),
      ("post", "/api/auth/otp/request", {"json": {"email": NUL + "@x.com"}}),
      ("post", "/api/auth/otp/verify", {"json": {"email": NUL + "@x.com", "code": NUL}}),
      ("post", "/api/auth/refresh", {"json": {"refresh_token": NUL}}),
      ("post", "/api/auth/verify-email", {"json": {"token": NUL}}),
      ("get", "/api/users", {"params": {"search": NUL}}),
      ("get", "/api/users", {"params": {"filter[email][_eq]": NUL}}),
      ("get", "/api/users", {"params": {"filter[id][_eq]": BIG}}),
      ("get", "/api/users", {"params": {"offset": BIG}}),
      ("get", "/api/users", {"params": {"limit": BIG}}),
      ("get", "/api/users/" + BIG, {}),
      ("get", "/api/users/" + NUL, {}),
      ("patch", "/api/users/" + BIG, {"json": {"first_name": "x"}}),
      ("delete", "/api/users/" + BIG, {}),
      ("patch", "/api/users/" + str(u["id"]), {"json": {"first_name": NUL}}),
      ("patch", "/api/users/" + str(u["id"]), {"json": {"first_name": "x" * 5000}}),
      ("post", "/api/users", {"json": {"email": "z@x.com", "first_name": "x" * 5000}}),
      ("post", "/api/users/invite", {"json": {"email": NUL + "@x.com"}}),
      ("get", "/api/roles/" + BIG, {}),
      ("patch", "/api/roles/" + BIG, {"json": {"name": "x"}}),
      ("delete", "/api/roles/" + BIG, {}),
      ("post", "/api/roles", {"json": {"name": NUL}}),
      ("post", "/api/roles", {"json": {"name": "x" * 5000}}),
      ("post", "/api/roles", {"json": {"name": "r", "description": NUL}}),
      ("get", "/api/permissions/" + BIG, {}),
      ("get", "/api/permissions", {"params": {"role": BIG}}),
      ("get", "/api/permissions", {"params": {"role": NUL}}),
      ("patch", "/api/permissions/" + BIG, {"json": {}}),
      ("delete", "/api/permissions/" + BIG, {}),
      ("post", "/api/permissions", {"json": {"role": BIG, "collection": "posts", "action": "read"}}),
      ("post", "/api/permissions", {"json": {"role": NUL, "collection": "posts", "action": "read"}}),
      ("get", "/api/api-keys/" + BIG, {}),
      ("delete", "/api/api-keys/" + BIG, {}),
      ("post", "/api/api-keys", {"json": {"name": NUL}}),
      ("post", "/api/api-keys", {"json": {"name": "x" * 5000}}),
      ("get", "/api/activity", {"params": {"offset": BIG}}),
      ("get", "/api/activity", {"params": {"limit": BIG}}),
      ("get", "/api/activity", {"params": {"filter[item][_eq]": NUL}}),
      ("get", "/api/activity", {"params": {"filter[id][_eq]": BIG}}),
      ("get", "/api/activity", {"params": {"search": NUL}}),
      ("get", "/api/revisions", {"params": {"offset": BIG}}),
      ("get", "/api/revisions", {"params": {"filter[item][_eq]": NUL}}),
      ("get", "/api/revisions", {"params": {"filter[id][_eq]": BIG}}),
      ("get", "/api/revisions", {"params": {"item": NUL, "collection": "posts"}}),
      ("post", "/api/revisions/" + BIG + "/restore", {}),
      ("post", "/api/items/posts/" + BIG + "/restore", {}),
      ("post", "/api/items/posts/1/restore", {"params": {"at": NUL}}),
      ("post", "/api/items/posts/1/restore", {"params": {"at": BIG}}),
      ("post", "/api/collections/posts/restore", {"params": {"at": NUL}}),
      ("get", "/api/items/posts/" + BIG, {}),
      ("get", "/api/items/posts", {"params": {"offset": BIG}}),
      ("get", "/api/items/posts", {"params": {"page": BIG}}),
      ("get", "/api/items/posts", {"params": {"search": NUL}}),
      ("get", "/api/items/posts", {"params": {"page": "999999999999999999", "limit": "100"}}),
      ("get", "/api/items/posts", {"params": {"page": "999999999999999999", "limit": "-1", "fields": "*,tags.*"}}),
      ("get", "/api/items/authors", {"params": {"deep[posts][_page]": "999999999999999999", "deep[posts][_limit]": "1000", "fields": "*,posts.*"}}),
      ("get", "/api/items/posts", {"params": {"page": "999999999999999999", "export": "csv"}}),
      ("get", "/api/activity", {"params": {"page": "9999999999999999999", "limit": "100"}}),
      ("get", "/api/revisions", {"params": {"page": "99999999999999999", "limit": "1000"}}),
      ("get", "/api/users", {"params": {"offset": "9223372036854775807"}}),
      ("get", "/api/items/posts", {"params": {"offset": "999999999999999999"}}),
      ("post", "/api/items/posts", {"json": {"title": "x", "rating": 99999999999999999999}}),
      ("post", "/api/items/posts", {"json": {"title": "x", "id": 18446744073709551615}}),
      ("patch", "/api/items/posts", {"json": {"keys": [18446744073709551615], "data": {"title": "y"}}}),
      ("delete", "/api/items/posts", {"json": [18446744073709551615]}),
      ("get", "/api/items/posts/18446744073709551615", {}),
      ("get", "/api/items/posts/1e30", {}),
      ("get", "/api/items/posts/" + NUL, {}),
      ("get", "/api/items/posts", {"params": {NUL: "1"}}),
      ("get", "/api/items/posts", {"params": {"filter[title][_eq]": NUL}}),
      ("get", "/api/items/posts", {"params": {"filter[id][_eq]": BIG}}),
      ("get", "/api/users/me/sessions", {}),
      ("delete", "/api/users/me/sessions/" + NUL, {}),
      ("delete", "/api/users/me/sessions/" + BIG, {}),
      ("get", "/api/realtime", {"params": {"collection": NUL}}),
      ("post", "/api/graphql", {"json": {"query": "{ posts(offset: 99999999999999999999) { id } }"}}),
      ("post", "/api/graphql", {"json": {"query": "{ posts_by_id(id: \"99999999999999999999\") { id } }"}}),
      ("post", "/api/graphql", {"json": {"query": "{ posts(search: \"a\\u0000b\") { id } }"}}),
      ("post", "/api/graphql", {"json": {"query": "{ posts(filter: {title: {_eq: \"a\\u0000b\"}}) { id } }"}}),
      ("get", "/api/schema/snapshot", {"params": {"format": NUL}}),
      ("post", "/api/schema/apply", {"json": {"collections": [{"collection": "x", "note": NUL}]}}),
      ("post", "/api/collections", {"json": {"collection": "nn", "note": NUL}}),
      ("post", "/api/import/posts", {"data": b'[{"title": "a\\u0000b"}]', "headers": {"Content-Type": "application/json"}}),
      ("post", "/api/items/posts", {"json": {"title": NUL}}),
      ("get", "/api/relations/posts/" + NUL, {}),
      ("get", "/api/fields/posts/" + NUL, {}),
    ]
    bad = []
    for caller in (admin, anon):
        for method, path, kw in reqs:
            r = await getattr(caller, method)(path, **kw)
            if r.status >= 500:
                bad.append((caller.caller, method, path, str(kw)[:120], r.status, r.raw[:160]))
            elif r.status >= 400:
                assert set(r.json) == {"errors"}, r
                assert not LEAKS.search(r.json["errors"][0]["message"]), r
    assert not bad, "\n".join(map(str, bad))
    # a NUL or an out-of-range integer is refused before anything is written or mailed
    r = await anon.post("/api/auth/sign-up", json={"email": NUL + "@x.com", "password": "correct horse 42"})
    assert r.status == 400 and r.code == "INVALID_PAYLOAD", r
    r = await anon.post("/api/auth/password/request", json={"email": "ada@example.com\x00"})
    assert r.status == 400, r
    r = await admin.get("/api/activity", params={"offset": BIG})
    assert r.status == 400 and r.code == "INVALID_QUERY", r
    r = await admin.get("/api/items/posts", params={"filter[title][_eq]": NUL})
    assert r.status == 400 and r.code == "INVALID_QUERY", r
    r = await anon.post("/api/auth/sign-up", json={"email": "long@x.com", "password": "correct horse 42",
                                                   "first_name": "x" * 129})
    assert r.status == 400 and r.code == "INVALID_PAYLOAD", r
    r = await admin.get("/api/users", params={"search": "long@x.com"})
    assert r.data == [], r
    r = await anon.post("/api/auth/sign-up", json={"email": "fine@x.com", "password": "correct horse 42",
                                                   "first_name": "x" * 128, "last_name": "Lovelace"})
    assert r.status == 201, r
