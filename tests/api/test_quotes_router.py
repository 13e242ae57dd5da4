"""POST /v1/quotes: one quote, a batch, and every kind of bad request as problem+json."""

from __future__ import annotations

import json

from conftest import ROOT

import api.http.routers.quotes as route
from pricing.quote import quote
from tests.api.client import EXAMPLE_TARIFF, client

REF = {"country_code": "NL", "party_id": "RLG", "tariff_id": "1"}
PLANNED = {"tariff": EXAMPLE_TARIFF, "start": "2025-03-04T17:30:00+01:00", "energy_kwh": "20", "power_kw": 11}


def test_one_quote_equals_the_library():
    r = client().post("/v1/quotes", json={**PLANNED, "parking_minutes": 30, "locale": "nl_NL"})
    assert r.status_code == 200
    body = r.json()
    lib = quote(EXAMPLE_TARIFF, start=PLANNED["start"], energy_kwh="20", power_kw=11, parking_minutes=30,
                locale="nl_NL").as_dict()  # fmt: skip
    assert body == json.loads(json.dumps(lib))
    assert body["total"] == {"excl_vat": "7.5000", "incl_vat": "9.0750"}
    assert body["display"]["summary"] == "Totaal: €\u00a09,08 (incl. btw)"


def test_numbers_as_json_numbers_or_strings_give_the_same_quote():
    c = client()
    a = c.post("/v1/quotes", json={**PLANNED, "energy_kwh": 20.5}).json()
    b = c.post("/v1/quotes", json={**PLANNED, "energy_kwh": "20.5"}).json()
    assert a == b and a["quantities"]["total_energy_kwh"] == "20.5000"


def test_batch_answers_each_item():
    r = client().post("/v1/quotes", json={"quotes": [PLANNED, {"tariff": EXAMPLE_TARIFF, "energy_kwh": 1}]})
    assert r.status_code == 200
    first, second = r.json()["quotes"]
    assert first["quote"]["total"]["excl_vat"] == "7.5000"
    assert second["error"]["status"] == 422 and "needs start" in second["error"]["detail"]


def test_batch_limit():
    r = client(max_batch=2).post("/v1/quotes", json={"quotes": [PLANNED] * 3})
    assert r.status_code == 422 and "at most 2" in r.json()["detail"]


def test_session_so_far_and_projected():
    examples = ROOT / "fixtures" / "spec" / "examples" / "2.2.1"
    session = json.loads((examples / "session_example_2_short_finished.json").read_text())
    tariff = json.loads((examples / "tariff_1_simple_2hour.json").read_text())
    r = client().post(
        "/v1/quotes",
        json={"tariff": tariff, "session": session, "time_zone": "Europe/Amsterdam",
              "project_to": "2015-06-30T01:00:00Z", "power_kw": 11},
    )  # fmt: skip
    assert r.status_code == 200
    assert r.json()["kind"] == "session_so_far" and r.json()["projected"]["kind"] == "session_projected"


def test_policy_per_request():
    c = client()
    base = c.post("/v1/quotes", json=PLANNED).json()
    once = c.post("/v1/quotes", json={**PLANNED, "policy": {"flat_fee": "once_per_session"}}).json()
    assert (
        once["policy"]["flat_fee"] == "once_per_session" and base["policy"]["flat_fee"] != "once_per_session"
    )
    bad = c.post("/v1/quotes", json={**PLANNED, "policy": {"flat_fee": "twice"}})
    assert bad.status_code == 422 and "Hint: choose one of" in bad.json()["detail"]


def test_problems():
    c = client()
    cases = [
        ({"tariff": EXAMPLE_TARIFF, "start": "soon", "energy_kwh": 1, "power_kw": 1}, 422, "not an ISO 8601"),
        ({**PLANNED, "energy_kwh": "lots"}, 422, "$.energy_kwh"),
        ({**PLANNED, "colour": "red"}, 422, "$.colour: Extra inputs are not permitted"),
        ({**PLANNED, "tariff": {"id": "x"}}, 422, "Hint:"),
        ({**PLANNED, "tariff": None}, 422, "names no tariff"),
        ({**PLANNED, "tariff": None, "tariff_ref": REF}, 422, "no tariff store is configured"),
        ({**PLANNED, "locale": "zz_ZZ"}, 422, "unknown locale"),
    ]  # fmt: skip
    for body, status, words in cases:
        r = c.post("/v1/quotes", json=body)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert words in r.json()["detail"], r.json()
        assert "Traceback" not in r.text


def test_bad_json_and_too_large_bodies():
    c = client(max_body_bytes=4096)
    r = c.post("/v1/quotes", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["type"] == "/problems/bad-json"
    r = c.post("/v1/quotes", content=b" " * 5000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than 4096 bytes" in r.json()["detail"]

    def chunks():
        for _ in range(10):
            yield b" " * 1000

    r = c.post("/v1/quotes", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"


def test_a_too_large_body_is_named_by_its_route(tmp_path) -> None:
    """Every 413 said 'send fewer quotes per request', also on a CDR push or a settlement."""
    c = client(max_body_bytes=1024, store_url=f"sqlite:///{tmp_path / 'store.db'}")
    big = b" " * 2000
    for path, words in [
        ("/v1/quotes", "the batch of quotes is larger than 1024 bytes. Hint: send fewer quotes per request"),
        ("/v1/settlements", "the settlement request is larger than 1024 bytes. Hint: its contracts document"),
        ("/ocpi/2.2.1/cdrs", "the CDR is larger than 1024 bytes. Hint: a CDR this large"),
        ("/v1/tariffs/lint", "the tariff is larger than 1024 bytes. Hint: send one tariff per request"),
    ]:
        for body in (big, iter([big[:1000], big[1000:]])):  # declared, and counted as it arrives
            r = c.post(path, content=body, headers={"content-type": "application/json"})
            assert r.status_code == 413 and words in r.json()["detail"], (path, r.text)
            assert "raise max_body_bytes" in r.json()["detail"]
        if path != "/v1/quotes":
            assert "quotes" not in r.json()["detail"], path
    r = c.put("/ocpi/2.2.1/tariffs/NL/CPO/T1", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "the tariff is larger" in r.json()["detail"]


def test_a_bug_is_a_500_problem_without_traceback(monkeypatch):
    def boom(*args, **kwargs):
        raise ZeroDivisionError("secret internals")

    monkeypatch.setattr(route, "quote", boom)
    r = client().post("/v1/quotes", json=PLANNED)
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    assert "secret" not in r.text and "Traceback" not in r.text


def test_display_lines_add_up_to_the_total_shown():
    """The API shows the library's display rule: lines by largest remainder, the total half-up."""
    from tests.test_quote import RUNNING_SESSION, WINDOWED_TARIFF, assert_lines_add_up

    asked = {"tariff": WINDOWED_TARIFF, "session": RUNNING_SESSION, "time_zone": "Europe/Amsterdam"}
    r = client().post("/v1/quotes", json={**asked, "project_to": "2026-11-03T11:00:00Z"})
    assert r.status_code == 200
    body = r.json()
    assert [ln["incl_vat"] for ln in body["display"]["lines"]] == ["€2.18", "€0.60"]
    assert_lines_add_up(body["display"], body["total"])
    assert_lines_add_up(body["projected"]["display"], body["projected"]["total"])
