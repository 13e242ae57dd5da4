"""Errors as ``application/problem+json`` (RFC 9457): a type, a title, the status, a detail that says
what to fix, and for invalid bodies the list of fields. No response ever carries a stack trace: an
unexpected exception is logged on the server and answered with a generic 500 problem."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from pricing.errors import InputError, RecordRejected, RoamledgerError

PROBLEM = "application/problem+json"
LOG = logging.getLogger("roamledger.http")
INTERNAL = "internal error (a bug in roamledger, logged on the server). Hint: please report the request"
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    500: "Internal error",
    503: "Service unavailable",
}


def settings_error(message: str) -> InputError:
    return InputError(f"{message}. Hint: see api/http/settings.py for the fields and ROAMLEDGER_* variables")


def problem_body(status: int, detail: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": f"/problems/{kind}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }


def problem(status: int, detail: str, kind: str, **extra: Any) -> Response:
    body = orjson.dumps(problem_body(status, detail, kind, **extra))
    return Response(body, status_code=status, media_type=PROBLEM)


def roamledger_problem(exc: RoamledgerError) -> dict[str, Any]:
    """The problem body of an input error (also used per item in a batch)."""
    extra: dict[str, Any] = {}
    if isinstance(exc, RecordRejected):
        extra = {"code": exc.code, "path": exc.path}
    return problem_body(422, str(exc), "invalid-input", **extra)


def install(app: FastAPI) -> None:
    @app.exception_handler(RoamledgerError)
    async def _input(request: Request, exc: RoamledgerError) -> Response:
        body = roamledger_problem(exc)
        body["instance"] = request.url.path
        return Response(orjson.dumps(body), status_code=422, media_type=PROBLEM)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problem(400, "the request body is not valid JSON. Hint: send one JSON object", "bad-json")
        media = not_json(request.headers.get("content-type"))
        if media is not None and any(e["loc"][:1] == ("body",) for e in exc.errors()):
            detail = (
                f"the body was sent as {media!r}, so it was not read as JSON. "
                "Hint: send it with 'content-type: application/json'"
            )
            return problem(415, detail, "not-json", instance=request.url.path)
        errors = [{"path": json_path(loc), "message": e["msg"]} for e, loc in branch(exc)]
        first = errors[0] if errors else {"path": "$", "message": "invalid"}
        detail = f"{first['path']}: {first['message']}. Hint: see the request schema and examples at /docs"
        return problem(422, detail, "invalid-request", errors=errors, instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return http_problem(exc, request.url.path)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        LOG.exception("internal error on %s %s", request.method, request.url.path)
        return problem(500, INTERNAL, "internal-error", instance=request.url.path)


def not_json(content_type: str | None) -> str | None:
    """The media type of a body FastAPI does not read as JSON (None: JSON, or no content-type,
    which FastAPI reads as JSON too)."""
    if not content_type:
        return None
    media = content_type.partition(";")[0].strip().lower()
    return None if media == "application/json" or media.endswith("+json") else media[:80]


def http_problem(exc: StarletteHTTPException, path: str) -> Response:
    hints = {404: "see /docs for the routes", 405: "see /docs for the methods of this route"}
    detail = f"{exc.detail}. Hint: {hints[exc.status_code]}" if exc.status_code in hints else str(exc.detail)
    kind = KINDS.get(exc.status_code, "http-error")
    r = problem(exc.status_code, detail, kind, instance=path)
    r.headers.update(exc.headers or {})  # e.g. WWW-Authenticate of a 401
    return r


KINDS = {401: "unauthorized", 403: "forbidden", 413: "body-too-large"}


UNION_BRANCHES = {"QuoteIn": False, "QuoteBatchIn": True}  # the body models of a union, and "is a batch"


def branch(exc: RequestValidationError) -> list[tuple[dict[str, Any], tuple[Any, ...]]]:
    """The errors of the body model the client meant (a union reports every branch), loc after it."""
    body = getattr(exc, "body", None)
    batch = isinstance(body, dict) and "quotes" in body
    out = []
    for e in exc.errors():
        loc = tuple(e["loc"][1:]) if e["loc"] and e["loc"][0] == "body" else tuple(e["loc"])
        if loc and loc[0] in UNION_BRANCHES:
            if UNION_BRANCHES[loc[0]] != batch:
                continue
            loc = loc[1:]
        out.append((e, loc))
    return out


def json_path(loc: tuple[Any, ...]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
