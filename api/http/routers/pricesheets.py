"""``POST /v1/price-sheet``: a tariff in human terms, localized; ``GET
/v1/tariffs/{country_code}/{party_id}/{tariff_id}/price-sheet``: the same for a tariff a CPO pushed
to the store (its newest version)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from api.http.deps import SettingsDep, TariffsDep, json_response
from api.http.errors import problem
from api.http.routers.ocpi import party_codes
from api.http.routers.quotes import PROBLEMS
from api.http.schemas import PriceSheetIn, PriceSheetOut
from pricing.pricesheet import price_sheet
from pricing.quote import TariffKey

router = APIRouter(prefix="/v1", tags=["price sheets"])


@router.post(
    "/price-sheet",
    summary="The tariff in human terms: per kWh, per minute, per session, parking, windows, caps, VAT",
    responses={200: {"model": PriceSheetOut}, **PROBLEMS},
)
async def post_price_sheet(body: PriceSheetIn, settings: SettingsDep) -> Response:
    sheet = price_sheet(body.tariff, body.locale or settings.default_locale, ocpi_version=body.ocpi_version)
    return json_response(sheet.as_dict())


@router.get(
    "/tariffs/{country_code}/{party_id}/{tariff_id}/price-sheet",
    summary="The price sheet of a stored tariff (as its CPO pushed it), localized",
    responses={200: {"model": PriceSheetOut}, 404: {"description": "no such stored tariff"}, **PROBLEMS},
)
async def get_price_sheet(
    country_code: str,
    party_id: str,
    tariff_id: str,
    settings: SettingsDep,
    tariffs: TariffsDep,
    locale: str | None = None,
) -> Response:
    key = TariffKey(*party_codes(country_code, party_id), tariff_id)
    found = tariffs(key) if tariffs is not None else key  # no store: price_sheet says so (422)
    if found is None:  # the URL names a resource that is not there
        detail = f"no stored tariff {country_code}/{party_id}/{tariff_id}. Hint: check the three ids"
        return problem(404, detail, "not-found")
    return json_response(price_sheet(found, locale or settings.default_locale, store=tariffs).as_dict())
