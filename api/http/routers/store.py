"""``GET /v1/store``: monitoring of the OCPI receiver's store — reachable, migrations current, and
per party the tariffs and CDRs held, the last ingest and how many pushes were refused."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from api.http.deps import json_response

router = APIRouter(prefix="/v1", tags=["store"])


@router.get("/store", summary="The store: reachable, migrations current, counts per party")
def store_status(request: Request) -> Response:
    store = request.app.state.store
    if store is None:
        return json_response({"configured": False})
    body: dict[str, Any] = {"configured": True}
    try:
        body |= {
            "reachable": True,
            "migrations_current": store.migrations_current(),
            "parties": store.counts(),
        }
    except SQLAlchemyError as exc:
        body |= {"reachable": False, "error": type(exc).__name__}
        return Response(json_response(body).body, status_code=503, media_type="application/json")
    return json_response(body)
