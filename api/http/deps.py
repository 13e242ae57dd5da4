"""Dependencies shared by the routers: the app's settings and the pricing policy of a request."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

import orjson
from fastapi import Depends, Request
from starlette.responses import Response

from api.http.settings import Settings
from pricing.policy import PricingPolicy
from pricing.quote import TariffStore


async def get_settings(request: Request) -> Settings:
    """``async`` on purpose: FastAPI runs a plain ``def`` dependency in its thread pool (~0.1–1 ms)."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


@lru_cache(maxsize=256)
def policy_of(pairs: tuple[str, ...]) -> PricingPolicy:
    return PricingPolicy.from_pairs(pairs)


def request_policy(settings: Settings, asked: dict[str, str] | None) -> PricingPolicy:
    """The service's policy, with the request's NAME: VALUE pairs on top."""
    extra = tuple(f"{k}={v}" for k, v in sorted((asked or {}).items()))
    return policy_of((*settings.policy, *extra))


def json_response(body: object) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def stored_tariffs(request: Request) -> TariffStore | None:
    """The quote and price-sheet services' view of the store: a tariff by key, as its CPO sent it
    (the newest version); None when the service runs without a store."""
    store = request.app.state.store
    if store is None:
        return None
    return lambda key: store.tariff(key.country_code, key.party_id, key.tariff_id)


TariffsDep = Annotated[TariffStore | None, Depends(stored_tariffs)]
