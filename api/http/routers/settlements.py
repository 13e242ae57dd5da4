"""Settlement over the store: ``POST /v1/settlements`` queues a month (202 + ``Location``), a
background worker settles it with the engine of ``roamledger settle --store`` (same statement
bytes); ``GET /v1/settlements/{id}`` is the run (``queued|running|done|failed``), as JSON, CSV or
HTML by ``Accept``; ``GET /v1/settlements/{id}/statements/{cpo}/{emsp}/{currency}`` one statement
(``statement.json``, ``lines.csv`` or ``statement.html``). ``POST /v1/months/{month}/close`` makes a
month's statements final; settling a closed month again is refused (409). Every route here is the
operator's (:mod:`api.http.auth`: ``Authorization: Bearer``, or a local client when no token is set)."""

from __future__ import annotations

import csv
import html
import io
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Header, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from api.cli.settle import check_locale
from api.http import auth
from api.http.deps import json_response
from api.http.errors import problem
from api.http.runs import Runner
from api.http.schemas import Problem
from settlement.rules import MONTH_PATTERN
from settlement.runs import queue_run
from settlement.store import Store
from settlement.store.months import (
    MonthClosed,
    Run,
    RunRefused,
    check_month,
    close_month,
    closed,
    get_run,
    list_runs,
    run_file,
    run_statements,
)

router = APIRouter(prefix="/v1", tags=["settlements"], dependencies=auth.OPERATOR, responses=auth.RESPONSES)
MONTH = MONTH_PATTERN
MAX_ID = 2**31 - 1  # run ids are 32-bit integers on every database
RunId = Path(ge=1, le=MAX_ID, description="the run's id (the Location of its POST)")
PARTY = r"^[A-Z]{2}\*[A-Z0-9]{3}$"
FORMATS = {"application/json": "json", "text/csv": "csv", "text/html": "html"}
MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}
STATEMENT_FILES = {"json": "statement.json", "csv": "lines.csv", "html": "statement.html"}
RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such run or statement"},
    406: {"model": Problem, "description": "Accept names no format of this resource"},
    409: {"model": Problem, "description": "the run is not done yet, or the month is closed"},
    422: {"model": Problem, "description": "invalid request (problem+json, with a hint)"},
}


class SettlementIn(BaseModel):
    """A month to settle from the store, with the options of ``roamledger settle --store``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"month": "2026-10", "basis": "reported", "locale": "fr_FR", "tz": "Europe/Paris"},
                {"month": "2024-06", "cpo": "NL*CPO", "emsp": "DE*MSP"},
            ]
        },
    )

    month: str = Field(pattern=MONTH, description="YYYY-MM; a CDR belongs to the month its session ended in")
    cpo: str | None = Field(None, pattern=PARTY, description="keep only this CPO's statements, e.g. NL*CPO")
    emsp: str | None = Field(None, pattern=PARTY, description="keep only this eMSP's statements, e.g. DE*MSP")
    basis: Literal["reported", "recomputed"] | None = Field(None, description="pay reported or recomputed")
    locale: str = Field("en_GB", max_length=35, description="statement language (babel), e.g. fr_FR")
    tz: str | None = Field(
        None, max_length=64, description="statement time zone (IANA), default the contracts', else UTC"
    )
    contracts: dict[str, Any] | None = Field(
        None,
        description="contract terms: the document of a contracts file (settlement/contracts.py: terms, "
        "vat_rates, parties, parties_211 …), validated as the file is and kept with the run",
    )


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"run_id": 1}, {}]})

    run_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="the final run (default: the month's newest done run)"
    )


def stale_ms(request: Request) -> int:
    return request.app.state.settings.run_stale_s * 1000


def store_of(request: Request) -> Store:
    store = request.app.state.store
    if store is None:
        raise RunRefused("no store is configured. Hint: start the service with ROAMLEDGER_STORE_URL")
    return store


def runner_of(request: Request) -> Runner:
    if getattr(request.app.state, "runner", None) is None:
        request.app.state.runner = Runner(store_of(request), request.app.state.settings.run_stale_s)
    return request.app.state.runner


def negotiate(accept: str | None) -> str | None:
    """The format an ``Accept`` header asks for (JSON for none or ``*/*``); None: none we have."""
    ranges = []
    for i, part in enumerate((accept or "*/*").split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        ranges.append((-q, i, media.lower()))
    for negq, _, media in sorted(ranges):
        if negq == 0:
            continue
        if media in FORMATS:
            return FORMATS[media]
        if media in ("*/*", "application/*"):
            return "json"
        if media == "text/*":
            return "html"
    return None


def not_acceptable(accept: str | None) -> Response:
    return problem(
        406,
        f"cannot answer in {accept!r}. Hint: Accept application/json, text/csv or text/html",
        "not-acceptable",
    )


def run_links(run: Run) -> str:
    return f"/v1/settlements/{run.id}"


def run_document(store: Store, run: Run) -> dict[str, Any]:
    final = closed(store).get(run.month)
    doc = run.as_dict() | {"final": final is not None and final[0] == run.id, "href": run_links(run)}
    if run.status == "done":
        manifest = orjson.loads(run.manifest)
        doc["counts"] = manifest["counts"]
        doc["statements"] = [
            {k: e[k] for k in ("cpo", "emsp", "currency", "lines", "amount_due")}
            | {"href": statement_href(run.id, e["cpo"], e["emsp"], e["currency"])}
            for e in manifest["statements"]
        ]
    return doc


def statement_href(run_id: int, cpo: str, emsp: str, currency: str) -> str:
    return f"/v1/settlements/{run_id}/statements/{cpo}/{emsp}/{currency}"


def run_csv(doc: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["run", "month", "cpo", "emsp", "currency", "lines", "amount_due", "href"])
    for s in doc["statements"]:
        w.writerow(
            [
                doc["id"],
                doc["month"],
                s["cpo"],
                s["emsp"],
                s["currency"],
                s["lines"],
                s["amount_due"],
                s["href"],
            ]
        )
    return buf.getvalue()


def run_html(doc: dict[str, Any]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(s['cpo'])}</td><td>{e(s['emsp'])}</td><td>{e(s['currency'])}</td>"
        f"<td>{s['lines']}</td><td>{e(str(s['amount_due']))}</td>"
        f'<td><a href="{e(s["href"])}">statement</a></td></tr>'
        for s in doc["statements"]
    )
    title = f"Settlement run {doc['id']}: {e(doc['month'])}" + (" (final)" if doc["final"] else "")
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title></head><body>"
        f"<h1>{title}</h1><table><tr><th>CPO</th><th>eMSP</th><th>Currency</th><th>Lines</th>"
        f"<th>Amount due</th><th></th></tr>{rows}</table></body></html>\n"
    )


def not_ready(run: Run) -> Response:
    detail = (
        f"run {run.id} failed: {run.message}"
        if run.status == "failed"
        else f"run {run.id} is {run.status}; its statements are not ready. "
        "Hint: GET it as application/json until its status is done"
    )
    r = problem(409, detail, "run-not-done", run=run.as_dict())
    if run.status != "failed":
        r.headers["Retry-After"] = "5"
    return r


@router.post(
    "/settlements",
    status_code=202,
    summary="Settle a month from the store (queued; poll the Location)",
    responses={202: {"description": "queued: the run, its Location"}, **RESPONSES},
)
def post_settlement(body: SettlementIn, request: Request) -> Response:
    store = store_of(request)
    check_month(body.month)
    check_locale(body.locale)
    try:
        run_id = queue_run(
            store, body.month, body.basis, body.tz, body.locale, body.cpo, body.emsp, body.contracts
        )
    except MonthClosed as exc:
        return problem(409, str(exc), "month-closed")
    runner_of(request).submit(run_id)
    run = get_run(store, run_id, stale_ms(request))
    assert run is not None
    doc = orjson.dumps(run_document(store, run))
    return Response(doc, status_code=202, media_type="application/json", headers={"Location": run_links(run)})


@router.get("/settlements", summary="Settlement runs, newest first", responses=RESPONSES)
def get_settlements(
    request: Request,
    month: str | None = Query(None, pattern=MONTH),
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    store = store_of(request)
    return json_response(
        {"runs": [run_document(store, r) for r in list_runs(store, month, limit, stale_ms(request))]}
    )


@router.get(
    "/settlements/{run_id}",
    summary="A run: status (JSON), or its statements as CSV / HTML by Accept",
    responses={200: {"content": {m: {} for m in FORMATS}}, **RESPONSES},
)
def get_settlement(request: Request, run_id: int = RunId, accept: str | None = Header(None)) -> Response:
    store = store_of(request)
    fmt = negotiate(accept)
    if fmt is None:
        return not_acceptable(accept)
    run = get_run(store, run_id, stale_ms(request))
    if run is None:
        return problem(404, f"no settlement run {run_id}. Hint: GET /v1/settlements lists them", "no-run")
    if fmt == "json":
        return json_response(run_document(store, run))
    if run.status != "done":
        return not_ready(run)
    doc = run_document(store, run)
    return Response(run_csv(doc) if fmt == "csv" else run_html(doc), media_type=MEDIA[fmt])


@router.get(
    "/settlements/{run_id}/statements/{cpo}/{emsp}/{currency}",
    summary="One statement of a run: statement.json, lines.csv or statement.html by Accept",
    responses={200: {"content": {m: {} for m in FORMATS}}, **RESPONSES},
)
def get_statement(
    cpo: str,
    emsp: str,
    currency: str,
    request: Request,
    run_id: int = RunId,
    accept: str | None = Header(None),
) -> Response:
    store = store_of(request)
    fmt = negotiate(accept)
    if fmt is None:
        return not_acceptable(accept)
    run = get_run(store, run_id, stale_ms(request))
    if run is None:
        return problem(404, f"no settlement run {run_id}. Hint: GET /v1/settlements lists them", "no-run")
    if run.status != "done":
        return not_ready(run)
    found = [
        s
        for s in run_statements(store, run_id)
        if (s["cpo"], s["emsp"], s["currency"]) == (cpo.upper(), emsp.upper(), currency.upper())
    ]
    content = run_file(store, run_id, f"{found[0]['folder']}/{STATEMENT_FILES[fmt]}") if found else None
    if content is None:
        return problem(
            404,
            f"run {run_id} has no statement {cpo} / {emsp} / {currency}. "
            f"Hint: GET /v1/settlements/{run_id} lists its statements",
            "no-statement",
        )
    return Response(content.encode("utf-8"), media_type=MEDIA[fmt])


@router.post(
    "/months/{month}/close",
    summary="Close a month: its final run's statements become immutable",
    responses={200: {"description": "closed"}, **RESPONSES},
)
def post_close(month: str, request: Request, body: CloseIn | None = None) -> Response:
    store = store_of(request)
    check_month(month)
    run_id = body.run_id if body else None
    if run_id is not None and get_run(store, run_id, stale_ms(request)) is None:
        return problem(404, f"no settlement run {run_id}. Hint: GET /v1/settlements lists them", "no-run")
    try:
        final, at = close_month(store, month, run_id)
    except (MonthClosed, RunRefused) as exc:
        return problem(409, str(exc), "cannot-close")
    return json_response(
        {"month": month, "run_id": final, "closed_ms": at, "href": f"/v1/settlements/{final}"}
    )


@router.get("/months", summary="Closed months and their final runs", responses=RESPONSES)
def get_months(request: Request) -> Response:
    store = store_of(request)
    rows = [
        {"month": m, "run_id": r, "closed_ms": t, "href": f"/v1/settlements/{r}"}
        for m, (r, t) in sorted(closed(store).items())
    ]
    return json_response({"closed": rows})
