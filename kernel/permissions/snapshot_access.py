"""The ``access`` section of schema snapshots: roles and permissions, so one
document can carry a whole set-up from one instance to another
(``workeros schema snapshot --include-access``, ``GET
/api/schema/snapshot?include=access``).

Optional: a snapshot carries it only when asked. Applying a document that has it
makes roles and permissions exact, like collections: roles and permissions the
document does not list are deleted (the built-in ``admin`` and ``public`` roles
stay). A document without the section leaves access alone. Permissions are
keyed by role, collection and action; roles by id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.db.tables.access import permissions as t_permissions
from workeros.db.tables.access import roles as t_roles
from workeros.errors import InvalidPayload

if TYPE_CHECKING:
    from workeros.services import Services

ACTIONS = ("create", "read", "update", "delete")
BUILTIN_ROLES = ("admin", "public")
ROLE_KEYS = ("id", "name", "description", "admin_access")
RULE_KEYS = ("filter", "fields", "validation", "presets")


class AccessSection:
    name = "access"
    #: Only in snapshots that ask for it.
    optional = True

    def __init__(self, services: Services) -> None:
        self.services = services

    async def export(self, conn: AsyncConnection) -> dict[str, Any]:
        roles = (await conn.execute(sa.select(t_roles).order_by(t_roles.c.id))).mappings().all()
        perms = (await conn.execute(sa.select(t_permissions).order_by(
            t_permissions.c.role, t_permissions.c.collection, t_permissions.c.action))).mappings().all()
        return {
            "roles": [{"id": r["id"], "name": r["name"], "description": r["description"],
                       "admin_access": bool(r["admin_access"])} for r in roles],
            "permissions": [{"role": p["role"], "collection": p["collection"], "action": p["action"],
                             **{k: p[k] for k in RULE_KEYS}} for p in perms],
        }

    async def plan(self, conn: AsyncConnection, wanted: Any) -> list[dict[str, Any]]:
        want_roles, want_perms = _parse(wanted)
        have = await self.export(conn)
        have_roles = {r["id"]: r for r in have["roles"]}
        have_perms = {_key(p): p for p in have["permissions"]}
        ops: list[dict[str, Any]] = []
        for rid, role in want_roles.items():
            if rid not in have_roles:
                ops.append(_op("create_role", role=rid, values=role))
            elif any(have_roles[rid][k] != role[k] for k in ROLE_KEYS):
                if rid in BUILTIN_ROLES and role["admin_access"] != (rid == "admin"):
                    raise InvalidPayload(f"access: the built-in role {rid!r} keeps its admin access")
                ops.append(_op("update_role", role=rid, values=role))
        known_roles = set(have_roles) | set(want_roles)
        for key, perm in have_perms.items():
            if key not in want_perms:
                ops.append(_op("delete_permission", role=key[0], target=key, values=perm))
        for key, perm in want_perms.items():
            if perm["role"] not in known_roles:
                raise InvalidPayload(f"access: permission for role {perm['role']!r}, which the document does "
                                     "not list")
            if key not in have_perms:
                ops.append(_op("create_permission", role=key[0], target=key, values=perm))
            elif any(have_perms[key][k] != perm[k] for k in RULE_KEYS):
                ops.append(_op("update_permission", role=key[0], target=key, values=perm))
        for rid in have_roles:
            if rid not in want_roles and rid not in BUILTIN_ROLES:
                ops.append(_op("delete_role", role=rid, values=have_roles[rid]))
        return ops

    async def apply(self, conn: AsyncConnection, op: dict[str, Any]) -> None:
        kind, values = op["op"], op["values"]
        if kind == "create_role":
            await conn.execute(t_roles.insert().values(**{k: values[k] for k in ROLE_KEYS},
                                                        created_at=dt.datetime.now(dt.UTC)))
        elif kind == "update_role":
            await conn.execute(t_roles.update().where(t_roles.c.id == op["role"]).values(
                **{k: values[k] for k in ROLE_KEYS if k != "id"}))
        elif kind == "delete_role":
            await conn.execute(t_permissions.delete().where(t_permissions.c.role == op["role"]))
            await conn.execute(t_roles.delete().where(t_roles.c.id == op["role"]))
        else:
            role, collection, action = values["role"], values["collection"], values["action"]
            where = sa.and_(t_permissions.c.role == role, t_permissions.c.collection == collection,
                            t_permissions.c.action == action)
            if kind == "delete_permission":
                await conn.execute(t_permissions.delete().where(where))
            elif kind == "create_permission":
                await conn.execute(t_permissions.insert().values(
                    role=role, collection=collection, action=action, **{k: values[k] for k in RULE_KEYS}))
            else:
                await conn.execute(t_permissions.update().where(where).values(**{k: values[k] for k in RULE_KEYS}))


def _op(kind: str, *, role: str, values: dict[str, Any], target: tuple[str, str, str] | None = None
        ) -> dict[str, Any]:
    label = f"role {role}" if target is None else f"permission {target[0]} {target[1]}.{target[2]}"
    return {"op": kind, "collection": target[1] if target else "wos_roles", "target": label, "role": role,
            "values": values}


def _key(perm: Mapping[str, Any]) -> tuple[str, str, str]:
    return (perm["role"], perm["collection"], perm["action"])


def _parse(wanted: Any) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str, str], dict[str, Any]]]:
    if not isinstance(wanted, Mapping) or set(wanted) - {"roles", "permissions"}:
        raise InvalidPayload("access: expected an object with 'roles' and 'permissions'")
    roles: dict[str, dict[str, Any]] = {}
    for item in wanted.get("roles") or []:
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) or not item["id"] \
                or len(item["id"]) > 36:
            raise InvalidPayload("access: each role needs an id (a string of at most 36 characters)")
        name = item.get("name", item["id"])
        if not isinstance(name, str) or not 0 < len(name) <= 64:
            raise InvalidPayload(f"access: role {item['id']!r} needs a name of at most 64 characters")
        description = item.get("description")
        if description is not None and not isinstance(description, str):
            raise InvalidPayload(f"access: role {item['id']!r}: description must be text")
        if item["id"] in roles:
            raise InvalidPayload(f"access: role {item['id']!r} appears twice")
        roles[item["id"]] = {"id": item["id"], "name": name, "description": description,
                             "admin_access": bool(item.get("admin_access", False))}
    for builtin in BUILTIN_ROLES:
        if builtin not in roles:
            raise InvalidPayload(f"access: the built-in role {builtin!r} must be listed")
    perms: dict[tuple[str, str, str], dict[str, Any]] = {}
    for item in wanted.get("permissions") or []:
        if not isinstance(item, Mapping) or not all(isinstance(item.get(k), str) and item[k]
                                                    for k in ("role", "collection", "action")):
            raise InvalidPayload("access: each permission needs role, collection and action")
        if item["action"] not in ACTIONS:
            raise InvalidPayload(f"access: action must be one of {', '.join(ACTIONS)}")
        unknown = set(item) - {"role", "collection", "action", *RULE_KEYS}
        if unknown:
            raise InvalidPayload(f"access: unknown permission property {sorted(unknown)[0][:40]!r}")
        fields = item.get("fields")
        if fields is not None and fields != "*" and not (isinstance(fields, list)
                                                         and all(isinstance(f, str) for f in fields)):
            raise InvalidPayload("access: fields must be a list of field names or \"*\"")
        for k in ("filter", "validation", "presets"):
            if item.get(k) is not None and not isinstance(item[k], Mapping):
                raise InvalidPayload(f"access: {k} must be an object")
        key = _key(item)
        if key in perms:
            raise InvalidPayload(f"access: permission {' '.join(key)} appears twice")
        perms[key] = {"role": key[0], "collection": key[1], "action": key[2],
                      **{k: item.get(k) for k in RULE_KEYS}}
    return roles, perms
