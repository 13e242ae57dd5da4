"""``POST /ocpi/{version}/cdrs`` answered in front of FastAPI: the hottest route of the service.

Through FastAPI a CDR POST paid ~0.4 ms of CPU before its own work: the router tries every route's
pattern, solves the route's dependencies, builds a ``Request`` and a ``Response``; and before the
router, each request passes FastAPI's and Starlette's own layers (telemetry, the server-error and
body-limit middlewares, ~50 µs). The service's application (:class:`api.http.app.Service`) hands
``POST /ocpi/{version}/cdrs`` to :class:`CdrPosts` first, behind the same body size limit
(:class:`api.http.limits.BodySizeLimit`), which answers it by the same function as the route
(:func:`api.http.routers.ocpi.push_cdr`), with the same OCPI envelopes, status codes and
``Location`` header; every other request goes on to FastAPI. The route stays declared (the OpenAPI
document, and an app without this fast path).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request

from api.http.errors import INTERNAL, LOG, PROBLEM, http_problem, problem_body
from api.http.limits import BodySizeLimit
from api.http.routers.ocpi import TIMESTAMP, OcpiError, envelope, push_cdr

ROUTE = re.compile(r"/ocpi/([^/]+)/cdrs")  # the route's path, {version} as Starlette matches it
JSON = b"application/json"
BASE_URLS = 64  # base URLs remembered (the Host header is the client's)


def route(scope: dict[str, Any]) -> re.Match[str] | None:
    """The match of an HTTP request's path with the route (its {version}), else None."""
    path = scope["path"]
    root = scope.get("root_path", "")
    return ROUTE.fullmatch(path[len(root) :] if root and path.startswith(root) else path)


class CdrPosts:
    """Answers CDR POSTs (:func:`route` matched) of the application ``app`` (its ``state.store``)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.limited = BodySizeLimit(self.answer, max_bytes)  # what the service calls
        self.base_urls: dict[tuple[Any, ...], str] = {}
        self.second = -1
        self.success = b""

    async def answer(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        match = route(scope)
        assert match is not None, "only CDR POSTs come here"
        chunks = []
        while True:
            try:
                message = await receive()
            except HTTPException as exc:  # the body size limit's refusal, as the router answers it
                await http_problem(exc, path)(scope, receive, send)
                return
            if message["type"] != "http.request":
                return  # the client went away: nobody to answer
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        authorization = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
                break
        headers: list[tuple[bytes, bytes]] = []
        try:
            status, location = await push_cdr(
                self.app.state.store, match[1], b"".join(chunks), authorization.decode("latin-1"), path
            )
            body = self.success_body()
            headers.append((b"location", f"{self.base_url(scope)}{location}".encode("latin-1")))
            kind = JSON
        except OcpiError as exc:
            status, kind = exc.http_status, JSON
            body = orjson.dumps(envelope(None, exc.status_code, exc.message))
        except Exception:  # as the service's handler of unexpected exceptions answers them
            LOG.exception("internal error on POST %s", path)
            status, kind = 500, PROBLEM.encode()
            body = orjson.dumps(problem_body(500, INTERNAL, "internal-error", instance=path))
        headers += [(b"content-length", str(len(body)).encode()), (b"content-type", kind)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def success_body(self) -> bytes:
        """The success envelope (no data) of this second, made once per second (its timestamp
        has whole seconds)."""
        now = int(time.time())
        if now != self.second:
            stamp = datetime.fromtimestamp(now, UTC).strftime(TIMESTAMP)
            self.success, self.second = orjson.dumps({**envelope(None), "timestamp": stamp}), now
        return self.success

    def base_url(self, scope: dict[str, Any]) -> str:
        """``Request.base_url`` without the slash, as the route computes it (remembered per scheme,
        Host header, server and root path)."""
        host = next((v for n, v in scope["headers"] if n == b"host"), None)
        key = (scope.get("scheme"), host, tuple(scope.get("server") or ()), scope.get("root_path"))
        key += (scope.get("app_root_path"),)
        url = self.base_urls.get(key)
        if url is None:
            if len(self.base_urls) >= BASE_URLS:
                self.base_urls.clear()
            url = self.base_urls[key] = str(Request(scope).base_url).rstrip("/")
        return url
