"""``POST /v1/price-sheet``: a tariff in human terms, localized.

``GET /v1/tariffs/{country_code}/{party_id}/{tariff_id}/price-sheet`` (a stored tariff) comes with
the tariff store (issue 12); it is not routed yet."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from api.http.deps import SettingsDep, json_response
from api.http.routers.quotes import PROBLEMS
from api.http.schemas import PriceSheetIn, PriceSheetOut
from pricing.pricesheet import price_sheet

router = APIRouter(prefix="/v1", tags=["price sheets"])


@router.post(
    "/price-sheet",
    summary="The tariff in human terms: per kWh, per minute, per session, parking, windows, caps, VAT",
    responses={200: {"model": PriceSheetOut}, **PROBLEMS},
)
async def post_price_sheet(body: PriceSheetIn, settings: SettingsDep) -> Response:
    sheet = price_sheet(body.tariff, body.locale or settings.default_locale, ocpi_version=body.ocpi_version)
    return json_response(sheet.as_dict())
