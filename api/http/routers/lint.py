"""``POST /v1/tariffs/lint``: findings with a JSON path and a fix (a bad tariff is a finding, not a 4xx)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from api.http.deps import json_response
from api.http.routers.quotes import PROBLEMS
from api.http.schemas import LintIn, LintOut
from pricing.lint import lint_tariff

router = APIRouter(prefix="/v1", tags=["lint"])


@router.post(
    "/tariffs/lint",
    summary="Lint a tariff: unreachable elements, gaps, overlaps, steps, VAT, caps, dead restrictions",
    responses={200: {"model": LintOut}, **PROBLEMS},
)
async def post_lint(body: LintIn) -> Response:
    return json_response(lint_tariff(body.tariff, body.ocpi_version).as_dict())
