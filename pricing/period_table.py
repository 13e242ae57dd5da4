"""The columnar periods table: what the kernel prices (built by :mod:`pricing.periods`).

Its own module so that :mod:`pricing.kernel` depends on the table's shape only, not on the
builders (canonical sessions, the flat layout) that fill it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pricing.model import Tariff

GAP_MS = 7 * 86_400_000  # periods of one (tariff, zone) further apart start a new calendar stretch
SPREAD_MS = 92 * 86_400_000  # a group spread over more than this is looked at for stretches


@dataclass
class PeriodTable:
    """Sessions and their periods as columns.

    Per session (``n_s``): ``s_start`` (ms), ``s_expired`` (reservation expired), ``s_primary``
    (index into ``tariffs`` of ``Session.tariffs[0]``), ``s_zone`` (index into ``zones``),
    ``s_taxes_known`` (every tariff of the session knows its taxes), ``s_off`` (``n_s + 1``
    offsets into the period columns).

    Per period (``n_p``): ``sess``, ``start`` (ms), ``dur`` (ms), ``phase`` (RES/CHG/PARK codes of
    :mod:`pricing.compile`), ``energy`` (mWh), ``tariff`` (batch-wide index), ``slot`` (the
    period's ``tariff_idx`` inside its session: step rounding and FLAT fees tell tariffs apart by
    slot), ``src`` (CDR charging-period index), ``meas`` ``[4, n_p]`` (min/max power W, min/max
    current mA) with ``meas_has`` (False = not measured).
    """

    tariffs: tuple[Tariff, ...]
    zones: tuple[str, ...]
    s_start: np.ndarray
    s_expired: np.ndarray
    s_primary: np.ndarray
    s_zone: np.ndarray
    s_taxes_known: np.ndarray
    s_off: np.ndarray
    sess: np.ndarray
    start: np.ndarray
    dur: np.ndarray
    phase: np.ndarray
    energy: np.ndarray
    tariff: np.ndarray
    slot: np.ndarray
    src: np.ndarray
    meas: np.ndarray
    meas_has: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_sessions(self) -> int:
        return len(self.s_start)

    @property
    def n_periods(self) -> int:
        return len(self.start)

    def chunk(self, lo: int, hi: int) -> PeriodTable:
        """Sessions ``lo:hi`` (and their periods), session indices rebased to 0."""
        a, b = int(self.s_off[lo]), int(self.s_off[hi])
        return PeriodTable(
            tariffs=self.tariffs,
            zones=self.zones,
            s_start=self.s_start[lo:hi],
            s_expired=self.s_expired[lo:hi],
            s_primary=self.s_primary[lo:hi],
            s_zone=self.s_zone[lo:hi],
            s_taxes_known=self.s_taxes_known[lo:hi],
            s_off=self.s_off[lo : hi + 1] - a,
            sess=self.sess[a:b] - lo,
            start=self.start[a:b],
            dur=self.dur[a:b],
            phase=self.phase[a:b],
            energy=self.energy[a:b],
            tariff=self.tariff[a:b],
            slot=self.slot[a:b],
            src=self.src[a:b],
            meas=self.meas[:, a:b],
            meas_has=self.meas_has[:, a:b],
        )

    def group_ranges(self) -> dict[tuple[int, int], tuple[int, int, list[tuple[int, int]]]]:
        """(tariff, zone) → (first start, last end, stretches) over the periods: what the calendar
        covers. The stretches are the periods' times merged where less than :data:`GAP_MS` apart,
        looked for in a group spread over more than :data:`SPREAD_MS` only (a month is one
        stretch), so a lone session years away from the others costs the calendar its own days,
        not every day between (a CDR of year 3 among 2026's: 15 s → none)."""
        if not self.n_periods:
            return {}
        n_z = max(len(self.zones), 1)
        code = self.tariff * n_z + self.s_zone[self.sess]
        end = self.start + np.maximum(self.dur, 0)
        order = np.argsort(code, kind="stable")
        code_s = code[order]
        first = np.flatnonzero(np.r_[True, code_s[1:] != code_s[:-1]])
        lo = np.minimum.reduceat(self.start[order], first)
        hi = np.maximum.reduceat(end[order], first)
        bounds = np.r_[first, len(order)].tolist()
        out: dict[tuple[int, int], tuple[int, int, list[tuple[int, int]]]] = {}
        for g, (c, a, b) in enumerate(zip(code_s[first].tolist(), lo.tolist(), hi.tolist(), strict=True)):
            stretches = [(a, b)]
            if b - a > SPREAD_MS:  # maybe apart: merge the periods' times in start order
                rows = order[bounds[g] : bounds[g + 1]]
                by_start = np.argsort(self.start[rows], kind="stable")
                s, reach = self.start[rows][by_start], np.maximum.accumulate(end[rows][by_start])
                new = np.flatnonzero(np.r_[True, s[1:] > reach[:-1] + GAP_MS])
                last = np.r_[new[1:] - 1, len(s) - 1]
                stretches = list(zip(s[new].tolist(), reach[last].tolist(), strict=True))
            out[(c // n_z, c % n_z)] = (a, b, stretches)
        return out
