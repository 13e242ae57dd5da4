"""POST /v1/tariffs/lint: findings, also for a body that is not a tariff at all."""

from __future__ import annotations

from tests.api.client import EXAMPLE_TARIFF, client


def test_lint_findings():
    bad = {**EXAMPLE_TARIFF, "min_price": {"excl_vat": 5}, "max_price": {"excl_vat": 2}}
    r = client().post("/v1/tariffs/lint", json={"tariff": bad})
    assert r.status_code == 200
    body = r.json()
    assert body["counts"] == {"error": 1, "warning": 1, "info": 0}
    assert [(f["code"], f["path"]) for f in body["findings"]] == [
        ("MIN_ABOVE_MAX", "$.min_price.excl_vat"),
        ("NO_FALLBACK", "$.elements"),
    ]


def test_not_a_tariff_is_a_finding():
    body = client().post("/v1/tariffs/lint", json={"tariff": [1, 2]}).json()
    assert [f["code"] for f in body["findings"]] == ["INVALID_TARIFF"]
