"""The kernel equals the reference: every column of every row, the integer billed quantities and
the ``flag`` policy's straddling periods, on random tariffs × sessions × policies."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from unittest import mock

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import pricing.kernel as K
import pricing.kernel_money as KM
from pricing.compile import compile_tariffs
from pricing.kernel import price_table
from pricing.model import Phase
from pricing.periods import from_sessions
from pricing.policy import PricingPolicy, StepRoundingScope
from pricing.reference import ENERGY, PARKING, RESERVATION, TIME, price_session
from pricing.report import result_row, result_rows
from tests.property.strategies import batches, policies


def assert_same(sessions, policy: PricingPolicy) -> None:
    pt = from_sessions(sessions)
    ct = compile_tariffs(pt.tariffs, pt.zones, pt.group_ranges())
    res = price_table(pt, policy, ct, chunk=3)  # small chunks: exercise the chunk seams too
    rows = result_rows(res, pt, ct)
    straddles: dict[int, list[int]] = {}
    for s, src in zip(res.get("straddle_sess", []), res.get("straddle_src", []), strict=True):
        straddles.setdefault(int(s), []).append(int(src))
    for i, session in enumerate(sessions):
        priced = price_session(session, policy)
        expected = result_row(priced)
        assert rows[i] == expected, {k: (rows[i][k], v) for k, v in expected.items() if rows[i][k] != v}
        quantities = {
            "energy_mwh": priced.energy_mwh,
            "extra_energy_mwh": priced.extra(ENERGY),
            "charging_ms": priced.measured(Phase.CHARGING),
            "parking_ms": priced.measured(Phase.PARKING),
            "reservation_ms": priced.measured(Phase.RESERVATION),
            "extra_time_ms": priced.extra(TIME),
            "extra_parking_ms": priced.extra(PARKING),
            "extra_reservation_ms": priced.extra(RESERVATION),
        }
        assert {k: int(res[k][i]) for k in quantities} == quantities
        assert tuple(straddles.get(i, [])) == priced.straddling


def all_big(ct, present, col_cls):
    lam, _ = ORIGINAL_DENOMINATORS(ct, present, col_cls)
    return lam, np.ones(present.shape[1], bool)  # present: (columns, sessions)


ORIGINAL_DENOMINATORS = KM.denominators
ARITHMETIC = {  # (module, name): value patched for the run
    "int64": {},
    "two_limbs": {(K, "ONE_LIMB_BELOW"): 0},  # Σ price × quantity in two int64 limbs
    "python_ints": {(KM, "denominators"): all_big},  # the money steps on numpy object arrays
}


@given(batches(), policies, st.sampled_from(["int64", "int64", "two_limbs", "python_ints"]))
def test_kernel_equals_reference(sessions, policy, arithmetic):
    with ExitStack() as stack:
        for (module, name), value in ARITHMETIC[arithmetic].items():
            stack.enter_context(mock.patch.object(module, name, value))
        assert_same(sessions, policy)


@given(batches(), policies.map(lambda p: replace(p, step_rounding_scope=StepRoundingScope.SESSION)))
def test_kernel_equals_reference_rounding_the_whole_session(sessions, policy):
    """``step_rounding_scope=session`` on every example (the mixed strategy draws it half the time)."""
    assert_same(sessions, policy)
