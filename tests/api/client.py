"""A TestClient on a fresh app per test module (``create_app(settings)``, no global app)."""

from __future__ import annotations

import warnings

from api.http import Settings, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx vs httpx2 in its TestClient
    from fastapi.testclient import TestClient

from api.http.schemas import EXAMPLE_TARIFF

__all__ = ["EXAMPLE_TARIFF", "client"]


def client(**settings: object) -> TestClient:
    return TestClient(create_app(Settings(**settings)), raise_server_exceptions=False)
