"""The vectorized kernel: the reference's rule scenarios under every policy, exact int64 money
with explicit overflow errors, the Python-int path for unusual VAT denominators, chunk seams and
threads."""

from __future__ import annotations

import inspect
import itertools
from collections import Counter
from decimal import Decimal

import numpy as np
import pytest
import test_reference_rules as rules
from builders import comp, element, session, tariff

import pricing.batch
import pricing.kernel as K
import pricing.kernel_money as KM
from pricing.batch import kernel_outcomes
from pricing.compile import compile_tariffs
from pricing.errors import PricingOverflowError, UncompilableTariffError
from pricing.kernel import price_table
from pricing.model import Period, Phase, Session, TaxIncluded
from pricing.periods import from_sessions
from pricing.policy import FlatFee, MissingMeasurement, PeriodBoundaries, PricingPolicy, TimeStepRounding
from pricing.reference import price_session
from pricing.report import price_sessions, price_sessions_detailed, result_row, result_rows

ALL_POLICIES = [
    PricingPolicy(
        period_boundaries=pb,
        flat_fee=ff,
        missing_measurement=mm,
        time_step_rounding=ts,
        step_exact_multiple=ex,
    )
    for pb, ff, mm, ts, ex in itertools.product(
        PeriodBoundaries, FlatFee, MissingMeasurement, TimeStepRounding, (True, False)
    )
]


def rule_sessions() -> list[Session]:
    """Every session the reference rule tests price (captured by replacing their ``row``)."""
    seen: list[Session] = []
    original = rules.row

    def capture(s, policy=None):
        seen.append(s)
        return original(s, policy)

    rules.row = capture
    try:
        for name, fn in sorted(vars(rules).items()):
            if not name.startswith("test_") or not callable(fn):
                continue
            if inspect.signature(fn).parameters:
                fn(MissingMeasurement.MATCH, "1.0000")
            else:
                fn()
    finally:
        rules.row = original
    return seen


SCENARIOS = rule_sessions()


def reference_rows(sessions, policy):
    return [result_row(price_session(s, policy)) for s in sessions]


@pytest.mark.parametrize("policy", ALL_POLICIES, ids=lambda p: "-".join(str(v) for v in p.as_dict().values()))
def test_rule_scenarios_equal_reference_under_every_policy(policy):
    assert len(SCENARIOS) > 30
    rows, straddles = price_sessions_detailed(SCENARIOS, policy)
    assert rows == reference_rows(SCENARIOS, policy)
    assert straddles == [price_session(s, policy).straddling for s in SCENARIOS]


def test_two_limb_sums_equal_one_limb_sums(monkeypatch):
    policy = PricingPolicy(time_step_rounding=TimeStepRounding.COMBINED)
    expected = price_sessions(SCENARIOS, policy)
    monkeypatch.setattr(K, "ONE_LIMB_BELOW", 0)
    assert price_sessions(SCENARIOS, policy) == expected == reference_rows(SCENARIOS, policy)


def test_chunks_and_threads_do_not_change_results():
    pt = from_sessions(SCENARIOS * 3)
    ct = compile_tariffs(pt.tariffs, pt.zones, pt.group_ranges())
    policy = PricingPolicy(period_boundaries=PeriodBoundaries.FLAG)
    whole = price_table(pt, policy, ct)
    for chunk, workers in ((1, 1), (7, 2), (10_000, 2)):
        parts = price_table(pt, policy, ct, workers=workers, chunk=chunk)
        assert set(parts) == set(whole)
        for name in whole:
            assert np.array_equal(parts[name], whole[name]), name


def test_empty_batch_and_session_without_periods():
    assert price_sessions([]) == []
    t = tariff(element(comp("FLAT", "1.50", "20")), min_price=("2.00", None), version="2.3.0")
    empty = Session("E", "EUR", "Europe/Berlin", (t,), (), 1_717_400_000_000)
    assert price_sessions([empty]) == reference_rows([empty], PricingPolicy())


def test_huge_price_raises_instead_of_wrapping():
    t = tariff(element(comp("ENERGY", "900000000000")))  # 9e11 per kWh: price_e6 × 18 > int64
    s = session(t, "2024-06-03T10:00", ("CHARGING", 60, 10))
    with pytest.raises(PricingOverflowError, match="int64"):
        price_sessions([s])


def test_huge_quantity_raises_instead_of_wrapping():
    """1e12 kWh at 1000/kWh: price_e6 · F · mWh = 1e9 · 18 · 1e18 leaves int64."""
    t = tariff(element(comp("ENERGY", "1000")))
    s = Session(
        "S",
        "EUR",
        "UTC",
        (t,),
        (Period(1_717_400_000_000, 3_600_000, Phase.CHARGING, 10**18),),
        1_717_400_000_000,
    )
    with pytest.raises(PricingOverflowError):
        price_sessions([s])
    # the batch does not stop: such a block is priced by the (unbounded) reference instead
    fallbacks: Counter[str] = Counter()
    [(row, _straddling)] = kernel_outcomes([s], PricingPolicy(), fallbacks=fallbacks)
    assert row == result_row(price_session(s)) and row["total_cost_excl_vat"] == "1000000000000000.0000"
    assert fallbacks == {"kernel_refused: overflow": 1}  # and it is counted, with its reason


def test_only_the_sessions_the_kernel_refuses_leave_it_whatever_the_block():
    """One session that overflows among others: the block is halved down to it, so it alone goes
    to the reference and is counted — the same count whether the sessions come as one block or in
    any grouping (meta.json of one process = of spans on several)."""
    t = tariff(element(comp("ENERGY", "1000")))
    good = [session(t, "2024-06-03T10:00", ("CHARGING", 60, 10 + k)) for k in range(7)]
    period = Period(1_717_400_000_000, 3_600_000, Phase.CHARGING, 10**18)
    huge = Session("S", "EUR", "UTC", (t,), (period,), 1_717_400_000_000)
    sessions = [*good[:3], huge, *good[3:]]
    for parts in ([sessions], [sessions[:5], sessions[5:]], [[s] for s in sessions]):
        fallbacks: Counter[str] = Counter()
        outcomes = [o for part in parts for o in kernel_outcomes(part, PricingPolicy(), fallbacks=fallbacks)]
        assert [o[0] for o in outcomes] == [result_row(price_session(s)) for s in sessions]
        assert fallbacks == {"kernel_refused: overflow": 1}


def test_uncompilable_tariff_is_a_declared_refusal_counted_per_session():
    """A price with more decimals than the kernel's fixed point: the reference prices the block."""
    t = tariff(element(comp("ENERGY", "0.1234567")))
    sessions = [session(t, "2024-06-03T10:00", ("CHARGING", 60, 10)) for _ in range(3)]
    with pytest.raises(UncompilableTariffError):
        price_sessions(sessions)
    fallbacks: Counter[str] = Counter()
    outcomes = kernel_outcomes(sessions, PricingPolicy(), fallbacks=fallbacks)
    assert [o[0] for o in outcomes] == [result_row(price_session(s)) for s in sessions]
    assert fallbacks == {"kernel_refused: uncompilable tariff": 3}


def test_a_block_whose_tariff_does_not_compile_is_not_halved(monkeypatch):
    """Every session priced with such a tariff is refused alone: the block goes to the reference
    after one kernel attempt (halving it would try the kernel once per session)."""
    t = tariff(element(comp("ENERGY", "0.1234567")))
    sessions = [session(t, "2024-06-03T10:00", ("CHARGING", 60, 10 + k)) for k in range(16)]
    calls = []
    real = pricing.batch.price_sessions_detailed
    monkeypatch.setattr(
        pricing.batch, "price_sessions_detailed", lambda b, *a: calls.append(len(b)) or real(b, *a)
    )
    fallbacks: Counter[str] = Counter()
    kernel_outcomes(sessions, PricingPolicy(), fallbacks=fallbacks)
    assert calls == [16] and fallbacks == {"kernel_refused: uncompilable tariff": 16}


def test_a_bug_in_the_kernel_propagates_instead_of_falling_back(monkeypatch):
    """Only declared refusals fall back: any other exception is an error, never a silent re-price."""

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(pricing.batch, "price_sessions_detailed", broken)
    t = tariff(element(comp("ENERGY", "0.30")))
    with pytest.raises(ZeroDivisionError):
        kernel_outcomes([session(t, "2024-06-03T10:00", ("CHARGING", 60, 10))], PricingPolicy())


def test_large_but_representable_amounts_stay_exact():
    """Near the edge but inside int64: 9,000 kWh at 999.999999/kWh with 19.99 % VAT on YES."""
    t = tariff(
        element(comp("ENERGY", "999.999999", "19.99", step=1), comp("FLAT", "123456.789012", "7.7")),
        tax=TaxIncluded.YES,
        version="2.3.0",
        max_price=("1000000", None),
    )
    s = session(t, "2024-06-03T10:00", ("CHARGING", 600, 9000))
    assert price_sessions([s]) == reference_rows([s], PricingPolicy())


def test_unusual_vat_rates_take_the_python_int_path():
    """tax_included YES with rates 19.99 / 7.77 / 33.33 / 13.37: lcm(1e4, 11999, 10777, 13333, 11337)
    × 1.8e9 leaves int64, so these sessions run the same money code on Python ints."""
    t = tariff(
        element(
            comp("FLAT", "1.11", "19.99"),
            comp("ENERGY", "0.271", "7.77"),
            comp("TIME", "2.05", "33.33"),
            comp("PARKING_TIME", "0.99", "13.37"),
        ),
        tax=TaxIncluded.YES,
        version="2.3.0",
        min_price=("25.00", "30.00"),
    )
    s = session(t, "2024-06-03T10:00", ("CHARGING", 97, "13.333"), ("PARKING", 31))
    plain = session(tariff(element(comp("ENERGY", "0.25", "21"))), "2024-06-03T10:00", ("CHARGING", 60, 20))
    pt = from_sessions([plain, s])
    ct = compile_tariffs(pt.tariffs, pt.zones, pt.group_ranges())
    present = np.ones((ct.n_classes, 2), bool)  # (columns, sessions)
    present[:, 0] = False
    assert KM.denominators(ct, present, np.arange(ct.n_classes))[1].tolist() == [False, True]
    rows = result_rows(price_table(pt, PricingPolicy(), ct), pt, ct)
    assert rows == reference_rows([plain, s], PricingPolicy())
    assert rows[1]["min_max_applied"] == "min" and len(rows[1]["taxes"]) == 4


def test_half_up_rounding_of_exact_ties():
    """0.00005 → 0.0001 (half-up), 0.00004999… → 0.0000: the tie is decided on exact values."""
    t = tariff(element(comp("ENERGY", "0.05", step=0)))  # 1 mWh = 5e-8; 1000 mWh = 0.00005
    tie = session(t, "2024-06-03T10:00", ("CHARGING", 1, Decimal("0.001")))
    below = session(t, "2024-06-03T10:00", ("CHARGING", 1, Decimal("0.000999")))
    rows = price_sessions([tie, below])
    assert [r["energy_cost_excl_vat"] for r in rows] == ["0.0001", "0.0000"]
    assert rows == reference_rows([tie, below], PricingPolicy())


def test_a_session_years_from_the_others_costs_the_calendar_its_own_days_only():
    """One session of year 3 among 2026's, a tariff with a daily window: the calendar covers the
    stretches of days the sessions use (each ±1 day), not the 2,000 years between (15 s before),
    and the kernel still equals the reference on both."""
    t = tariff(
        element(comp("ENERGY", "0.30"), start_time_min=8 * 60, end_time_min=18 * 60),
        element(comp("ENERGY", "0.20")),
    )
    sessions = [session(t, f"2026-10-0{d}T07:30", ("CHARGING", 90, 10)) for d in range(1, 4)]
    sessions.append(session(t, "0003-05-04T17:30", ("CHARGING", 60, 5)))
    pt = from_sessions(sessions)
    [(lo, hi, stretches)] = pt.group_ranges().values()
    assert len(stretches) == 2 and (stretches[0][0], stretches[-1][1]) == (lo, hi)
    ct = compile_tariffs(pt.tariffs, pt.zones, pt.group_ranges())
    assert len(ct.state_key) < 40  # two boundaries a day over ~5 + 3 days (and a DST change)
    assert price_sessions(sessions) == [result_row(price_session(s)) for s in sessions]
