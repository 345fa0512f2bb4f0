"""MCP over streamable HTTP, stateless, JSON responses (no SSE, no session):
each ``POST`` carries one JSON-RPC message and gets its answer as
``application/json`` (a notification or a response gets ``202``).

Methods: ``initialize`` (protocol version negotiation), ``ping``,
``tools/list``, ``tools/call``, ``resources/list``,
``resources/templates/list``, ``resources/read``. Messages are parsed and
answers built with the ``mcp`` SDK's types, so they are what the SDK's clients
expect.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from mcp import types
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, KNOWN_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION
from pydantic import TypeAdapter, ValidationError

from workeros.api import (
    Forbidden,
    InvalidCredentials,
    InvalidPayload,
    NotFound,
    UnsupportedMediaType,
    WorkerosError,
    accountability,
    changes_nothing,
    dumps,
    loads,
    services,
)

from .catalog import Catalog
from .resources import list_resources, read_resource

CATALOG = web.AppKey("mcp_catalog", Catalog)
#: The protocol versions this server negotiates through ``initialize`` (the
#: handshake revisions the SDK knows); a client asking for another gets the newest.
SUPPORTED = tuple(HANDSHAKE_PROTOCOL_VERSIONS)
LATEST = LATEST_HANDSHAKE_VERSION
MESSAGE = TypeAdapter(types.JSONRPCMessage)
SERVER_INFO = {"name": "workeros", "version": "0.1.0"}
INSTRUCTIONS = ("Tools of a workeros backend: the schema, items (collections_*), permissions, API keys and "
                "whatever plugins add. Every call runs with the permissions of the credential used.")

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _rpc(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=dumps(body), status=status, content_type="application/json")


def _error(id_: Any, code: int, message: str, status: int = 200) -> web.Response:
    return _rpc({"jsonrpc": "2.0", "id": id_, "error": {"code": code, "message": message}}, status)


def caller(request: web.Request, *, admin_only: bool) -> Any:
    acc = accountability(request)
    if acc.is_anonymous:
        raise InvalidCredentials("Send Authorization: Bearer with an API key (pak_…) or an access token")
    if admin_only and not acc.admin:
        raise Forbidden("The admin MCP endpoint is for admins; use /mcp")
    return acc.with_origin("mcp")


def make_handler(*, admin_only: bool) -> Any:
    @changes_nothing  # read-only keys reach the dispatcher, whose guard refuses each writing tool
    async def handle(request: web.Request) -> web.StreamResponse:
        acc = caller(request, admin_only=admin_only)
        if request.content_type not in ("application/json", ""):
            raise UnsupportedMediaType("Send JSON-RPC as application/json")
        version = request.headers.get("MCP-Protocol-Version")
        if version is not None and version not in KNOWN_PROTOCOL_VERSIONS:
            raise InvalidPayload(f"Unsupported MCP-Protocol-Version {version[:40]!r}; supported: {', '.join(SUPPORTED)}")
        try:
            message = loads(await request.read())
        except ValueError:
            return _error(None, PARSE_ERROR, "Parse error: the body is not JSON", 400)
        if not isinstance(message, dict):
            return _error(None, INVALID_REQUEST, "Send one JSON-RPC message (batches are not supported)", 400)
        try:
            parsed = MESSAGE.validate_python(message)
        except ValidationError:
            return _error(message.get("id"), INVALID_REQUEST, "Not a valid JSON-RPC 2.0 message", 400)
        if not isinstance(parsed, types.JSONRPCRequest):
            return web.Response(status=202)  # a notification or a response: nothing to answer
        try:
            result = await dispatch(request, acc, parsed.method, parsed.params or {})
        except RpcError as exc:
            return _error(parsed.id, exc.code, exc.message)
        return _rpc({"jsonrpc": "2.0", "id": parsed.id, "result": result})

    return handle


async def dispatch(request: web.Request, acc: Any, method: str, params: dict[str, Any]) -> dict[str, Any]:
    svc = services(request)
    catalog: Catalog = request.app[CATALOG]
    if method == "initialize":
        asked = params.get("protocolVersion")
        return {"protocolVersion": asked if asked in SUPPORTED else LATEST,
                "capabilities": {"tools": {"listChanged": False}, "resources": {"listChanged": False}},
                "serverInfo": SERVER_INFO, "instructions": INSTRUCTIONS}
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": catalog.visible(acc)}
    if method == "tools/call":
        name = params.get("name")
        if not isinstance(name, str) or name not in catalog.entries:
            raise RpcError(INVALID_PARAMS, f"Unknown tool {str(name)[:80]!r}")
        return await catalog.call(svc, acc, name, params.get("arguments"))
    if method == "resources/list":
        return {"resources": await list_resources(svc, acc)}
    if method == "resources/templates/list":
        return {"resourceTemplates": []}
    if method == "resources/read":
        uri = params.get("uri")
        if not isinstance(uri, str):
            raise RpcError(INVALID_PARAMS, "uri is required")
        try:
            return {"contents": await read_resource(svc, acc, uri)}
        except (NotFound, Forbidden):
            raise RpcError(-32002, f"Resource not found: {uri[:200]}") from None
        except WorkerosError as exc:
            raise RpcError(INVALID_PARAMS, exc.message) from None
    raise RpcError(METHOD_NOT_FOUND, f"Method not found: {method[:80]}")


async def not_allowed(request: web.Request) -> web.Response:
    """No server-to-client stream and no sessions in stateless mode."""
    return web.Response(status=405, headers={"Allow": "POST"})


def build(root: web.Application, *, admin_only: bool) -> web.Application:
    from workeros.api import SERVICES

    app = web.Application()
    app.router.add_post("", make_handler(admin_only=admin_only))
    app.router.add_get("", not_allowed)
    app.router.add_delete("", not_allowed)

    async def start(sub: web.Application) -> None:
        sub[CATALOG] = Catalog.of(root[SERVICES])

    app.on_startup.append(start)
    return app
