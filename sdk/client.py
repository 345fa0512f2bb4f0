"""A Python client for workeros (docs/client.md).

::

    from workeros.sdk.client import Workeros

    async with Workeros("http://127.0.0.1:8055", token="pak_…") as wos:
        posts = await wos.items("posts").read(filter={"status": {"_eq": "published"}}, sort=["-id"], limit=10)

Every call goes through :meth:`Workeros.request`: JSON in and out, the
``data`` of the envelope returned, an error envelope raised as
:class:`WorkerosError` (``.code`` is the envelope's code), 429 and 503 retried
after ``Retry-After`` (or a growing back-off), and a signed-in session's access
token refreshed before it expires (and once more on a 401 ``TOKEN_EXPIRED``).
:class:`WorkerosSync` is the same client for code that is not async.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar
from urllib.parse import urlencode

import aiohttp

if TYPE_CHECKING:
    from workeros.api import Query

__all__ = ["Event", "Items", "Workeros", "WorkerosError", "WorkerosSync", "query_params"]

Item = TypeVar("Item")
T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 503})


class WorkerosError(Exception):
    """An error answer: ``status`` (HTTP), ``code`` (the envelope's
    ``extensions.code``, e.g. ``FORBIDDEN``), ``message`` and the whole
    ``errors`` list."""

    def __init__(self, status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []


def query_params(query: Query | Mapping[str, Any] | None = None, **params: Any) -> dict[str, str]:
    """REST query parameters from the server's own :class:`~workeros.api.Query`
    or from keyword arguments (``filter``, ``fields``, ``sort``, ``limit``,
    ``offset``, ``page``, ``search``, ``meta``, ``aggregate``, ``group_by``,
    ``deep``): lists joined, objects as JSON."""
    from workeros.api import Query

    merged: dict[str, Any] = {}
    if isinstance(query, Query):
        merged.update({"fields": list(query.fields) if query.fields is not None else None, "filter": query.filter,
                       "sort": list(query.sort), "limit": query.limit, "offset": query.offset, "page": query.page,
                       "search": query.search, "meta": sorted(query.meta),
                       "aggregate": {k: ",".join(v) for k, v in query.aggregate.items()},
                       "groupBy": list(query.group_by)})
    elif query:
        merged.update(query)
    merged.update(params)
    if "group_by" in merged:
        merged["groupBy"] = merged.pop("group_by")
    out: dict[str, str] = {}
    for name, value in merged.items():
        if value is None or value == [] or value == {} or value == "":
            continue
        if isinstance(value, (list, tuple)):
            out[name] = ",".join(str(v) for v in value)
        elif isinstance(value, (dict, bool)):
            out[name] = json.dumps(value)
        else:
            out[name] = str(value)
    return out


@dataclass(frozen=True)
class Event:
    """One realtime message of a subscription: ``event`` is ``init``,
    ``create``, ``update`` or ``delete``; ``data`` the rows (the keys for
    ``delete``)."""

    event: str
    data: list[Any]
    uid: str


class Items(Generic[Item]):
    """``/api/items/{collection}``: typed by the generated ``TypedDict`` when
    made through a typed client (``workeros typegen --lang python``)."""

    def __init__(self, client: Workeros, collection: str) -> None:
        self.client = client
        self.collection = collection
        self.path = f"/api/items/{collection}"

    async def read(self, query: Query | Mapping[str, Any] | None = None, **params: Any) -> list[Item]:
        """Items matching the query (the whole query language of the server)."""
        return await self.client.request("GET", self.path, params=query_params(query, **params))

    async def read_with_meta(self, query: Query | Mapping[str, Any] | None = None,
                             **params: Any) -> tuple[list[Item], dict[str, Any]]:
        """Items and the answer's ``meta`` (ask with ``meta="*"``)."""
        body = await self.client.request("GET", self.path, params=query_params(query, **params), envelope=True)
        return body["data"], body.get("meta") or {}

    async def search(self, query: Mapping[str, Any]) -> list[Item]:
        """The query in the body (``SEARCH``), for queries too long for a URL."""
        return await self.client.request("SEARCH", self.path, json={"query": dict(query)})

    async def get(self, key: Any, **params: Any) -> Item:
        return await self.client.request("GET", f"{self.path}/{key}", params=query_params(None, **params))

    async def create(self, item: Mapping[str, Any]) -> Item:
        return await self.client.request("POST", self.path, json=dict(item))

    async def create_many(self, items: Iterable[Mapping[str, Any]]) -> list[Item]:
        return await self.client.request("POST", self.path, json=[dict(i) for i in items])

    async def update(self, key: Any, data: Mapping[str, Any]) -> Item:
        return await self.client.request("PATCH", f"{self.path}/{key}", json=dict(data))

    async def update_many(self, keys: list[Any], data: Mapping[str, Any]) -> list[Item]:
        return await self.client.request("PATCH", self.path, json={"keys": keys, "data": dict(data)})

    async def update_by_filter(self, filter: Mapping[str, Any], data: Mapping[str, Any]) -> list[Item]:
        return await self.client.request("PATCH", self.path, json={"query": {"filter": filter}, "data": dict(data)})

    async def update_batch(self, items: Iterable[Mapping[str, Any]]) -> list[Item]:
        """Several items, each with its own fields and its key."""
        return await self.client.request("PATCH", self.path, json=[dict(i) for i in items])

    async def delete(self, key: Any) -> None:
        await self.client.request("DELETE", f"{self.path}/{key}")

    async def delete_many(self, keys: list[Any]) -> None:
        await self.client.request("DELETE", self.path, json=keys)

    async def delete_by_filter(self, filter: Mapping[str, Any]) -> None:
        await self.client.request("DELETE", self.path, json={"query": {"filter": filter}})

    async def aggregate(self, aggregate: Mapping[str, str | list[str]], *, group_by: list[str] | None = None,
                        **params: Any) -> list[dict[str, Any]]:
        """``aggregate={"count": "*", "sum": "score"}``, optionally ``group_by``."""
        params["aggregate"] = {k: v if isinstance(v, str) else ",".join(v) for k, v in aggregate.items()}
        return await self.client.request("GET", self.path, params=query_params(None, group_by=group_by, **params))

    async def iterate(self, page_size: int = 100, **params: Any) -> AsyncIterator[Item]:
        """Every matching item, one page at a time."""
        page = 1
        while True:
            rows = await self.read(limit=page_size, page=page, **params)
            for row in rows:
                yield row
            if len(rows) < page_size:
                return
            page += 1


class Workeros:
    """The async client. ``token`` is an access token or an API key
    (``pak_…``); or sign in with :meth:`login` (refreshed automatically)."""

    def __init__(self, url: str, *, token: str | None = None, retries: int = 4, backoff: float = 0.5,
                 max_backoff: float = 30.0, timeout: float = 30.0, refresh_margin: float = 10.0,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.refresh_token: str | None = None
        self.expires_at: float | None = None
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.refresh_margin = refresh_margin
        self._session = session
        self._own_session = session is None
        self._refreshing: asyncio.Lock | None = None
        #: Called with each refreshed session (to store the tokens somewhere).
        self.on_refresh: Callable[[dict[str, Any]], Any] | None = None
        #: Requests sent again after a 429 or 503, over the client's life.
        self.retried = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    # -- the one way out ---------------------------------------------------------------
    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None, json: Any = None,
                      data: Any = None, headers: Mapping[str, str] | None = None, auth: bool = True,
                      envelope: bool = False, raw: bool = False,
                      on_headers: Callable[[Mapping[str, str]], Any] | None = None) -> Any:
        """Send one request; return the envelope's ``data`` (``envelope``: the
        whole body; ``raw``: the bytes). 429/503 are retried; errors raise."""
        if auth and self.refresh_token and self.expires_at is not None \
                and self.expires_at - time.time() < self.refresh_margin:
            await self.refresh()
        refreshed = False
        attempt = 0
        while True:
            sent = dict(headers or {})
            if auth and self.token and "Authorization" not in sent:
                sent["Authorization"] = f"Bearer {self.token}"
            async with self.session.request(method, path if path.startswith("http") else self.url + path,
                                            params=params, json=json, data=data() if callable(data) else data,
                                            headers=sent) as response:
                body = await response.read()
                status = response.status
                if on_headers is not None and status < 400:
                    on_headers(response.headers)
                retry_after = response.headers.get("Retry-After")
                content_type = response.content_type
            if status in RETRY_STATUSES and attempt < self.retries:
                await asyncio.sleep(self._delay(attempt, retry_after))
                attempt += 1
                self.retried += 1
                continue
            if status >= 400:
                error = _error(status, body)
                if error.code == "TOKEN_EXPIRED" and auth and self.refresh_token and not refreshed:
                    await self.refresh()
                    refreshed = True
                    continue
                raise error
            if raw:
                return body
            if not body or content_type != "application/json":
                return body.decode() if body and content_type.startswith("text/") else None
            decoded = _loads(body)
            return decoded if envelope or not isinstance(decoded, dict) or "data" not in decoded else decoded["data"]

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(self.max_backoff, max(0.0, float(retry_after)))
            except ValueError:
                when = email.utils.parsedate_to_datetime(retry_after)
                if when is not None:
                    return min(self.max_backoff, max(0.0, when.timestamp() - time.time()))
        return min(self.max_backoff, self.backoff * 2 ** attempt) * (0.5 + random.random() / 2)

    # -- auth ------------------------------------------------------------------------
    async def login(self, email: str, password: str, *, otp: str | None = None) -> dict[str, Any]:
        """Sign in (json mode): the client keeps the tokens and refreshes them."""
        body: dict[str, Any] = {"email": email, "password": password, "mode": "json"}
        if otp is not None:
            body["otp"] = otp
        session = await self.request("POST", "/api/auth/login", json=body, auth=False)
        self._keep(session)
        return session

    async def refresh(self) -> dict[str, Any]:
        """A new access token from the refresh token (rotated). Concurrent
        callers share one refresh."""
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        used = self.refresh_token
        async with self._refreshing:
            if self.refresh_token != used and self.token:  # another task refreshed meanwhile
                return {"access_token": self.token, "refresh_token": self.refresh_token}
            if not self.refresh_token:
                raise WorkerosError(401, "INVALID_CREDENTIALS", "Not signed in with a refresh token")
            session = await self.request("POST", "/api/auth/refresh",
                                         json={"refresh_token": self.refresh_token, "mode": "json"}, auth=False)
            self._keep(session)
        if self.on_refresh is not None:
            result = self.on_refresh(session)
            if isinstance(result, Awaitable):
                await result
        return session

    def _keep(self, session: Mapping[str, Any]) -> None:
        self.token = session["access_token"]
        self.refresh_token = session.get("refresh_token") or self.refresh_token
        expires = session.get("expires")
        self.expires_at = time.time() + expires / 1000 if expires else None

    async def logout(self) -> None:
        if self.refresh_token:
            await self.request("POST", "/api/auth/logout", json={"refresh_token": self.refresh_token}, auth=False)
        self.token = self.refresh_token = self.expires_at = None

    async def me(self, fields: list[str] | None = None) -> dict[str, Any]:
        return await self.request("GET", "/api/users/me", params=query_params(None, fields=fields))

    async def create_api_key(self, name: str, user: str | None = None) -> dict[str, Any]:
        """``{id, key}``: the key is shown once."""
        return await self.request("POST", "/api/api-keys", json={"name": name, **({"user": user} if user else {})})

    async def revoke_api_key(self, key_id: str) -> None:
        await self.request("DELETE", f"/api/api-keys/{key_id}")

    # -- data ------------------------------------------------------------------------
    def items(self, collection: str) -> Items[Any]:
        return Items(self, collection)

    async def graphql(self, query: str, variables: Mapping[str, Any] | None = None, *,
                      operation_name: str | None = None) -> dict[str, Any]:
        """The ``data`` of a GraphQL answer; GraphQL errors raise."""
        body = await self.request("POST", "/api/graphql", envelope=True, json={
            "query": query, "variables": dict(variables or {}), "operationName": operation_name})
        if body.get("errors"):
            first = body["errors"][0]
            raise WorkerosError(200, (first.get("extensions") or {}).get("code", "GRAPHQL"), first.get("message", ""),
                                body["errors"])
        return body["data"]

    # -- files, functions, AI (the endpoints of DESIGN.md §6) -------------------------
    async def upload(self, file: str | Path | bytes, *, filename: str | None = None, title: str | None = None,
                     folder: str | None = None, content_type: str | None = None,
                     progress: Callable[[int, int], Any] | None = None) -> dict[str, Any]:
        """``POST /api/files`` (multipart); returns the file's row.
        ``progress(sent, total)`` is called as the bytes go out."""
        content, name = _content(file, filename)

        def form() -> aiohttp.FormData:  # a fresh body for each attempt (429/503 are retried)
            data = aiohttp.FormData()
            if title:
                data.add_field("title", title)
            if folder:
                data.add_field("folder", folder)
            body: Any = _pieces(content, progress) if progress else content
            data.add_field("file", body, filename=name, content_type=content_type or "application/octet-stream")
            return data

        return await self.request("POST", "/api/files", data=form)

    async def upload_tus(self, file: str | Path | bytes, *, filename: str | None = None, chunk_size: int = 5 << 20,
                         progress: Callable[[int, int], Any] | None = None, resume: str | None = None,
                         on_created: Callable[[str], Any] | None = None) -> dict[str, Any]:
        """A resumable upload (TUS 1.0.0 at ``/api/files/tus``) sent in
        ``chunk_size`` pieces; returns the file's row. ``on_created(url)`` gets
        the upload's URL as soon as it exists; pass it back as ``resume`` to
        continue an interrupted upload from the offset the server holds."""
        content, name = _content(file, filename)
        tus = {"Tus-Resumable": "1.0.0"}
        if resume is None:
            meta = "filename " + base64.b64encode(name.encode()).decode()
            created: dict[str, str] = {}
            await self.request("POST", "/api/files/tus", headers={
                **tus, "Upload-Length": str(len(content)), "Upload-Metadata": meta}, raw=True,
                on_headers=created.update)
            target = created["Location"]
            target = target if target.startswith("http") else self.url + target
            if on_created:
                on_created(target)
            offset = 0
        else:
            target = resume
            offset = int((await self._tus_head(target))["Upload-Offset"])
        file_id: str | None = None
        while offset < len(content):
            chunk = content[offset:offset + chunk_size]
            headers = {**tus, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
            answer: dict[str, str] = {}
            await self.request("PATCH", target, data=chunk, headers=headers, raw=True, on_headers=answer.update)
            offset = int(answer.get("Upload-Offset", offset + len(chunk)))
            file_id = answer.get("Workeros-File-Id", file_id)
            if progress:
                progress(offset, len(content))
        if file_id is None:
            raise WorkerosError(409, "CONFLICT", "The upload was already complete; its file is not known here")
        return await self.request("GET", f"/api/files/{file_id}")

    async def _tus_head(self, url: str) -> dict[str, str]:
        answer: dict[str, str] = {}
        await self.request("HEAD", url, headers={"Tus-Resumable": "1.0.0"}, raw=True, on_headers=answer.update)
        return answer

    def asset_url(self, file_id: str, **transform: Any) -> str:
        """``/api/assets/{id}`` with transform parameters (``width``,
        ``height``, ``fit``, ``quality``, ``format``, ``key``)."""
        query = urlencode({k: v for k, v in transform.items() if v is not None})
        return f"{self.url}/api/assets/{file_id}" + (f"?{query}" if query else "")

    async def run_function(self, name: str, payload: Any = None, *, method: str = "POST",
                           params: Mapping[str, str] | None = None) -> Any:
        """Invoke a function (``/api/functions/{name}/run``); returns what it returned."""
        return await self.request(method, f"/api/functions/{name}/run", params=params,
                                  json=payload if method not in ("GET", "HEAD") else None)

    async def ai_query(self, prompt: str, *, collection: str | None = None, run: bool = False) -> dict[str, Any]:
        """``POST /api/ai/query``: the model's query plan (``plan``, ``explanation``,
        ``usage``), and with ``run`` its ``rows``, read as the caller."""
        body: dict[str, Any] = {"prompt": prompt, "run": run}
        if collection is not None:
            body["collection"] = collection
        return await self.request("POST", "/api/ai/query", json=body)

    # -- realtime --------------------------------------------------------------------
    async def subscribe(self, collection: str, *, query: Mapping[str, Any] | None = None,
                        event: str | None = None, uid: str = "1") -> AsyncIterator[Event]:
        """Events of ``collection`` as an async iterator, over the WebSocket.
        The first is ``init`` (the current rows). When the access token expires
        the client refreshes it and signs the socket in again in place."""
        url = self.url.replace("http", "ws", 1) + "/api/realtime"
        async with self.session.ws_connect(url, heartbeat=None) as ws:
            if self.token:
                await ws.send_json({"type": "auth", "access_token": self.token})
            message: dict[str, Any] = {"type": "subscribe", "collection": collection, "uid": uid,
                                       "query": dict(query or {})}
            if event:
                message["event"] = event
            await ws.send_json(message)
            async for frame in ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    break
                body = _loads(frame.data)
                kind = body.get("type")
                if kind == "ping":
                    await ws.send_json({"type": "pong"})
                elif kind == "auth" and body.get("status") == "error" and \
                        body.get("error", {}).get("code") == "TOKEN_EXPIRED" and self.refresh_token:
                    await self.refresh()
                    await ws.send_json({"type": "auth", "access_token": self.token})
                elif kind == "auth" and body.get("status") in ("error", "expired", "revoked"):
                    error = body.get("error") or {}
                    raise WorkerosError(401, error.get("code", "INVALID_CREDENTIALS"), error.get("message", ""))
                elif body.get("status") == "error":
                    error = body.get("error") or {}
                    raise WorkerosError(400, error.get("code", "INVALID_PAYLOAD"), error.get("message", ""))
                elif kind == "subscription" and body.get("uid") == uid:
                    if body.get("event") == "closed":
                        return
                    yield Event(body["event"], body.get("data") or [], uid)


def _content(file: str | Path | bytes, filename: str | None) -> tuple[bytes, str]:
    if isinstance(file, (str, Path)):
        return Path(file).read_bytes(), filename or Path(file).name
    return bytes(file), filename or "upload"


async def _pieces(content: bytes, progress: Callable[[int, int], Any], piece: int = 1 << 16) -> AsyncIterator[bytes]:
    """The bytes in pieces, reporting how many went out."""
    for start in range(0, len(content), piece):
        yield content[start:start + piece]
        progress(min(start + piece, len(content)), len(content))
    if not content:
        progress(0, 0)


def _loads(body: bytes | str) -> Any:
    return json.loads(body)


def _error(status: int, body: bytes) -> WorkerosError:
    try:
        errors = _loads(body).get("errors") or []
    except (ValueError, AttributeError):
        errors = []
    first = errors[0] if errors else {}
    code = (first.get("extensions") or {}).get("code") or {429: "RATE_LIMITED", 503: "SERVICE_UNAVAILABLE"}.get(
        status, "HTTP_ERROR")
    return WorkerosError(status, code, first.get("message") or f"HTTP {status}", errors)


class WorkerosSync:
    """The client for code that is not async: the same methods, blocking. An
    event loop runs in a background thread for the client's lifetime::

        with WorkerosSync(url, token=key) as wos:
            rows = wos.items("posts").read(limit=5)
    """

    def __init__(self, url: str, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="workeros-client", daemon=True)
        self._thread.start()
        self.client = Workeros(url, **options)

    def _run(self, awaitable: Awaitable[T]) -> T:
        async def wrap() -> T:
            return await awaitable
        return asyncio.run_coroutine_threadsafe(wrap(), self._loop).result()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if name == "items":
            return lambda collection: _SyncProxy(self, attr(collection))
        if callable(attr) and asyncio.iscoroutinefunction(attr):
            return lambda *a, **kw: self._run(attr(*a, **kw))
        return attr

    def close(self) -> None:
        self._run(self.client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> WorkerosSync:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _SyncProxy:
    def __init__(self, owner: WorkerosSync, target: Any) -> None:
        self._owner, self._target = owner, target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if callable(attr) and asyncio.iscoroutinefunction(attr):
            return lambda *a, **kw: self._owner._run(attr(*a, **kw))
        return attr
