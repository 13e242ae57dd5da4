"""Reported totals: what the CPO billed, computed by the pricing kernel (one implementation, both layouts)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from benchmarks.workload.jsontext import dumps, loads
from benchmarks.workload.plan import CONFLICT, CREDIT, DUP, MALFORMED, ORIG, Plan
from benchmarks.workload.sessions import Block
from benchmarks.workload.sinks import FlatReported, flat_ids, flat_table
from benchmarks.workload.specs import VERSIONS
from benchmarks.workload.world import World
from pricing.batch import as_records, price_records
from pricing.compile import compile_tariffs
from pricing.flat import split_flat
from pricing.kernel import price_table
from pricing.ocpi import parse_tariff
from pricing.periods import from_flat
from pricing.policy import PeriodBoundaries, PricingPolicy
from pricing.sessions import TariffSet

# ---- the engine pass ----------------------------------------------------------------------------


@dataclass
class Engine:
    """Prices generated CDR dicts with the kernel (right and wrong tariffs, as parsed from their JSON).

    The rows are those of :func:`pricing.batch.price_records`; ``pricer="reference"`` prices each CDR
    with the reference pricer instead (the tests compare the two)."""

    world: World
    right: Any = None
    wrong: Any = None
    pricer: str = "kernel"  # the tests compare with "reference", the per-record pricer

    def __post_init__(self) -> None:
        def tset(tariffs: dict[tuple[int, int, str], dict[str, Any]]) -> Any:
            out = []
            for key in sorted(tariffs):
                tariff, _ = parse_tariff(loads(dumps(tariffs[key])), key[2])
                out.append(tariff)
            return TariffSet.of(out)

        self.right = tset(self.world.tariffs)
        self.wrong = tset(self.world.wrong_tariffs)

    def price(
        self, recs: list[dict[str, Any]], versions: list[str], start_policy: list[bool], wrong: list[bool]
    ) -> list[dict[str, Any]]:
        groups: dict[tuple[str, bool, bool], list[int]] = {}
        for i, key in enumerate(zip(versions, start_policy, wrong, strict=True)):
            groups.setdefault(key, []).append(i)
        out: list[dict[str, Any] | None] = [None] * len(recs)
        for (version, start, bad), idx in sorted(groups.items()):
            policy = PricingPolicy(period_boundaries=PeriodBoundaries.START) if start else PricingPolicy()
            res = price_records(
                as_records([loads(dumps(recs[i])) for i in idx]),  # what a reader of the line gets
                self.wrong if bad else self.right,
                policy,
                version=version,
                engine=self.pricer,
            )
            if res.rejects:
                f = res.rejects[0]
                raise RuntimeError(
                    f"generated CDR {f.record_id} was rejected by the engine: {f.code} {f.message}"
                )
            for row in res.rows:
                out[idx[row["line"] - 1]] = row
        assert all(r is not None for r in out)
        return out  # type: ignore[return-value]


# ---- reported totals of a flat block, on columns ------------------------------------------------


def half_up(num: np.ndarray, den: int) -> np.ndarray:
    """``num / den`` rounded half away from zero (as ``ROUND_HALF_UP`` on a Decimal), exact integers."""
    q = (np.abs(num) * 2 + den) // (2 * den)
    return np.where(num < 0, -q, q)


def flat_reported(engine: Engine, world: World, blk: Block, plan: Plan, width: int) -> FlatReported:
    """What :func:`benchmarks.workload.render.render_block` reports for each record, on columns.

    Every (session, version) is priced by the kernel from its clean flat rows — a malformed record
    reports its session's clean totals — with the right tariffs, and once more with the wrong ones
    where the original was overcharged; straddling sessions with ``period_boundaries=start``. The
    billed price (the original, its resends and its credit use the wrong one) is rounded half-up to
    cents as :func:`benchmarks.workload.render.fill_totals` does; credits negate it, a conflicting
    resend adds its delta.
    """
    n = len(plan)
    kind = plan.kind
    wrong = plan.over & np.isin(kind, (ORIG, DUP, CONFLICT, CREDIT))
    excl = np.zeros(n, np.int64)
    incl = np.zeros(n, np.int64)
    has_incl = np.zeros(n, bool)
    how = np.zeros(n, np.int64)
    sloppy = blk.sloppy[plan.i]
    for bad in (False, True):
        for start in (False, True):
            mine = np.nonzero((wrong == bad) & (sloppy == start))[0]
            if len(mine):
                part = _price_flat(engine, world, blk, plan, mine, bad, start, width)
                excl[mine], incl[mine], has_incl[mine], how[mine] = part
    credit = kind == CREDIT
    excl, incl = np.where(credit, -excl, excl), np.where(credit, -incl, incl)
    conflict = kind == CONFLICT
    vat_e2 = np.array([int(Decimal(c.vat) * 100) for c in world.cpos], np.int64)[blk.cpo[plan.i]]
    excl = excl + np.where(conflict, plan.delta_cents, 0)
    incl = incl + np.where(conflict, half_up(plan.delta_cents * (10_000 + vat_e2), 10_000), 0)
    minmax = np.nonzero((how != 0) & (kind != MALFORMED))[0].tolist()
    return FlatReported(excl, incl, np.ones(n, bool), has_incl, minmax)


def _price_flat(
    engine: Engine,
    world: World,
    blk: Block,
    plan: Plan,
    mine: np.ndarray,
    wrong: bool,
    start: bool,
    width: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(excl cents, incl cents, incl known, min/max applied) of the records ``mine``, priced clean
    (each session and version once: its resends and credit share the price)."""
    _, first, back = np.unique(plan.i[mine] * 3 + plan.render[mine], return_index=True, return_inverse=True)
    one = mine[first]
    clean = Plan(
        send=plan.send[one],
        i=plan.i[one],
        kind=np.full(len(one), ORIG, np.int64),
        malformed=np.full(len(one), -1, np.int64),
        over=np.zeros(len(one), bool),
        delta_cents=np.zeros(len(one), np.int64),
        version=plan.version[one],
        render=plan.render[one],
    )
    table = flat_table(world, blk, clean, flat_ids(world, blk, clean, width), None)
    policy = PricingPolicy(period_boundaries=PeriodBoundaries.START) if start else PricingPolicy()
    fr = split_flat(table)
    pt, rejects, rec_idx = from_flat(fr, engine.wrong if wrong else engine.right, policy)
    if rejects:
        rec, (code, message, _) = next(iter(rejects.items()))
        raise RuntimeError(f"generated record {rec} was rejected by the kernel: {code} {message}")
    res = price_table(pt, policy, compile_tariffs(pt.tariffs, pt.zones, pt.group_ranges()))
    m = fr.n_records
    assert len(rec_idx) == m
    excl, incl = np.zeros(m, np.int64), np.zeros(m, np.int64)
    excl[rec_idx] = half_up(res["total_excl_e4"], 100)
    incl[rec_idx] = half_up(res["total_incl_e4"], 100)
    has_incl = np.zeros(m, bool)
    has_incl[rec_idx] = ~res["total_incl_null"]
    how = np.zeros(m, np.int64)
    how[rec_idx] = res["min_max"]
    # 2.3.0: incl = excl + the tax lines, each rounded to cents (2.1.1: VAT unknown, no incl)
    taxes = np.zeros(pt.n_sessions, np.int64)
    np.add.at(taxes, res["tax_sess"], half_up(res["tax_amount_e4"], 100))
    v230 = np.zeros(m, np.int64)
    v230[rec_idx] = taxes
    is211, is230 = clean.render == VERSIONS.index("2.1.1"), clean.render == VERSIONS.index("2.3.0")
    incl = np.where(is230, excl + v230, incl)
    has_incl = ~is211 & (has_incl | is230)
    return excl[back], incl[back], has_incl[back], how[back]
