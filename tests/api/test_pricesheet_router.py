"""POST /v1/price-sheet."""

from __future__ import annotations

from tests.api.client import EXAMPLE_TARIFF, client


def test_price_sheet():
    r = client().post("/v1/price-sheet", json={"tariff": EXAMPLE_TARIFF, "locale": "de_DE"})
    assert r.status_code == 200
    body = r.json()
    assert body["summary"][1] == "jederzeit: 0,4235\u00a0€ pro kWh"
    assert body["elements"][2]["when"] == {"start_time": "09:00", "end_time": "18:00"}


def test_default_locale_from_settings():
    body = client(default_locale="fr").post("/v1/price-sheet", json={"tariff": EXAMPLE_TARIFF}).json()
    assert body["locale"] == "fr" and body["summary"][0].startswith("à toute heure")


def test_bad_tariff_is_a_problem_with_its_path():
    r = client().post("/v1/price-sheet", json={"tariff": {**EXAMPLE_TARIFF, "currency": 5}})
    assert r.status_code == 422 and r.json()["path"] == "$.currency"
