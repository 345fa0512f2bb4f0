"""SCIM 2.0 provisioning (RFC 7643/7644) at ``/scim/v2``: Okta, Azure AD (Entra
ID), Google Workspace, JumpCloud and other identity providers create, update,
deactivate and delete workeros users and groups.

- ``/Users`` and ``/Groups``: list (``filter`` ``userName eq``, ``externalId
  eq``, ``displayName eq``; ``startIndex``, ``count``), create, get, replace
  (PUT), PATCH (the operation shapes Okta and Azure AD send: ``replace`` with or
  without ``path``, string booleans, ``members[value eq "…"]``), delete.
- ``/ServiceProviderConfig``, ``/ResourceTypes``, ``/Schemas``.

A SCIM user is a workeros account: ``userName`` is its email address, ``name``
its first and last names; ``active: false`` suspends the account and ends every
session it has. Provisioned accounts have no password (people sign in through
the identity provider: OAuth, SAML) and get ``auth.default_role`` — the very
first account is admin. Groups are kept by the plugin; ``scim.group_roles``
maps group names to roles, and a member of a mapped group gets that role (the
first mapped group by name wins; leaving every mapped group gives back
``auth.default_role``).

Every call needs ``Authorization: Bearer <scim.token>`` (a token of its own, not
a user's). Errors answer in SCIM's error format.
"""

from __future__ import annotations

import hmac
import re
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from workeros.api import (
    OWN_CREDENTIALS,
    Accountability,
    Conflict,
    InvalidCredentials,
    InvalidPayload,
    InvalidQuery,
    NotFound,
    ServiceUnavailable,
    WorkerosError,
    dumps,
    loads,
    now,
    services,
    users,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.data import ExportSection
from workeros.hookspecs.lifecycle import ConfigKey, Migrations
from workeros.hookspecs.transport import Transport

from .tables import groups, members, scim_users

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
CONTENT_TYPE = "application/scim+json"
MAX_COUNT = 200
FILTER = re.compile(r'^\s*([A-Za-z.]+)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
MEMBER_PATH = re.compile(r'^\s*members\s*\[\s*value\s+eq\s+"([^"]+)"\s*\]\s*$', re.IGNORECASE)
SYSTEM = Accountability.system().with_origin("scim")


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=dumps(body), content_type=CONTENT_TYPE)


def _error(status: int, detail: str, scim_type: str | None = None) -> web.Response:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return _json(body, status)


@web.middleware
async def scim_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """The bearer token, and every error in SCIM's format."""
    try:
        token = services(request).settings["scim.token"]
        if not token:
            raise ServiceUnavailable("SCIM provisioning is not configured (scim.token)")
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
            raise InvalidCredentials("A valid SCIM bearer token is required")
        return await handler(request)
    except WorkerosError as exc:
        scim_type = {"INVALID_QUERY": "invalidFilter", "INVALID_PAYLOAD": "invalidValue"}.get(exc.code)
        if isinstance(exc, Conflict):
            scim_type = "uniqueness"
        return _error(exc.status, exc.message, scim_type)
    except web.HTTPException as exc:
        if exc.status >= 400:
            return _error(exc.status, exc.reason)
        raise


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = loads(await request.read())
    except ValueError:
        raise InvalidPayload("The body is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidPayload("Expected a JSON object")
    return data


def _base(request: web.Request) -> str:
    return services(request).settings["server.public_url"].rstrip("/") + "/scim/v2"


def _filter(request: web.Request, allowed: dict[str, Any]) -> Any:
    text = request.query.get("filter")
    if not text:
        return None
    match = FILTER.match(text[:1024])
    if match is None or match.group(1).lower() not in allowed:
        raise InvalidQuery(f"Unsupported filter; use one of: {', '.join(f'{a} eq' for a in allowed)}")
    value = re.sub(r"\\(.)", r"\1", match.group(2))
    return allowed[match.group(1).lower()](value)


def _paging(request: web.Request) -> tuple[int, int]:
    try:
        start = max(1, int(request.query.get("startIndex", "1")))
        count = min(MAX_COUNT, max(0, int(request.query.get("count", str(MAX_COUNT)))))
    except ValueError:
        raise InvalidQuery("startIndex and count must be integers") from None
    if start > 2**62:
        raise InvalidQuery("startIndex is too large")
    return start, count


def _list(resources: list[dict[str, Any]], total: int, start: int) -> web.Response:
    return _json({"schemas": [LIST_SCHEMA], "totalResults": total, "startIndex": start,
                  "itemsPerPage": len(resources), "Resources": resources})


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidPayload("active must be true or false")


def _text(value: Any, name: str, limit: int = 255) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidPayload(f"{name} must be text of at most {limit} characters")
    return value


# -- users ------------------------------------------------------------------------------

def _time(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


async def _user_json(request: web.Request, user: dict[str, Any]) -> dict[str, Any]:
    db = services(request).accounts.db
    async with db.read() as conn:
        ext = (await conn.execute(sa.select(scim_users.c.external_id).where(
            scim_users.c.user == user["id"]))).scalar_one_or_none()
        in_groups = (await conn.execute(sa.select(groups.c.id, groups.c.display_name).join(
            members, members.c.group == groups.c.id).where(members.c.user == user["id"])
            .order_by(groups.c.display_name))).all()
    body: dict[str, Any] = {
        "schemas": [USER_SCHEMA], "id": user["id"], "userName": user["email"],
        "name": {k: v for k, v in (("givenName", user.get("first_name")), ("familyName", user.get("last_name"))) if v},
        "displayName": " ".join(filter(None, (user.get("first_name"), user.get("last_name")))) or user["email"],
        "emails": [{"value": user["email"], "primary": True, "type": "work"}],
        "active": user["status"] == "active",
        "groups": [{"value": g.id, "display": g.display_name} for g in in_groups],
        "meta": {"resourceType": "User", "created": _time(user.get("created_at")),
                 "location": f"{_base(request)}/Users/{user['id']}"}}
    if ext:
        body["externalId"] = ext
    return body


async def _get_user(request: web.Request, user_id: str) -> dict[str, Any]:
    if len(user_id) > 36:
        raise NotFound("User not found")
    return await services(request).accounts.get_user(SYSTEM, user_id)


def _user_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The workeros fields a SCIM User object (or a PATCH value) sets."""
    out: dict[str, Any] = {}
    if "userName" in data:
        out["email"] = _text(data["userName"], "userName")
    name = data.get("name")
    if isinstance(name, dict):
        if "givenName" in name:
            out["first_name"] = _text(name["givenName"], "name.givenName", 128)
        if "familyName" in name:
            out["last_name"] = _text(name["familyName"], "name.familyName", 128)
    for key, field in (("name.givenName", "first_name"), ("name.familyName", "last_name")):
        if key in data:
            out[field] = _text(data[key], key, 128)
    if "active" in data:
        out["active"] = _bool(data["active"])
    if "externalId" in data:
        out["external_id"] = _text(data["externalId"], "externalId")
    if "email" not in out and isinstance(data.get("emails"), list):
        primary = [e for e in data["emails"] if isinstance(e, dict) and e.get("primary")] or \
            [e for e in data["emails"] if isinstance(e, dict)]
        if primary and "userName" not in data:
            out["email"] = _text(primary[0].get("value"), "emails.value")
    return out


async def _apply_user(request: web.Request, user_id: str, fields: dict[str, Any]) -> None:
    accounts = services(request).accounts
    update = {k: fields[k] for k in ("email", "first_name", "last_name") if k in fields}
    if "email" in update and not update["email"]:
        raise InvalidPayload("userName is required")
    if "active" in fields:
        update["status"] = "active" if fields["active"] else "suspended"
    if update:
        await accounts.update_user(SYSTEM, user_id, update)  # suspension revokes every session
    if "external_id" in fields:
        async with accounts.db.transaction() as conn:
            await conn.execute(scim_users.delete().where(scim_users.c.user == user_id))
            await conn.execute(scim_users.insert().values(user=user_id, external_id=fields["external_id"]))


async def list_users(request: web.Request) -> web.Response:
    db = services(request).accounts.db
    start, count = _paging(request)
    cond = _filter(request, {
        "username": lambda v: sa.func.lower(users.c.email) == v.strip().lower(),
        "externalid": lambda v: users.c.id.in_(sa.select(scim_users.c.user).where(scim_users.c.external_id == v)),
        "emails.value": lambda v: sa.func.lower(users.c.email) == v.strip().lower()})
    query = sa.select(users.c.id)
    if cond is not None:
        query = query.where(cond)
    async with db.read() as conn:
        total = (await conn.execute(sa.select(sa.func.count()).select_from(query.subquery()))).scalar_one()
        ids = (await conn.execute(query.order_by(users.c.created_at, users.c.id).offset(start - 1).limit(count)
                                  )).scalars().all()
    resources = [await _user_json(request, await _get_user(request, i)) for i in ids]
    return _list(resources, total, start)


async def create_user(request: web.Request) -> web.Response:
    data = await _body(request)
    fields = _user_fields(data)
    if not fields.get("email"):
        raise InvalidPayload("userName is required")
    accounts = services(request).accounts
    if await accounts.find_user(fields["email"]) is not None:
        raise Conflict("A user with this userName already exists")
    async with accounts.db.transaction() as conn:
        user_id = await accounts.create_external_user(
            conn, provider="scim", email=fields["email"], email_verified=True, admin_override=True,
            profile={k: fields.get(k) for k in ("first_name", "last_name")}, ip=request.remote)
        await conn.execute(scim_users.insert().values(user=user_id, external_id=fields.get("external_id")))
    await accounts.changed()
    if fields.get("active") is False:
        await _apply_user(request, user_id, {"active": False})
    return _json(await _user_json(request, await _get_user(request, user_id)), 201)


async def get_user(request: web.Request) -> web.Response:
    return _json(await _user_json(request, await _get_user(request, request.match_info["id"])))


async def replace_user(request: web.Request) -> web.Response:
    user_id = (await _get_user(request, request.match_info["id"]))["id"]
    fields = _user_fields(await _body(request))
    fields.setdefault("active", True)
    await _apply_user(request, user_id, fields)
    return _json(await _user_json(request, await _get_user(request, user_id)))


def _operations(data: dict[str, Any]) -> list[dict[str, Any]]:
    ops = data.get("Operations")
    if not isinstance(ops, list) or not ops or not all(isinstance(o, dict) for o in ops):
        raise InvalidPayload("Operations must be a non-empty list of operations")
    for op in ops:
        if str(op.get("op", "")).lower() not in ("add", "replace", "remove"):
            raise InvalidPayload("op must be add, replace or remove")
    return ops


async def patch_user(request: web.Request) -> web.Response:
    user_id = (await _get_user(request, request.match_info["id"]))["id"]
    fields: dict[str, Any] = {}
    for op in _operations(await _body(request)):
        kind, path, value = str(op["op"]).lower(), op.get("path"), op.get("value")
        if path is None:
            if not isinstance(value, dict):
                raise InvalidPayload("An operation without path needs an object value")
            fields.update(_user_fields(value))
            continue
        path = str(path)
        if re.match(r'^emails(\[.*\])?\.value$', path) or path == "emails":
            value = value[0].get("value") if isinstance(value, list) and value and isinstance(value[0], dict) \
                else value
            fields["email"] = _text(value, "emails.value")
        elif path in ("userName", "name.givenName", "name.familyName", "active", "externalId"):
            fields.update(_user_fields({path: None if kind == "remove" else value}))
        elif path == "name" and isinstance(value, dict):
            fields.update(_user_fields({"name": value}))
        # Other attributes (displayName, title, addresses…) are not kept: accepted and ignored.
    await _apply_user(request, user_id, fields)
    return _json(await _user_json(request, await _get_user(request, user_id)))


async def delete_user(request: web.Request) -> web.Response:
    user_id = (await _get_user(request, request.match_info["id"]))["id"]
    accounts = services(request).accounts
    await accounts.delete_user(SYSTEM, user_id)
    async with accounts.db.transaction() as conn:
        await conn.execute(members.delete().where(members.c.user == user_id))
        await conn.execute(scim_users.delete().where(scim_users.c.user == user_id))
    return web.Response(status=204)


# -- groups ---------------------------------------------------------------------------------

async def _group_row(conn: Any, group_id: str) -> Any:
    row = (await conn.execute(sa.select(groups).where(groups.c.id == group_id[:36]))).mappings().first()
    if row is None:
        raise NotFound("Group not found")
    return row


async def _group_json(request: web.Request, group_id: str) -> dict[str, Any]:
    async with services(request).accounts.db.read() as conn:
        row = await _group_row(conn, group_id)
        people = (await conn.execute(sa.select(users.c.id, users.c.email).join(
            members, members.c.user == users.c.id).where(members.c.group == group_id)
            .order_by(users.c.email))).all()
    body: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA], "id": row["id"], "displayName": row["display_name"],
        "members": [{"value": p.id, "display": p.email} for p in people],
        "meta": {"resourceType": "Group", "created": _time(row["created_at"]),
                 "lastModified": _time(row["updated_at"]), "location": f"{_base(request)}/Groups/{row['id']}"}}
    if row["external_id"]:
        body["externalId"] = row["external_id"]
    return body


def _member_ids(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(m, dict) and isinstance(m.get("value"), str)
                                              for m in value):
        raise InvalidPayload("members must be a list of {value: <user id>}")
    return [m["value"] for m in value]


async def _set_members(conn: Any, group_id: str, *, add: list[str] = (), remove: list[str] = (),  # type: ignore[assignment]
                       replace: list[str] | None = None) -> set[str]:
    """Change the group's members; return every user whose membership changed."""
    current = set((await conn.execute(sa.select(members.c.user).where(members.c.group == group_id))
                   ).scalars().all())
    target = set(replace) if replace is not None else (current | set(add)) - set(remove)
    new = target - current
    if new:
        found = set((await conn.execute(sa.select(users.c.id).where(users.c.id.in_([u[:36] for u in new])))
                     ).scalars().all())
        if found != new:
            raise InvalidPayload("members name users that do not exist")
        await conn.execute(members.insert(), [{"group": group_id, "user": u} for u in sorted(new)])
    gone = current - target
    if gone:
        await conn.execute(members.delete().where(members.c.group == group_id, members.c.user.in_(gone)))
    return new | gone


async def _sync_roles(request: web.Request, people: set[str]) -> None:
    """Give each user the role of their first mapped group (by name), else the default role."""
    svc = services(request)
    mapping = svc.settings["scim.group_roles"] or {}
    if not people or not mapping:
        return
    by_name = {r["name"]: r["id"] for r in await svc.permissions.list_roles(SYSTEM)}
    ids = set(by_name.values())
    async with svc.accounts.db.read() as conn:
        rows = (await conn.execute(sa.select(members.c.user, groups.c.display_name).join(
            groups, groups.c.id == members.c.group).where(members.c.user.in_(people))
            .order_by(groups.c.display_name))).all()
    chosen: dict[str, str] = {}
    for user, name in rows:
        role = mapping.get(name)
        if role is not None and user not in chosen:
            chosen[user] = role if role in ids else by_name.get(role, role)
    for user in sorted(people):
        role = chosen.get(user, svc.settings["auth.default_role"])
        current = await svc.accounts.user_row(user)
        if current is not None and current["role"] != role:
            await svc.accounts.update_user(SYSTEM, user, {"role": role})


async def list_groups(request: web.Request) -> web.Response:
    start, count = _paging(request)
    cond = _filter(request, {"displayname": lambda v: groups.c.display_name == v,
                             "externalid": lambda v: groups.c.external_id == v})
    query = sa.select(groups.c.id)
    if cond is not None:
        query = query.where(cond)
    async with services(request).accounts.db.read() as conn:
        total = (await conn.execute(sa.select(sa.func.count()).select_from(query.subquery()))).scalar_one()
        ids = (await conn.execute(query.order_by(groups.c.display_name).offset(start - 1).limit(count))
               ).scalars().all()
    excluded = "members" in request.query.get("excludedAttributes", "")
    resources = []
    for i in ids:
        body = await _group_json(request, i)
        if excluded:
            body.pop("members")
        resources.append(body)
    return _list(resources, total, start)


async def create_group(request: web.Request) -> web.Response:
    data = await _body(request)
    name = _text(data.get("displayName"), "displayName")
    if not name:
        raise InvalidPayload("displayName is required")
    group_id, t = str(uuid.uuid4()), now()
    async with services(request).accounts.db.transaction() as conn:
        if (await conn.execute(sa.select(groups.c.id).where(groups.c.display_name == name))).first():
            raise Conflict("A group with this displayName already exists")
        await conn.execute(groups.insert().values(id=group_id, display_name=name, created_at=t, updated_at=t,
                                                  external_id=_text(data.get("externalId"), "externalId")))
        changed = await _set_members(conn, group_id, replace=_member_ids(data.get("members")))
    await _sync_roles(request, changed)
    return _json(await _group_json(request, group_id), 201)


async def get_group(request: web.Request) -> web.Response:
    return _json(await _group_json(request, request.match_info["id"]))


async def replace_group(request: web.Request) -> web.Response:
    data = await _body(request)
    async with services(request).accounts.db.transaction() as conn:
        row = await _group_row(conn, request.match_info["id"])
        name = _text(data.get("displayName"), "displayName") or row["display_name"]
        await conn.execute(groups.update().where(groups.c.id == row["id"]).values(
            display_name=name, external_id=_text(data.get("externalId"), "externalId"), updated_at=now()))
        changed = await _set_members(conn, row["id"], replace=_member_ids(data.get("members")))
    await _sync_roles(request, changed | await _everyone_in(request, row["id"]) if name != row["display_name"]
                      else changed)
    return _json(await _group_json(request, row["id"]))


async def _everyone_in(request: web.Request, group_id: str) -> set[str]:
    async with services(request).accounts.db.read() as conn:
        return set((await conn.execute(sa.select(members.c.user).where(members.c.group == group_id))
                    ).scalars().all())


async def patch_group(request: web.Request) -> web.Response:
    data = await _body(request)
    changed: set[str] = set()
    renamed = False
    async with services(request).accounts.db.transaction() as conn:
        row = await _group_row(conn, request.match_info["id"])
        for op in _operations(data):
            kind, path, value = str(op["op"]).lower(), op.get("path"), op.get("value")
            match = MEMBER_PATH.match(str(path)) if path else None
            if match and kind == "remove":
                changed |= await _set_members(conn, row["id"], remove=[match.group(1)])
            elif path and str(path).lower() == "members":
                ids = _member_ids(value)
                if kind == "add":
                    changed |= await _set_members(conn, row["id"], add=ids)
                elif kind == "remove":
                    changed |= await _set_members(conn, row["id"], replace=[] if value is None else None,
                                                  remove=ids)
                else:
                    changed |= await _set_members(conn, row["id"], replace=ids)
            elif (path and str(path) == "displayName") or (path is None and isinstance(value, dict)):
                values = value if isinstance(value, dict) else {"displayName": value}
                if "displayName" in values:
                    name = _text(values["displayName"], "displayName")
                    if not name:
                        raise InvalidPayload("displayName is required")
                    await conn.execute(groups.update().where(groups.c.id == row["id"]).values(display_name=name))
                    renamed = True
                if "externalId" in values:
                    await conn.execute(groups.update().where(groups.c.id == row["id"]).values(
                        external_id=_text(values["externalId"], "externalId")))
                if "members" in values:
                    changed |= await _set_members(conn, row["id"], replace=_member_ids(values["members"]))
            elif path and str(path) == "externalId":
                await conn.execute(groups.update().where(groups.c.id == row["id"]).values(
                    external_id=None if kind == "remove" else _text(value, "externalId")))
            else:
                raise InvalidPayload(f"Unsupported path {str(path)[:100]!r}")
        await conn.execute(groups.update().where(groups.c.id == row["id"]).values(updated_at=now()))
    if renamed:
        changed |= await _everyone_in(request, row["id"])
    await _sync_roles(request, changed)
    if request.query.get("excludedAttributes") or data.get("returnNothing"):
        return web.Response(status=204)
    return _json(await _group_json(request, row["id"]))


async def delete_group(request: web.Request) -> web.Response:
    async with services(request).accounts.db.transaction() as conn:
        row = await _group_row(conn, request.match_info["id"])
        people = set((await conn.execute(sa.select(members.c.user).where(members.c.group == row["id"]))
                      ).scalars().all())
        await conn.execute(members.delete().where(members.c.group == row["id"]))
        await conn.execute(groups.delete().where(groups.c.id == row["id"]))
    await _sync_roles(request, people)
    return web.Response(status=204)


# -- discovery ------------------------------------------------------------------------------

async def service_provider_config(request: web.Request) -> web.Response:
    return _json({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": True}, "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_COUNT}, "changePassword": {"supported": False},
        "sort": {"supported": False}, "etag": {"supported": False},
        "authenticationSchemes": [{"type": "oauthbearertoken", "name": "Bearer token", "primary": True,
                                   "description": "The token set in scim.token"}],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{_base(request)}/ServiceProviderConfig"}})


def _resource_types(base: str) -> list[dict[str, Any]]:
    return [{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"], "id": name, "name": name,
             "endpoint": f"/{name}s", "schema": schema,
             "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{name}"}}
            for name, schema in (("User", USER_SCHEMA), ("Group", GROUP_SCHEMA))]


async def resource_types(request: web.Request) -> web.Response:
    found = _resource_types(_base(request))
    return _list(found, len(found), 1)


def _attr(name: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "multiValued": False, "required": False, "caseExact": False,
            "mutability": "readWrite", "returned": "default", "uniqueness": "none", **extra}


SCHEMAS = [
    {"id": USER_SCHEMA, "name": "User", "description": "A workeros account", "attributes": [
        _attr("userName", required=True, uniqueness="server"),
        _attr("name", "complex", subAttributes=[_attr("givenName"), _attr("familyName")]),
        _attr("displayName", mutability="readOnly"),
        _attr("emails", "complex", multiValued=True, subAttributes=[_attr("value"), _attr("type"),
                                                                     _attr("primary", "boolean")]),
        _attr("active", "boolean"), _attr("externalId"),
        _attr("groups", "complex", multiValued=True, mutability="readOnly",
              subAttributes=[_attr("value"), _attr("display")])]},
    {"id": GROUP_SCHEMA, "name": "Group", "description": "A group; scim.group_roles maps it to a role",
     "attributes": [_attr("displayName", required=True, uniqueness="server"), _attr("externalId"),
                    _attr("members", "complex", multiValued=True,
                          subAttributes=[_attr("value"), _attr("display", mutability="readOnly")])]},
]


async def schemas(request: web.Request) -> web.Response:
    return _list(SCHEMAS, len(SCHEMAS), 1)


def build(root: web.Application) -> web.Application:
    app = web.Application(middlewares=[scim_middleware])
    app[OWN_CREDENTIALS] = True
    r = app.router
    r.add_get("/ServiceProviderConfig", service_provider_config)
    r.add_get("/ResourceTypes", resource_types)
    r.add_get("/Schemas", schemas)
    r.add_get("/Users", list_users)
    r.add_post("/Users", create_user)
    r.add_get("/Users/{id}", get_user)
    r.add_put("/Users/{id}", replace_user)
    r.add_patch("/Users/{id}", patch_user)
    r.add_delete("/Users/{id}", delete_user)
    r.add_get("/Groups", list_groups)
    r.add_post("/Groups", create_group)
    r.add_get("/Groups/{id}", get_group)
    r.add_put("/Groups/{id}", replace_group)
    r.add_patch("/Groups/{id}", patch_group)
    r.add_delete("/Groups/{id}", delete_group)
    return app


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return [
        ConfigKey("scim.token", "str", None, "Bearer token identity providers send to /scim/v2 (unset: SCIM "
                  "answers 503)", secret=True),
        ConfigKey("scim.group_roles", "dict", {}, "SCIM group displayName -> role (id or name) its members get"),
    ]


@hookimpl
def workeros_register_export_sections() -> list[ExportSection]:
    """Full exports carry the scim plugin's rows."""
    return [ExportSection("scim", tables=[scim_users, groups, members])]


@hookimpl
def workeros_register_migrations() -> list[Migrations]:
    return [Migrations("scim", str(Path(__file__).parent / "migrations"))]


@hookimpl
def workeros_register_transports() -> list[Transport]:
    return [Transport(name="scim", prefix="/scim/v2", factory=build,
                      description="SCIM 2.0 user and group provisioning")]
