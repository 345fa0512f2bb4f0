"""The access log: one line (or JSON object) per request, with its request id."""

from __future__ import annotations

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from workeros.http.keys import REQUEST_ID


class AccessLogger(AbstractAccessLogger):
    """One line per request: method, path, status, size, duration, request id."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %s %.1fms",
            request.method,
            request.path,
            response.status,
            response.body_length,
            time * 1000,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "bytes": response.body_length,
                "duration_ms": round(time * 1000, 2),
                "remote": request.remote,
                "request_id": request.get(REQUEST_ID),
            },
        )
