"""pricing.quote: how a planned session is laid out, OCPI Sessions so far and projected, display
strings, and input errors that say how to fix them."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from conftest import ROOT
from hypothesis import given
from hypothesis import strategies as st

import pricing
from pricing.errors import InputError, RoamledgerError, TariffError
from pricing.model import Phase
from pricing.quote import TariffKey, planned_cdr, quote

EXAMPLES = ROOT / "fixtures" / "spec" / "examples"


def example(version: str, name: str) -> dict:
    return json.loads((EXAMPLES / version / name).read_text(encoding="utf-8"))


ENERGY_TARIFF = {
    "country_code": "NL",
    "party_id": "RLG",
    "id": "E1",
    "currency": "EUR",
    "elements": [
        {"price_components": [{"type": "FLAT", "price": "0.50", "vat": "21", "step_size": 1}]},
        {"price_components": [{"type": "ENERGY", "price": "0.35", "vat": "21", "step_size": 1}]},
        {
            "price_components": [{"type": "PARKING_TIME", "price": "3.00", "vat": "21", "step_size": 60}],
            "restrictions": {"start_time": "09:00", "end_time": "18:00"},
        },
    ],
    "last_updated": "2025-01-01T00:00:00Z",
}


def test_energy_and_power_give_the_charging_time_rounded_up_to_a_second():
    q = quote(
        ENERGY_TARIFF,
        start="2025-03-04T10:00:00",
        energy_kwh="20",
        power_kw="11",
        time_zone="Europe/Amsterdam",
    )
    (period,) = q.priced.session.periods
    assert period.phase is Phase.CHARGING
    assert period.duration_ms == 6_546_000  # 20/11 h = 6545.45 s → 6546 s
    assert period.energy_mwh == 20_000_000
    assert (period.min_power_w, period.max_power_w) == (11_000, 11_000)
    assert q.total_excl_vat == Decimal("7.5000")  # 0.50 + 20 × 0.35
    assert q.total_incl_vat == Decimal("9.0750")
    assert q.as_dict()["costs"]["energy"] == {"excl_vat": "7.0000", "incl_vat": "8.4700"}


def test_reservation_then_charging_then_parking_in_that_order():
    q = quote(
        ENERGY_TARIFF,
        start="2025-03-04T09:00:00+01:00",
        energy_kwh=10,
        duration=timedelta(minutes=60),
        parking_minutes=30,
        reservation_minutes=15,
    )
    phases = [(p.phase, p.duration_ms) for p in q.priced.session.periods]
    assert phases == [(Phase.RESERVATION, 900_000), (Phase.CHARGING, 3_600_000), (Phase.PARKING, 1_800_000)]
    assert q.as_dict()["costs"]["parking"]["excl_vat"] == "1.5000"  # 30 min × 3.00/h, 10:15–10:45 local
    assert q.as_dict()["end"] == "2025-03-04T09:45:00Z"


def test_time_zone_from_location_and_from_the_tariff_country():
    by_location = quote(
        ENERGY_TARIFF, start="2025-03-04T17:30", energy_kwh=1, power_kw=1, location={"country": "FR"}
    )
    assert by_location.row["time_zone"] == "Europe/Paris"
    by_tariff = quote(ENERGY_TARIFF, start="2025-03-04T17:30", energy_kwh=1, power_kw=1)
    assert by_tariff.row["time_zone"] == "Europe/Amsterdam"


def test_a_local_start_the_clocks_skip_or_show_twice_is_refused_not_guessed():
    with pytest.raises(InputError, match=r"2026-03-29T02:30:00 does not exist in Europe/Amsterdam.*\+01:00"):
        quote(ENERGY_TARIFF, start="2026-03-29T02:30", energy_kwh=1, power_kw=1)
    with pytest.raises(InputError, match=r"happens twice .* \+02:00 for the first, \+01:00 for the second"):
        quote(ENERGY_TARIFF, start="2026-10-25T02:30", energy_kwh=1, power_kw=1)
    # an offset says which; the hours around the changes are unambiguous
    first = quote(ENERGY_TARIFF, start="2026-10-25T02:30+02:00", energy_kwh=1, power_kw=1)
    second = quote(ENERGY_TARIFF, start="2026-10-25T02:30+01:00", energy_kwh=1, power_kw=1)
    assert (first.as_dict()["start"], second.as_dict()["start"]) == (
        "2026-10-25T00:30:00Z",
        "2026-10-25T01:30:00Z",
    )
    for start in ("2026-03-29T01:59", "2026-03-29T03:00", "2026-10-25T01:59", "2026-10-25T03:00"):
        quote(ENERGY_TARIFF, start=start, energy_kwh=1, power_kw=1)


def test_profile_stops_when_the_energy_is_delivered():
    q = quote(
        ENERGY_TARIFF,
        start="2025-03-04T10:00:00Z",
        energy_kwh="30",
        profile=[{"minutes": 20, "power_kw": 50, "current_a": 125}, {"minutes": 60, "power_kw": 20}],
    )
    first, second = q.priced.session.periods
    assert (first.duration_ms, first.energy_mwh, first.max_current_ma) == (1_200_000, 16_666_666, 125_000)
    assert second.energy_mwh == 30_000_000 - 16_666_666
    assert second.duration_ms == 2_401_000  # 13.333334 kWh at 20 kW = 2400.00012 s, up to 2401 s
    assert q.as_dict()["quantities"]["total_energy_kwh"] == "30.0000"


def test_a_session_with_nothing_still_pays_its_flat_fee():
    q = quote(ENERGY_TARIFF, start="2025-03-04T10:00:00Z", energy_kwh=0, duration=0)
    assert [(p.phase, p.duration_ms) for p in q.priced.session.periods] == [(Phase.CHARGING, 0)]
    assert q.row["total_cost_excl_vat"] == "0.5000"


def test_display_strings_in_four_locales():
    shown = {
        loc: quote(ENERGY_TARIFF, start="2025-03-04T10:00Z", energy_kwh=20, power_kw=11, locale=loc).display
        for loc in ("en", "fr_FR", "de_DE", "nl_NL")
    }
    assert shown["en"]["total_incl_vat"] == "€9.08"  # 9.075 half-up to the cent
    assert shown["fr_FR"]["total_incl_vat"] == "9,08\u00a0€"
    assert shown["de_DE"]["total_incl_vat"] == "9,08\u00a0€"
    assert shown["nl_NL"]["total_incl_vat"] == "€\u00a09,08"
    assert [ln["label"] for ln in shown["de_DE"]["lines"]] == ["Energie", "Startgebühr"]
    assert shown["nl_NL"]["summary"] == "Totaal: €\u00a09,08 (incl. btw)"


def test_211_tariff_has_no_amount_incl_vat():
    q = quote(example("2.1.1", "tariff_simple_2_euro_per_hour.json"), start="2025-03-04T10:00Z", energy_kwh=5,
              duration=90, time_zone="Europe/Brussels")  # fmt: skip
    assert q.total_incl_vat is None and q.display["total_incl_vat"] is None
    assert q.row["total_cost_excl_vat"] == "3.0000"


def test_ocpi_session_so_far_and_projected():
    session = example("2.2.1", "session_example_2_short_finished.json")
    tariff = example("2.2.1", "tariff_1_simple_2hour.json")
    q = quote(
        tariff, session=session, time_zone="Europe/Amsterdam", project_to="2015-06-30T02:00:00Z", power_kw=11
    )
    so_far = q.as_dict()
    assert so_far["kind"] == "session_so_far"
    assert so_far["projected"]["kind"] == "session_projected"
    assert Decimal(so_far["projected"]["total"]["excl_vat"]) > Decimal(so_far["total"]["excl_vat"])
    assert so_far["projected"]["end"] == "2015-06-30T02:00:00Z"


def test_projection_parks_once_the_energy_target_is_reached():
    session = example("2.2.1", "session_example_2_short_finished.json")
    tariff = example("2.2.1", "tariff_13_simple_3hour_5parking.json")
    q = quote(tariff, session=session, time_zone="Europe/Amsterdam", project_to="2015-06-30T04:00:00Z",
              power_kw=11, energy_kwh=20)  # fmt: skip
    # the spec example already reports 41,120 kWh (its volumes are Wh): nothing more charges
    so_far, later = q.priced.session.periods, q.projected.priced.session.periods
    assert later[-1].phase is Phase.PARKING
    assert sum(p.energy_mwh for p in later) == sum(p.energy_mwh for p in so_far) == 41_120_000_000
    assert q.projected.as_dict()["end"] == "2015-06-30T04:00:00Z"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"energy_kwh": 1}, "power_kw or duration"),
        ({"power_kw": 11}, "needs energy_kwh"),
        ({"energy_kwh": -1, "power_kw": 11}, "zero or more"),
        ({"energy_kwh": 1, "power_kw": 0}, "more than zero"),
        ({"energy_kwh": "abc", "power_kw": 1}, "must be a number"),
        ({"energy_kwh": 1, "power_kw": 1, "locale": "xx_nowhere"}, "unknown locale"),
        ({"energy_kwh": 1, "power_kw": 1, "time_zone": "Mars/Olympus"}, "unknown time zone"),
        ({"energy_kwh": 100, "profile": [{"minutes": 10, "power_kw": 11}]}, "delivers only 1.833333 kWh"),
        ({"energy_kwh": 1, "profile": [{"minutes": 10}]}, "must have minutes and power_kw"),
        ({"energy_kwh": 10_000, "power_kw": "0.001"}, "more than 31 days"),
    ],
)
def test_input_errors_say_how_to_fix_them(kwargs, words):
    with pytest.raises(RoamledgerError, match=words):
        quote(ENERGY_TARIFF, start="2025-03-04T10:00Z", **kwargs)


def test_stored_tariffs_need_a_store():
    with pytest.raises(InputError, match="no tariff store is configured"):
        ref = {"country_code": "NL", "party_id": "RLG", "tariff_id": "E1"}
        quote(ref, start="2025-03-04T10:00Z", energy_kwh=1, power_kw=1)
    store = {TariffKey("NL", "RLG", "E1"): ENERGY_TARIFF}.get
    q = quote(TariffKey("NL", "RLG", "E1"), store=store, start="2025-03-04T10:00Z", energy_kwh=1, power_kw=1)
    assert q.row["tariff_id"] == "E1"


def test_a_tariff_outside_its_validity_is_refused():
    tariff = {**ENERGY_TARIFF, "start_date_time": "2026-01-01T00:00:00Z"}
    with pytest.raises(TariffError, match="not valid at the session start"):
        quote(tariff, start="2025-03-04T10:00Z", energy_kwh=1, power_kw=1)


def test_planned_cdr_carries_the_quote():
    q = quote(ENERGY_TARIFF, start="2025-03-04T10:00Z", energy_kwh=20, power_kw=11, parking_minutes=10)
    cdr = planned_cdr(q)
    assert [p["dimensions"][0]["type"] for p in cdr["charging_periods"]] == ["ENERGY", "PARKING_TIME"]
    assert cdr["total_cost"] == {
        "excl_vat": q.row["total_cost_excl_vat"],
        "incl_vat": q.row["total_cost_incl_vat"],
    }


def test_pricing_quote_is_callable_also_after_the_module_was_imported():
    # the package attribute is the submodule once pricing.quote was imported (as here, above)
    q = pricing.quote(ENERGY_TARIFF, start="2025-03-04T10:00Z", energy_kwh=1, power_kw=1)
    assert q.row["tariff_id"] == "E1"


@pytest.mark.parametrize(
    ("version", "tariff_name", "so_far", "projected"),
    [
        ("2.1.1", "tariff_simple_2_euro_per_hour.json", "1.0000", "5.3333"),
        ("2.2.1", "tariff_1_simple_2hour.json", "0.9333", "5.2667"),
        ("2.3.0", "tariff_1_simple_2hour.json", "0.9333", "5.2667"),
    ],
)
def test_ocpi_sessions_of_every_version(version, tariff_name, so_far, projected):
    """The spec's finished session example, priced as it stands and projected to 02:00 UTC at 11 kW;
    the zone comes from the 2.1.1 session's location, else from the tariff's country (BE)."""
    session = example(version, "session_example_2_short_finished.json")
    q = quote(example(version, tariff_name), session=session, project_to="2015-06-30T02:00:00Z", power_kw=11)
    assert q.row["time_zone"] == "Europe/Brussels"
    assert (q.row["total_cost_excl_vat"], q.projected.row["total_cost_excl_vat"]) == (so_far, projected)


def test_far_years_are_input_errors():
    with pytest.raises(InputError, match="outside 1970–2199"):
        quote(ENERGY_TARIFF, start="9999-12-31T23:00:00Z", energy_kwh=20, power_kw=1)


WINDOWED_TARIFF = {
    "country_code": "NL",
    "party_id": "ABC",
    "id": "ABC-T1",
    "currency": "EUR",
    "last_updated": "2026-01-01T00:00:00Z",
    "elements": [
        {"price_components": [{"type": "FLAT", "price": 0.5, "vat": 21.0, "step_size": 1}]},
        {
            "price_components": [{"type": "ENERGY", "price": 0.3, "vat": 21.0, "step_size": 1}],
            "restrictions": {"start_time": "09:00", "end_time": "18:00"},
        },
        {"price_components": [{"type": "ENERGY", "price": 0.25, "vat": 21.0, "step_size": 1}]},
        {"price_components": [{"type": "PARKING_TIME", "price": 6.0, "vat": 21.0, "step_size": 300}]},
    ],
}
RUNNING_SESSION = {
    "country_code": "NL", "party_id": "ABC", "id": "SESS-1", "start_date_time": "2026-11-03T10:00:00Z",
    "kwh": 6.0, "auth_method": "WHITELIST", "location_id": "LOC-A1", "evse_uid": "A1-1", "connector_id": "1",
    "cdr_token": {"country_code": "DE", "party_id": "MSP", "uid": "AA11", "type": "RFID",
                  "contract_id": "DE-MSP-C00000001-1"},
    "currency": "EUR", "status": "ACTIVE", "last_updated": "2026-11-03T10:30:00Z",
    "charging_periods": [{"start_date_time": "2026-11-03T10:00:00Z", "tariff_id": "ABC-T1",
                          "dimensions": [{"type": "ENERGY", "volume": 6.0},
                                         {"type": "TIME", "volume": 0.5}]}],
}  # fmt: skip


def shown_amount(text: str) -> Decimal:
    return Decimal(text.replace("€", "").replace(",", ""))


def assert_lines_add_up(d: dict, exact: dict) -> None:
    for col in ("excl_vat", "incl_vat"):
        total = shown_amount(d[f"total_{col}"])
        assert total == Decimal(exact[col]).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")  # billed
        assert sum(shown_amount(ln[col]) for ln in d["lines"]) == total


def test_display_lines_add_up_to_the_total_shown():
    q = quote(WINDOWED_TARIFF, session=RUNNING_SESSION, time_zone="Europe/Amsterdam",
              project_to="2026-11-03T11:00:00Z")  # fmt: skip
    body = q.as_dict()
    # exact 2.178 + 0.605 = 2.783: half-up each line would show 2.18 + 0.61 under a total of 2.78
    assert body["costs"]["fixed"]["incl_vat"] == "0.6050" and body["total"]["incl_vat"] == "2.7830"
    assert [ln["incl_vat"] for ln in body["display"]["lines"]] == ["€2.18", "€0.60"]
    assert body["display"]["rounding"] == "largest_remainder" and body["display"]["rounding_note"]
    assert_lines_add_up(body["display"], body["total"])
    assert_lines_add_up(body["projected"]["display"], body["projected"]["total"])
    assert body["projected"]["display"]["total_incl_vat"] == "€4.96"


def test_a_maximum_price_shows_an_adjustment_line():
    capped = {**ENERGY_TARIFF, "max_price": {"excl_vat": "5.00", "incl_vat": "6.05"}}
    q = quote(capped, start="2025-03-04T10:00Z", energy_kwh=20, power_kw=11)
    d = q.as_dict()
    assert d["min_max_applied"] == "max"
    assert d["display"]["lines"][-1]["category"] == "adjustment"
    assert d["display"]["lines"][-1]["label"] == "Maximum price adjustment"
    assert_lines_add_up(d["display"], d["total"])


@pytest.mark.parametrize(
    ("parts", "shown"),
    [
        (["2.178", "0.605"], ["2.18", "0.60"]),
        (["0.005", "0.005", "0.005"], ["0.01", "0.01", "0.00"]),  # 0.015 → 0.02: earlier part on a tie
        (["1.004", "1.004", "1.004"], ["1.01", "1.00", "1.00"]),
        (["7.333", "-1.333"], ["7.33", "-1.33"]),
    ],
)
def test_shares_by_largest_remainder(parts, shown):
    from fractions import Fraction

    from pricing.display import shares

    values = [Fraction(p) for p in parts]
    assert shares(sum(values, Fraction(0)), values, "EUR") == [Decimal(s) for s in shown]


@given(st.lists(st.fractions(min_value=-50, max_value=500, max_denominator=10_000), min_size=1, max_size=6))
def test_shares_add_up_and_stay_within_a_cent(parts):
    from fractions import Fraction

    from pricing.display import shares
    from pricing.units import round_half_up

    total = sum(parts, Fraction(0))
    shown = shares(total, parts, "EUR")
    assert sum(shown) == round_half_up(total, 2)  # the billed amount, never moved to fit the lines
    assert all(abs(Fraction(s) - p) < Fraction(1, 100) for s, p in zip(shown, parts, strict=True))
