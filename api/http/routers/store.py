"""``GET /v1/store``: monitoring of the OCPI receiver's store — reachable, migrations current, and
per party the tariffs and CDRs held, the last ingest, how many pushes were refused and the most
recent refusals with their reasons (:mod:`settlement.store.monitor`). 503 when the store does not
answer or its schema is behind. The operator's (:mod:`api.http.auth`)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from api.http import auth
from api.http.deps import json_response
from settlement.store.monitor import report

router = APIRouter(prefix="/v1", tags=["store"], dependencies=auth.OPERATOR, responses=auth.RESPONSES)


@router.get("/store", summary="The store: reachable, migrations current, counts and refusals per party")
def store_status(request: Request) -> Response:
    store = request.app.state.store
    if store is None:
        return json_response({"configured": False})
    healthy, body = report(store)
    return Response(
        orjson.dumps({"configured": True} | body),
        status_code=200 if healthy else 503,
        media_type="application/json",
    )
