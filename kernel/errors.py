"""Typed errors. Services raise these; the error middleware turns them into the
contract's envelope (DESIGN §4) in one place. Messages are written for the API
caller: never SQL, paths or tracebacks."""

from __future__ import annotations

from typing import Any

#: The refusal a read-only API key (``mcp_read_only``) gets for any write, on
#: every way in (REST, GraphQL over HTTP and WebSocket, MCP): docs/auth.md.
READ_ONLY = "This API key is read-only (mcp_read_only): it cannot change anything"

class WorkerosError(Exception):
    """Base of every error that reaches a caller with its own status and code."""

    status: int = 500
    code: str = "INTERNAL"

    def __init__(self, message: str | None = None, **extensions: Any) -> None:
        self.message = message or self.default_message
        self.extensions = {k: v for k, v in extensions.items() if v is not None}
        super().__init__(self.message)

    default_message = "Internal error"

    def to_error(self) -> dict[str, Any]:
        return {"message": self.message, "extensions": {"code": self.code, **self.extensions}}


class InvalidQuery(WorkerosError):
    status, code, default_message = 400, "INVALID_QUERY", "Invalid query"


class InvalidPayload(WorkerosError):
    status, code, default_message = 400, "INVALID_PAYLOAD", "Invalid payload"


class InvalidCredentials(WorkerosError):
    status, code, default_message = 401, "INVALID_CREDENTIALS", "Invalid credentials"


class TokenExpired(WorkerosError):
    status, code, default_message = 401, "TOKEN_EXPIRED", "Token expired"


class Forbidden(WorkerosError):
    status, code, default_message = 403, "FORBIDDEN", "You don't have permission to access this"


class NotFound(WorkerosError):
    status, code, default_message = 404, "NOT_FOUND", "Not found"


class MethodNotAllowed(WorkerosError):
    status, code, default_message = 405, "METHOD_NOT_ALLOWED", "Method not allowed"


class Conflict(WorkerosError):
    status, code, default_message = 409, "CONFLICT", "Conflict"


class PayloadTooLarge(WorkerosError):
    status, code, default_message = 413, "PAYLOAD_TOO_LARGE", "Payload too large"


class UnsupportedMediaType(WorkerosError):
    status, code, default_message = 415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type"


class RateLimited(WorkerosError):
    status, code, default_message = 429, "RATE_LIMITED", "Too many requests"

    def __init__(self, message: str | None = None, *, retry_after: int = 1, **extensions: Any) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(message, **extensions)


class RangeNotSatisfiable(WorkerosError):
    status, code, default_message = 416, "RANGE_NOT_SATISFIABLE", "Range not satisfiable"


class BadGateway(WorkerosError):
    """An upstream service (a model API, a remote executor) failed."""

    status, code, default_message = 502, "BAD_GATEWAY", "The upstream service failed"


class FunctionError(WorkerosError):
    """A function threw, or went past its memory budget."""

    status, code, default_message = 502, "FUNCTION_ERROR", "The function failed"


class ServiceUnavailable(WorkerosError):
    """Try again later; with ``retry_after`` (seconds) the response carries ``Retry-After``."""

    status, code, default_message = 503, "SERVICE_UNAVAILABLE", "Service unavailable"

    def __init__(self, message: str | None = None, *, retry_after: int | None = None, **extensions: Any) -> None:
        self.retry_after = None if retry_after is None else max(1, int(retry_after))
        super().__init__(message, **extensions)


class FunctionTimeout(WorkerosError):
    """A function ran past its time budget."""

    status, code, default_message = 504, "FUNCTION_TIMEOUT", "The function ran out of time"


class Internal(WorkerosError):
    status, code, default_message = 500, "INTERNAL", "Internal error"


#: HTTP status -> error class, for errors raised by aiohttp itself.
BY_STATUS: dict[int, type[WorkerosError]] = {
    cls.status: cls
    for cls in (
        InvalidPayload,
        InvalidCredentials,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        RangeNotSatisfiable,
        RateLimited,
        ServiceUnavailable,
        Internal,
    )
}


class StartupError(Exception):
    """The app cannot boot (misconfiguration, conflicting plugins). Shown to the
    operator, never to an API caller."""


class PluginConflict(StartupError):
    pass
