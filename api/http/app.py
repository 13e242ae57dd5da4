"""``create_app(settings)``: the FastAPI application, no module-level app or settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.http import errors
from api.http.auth import digest
from api.http.cdr_posts import CdrPosts, route
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


class Service(FastAPI):
    """The service's application: CDR POSTs go straight to :attr:`cdr_posts` when it is set
    (:mod:`api.http.cdr_posts`), every other request (and every other scope) through FastAPI."""

    cdr_posts: CdrPosts | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        posts = self.cdr_posts
        if posts is not None and scope["type"] == "http" and scope["method"] == "POST":
            if self.root_path:  # as FastAPI sets it
                scope["root_path"] = self.root_path
            if route(scope) is not None:
                scope["app"] = self  # as Starlette sets it
                await posts.limited(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, cdr_posts: bool = True) -> FastAPI:
    """The service with ``settings`` (default: :func:`load_settings`, i.e. file and environment).
    ``cdr_posts``: CDR POSTs answered in front of FastAPI (:mod:`api.http.cdr_posts`; off only to
    compare with the route)."""
    settings = settings or load_settings()
    app = Service(
        lifespan=lifespan,
        title="roamledger",
        version=__version__,
        description=(
            "Exact OCPI 2.1.1/2.2.1/2.3.0 price quotes, price sheets and tariff lint. "
            "Errors are application/problem+json."
        ),
    )
    app.state.settings = settings
    secret = settings.operator_secret()
    app.state.operator_sha256 = digest(secret) if secret is not None else None  # api.http.auth
    app.state.store = Store(settings.store_url) if settings.store_url else None
    app.state.runner = None  # the settlement worker, started by the first POST /v1/settlements
    for router in ROUTERS:
        app.include_router(router)
    errors.install(app)
    ocpi.install(app)
    if cdr_posts:
        app.cdr_posts = CdrPosts(app, settings.max_body_bytes)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On shutdown: the settlement worker stops taking runs, the group-commit writer ends, the
    store's connections close (an SQLite store then folds its write-ahead log into the file, so
    copying the .db file alone after a stop copies everything)."""
    yield
    if app.state.runner is not None:
        app.state.runner.shutdown()
    if app.state.store is not None:
        app.state.store.close()


def app_from_environment() -> FastAPI:
    """The uvicorn factory of ``roamledger serve`` (every worker reads the same file/environment)."""
    return create_app(load_settings())
