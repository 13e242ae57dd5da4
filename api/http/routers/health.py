"""``GET /v1/health``."""

from __future__ import annotations

from fastapi import APIRouter

from api.http.schemas import Health
from pricing import __version__

router = APIRouter(prefix="/v1", tags=["health"])


@router.get("/health", response_model=Health, summary="Liveness: the service answers")
async def health() -> Health:
    return Health(status="ok", version=__version__)
