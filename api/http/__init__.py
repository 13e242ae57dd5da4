"""The HTTP service: ``create_app(settings)`` builds a FastAPI app with one router per resource.

Resources: quotes (``POST /v1/quotes``), price sheets (``POST /v1/price-sheet``), tariff lint
(``POST /v1/tariffs/lint``) and health (``GET /v1/health``). Errors are ``application/problem+json``
(RFC 9457) with a helpful message and never a stack trace; request bodies over
``Settings.max_body_bytes`` are refused with 413. The settlement, month and store routes are the
operator's (:mod:`api.http.auth`). ``roamledger serve`` runs it on uvicorn.
"""

from api.http.app import create_app
from api.http.settings import Settings, load_settings

__all__ = ["Settings", "create_app", "load_settings"]
