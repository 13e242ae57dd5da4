"""GET /v1/health and the routes that are not there."""

from __future__ import annotations

from pricing import __version__
from tests.api.client import client


def test_health():
    r = client().get("/v1/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "version": __version__}


def test_unknown_route_and_method_are_problems():
    c = client()
    r = c.get("/v1/nothing")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"].endswith("Hint: see /docs for the routes")
    r = c.get("/v1/quotes")
    assert r.status_code == 405 and r.json()["status"] == 405


def test_stored_tariff_price_sheet_without_a_store_says_so():
    r = client().get("/v1/tariffs/NL/RLG/AC-11/price-sheet")
    assert r.status_code == 422 and "no tariff store is configured" in r.json()["detail"]


def test_openapi_has_examples():
    schema = client().get("/openapi.json").json()
    assert {"/v1/quotes", "/v1/price-sheet", "/v1/tariffs/lint", "/v1/health"} <= set(schema["paths"])
    for name in ("QuoteIn", "QuoteBatchIn", "PriceSheetIn", "LintIn"):
        assert schema["components"]["schemas"][name]["examples"], name
