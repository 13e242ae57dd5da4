"""``GET /v1/health``: the service answers; with a store, also whether the store answers and its
schema is at the newest migration — 503 when not. Cheap enough for a probe every second: the per
party counts, last ingest and refusals (which read the CDR table) are ``GET /v1/store``."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from api.http.schemas import Health
from pricing import __version__
from settlement.store.monitor import report

router = APIRouter(prefix="/v1", tags=["health"])


@router.get(
    "/health",
    response_model=Health,
    summary="Liveness, and the store's state when the service has one",
    responses={503: {"description": "the store does not answer or its migrations are behind"}},
)
def health(request: Request) -> Response:
    body: dict[str, object] = {"status": "ok", "version": __version__}
    store = request.app.state.store
    status = 200
    if store is not None:
        healthy, state = report(store, parties=False)
        body["store"] = state
        if not healthy:
            body["status"], status = "unavailable", 503
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
