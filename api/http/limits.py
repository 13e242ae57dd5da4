"""A request body size limit as plain ASGI middleware, before any parsing.

A declared ``Content-Length`` over the limit is refused at once; a chunked body is counted as it
arrives and refused as soon as it passes the limit (the app never sees the rest)."""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.exceptions import HTTPException

from api.http.errors import PROBLEM, problem_body


class BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body reader passes it on instead of making it a 400."""

    def __init__(self, max_bytes: int, path: str = "") -> None:
        super().__init__(413, too_large(max_bytes, path))


# what a route's body is and how to send less of it: (path pattern, the body, the hint)
ROUTE_BODIES = (
    (re.compile(r"/v1/quotes"), "the batch of quotes", "send fewer quotes per request"),
    (re.compile(r"/v1/(price-sheet|tariffs/lint)"), "the tariff", "send one tariff per request"),
    (
        re.compile(r"/v1/settlements"),
        "the settlement request",
        "its contracts document is the large part: keep only the terms this month needs",
    ),
    (
        re.compile(r"/ocpi/[^/]+/cdrs(/.*)?"),
        "the CDR",
        "a CDR this large can be loaded with `roamledger import --store` instead",
    ),
    (
        re.compile(r"/ocpi/[^/]+/tariffs(/.*)?"),
        "the tariff",
        "a tariff this large can be loaded with `roamledger import --store --tariffs` instead",
    ),
)


def too_large(max_bytes: int, path: str = "") -> str:
    """The 413 sentence of a route: what its body is and how to send less (one per route)."""
    what, hint = "the request body", "send a smaller body"
    for pattern, body, route_hint in ROUTE_BODIES:
        if pattern.search(path):
            what, hint = body, route_hint
            break
    return f"{what} is larger than {max_bytes} bytes. Hint: {hint} (or raise max_body_bytes in the settings)"


class BodySizeLimit:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self.refuse(send, scope["path"])
                    return
        seen = 0
        started = False

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes, scope["path"])
            return message

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:
                await self.refuse(send, scope["path"])

    async def refuse(self, send: Any, path: str) -> None:
        body = orjson.dumps(problem_body(413, too_large(self.max_bytes, path), "body-too-large"))
        headers = [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
