"""The host bridge behind ``ctx``: every call goes through the same services as
REST, with the invocation's accountability (DESIGN §3: one permission system)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from workeros.api import (
    Accountability,
    InvalidPayload,
    OutboundError,
    ServiceUnavailable,
    dumps_str,
    jsonable,
    query_from_mapping,
)

if TYPE_CHECKING:
    from .service import FunctionsService

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class Bridge:
    """One invocation's ``Host`` (see :mod:`workeros.hookspecs.sandbox`)."""

    def __init__(self, service: FunctionsService, acc: Accountability, *, lines: list[str], max_lines: int,
                 max_bytes: int) -> None:
        self.service = service
        self.services = service.services
        self.acc = acc
        self.lines = lines
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._bytes = 0
        self._dropped = False

    def log(self, text: str) -> None:
        if self._dropped:
            return
        text = str(text)
        if len(self.lines) >= self.max_lines or self._bytes + len(text) > self.max_bytes:
            self.lines.append("… (further log lines dropped: over the log size cap)")
            self._dropped = True
            return
        self._bytes += len(text)
        self.lines.append(text)

    async def call(self, name: str, args: list[Any]) -> Any:
        handler = getattr(self, "_" + name.replace(".", "_"), None) if name in NAMES else None
        if handler is None:
            raise InvalidPayload(f"Unknown bridge call {name[:40]!r}")
        return await handler(*args)

    # -- ctx.db.items(slug) --------------------------------------------------------------------
    @staticmethod
    def _slug(slug: Any) -> str:
        if not isinstance(slug, str) or not slug:
            raise InvalidPayload("ctx.db.items(slug) needs a collection name")
        return slug

    async def _db_read(self, slug: Any, query: Any = None) -> Any:
        if query is None:
            query = {}
        if not isinstance(query, Mapping):
            raise InvalidPayload("read(query) takes an object of query parameters")
        rows, _ = await self.services.items.query(self.acc, self._slug(slug), query_from_mapping(query))
        return jsonable(rows)

    async def _db_create(self, slug: Any, data: Any = None) -> Any:
        if not isinstance(data, (Mapping, list)):
            raise InvalidPayload("create(data) takes an object or an array of objects")
        return jsonable(await self.services.items.create(self.acc, self._slug(slug), data))

    async def _db_update(self, slug: Any, key: Any = None, data: Any = None) -> Any:
        if not isinstance(data, Mapping):
            raise InvalidPayload("update(key, data) takes an object of fields")
        return jsonable(await self.services.items.update(self.acc, self._slug(slug), key, dict(data)))

    async def _db_delete(self, slug: Any, key: Any = None) -> Any:
        await self.services.items.delete(self.acc, self._slug(slug), key)
        return None

    async def _db_nearest(self, slug: Any, body: Any = None) -> Any:
        """``ctx.db.items(slug).nearest({vector | text, limit, filter, fields})``:
        the search of ``POST /api/vectors/{slug}/search``, as the caller."""
        if not isinstance(body, Mapping):
            raise InvalidPayload("nearest(query) takes an object: {vector} or {text}, and limit, filter, fields")
        search = self.services.get("vector_search")
        if search is None:
            raise ServiceUnavailable("Vector search is not installed (the vectors plugin)")
        return jsonable(await search.search(self.acc, self._slug(slug), dict(body)))

    # -- ctx.fetch ------------------------------------------------------------------------------
    async def _fetch(self, url: Any, init: Any = None) -> Any:
        init = init or {}
        if not isinstance(init, Mapping):
            raise InvalidPayload("fetch(url, init): init must be an object")
        method = str(init.get("method") or "GET").upper()
        if method not in METHODS:
            raise InvalidPayload(f"fetch: unknown method {method[:16]!r}")
        headers = init.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise InvalidPayload("fetch: headers must be an object")
        headers = {str(k): str(v) for k, v in headers.items()}
        body = init.get("body")
        data = None
        if body is not None and method not in ("GET", "HEAD"):
            data = body.encode() if isinstance(body, str) else dumps_str(body).encode()
            if not isinstance(body, str):
                headers.setdefault("Content-Type", "application/json")
        try:
            result = await self.services.outbound.fetch(method, str(url), headers=headers, data=data,
                                                        max_bytes=self.service.max_fetch_bytes)
        except OutboundError as exc:  # refused by the network rule, unreachable, too large
            raise InvalidPayload(exc.message) from None
        return {"status": result.status, "url": result.url, "body": result.text(),
                "headers": {k.lower(): v for k, v in result.headers.items()}}

    # -- ctx.email -------------------------------------------------------------------------------
    async def _email(self, message: Any = None) -> Any:
        from workeros.hookspecs.email import EmailMessage

        if not isinstance(message, Mapping):
            raise InvalidPayload("email({to, subject, text}) takes an object")
        mailer = self.services.mailer
        if mailer is None:
            raise ServiceUnavailable("No email backend is configured (smtp.host)")
        to = message.get("to")
        recipients = to if isinstance(to, list) else [to]
        subject, text = message.get("subject"), message.get("text")
        if not isinstance(subject, str) or not isinstance(text, str):
            raise InvalidPayload("email: subject and text must be strings")
        if not recipients or len(recipients) > 50:
            raise InvalidPayload("email: 'to' must be one to 50 addresses")
        for address in recipients:
            if not isinstance(address, str) or "@" not in address or "\n" in address or "\r" in address:
                raise InvalidPayload(f"email: not an address: {str(address)[:80]!r}")
        html = message.get("html")
        for address in recipients:
            await mailer.send(EmailMessage(to=address, subject=subject.replace("\n", " ")[:998], text=text,
                                           html=html if isinstance(html, str) else None))
        return {"sent": recipients}


NAMES = ("db.read", "db.create", "db.update", "db.delete", "db.nearest", "fetch", "email")
