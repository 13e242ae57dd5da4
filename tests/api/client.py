"""A TestClient on a fresh app per test module (``create_app(settings)``, no global app)."""

from __future__ import annotations

import warnings

from api.http import Settings, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx vs httpx2 in its TestClient
    from fastapi.testclient import TestClient

from api.http.schemas import EXAMPLE_TARIFF

__all__ = ["EXAMPLE_TARIFF", "LOCAL", "REMOTE", "client"]


LOCAL = ("127.0.0.1", 50000)  # a client on the server's machine (as the README's quick start)
REMOTE = ("203.0.113.7", 50000)  # one elsewhere (TEST-NET-3)


def client(*, address: tuple[str, int] = LOCAL, **settings: object) -> TestClient:
    """``address``: the client's; the operator routes of /v1 answer a local one without a token
    when none is configured (:mod:`api.http.auth`)."""
    return TestClient(create_app(Settings(**settings)), raise_server_exceptions=False, client=address)
