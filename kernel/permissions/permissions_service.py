"""Roles and permissions: the rules every service applies (DESIGN §4).

A permission row gives one role one action (``create read update delete``) on
one collection, with a row ``filter``, a ``fields`` allowlist (``*`` = all), a
``validation`` predicate on payloads and ``presets``. The built-in ``admin``
role (and any role with ``admin_access``) bypasses them; ``public`` is the role
of anonymous callers.

Rules are parsed once per role and cached; a change to roles or permissions,
here or on another instance (the ``permissions`` channel of the event bus), or
a schema change clears the cache.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from workeros.accountability import Accountability
from workeros.bus.events import PERMISSIONS, SCHEMA
from workeros.clock import now
from workeros.db import activity
from workeros.db.tables.access import permissions as t_permissions
from workeros.db.tables.access import roles as t_roles
from workeros.errors import Conflict, Forbidden, InvalidPayload, NotFound, WorkerosError

from .parse import Filter, parse_filter

if TYPE_CHECKING:
    from workeros.services import Services

log = logging.getLogger("workeros.permissions")

ACTIONS = ("create", "read", "update", "delete")
BUILTIN_ROLES = ("admin", "public")


@dataclass(frozen=True)
class Rule:
    """One role's permission for (collection, action)."""

    filter: Filter | None = None
    fields: frozenset[str] | None = None
    validation: Filter | None = None
    presets: Mapping[str, Any] = field(default_factory=dict)
    ALL: ClassVar[Rule]


Rule.ALL = Rule()

Access = Callable[[str], Rule | None]


def _role_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "description": row["description"],
            "admin_access": bool(row["admin_access"]), "created_at": _iso(row["created_at"])}


def _permission_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "role", "collection", "action", "filter", "fields", "validation", "presets")}


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


class PermissionsService:
    config_keys = ()

    def __init__(self, services: Services) -> None:
        self.services = services
        #: role id -> {(collection, action): Rule}; filled on first use.
        self._rules: dict[str, dict[tuple[str, str], Rule]] = {}
        self._version = 0
        self._unsubscribe: list[Callable[[], None]] = []

    @classmethod
    async def open(cls, services: Services) -> PermissionsService:
        from workeros.permissions.snapshot_access import AccessSection
        from workeros.schema.snapshot import register_section

        service = cls(services)
        service._unsubscribe = [services.events.subscribe(PERMISSIONS, service._clear),
                                services.events.subscribe(SCHEMA, service._clear)]
        register_section(services, AccessSection(services))
        return service

    async def close(self) -> None:
        for stop in self._unsubscribe:
            stop()

    def _clear(self, _: Any = None) -> None:
        self._rules.clear()
        self._version += 1

    @property
    def version(self) -> int:
        """Bumped whenever cached rules are dropped."""
        return self._version

    # -- rules ------------------------------------------------------------------------------
    async def _load(self, role: str | None) -> dict[tuple[str, str], Rule]:
        key = role or "public"
        found = self._rules.get(key)
        if found is not None:
            return found
        version = self._version
        schema = self.services.schema.current()
        async with self.services.db.read() as conn:
            rows = (await conn.execute(sa.select(t_permissions).where(t_permissions.c.role == key))).mappings().all()
        rules: dict[tuple[str, str], Rule] = {}
        for row in rows:
            if row["collection"] not in schema.collections:
                continue
            try:
                rules[(row["collection"], row["action"])] = self._rule(schema, row)
            except WorkerosError as exc:
                # A rule that no longer fits the schema grants nothing rather than everything.
                log.warning("permission %s (%s %s) is ignored: %s", row["id"], row["collection"], row["action"],
                            exc.to_error()["message"])
        if version == self._version:
            self._rules[key] = rules
        return rules

    def _rule(self, schema: Any, row: Mapping[str, Any]) -> Rule:
        fields = row["fields"]
        allowed = None if fields is None or fields == "*" or (isinstance(fields, list) and "*" in fields) \
            else frozenset(fields)
        return Rule(
            filter=parse_filter(row["filter"], schema=schema, collection=row["collection"]),
            fields=allowed,
            validation=parse_filter(row["validation"], schema=schema, collection=row["collection"]),
            presets=dict(row["presets"] or {}),
        )

    async def rule(self, acc: Accountability, collection: str, action: str) -> Rule | None:
        if acc.admin:
            return Rule.ALL
        return (await self._load(acc.role)).get((collection, action))

    async def access(self, acc: Accountability, action: str = "read") -> Access:
        if acc.admin:
            return lambda name: Rule.ALL
        rules = await self._load(acc.role)
        return lambda name: rules.get((name, action))

    async def readable_collections(self, acc: Accountability) -> set[str]:
        schema = self.services.schema.current()
        if acc.admin:
            return set(schema.collections)
        rules = await self._load(acc.role)
        return {c for (c, action) in rules if action == "read" and c in schema.collections}

    async def usable_fields(self, acc: Accountability) -> dict[str, frozenset[str] | None]:
        """Collection -> the fields ``acc`` may use there (``None``: all), for every
        collection on which the role holds any action. A field is usable when a read,
        create or update rule allows it; a delete-only grant shows the collection
        with its primary key alone."""
        schema = self.services.schema.current()
        if acc.admin:
            return dict.fromkeys(schema.collections)
        out: dict[str, frozenset[str] | None] = {}
        for (name, action), rule in (await self._load(acc.role)).items():
            if name not in schema.collections:
                continue
            fields = frozenset() if action == "delete" else rule.fields
            if name not in out:
                out[name] = fields
            elif out[name] is not None:
                out[name] = None if fields is None else out[name] | fields  # type: ignore[operator]
        return out

    # -- roles ------------------------------------------------------------------------------
    def _admin_only(self, acc: Accountability) -> None:
        if not acc.admin:
            raise Forbidden()

    async def list_roles(self, acc: Accountability) -> list[dict[str, Any]]:
        self._admin_only(acc)
        async with self.services.db.read() as conn:
            rows = (await conn.execute(sa.select(t_roles).order_by(t_roles.c.name))).mappings().all()
        return [_role_json(r) for r in rows]

    async def get_role(self, acc: Accountability, role: str) -> dict[str, Any]:
        self._admin_only(acc)
        async with self.services.db.read() as conn:
            row = (await conn.execute(sa.select(t_roles).where(t_roles.c.id == role))).mappings().first()
        if row is None:
            raise NotFound(f"Role {role[:80]!r} not found")
        return _role_json(row)

    def _role_values(self, data: Any, *, create: bool) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise InvalidPayload("Expected a JSON object")
        unknown = set(data) - {"name", "description", "admin_access"} - ({"id"} if create else set())
        if unknown:
            raise InvalidPayload(f"Unknown role property {sorted(unknown)[0][:40]!r}")
        values: dict[str, Any] = {}
        if "name" in data or create:
            name = data.get("name")
            if not isinstance(name, str) or not name.strip() or len(name) > 64:
                raise InvalidPayload("name is required: a string of at most 64 characters", field="name")
            values["name"] = name.strip()
        if "description" in data:
            if data["description"] is not None and not isinstance(data["description"], str):
                raise InvalidPayload("description must be a string", field="description")
            values["description"] = data["description"]
        if "admin_access" in data:
            if not isinstance(data["admin_access"], bool):
                raise InvalidPayload("admin_access must be true or false", field="admin_access")
            values["admin_access"] = data["admin_access"]
        if create and "id" in data:
            if not isinstance(data["id"], str) or not 0 < len(data["id"]) <= 36:
                raise InvalidPayload("id must be a string of at most 36 characters", field="id")
            values["id"] = data["id"]
        return values

    async def create_role(self, acc: Accountability, data: Any) -> dict[str, Any]:
        self._admin_only(acc)
        values = self._role_values(data, create=True)
        values.setdefault("id", str(uuid.uuid4()))
        values["created_at"] = now()
        async with self._write(acc, "role.create", values["id"]) as conn:
            await conn.execute(t_roles.insert().values(values))
        return await self.get_role(acc, values["id"])

    async def update_role(self, acc: Accountability, role: str, data: Any) -> dict[str, Any]:
        self._admin_only(acc)
        values = self._role_values(data, create=False)
        if role in BUILTIN_ROLES and "admin_access" in values and values["admin_access"] != (role == "admin"):
            raise InvalidPayload("The built-in roles' admin access cannot change")
        async with self._write(acc, "role.update", role) as conn:
            if (await conn.execute(sa.select(t_roles.c.id).where(t_roles.c.id == role))).first() is None:
                raise NotFound(f"Role {role[:80]!r} not found")
            if values:
                await conn.execute(t_roles.update().where(t_roles.c.id == role).values(values))
        return await self.get_role(acc, role)

    async def delete_role(self, acc: Accountability, role: str) -> None:
        self._admin_only(acc)
        if role in BUILTIN_ROLES:
            raise Conflict(f"The built-in role {role!r} cannot be deleted")
        async with self._write(acc, "role.delete", role) as conn:
            await conn.execute(t_permissions.delete().where(t_permissions.c.role == role))
            result = await conn.execute(t_roles.delete().where(t_roles.c.id == role))
            if result.rowcount == 0:
                raise NotFound(f"Role {role[:80]!r} not found")

    # -- permissions --------------------------------------------------------------------------
    async def list_permissions(self, acc: Accountability, *, role: str | None = None,
                               collection: str | None = None) -> list[dict[str, Any]]:
        self._admin_only(acc)
        query = sa.select(t_permissions).order_by(t_permissions.c.id)
        if role:
            query = query.where(t_permissions.c.role == role)
        if collection:
            query = query.where(t_permissions.c.collection == collection)
        async with self.services.db.read() as conn:
            return [_permission_json(r) for r in (await conn.execute(query)).mappings()]

    async def get_permission(self, acc: Accountability, permission: Any) -> dict[str, Any]:
        self._admin_only(acc)
        pid = _int_id(permission)
        async with self.services.db.read() as conn:
            row = (await conn.execute(sa.select(t_permissions).where(t_permissions.c.id == pid))).mappings().first()
        if row is None:
            raise NotFound(f"Permission {str(permission)[:40]!r} not found")
        return _permission_json(row)

    def _permission_values(self, data: Any, current: Mapping[str, Any] | None) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise InvalidPayload("Expected a JSON object")
        allowed = {"role", "collection", "action", "filter", "fields", "validation", "presets"}
        unknown = set(data) - allowed
        if unknown:
            raise InvalidPayload(f"Unknown permission property {sorted(unknown)[0][:40]!r}")
        merged = {**(current or {}), **data}
        for key in ("role", "collection", "action"):
            if not isinstance(merged.get(key), str) or not merged[key]:
                raise InvalidPayload(f"{key} is required", field=key)
        if merged["action"] not in ACTIONS:
            raise InvalidPayload(f"action must be one of {', '.join(ACTIONS)}", field="action")
        schema = self.services.schema.current()
        c = schema.get(merged["collection"])
        if c is None:
            raise InvalidPayload(f"Collection {merged['collection'][:80]!r} does not exist", field="collection")
        fields = merged.get("fields")
        if isinstance(fields, str):
            fields = [p.strip() for p in fields.split(",") if p.strip()]
        if fields is not None:
            if not isinstance(fields, list) or not all(isinstance(x, str) for x in fields):
                raise InvalidPayload("fields must be a list of field names or \"*\"", field="fields")
            unknown_fields = [x for x in fields if x != "*" and x not in c.fields]
            if unknown_fields:
                raise InvalidPayload(f"Field {unknown_fields[0][:80]!r} does not exist in {c.name!r}",
                                     field="fields")
        for key in ("filter", "validation"):
            try:
                parse_filter(merged.get(key), schema=schema, collection=c.name)
            except WorkerosError as exc:
                raise InvalidPayload(f"{key}: {exc.to_error()['message']}", field=key) from None
        presets = merged.get("presets")
        if presets is not None:
            if not isinstance(presets, Mapping):
                raise InvalidPayload("presets must be an object of field values", field="presets")
            bad = [k for k in presets if k not in c.fields or c.fields[k].alias]
            if bad:
                raise InvalidPayload(f"presets: field {str(bad[0])[:80]!r} does not exist in {c.name!r}",
                                     field="presets")
        return {"role": merged["role"], "collection": c.name, "action": merged["action"],
                "filter": merged.get("filter") or None, "fields": fields,
                "validation": merged.get("validation") or None, "presets": dict(presets) if presets else None}

    async def create_permission(self, acc: Accountability, data: Any) -> dict[str, Any]:
        self._admin_only(acc)
        values = self._permission_values(data, None)
        async with self._write(acc, "permission.create", None, values["collection"]) as conn:
            await self._check_role(conn, values["role"])
            result = await conn.execute(t_permissions.insert().values(values))
            pid = result.inserted_primary_key[0]
        return await self.get_permission(acc, pid)

    async def update_permission(self, acc: Accountability, permission: Any, data: Any) -> dict[str, Any]:
        self._admin_only(acc)
        current = await self.get_permission(acc, permission)
        values = self._permission_values(data, current)
        async with self._write(acc, "permission.update", current["id"], values["collection"]) as conn:
            await self._check_role(conn, values["role"])
            await conn.execute(t_permissions.update().where(t_permissions.c.id == current["id"]).values(values))
        return await self.get_permission(acc, current["id"])

    async def delete_permission(self, acc: Accountability, permission: Any) -> None:
        self._admin_only(acc)
        current = await self.get_permission(acc, permission)
        async with self._write(acc, "permission.delete", current["id"], current["collection"]) as conn:
            await conn.execute(t_permissions.delete().where(t_permissions.c.id == current["id"]))

    async def _check_role(self, conn: Any, role: str) -> None:
        found = (await conn.execute(sa.select(t_roles.c.id).where(t_roles.c.id == role))).first()
        if found is None:
            raise InvalidPayload(f"Role {role[:80]!r} does not exist", field="role")

    def _write(self, acc: Accountability, action: str, item: Any, collection: str | None = None) -> Any:
        return _Write(self, acc, action, item, collection)


class _Write:
    """One audited write transaction; constraint errors become 409; the change
    is announced on the bus after commit (every instance clears its cache)."""

    def __init__(self, service: PermissionsService, acc: Accountability, action: str, item: Any,
                 collection: str | None) -> None:
        self.service, self.acc, self.action, self.item, self.collection = service, acc, action, item, collection
        self.cm = service.services.db.transaction()

    async def __aenter__(self) -> Any:
        self.conn = await self.cm.__aenter__()
        return self.conn

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        if exc is None:
            try:
                await activity.record(self.conn, action=self.action, accountability=self.acc,
                                      collection=self.collection, item=self.item)
            except BaseException as error:
                await self.cm.__aexit__(type(error), error, error.__traceback__)
                raise
            events = self.service.services.events
            self.service.services.db.after_commit(self.conn, lambda: events.publish(PERMISSIONS, {"action": self.action}))
        try:
            suppressed = await self.cm.__aexit__(exc_type, exc, tb)
        except sa_exc.IntegrityError:
            raise Conflict("The change conflicts with an existing role or permission") from None
        if isinstance(exc, sa_exc.IntegrityError):
            raise Conflict("The change conflicts with an existing role or permission") from None
        if exc is None:
            self.service._clear()
        return suppressed


def _int_id(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise NotFound(f"Permission {str(value)[:40]!r} not found") from None
    if not -(2**31) <= number < 2**31:  # the id column is a 32-bit integer
        raise NotFound(f"Permission {str(value)[:40]!r} not found")
    return number
