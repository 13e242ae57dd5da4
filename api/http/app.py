"""``create_app(settings)``: the FastAPI application, no module-level app or settings."""

from __future__ import annotations

from fastapi import FastAPI

from api.http import errors
from api.http.cdr_posts import CdrPosts
from api.http.limits import BodySizeLimit
from api.http.routers import health, lint, ocpi, pricesheets, quotes, settlements, store
from api.http.settings import Settings, load_settings
from pricing import __version__
from settlement.store import Store

# the OCPI receiver first: CDR POSTs are the most frequent requests (fewer routes tried per request)
ROUTERS = (
    ocpi.router,
    health.router,
    quotes.router,
    pricesheets.router,
    lint.router,
    store.router,
    settlements.router,
)


def create_app(settings: Settings | None = None, *, cdr_posts: bool = True) -> FastAPI:
    """The service with ``settings`` (default: :func:`load_settings`, i.e. file and environment).
    ``cdr_posts``: CDR POSTs answered in front of the router (:mod:`api.http.cdr_posts`; off only
    to compare with the route)."""
    settings = settings or load_settings()
    app = FastAPI(
        title="roamledger",
        version=__version__,
        description=(
            "Exact OCPI 2.1.1/2.2.1/2.3.0 price quotes, price sheets and tariff lint. "
            "Errors are application/problem+json."
        ),
    )
    app.state.settings = settings
    app.state.store = Store(settings.store_url) if settings.store_url else None
    app.state.runner = None  # the settlement worker, started by the first POST /v1/settlements
    for router in ROUTERS:
        app.include_router(router)
    errors.install(app)
    ocpi.install(app)
    if cdr_posts:
        app.add_middleware(CdrPosts)  # inside the size limit (added before it: inside)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app


def app_from_environment() -> FastAPI:
    """The uvicorn factory of ``roamledger serve`` (every worker reads the same file/environment)."""
    return create_app(load_settings())
