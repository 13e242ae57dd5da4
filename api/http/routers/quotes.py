"""``POST /v1/quotes``: one quote, or a batch (each item a quote or a problem)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from api.http.deps import SettingsDep, TariffsDep, json_response, request_policy
from api.http.errors import problem, roamledger_problem
from api.http.schemas import Problem, QuoteBatchIn, QuoteBatchOut, QuoteIn, QuoteOut
from api.http.settings import Settings
from pricing.errors import RoamledgerError
from pricing.quote import TariffKey, TariffStore, quote

router = APIRouter(prefix="/v1", tags=["quotes"])
PROBLEMS: dict[int | str, dict[str, Any]] = {
    413: {"model": Problem, "description": "body too large"},
    422: {"model": Problem, "description": "invalid request or input (problem+json, with a hint)"},
}


def quote_of(q: QuoteIn, settings: Settings, tariffs: TariffStore | None = None) -> dict[str, Any]:
    if q.tariff is None and q.tariff_ref is None:
        raise RoamledgerError("the request names no tariff. Hint: send tariff (an OCPI Tariff object)")
    tariff: Any = q.tariff
    if tariff is None and q.tariff_ref is not None:
        tariff = TariffKey(q.tariff_ref.country_code, q.tariff_ref.party_id, q.tariff_ref.tariff_id)
    result = quote(
        tariff,
        start=q.start,
        time_zone=q.time_zone,
        location=q.location.model_dump() if q.location else None,
        energy_kwh=q.energy_kwh,
        power_kw=q.power_kw,
        duration=q.duration_minutes,
        profile=[s.model_dump(exclude_none=True) for s in q.profile] if q.profile else None,
        parking_minutes=q.parking_minutes,
        reservation_minutes=q.reservation_minutes,
        session=q.session,
        now=q.now,
        project_to=q.project_to,
        locale=q.locale or settings.default_locale,
        policy=request_policy(settings, q.policy),
        ocpi_version=q.ocpi_version,
        explain=q.explain,
        store=tariffs,
    )
    return result.as_dict()


@router.post(
    "/quotes",
    summary="Price a planned session (or an OCPI Session so far / projected); one or a batch",
    responses={
        200: {"model": QuoteOut | QuoteBatchOut, "description": "a quote, or {quotes: [...]}"},
        **PROBLEMS,
    },
)
async def post_quotes(body: QuoteIn | QuoteBatchIn, settings: SettingsDep, tariffs: TariffsDep) -> Response:
    if isinstance(body, QuoteIn):
        return json_response(quote_of(body, settings, tariffs))
    if len(body.quotes) > settings.max_batch:
        return problem(
            422,
            f"{len(body.quotes)} quotes in one request; at most {settings.max_batch}. Hint: split the batch",
            "batch-too-large",
        )
    items: list[dict[str, Any]] = []
    for q in body.quotes:
        try:
            items.append({"quote": quote_of(q, settings, tariffs)})
        except RoamledgerError as exc:
            items.append({"error": roamledger_problem(exc)})
    return json_response({"quotes": items})
