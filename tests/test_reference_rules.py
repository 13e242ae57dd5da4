"""The reference pricer, rule by rule (digest §2). Each test is a small scenario with its answer
worked out by hand in the docstring or the assertion."""

from __future__ import annotations

from fractions import Fraction

import pytest
from builders import comp, element, local_ms, session, tariff

from pricing.model import TaxIncluded
from pricing.policy import (
    FlatFee,
    MissingMeasurement,
    PeriodBoundaries,
    PricingPolicy,
    StepRoundingScope,
    TimeStepRounding,
)
from pricing.reference import price_session
from pricing.report import result_row


def row(s, policy=None):
    return result_row(price_session(s, policy or PricingPolicy()))


def test_wrap_around_window_splits_at_both_ends():
    """Night rate 22:00-06:00 at 0.20/kWh, else 0.40. 21:00-23:00 with 10 kWh linear:
    5 kWh before 22:00 at 0.40 + 5 kWh after at 0.20 = 3.00."""
    t = tariff(
        element(comp("ENERGY", "0.20"), start_time_min=22 * 60, end_time_min=6 * 60),
        element(comp("ENERGY", "0.40")),
    )
    r = row(session(t, "2024-06-03T21:00", ("CHARGING", 120, 10)))
    assert r["total_cost_excl_vat"] == "3.0000"
    # policy "start": the whole period at the 21:00 state
    assert (
        row(
            session(t, "2024-06-03T21:00", ("CHARGING", 120, 10)),
            PricingPolicy(period_boundaries=PeriodBoundaries.START),
        )["total_cost_excl_vat"]
        == "4.0000"
    )


def test_end_time_midnight_means_end_of_day_and_start_is_inclusive():
    """20:00-00:00 at 2.40/h, else 1.20/h; 19:30-20:30 = 0.5 h x 1.20 + 0.5 h x 2.40 = 1.80."""
    t = tariff(
        element(comp("TIME", "2.40"), start_time_min=20 * 60, end_time_min=1440),
        element(comp("TIME", "1.20")),
    )
    assert row(session(t, "2024-06-03T19:30", ("CHARGING", 60, 5)))["total_cost_excl_vat"] == "1.8000"
    # 23:30-00:30: only the half hour before midnight is in the window
    assert row(session(t, "2024-06-03T23:30", ("CHARGING", 60, 5)))["total_cost_excl_vat"] == "1.8000"


def test_day_of_week_is_local_and_switches_at_local_midnight():
    """Sunday-only 1.00/h else 3.00/h. Sunday 23:00 local (21:00 UTC in summer) for 2 h:
    1 h Sunday + 1 h Monday = 4.00 (a UTC reading would price both hours as Sunday)."""
    t = tariff(element(comp("TIME", "1.00"), days={7}), element(comp("TIME", "3.00")))
    assert row(session(t, "2024-06-09T23:00", ("CHARGING", 120, 1)))["total_cost_excl_vat"] == "4.0000"


def test_dst_spring_forward_gap_window():
    """Europe/Berlin 2024-03-31: 02:00 jumps to 03:00. A 02:30-04:00 window is entered at the jump.
    Session 01:30-03:30 local = 1 h real time: 30 min before the jump at 1.00/h, 30 min after
    (03:00-03:30, inside the window) at 2.00/h = 1.50."""
    t = tariff(
        element(comp("TIME", "2.00"), start_time_min=150, end_time_min=240), element(comp("TIME", "1.00"))
    )
    r = row(session(t, "2024-03-31T01:30", ("CHARGING", 60, 1)))
    assert r["charging_time_h"] == "1.0000"
    assert r["total_cost_excl_vat"] == "1.5000"


def test_dst_fall_back_fold_is_priced_twice():
    """2024-10-27 Europe/Berlin: 02:00-03:00 happens twice. Window 02:00-03:00 at 2.00/h, else 0.
    Session 01:30 CEST for 3 real hours covers both 02:00-03:00 hours: 2 h x 2.00 = 4.00."""
    t = tariff(element(comp("TIME", "2.00"), start_time_min=120, end_time_min=180))
    r = row(session(t, "2024-10-27T01:30", ("CHARGING", 180, 1)))
    assert r["total_cost_excl_vat"] == "4.0000"


def test_kwh_threshold_splits_a_period_linearly():
    """0.20/kWh below 10 kWh, 0.30 from 10 kWh on; one period with 20 kWh: 2.00 + 3.00 = 5.00.
    Under 'start' the whole period is priced at its start state (cumulative 0): 4.00,
    and 'flag' reports the straddling period."""
    t = tariff(element(comp("ENERGY", "0.20"), max_kwh_mwh=10_000_000), element(comp("ENERGY", "0.30")))
    s = session(t, "2024-06-03T10:00", ("CHARGING", 60, 20))
    assert row(s)["total_cost_excl_vat"] == "5.0000"
    assert row(s, PricingPolicy(period_boundaries=PeriodBoundaries.START))["total_cost_excl_vat"] == "4.0000"
    flagged = price_session(s, PricingPolicy(period_boundaries=PeriodBoundaries.FLAG))
    assert flagged.straddling == (0,)
    assert price_session(s, PricingPolicy(period_boundaries=PeriodBoundaries.START)).straddling == ()


def test_min_kwh_is_inclusive_and_cumulative_across_periods():
    """Second period starts with exactly 10 kWh consumed: min_kwh 10 already holds (>=)."""
    t = tariff(element(comp("ENERGY", "0.30"), min_kwh_mwh=10_000_000), element(comp("ENERGY", "0.20")))
    s = session(t, "2024-06-03T10:00", ("CHARGING", 30, 10), ("CHARGING", 30, 10))
    assert row(s)["total_cost_excl_vat"] == "5.0000"


def test_duration_threshold_split_counts_from_charging_start():
    """Free for the first 30 min (max_duration 1800), then 0.25/kWh: 40 min, 6.2 kWh linear in one
    period → 10/40 of 6.2 kWh = 1.55 kWh billed = 0.3875."""
    t = tariff(element(comp("ENERGY", "0.00"), max_duration_s=1800), element(comp("ENERGY", "0.25")))
    r = row(session(t, "2024-06-03T10:00", ("CHARGING", 40, "6.2")))
    assert r["total_cost_excl_vat"] == "0.3875"


def test_energy_pieces_sum_exactly_to_the_period_energy():
    """Energy split with floor(E·b/d) - floor(E·a/d): 1 mWh over three pieces still adds up."""
    t = tariff(
        element(comp("ENERGY", "1.00"), start_time_min=10 * 60 + 1, end_time_min=10 * 60 + 2),
        element(comp("ENERGY", "2.00")),
    )
    s = session(t, "2024-06-03T10:00", ("CHARGING", 3, "0.000001"))
    priced = price_session(s)
    assert [p.energy_mwh for p, _ in priced.pieces] == [0, 0, 1]
    assert priced.energy_mwh == 1


def test_step_rules_s2_s7_charging_then_parking():
    """S7: TIME 1.00/h and PARKING 2.00/h, step 10 min: 21 min charging + 16 min parking →
    charging stays 21, parking 20 → 0.35 + 0.6667 = 1.0167."""
    t = tariff(element(comp("TIME", "1.00", step=600), comp("PARKING_TIME", "2.00", step=600)))
    r = row(session(t, "2024-06-03T10:00", ("CHARGING", 21, 5), ("PARKING", 16)))
    assert r["billed_charging_time_h"] == "0.3500"
    assert r["billed_parking_time_h"] == "0.3333"
    assert r["total_cost_excl_vat"] == "1.0167"
    combined = row(
        session(t, "2024-06-03T10:00", ("CHARGING", 21, 5), ("PARKING", 16)),
        PricingPolicy(time_step_rounding=TimeStepRounding.COMBINED),
    )
    # 37 min together → 40 min; the 3 extra minutes are billed as parking
    assert combined["billed_parking_time_h"] == "0.3167"


def test_step_s6_energy_total_rounded_with_last_step_and_price():
    """0.20/kWh before 17:00 and 0.27 after, step 500 Wh; 4.3 + 1.1 = 5.4 → 5.5 kWh; the extra
    0.1 kWh is billed at 0.27: 0.86 + 0.297 + 0.027 = 1.184."""
    t = tariff(
        element(comp("ENERGY", "0.20", step=500), start_time_min=0, end_time_min=17 * 60),
        element(comp("ENERGY", "0.27", step=500)),
    )
    r = row(session(t, "2024-06-03T16:00", ("CHARGING", 60, "4.3"), ("CHARGING", 30, "1.1")))
    assert r["billed_energy_kwh"] == "5.5000"
    assert r["total_cost_excl_vat"] == "1.1840"


def test_exact_multiple_is_already_rounded_unless_policy_says_otherwise():
    t = tariff(element(comp("TIME", "6.00", step=600)))
    s = session(t, "2024-06-03T10:00", ("CHARGING", 30, 1))
    assert row(s)["billed_charging_time_h"] == "0.5000"
    assert row(s, PricingPolicy(step_exact_multiple=False))["billed_charging_time_h"] == "0.6667"


def test_step_size_zero_means_no_rounding():
    t = tariff(element(comp("PARKING_TIME", "6.00", step=0)))
    assert row(session(t, "2024-06-03T10:00", ("PARKING", 7)))["billed_parking_time_h"] == "0.1167"


def test_unpriced_time_is_not_rounded_and_not_counted():
    """Parking priced only before 20:00 (step 15 min); 8 paid + 12 free minutes → 15 min billed."""
    t = tariff(
        element(comp("PARKING_TIME", "1.00", step=900), start_time_min=17 * 60, end_time_min=20 * 60),
        element(comp("TIME", "2.40", step=900), start_time_min=20 * 60, end_time_min=1440),
    )
    r = row(session(t, "2024-06-03T19:52", ("PARKING", 20)))
    assert r["parking_cost_excl_vat"] == "0.2500"
    assert r["billed_parking_time_h"] == "0.4500"  # 20 measured + 7 rounding minutes = 27


def test_flat_per_distinct_component_vs_once_per_session():
    """Reservation fee 2.00 then start fee 0.50: both by default, only the first with once_per_session."""
    t = tariff(
        element(comp("FLAT", "2.00"), reservation="RESERVATION"),
        element(comp("FLAT", "0.50"), comp("ENERGY", "0.25")),
    )
    s = session(t, "2024-06-03T10:00", ("RESERVATION", 13), ("CHARGING", 60, 20))
    r = row(s)
    assert (r["reservation_cost_excl_vat"], r["fixed_cost_excl_vat"]) == ("2.0000", "0.5000")
    once = row(s, PricingPolicy(flat_fee=FlatFee.ONCE_PER_SESSION))
    assert (once["reservation_cost_excl_vat"], once["fixed_cost_excl_vat"]) == ("2.0000", "0.0000")


def test_expired_reservation_time_prefers_expires_element_and_skips_start_fee():
    t = tariff(
        element(comp("TIME", "3.00", step=600), reservation="RESERVATION"),
        element(comp("TIME", "6.00", step=600), reservation="RESERVATION_EXPIRES"),
        element(comp("FLAT", "0.50"), comp("ENERGY", "0.25")),
    )
    r = row(session(t, "2024-06-03T10:00", ("RESERVATION", 90), expired=True))
    assert r["total_cost_excl_vat"] == "9.0000"
    used = row(session(t, "2024-06-03T10:00", ("RESERVATION", 22), ("CHARGING", 60, 20)))
    assert used["total_cost_excl_vat"] == "7.0000"  # 30 min x 3.00 + 0.50 + 5.00


def test_step_rounding_scope_session_rounds_the_whole_kind_at_the_last_priced_rate():
    """As above with ``step_rounding_scope=session`` (the ocpi-tariffs reading): all 20 parking
    minutes round up to 30; the 10 added minutes are billed at 1.00/h: (8 + 10) min → 0.30."""
    t = tariff(
        element(comp("PARKING_TIME", "1.00", step=900), start_time_min=17 * 60, end_time_min=20 * 60),
        element(comp("TIME", "2.40", step=900), start_time_min=20 * 60, end_time_min=1440),
    )
    policy = PricingPolicy(step_rounding_scope=StepRoundingScope.SESSION)
    r = row(session(t, "2024-06-03T19:52", ("PARKING", 20)), policy)
    assert r["parking_cost_excl_vat"] == "0.3000"
    assert r["billed_parking_time_h"] == "0.5000"  # 20 measured + 10 rounding minutes
    assert PricingPolicy.from_pairs(["step_rounding_scope=session"]) == policy


def test_a_free_session_is_0_incl_vat_even_when_vat_is_unknown():
    """2.1.1 free-of-charge: nothing to pay is 0 incl. VAT; the categories keep unknown VAT."""
    old = tariff(element(comp("ENERGY", "0.00")), tax=TaxIncluded.UNKNOWN, version="2.1.1")
    r = row(session(old, "2024-06-03T10:00", ("CHARGING", 60, 20)))
    assert (r["total_cost_excl_vat"], r["total_cost_incl_vat"]) == ("0.0000", "0.0000")
    assert r["energy_cost_incl_vat"] is None


def test_vat_per_component_and_2_1_1_unknown_vat():
    t = tariff(element(comp("FLAT", "2.50", "15"), comp("ENERGY", "0.25", "10")))
    r = row(session(t, "2024-06-03T10:00", ("CHARGING", 60, 20)))
    assert (r["total_cost_excl_vat"], r["total_cost_incl_vat"]) == ("7.5000", "8.3750")
    old = tariff(element(comp("ENERGY", "0.25")), tax=TaxIncluded.UNKNOWN, version="2.1.1")
    r = row(session(old, "2024-06-03T10:00", ("CHARGING", 60, 20)))
    assert r["total_cost_excl_vat"] == "5.0000"
    assert r["total_cost_incl_vat"] is None and r["energy_cost_incl_vat"] is None


def test_no_vat_field_means_no_vat_in_2_2_1():
    t = tariff(element(comp("ENERGY", "0.25")))
    r = row(session(t, "2024-06-03T10:00", ("CHARGING", 60, 20)))
    assert r["total_cost_incl_vat"] == "5.0000"


def test_2_3_0_tax_included_yes_derives_before_taxes():
    t = tariff(element(comp("TIME", "2.40", "20")), tax=TaxIncluded.YES, version="2.3.0")
    r = row(session(t, "2024-06-03T10:00", ("CHARGING", 60, 1)))
    assert (r["total_cost_excl_vat"], r["total_cost_incl_vat"]) == ("2.0000", "2.4000")
    assert r["taxes"] == [{"name": "VAT", "percentage": "20", "amount": "0.4000"}]
    na = tariff(element(comp("TIME", "2.10")), tax=TaxIncluded.YES, version="2.3.0")
    r = row(session(na, "2024-06-03T10:00", ("CHARGING", 150, 1)))
    assert (r["total_cost_excl_vat"], r["total_cost_incl_vat"]) == (None, "5.2500")
    us = tariff(element(comp("TIME", "2.00")), tax=TaxIncluded.NO, version="2.3.0")
    r = row(session(us, "2024-06-03T10:00", ("CHARGING", 150, 1)))
    assert (r["total_cost_excl_vat"], r["total_cost_incl_vat"]) == ("5.0000", None)


def test_min_and_max_clamp_pre_and_post_tax_separately():
    """T06: 0.25/kWh (10 %) + 0.50 start (20 %), max 10.00 / 11.00. 50 kWh: 13.00 → 10.00 and
    14.35 → 11.00; 30 kWh: 8.00 / 8.85 untouched."""
    t = tariff(
        element(comp("FLAT", "0.50", "20"), comp("ENERGY", "0.25", "10")), max_price=("10.00", "11.00")
    )
    r = row(session(t, "2024-06-03T10:00", ("CHARGING", 300, 50)))
    assert (r["total_cost_excl_vat"], r["total_cost_incl_vat"], r["min_max_applied"]) == (
        "10.0000",
        "11.0000",
        "max",
    )
    assert r["energy_cost_excl_vat"] == "12.5000"  # subtotals stay unclamped (digest §5.15)
    r = row(session(t, "2024-06-03T10:00", ("CHARGING", 300, 30)))
    assert (r["total_cost_excl_vat"], r["total_cost_incl_vat"], r["min_max_applied"]) == (
        "8.0000",
        "8.8500",
        None,
    )


def test_clamped_2_3_0_tax_lines_add_up_to_the_clamped_difference():
    t = tariff(
        element(comp("FLAT", "0.50", "20"), comp("ENERGY", "0.25", "10")),
        max_price=("10.00", "11.00"),
        version="2.3.0",
    )
    p = price_session(session(t, "2024-06-03T10:00", ("CHARGING", 300, 50)))
    assert sum(a for _, _, a in p.taxes) == Fraction(1)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (MissingMeasurement.DERIVE, "2.0000"),
        (MissingMeasurement.MATCH, "1.0000"),
        (MissingMeasurement.NO_MATCH, "2.0000"),
    ],
)
def test_missing_power_measurement_policy(policy, expected):
    """max_power 16 kW at 0.10/kWh, else 0.20. 10 kWh in 30 min = 20 kW average (derive: no match)."""
    t = tariff(element(comp("ENERGY", "0.10"), max_power_w=16_000), element(comp("ENERGY", "0.20")))
    r = row(session(t, "2024-06-03T10:00", ("CHARGING", 30, 10)), PricingPolicy(missing_measurement=policy))
    assert r["total_cost_excl_vat"] == expected


def test_measured_power_beats_the_policy():
    t = tariff(element(comp("ENERGY", "0.10"), max_power_w=16_000), element(comp("ENERGY", "0.20")))
    s = session(t, "2024-06-03T10:00", ("CHARGING", 30, 10, {"max_power_w": 11_000, "min_power_w": 11_000}))
    assert row(s)["total_cost_excl_vat"] == "1.0000"


def test_start_equal_end_time_never_matches():
    t = tariff(
        element(comp("TIME", "9.00"), start_time_min=600, end_time_min=600), element(comp("TIME", "1.00"))
    )
    assert row(session(t, "2024-06-03T09:00", ("CHARGING", 120, 1)))["total_cost_excl_vat"] == "2.0000"


def test_dates_are_local_start_inclusive_end_exclusive():
    from datetime import date

    t = tariff(
        element(comp("TIME", "5.00"), start_date=date(2024, 6, 4), end_date=date(2024, 6, 5)),
        element(comp("TIME", "1.00")),
    )
    # 2024-06-03 23:00 → 2024-06-05 01:00 local: 1 h + 24 h x 5 + 1 h
    r = row(session(t, "2024-06-03T23:00", ("CHARGING", 26 * 60, 1)))
    assert r["total_cost_excl_vat"] == "122.0000"


def test_local_ms_helper_round_trips():
    assert local_ms("2024-01-01T01:00", "Europe/Berlin") == 1704067200000
