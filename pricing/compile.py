"""Tariffs → columnar element tables and per (tariff, zone) boundary calendars for the kernel.

Everything here is computed once per batch (a few tariffs, a few zones, a date range) and is
read-only afterwards, so chunks priced on several threads share one :class:`Compiled`.

Codes shared with :mod:`pricing.kernel` and :mod:`pricing.periods`
-------------------------------------------------------------------
* phases: ``RES = 0``, ``CHG = 1``, ``PARK = 2``
* dimensions: ``D_ENERGY = 0``, ``D_TIME = 1``, ``D_PARKING = 2``, ``D_FLAT = 3``
* categories (output order of :data:`pricing.reference.CATEGORIES`): energy, time, parking,
  fixed, reservation = 0..4
* an element is a bit of a ``uint64`` mask (tariff order = bit order, at most 64 elements);
  element index ``NONE = 64`` means "no element prices this dimension".

Tables
------
* element restrictions, per (tariff, element slot): kWh / duration bounds become per-tariff sorted
  threshold lists plus, per bucket between thresholds, the mask of elements whose bounds hold;
  power / current limits stay per element (the kernel evaluates them per period, with the
  ``missing_measurement`` policy).
* ``allowed[t, phase, expired, s]``: elements eligible in that phase (the reservation
  restriction, reference ``element_order``) that price ``s`` = ENERGY, the phase's kind of time
  (TIME, or PARKING_TIME when parking) or FLAT; with at most 8 elements per tariff also a lookup
  table mask → chosen element.
* components, per (tariff, element 0..64) and for time also per phase: ``pf`` = price_e6 × F where
  F puts every cost on one denominator (``D0`` = 1.8e9, result unit 1e-4): F = 18 for ENERGY
  (mWh), 5 for TIME / PARKING_TIME (ms), 18_000_000 for FLAT; the step in mWh / ms, and the
  accumulator column (output category × tax class).
* tax classes: how a base amount becomes (excl, incl) — reference ``with_taxes`` — as two factor
  kinds (unknown / ×1 / ×num/den) and the VAT rate for 2.3.0 tax lines.
* calendar, per (tariff, zone): the UTC instants where the reference cuts periods (exactly
  ``reference.calendar_cuts``: every restriction clock time of every local day, under both DST
  readings, and every DST transition), and a *complete* set of instants where the time / day /
  date state can change, each carrying the mask of elements whose calendar restrictions hold
  from that instant on. The two sets differ: the reference does not cut at local midnight for a
  window without ``end_time`` (or without ``start_time``), yet the state changes there. The
  kernel cuts where the reference cuts and reads the state where the reference reads it (at each
  piece start), so it matches the reference in both cases. The rules themselves (local time,
  DST transitions, which restrictions hold) are :mod:`pricing.calendar`'s, shared with the
  reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

from pricing.calendar import (
    calendar_holds,
    clock_minutes,
    dst_transitions,
    local_date,
    local_time,
    state_minutes,
    wall_instants,
    zone,
)
from pricing.errors import PricingOverflowError, UncompilableTariffError
from pricing.model import Dimension, ReservationKind, Restrictions, Tariff, TaxIncluded
from pricing.units import INT64_MAX, MS_PER_SECOND, MWH_PER_WH

RES, CHG, PARK = 0, 1, 2
D_ENERGY, D_TIME, D_PARKING, D_FLAT = 0, 1, 2, 3
DIMENSIONS = (Dimension.ENERGY, Dimension.TIME, Dimension.PARKING_TIME, Dimension.FLAT)
C_ENERGY, C_TIME, C_PARKING, C_FIXED, C_RESERVATION = 0, 1, 2, 3, 4
N_CATEGORIES = 5
NONE = 64
MAX_ELEMENTS = 64
E1 = MAX_ELEMENTS + 1  # element slots of the component table (the last is NONE)
ALL = np.uint64(2**64 - 1)

D0 = 1_800_000_000  # lcm(1e8, 3.6e8, 100): one denominator for every base amount (unit 1e-4)
F_DIM = (18, 5, 5, 18_000_000)  # D0 / (1e12, 3.6e12, 3.6e12, 1e6) × 1e4 per dimension
VAT_ONE = 10_000  # 1 + vat/100 as (VAT_ONE + vat_e2) / VAT_ONE

# tax factor kinds: the amount is unknown, the base itself, or base × num / den
K_UNKNOWN, K_SAME, K_SCALED = 0, 1, 2

# which dimensions each phase can price (reference.PHASE_DIMENSIONS)
PHASE_ALLOWS = {
    RES: (D_TIME, D_FLAT),
    CHG: (D_ENERGY, D_TIME, D_FLAT),
    PARK: (D_PARKING, D_FLAT),
}
PAD = 1 << 62  # threshold padding: above any real value, and far from int64 overflow


def scaled(value: Decimal, places: int, what: str, tariff: Tariff) -> int:
    """``value × 10**places`` as an exact int, or a TariffError (the kernel's fixed point)."""
    q = value.scaleb(places)
    if q != q.to_integral_value():
        raise UncompilableTariffError(
            f"tariff {tariff.id!r}: {what} {value} has more than {places} decimal places. "
            "Hint: the kernel works in fixed point; price such a tariff with --engine reference"
        )
    return int(q)


# ---- tax classes --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaxClass:
    """How a base amount becomes (excl, incl): reference ``with_taxes`` for one component."""

    excl_kind: int
    incl_kind: int
    vat_e2: int  # -1: no VAT on the component

    @property
    def m(self) -> int:
        return VAT_ONE + self.vat_e2

    @property
    def tax_line(self) -> bool:
        """Whether its lines count in the 2.3.0 tax lines (reference ``tax_lines``)."""
        return self.vat_e2 >= 0 and self.excl_kind != K_UNKNOWN and self.incl_kind != K_UNKNOWN


def tax_class(tariff: Tariff, vat_e2: int | None) -> TaxClass:
    v = -1 if vat_e2 is None else vat_e2
    if tariff.tax_included is TaxIncluded.YES:
        return TaxClass(K_UNKNOWN if vat_e2 is None else K_SCALED, K_SAME, v)
    if not tariff.taxes_known:
        return TaxClass(K_SAME, K_UNKNOWN, -1)
    if tariff.tax_included is TaxIncluded.NOT_APPLICABLE:  # a rate that does not apply: no tax line
        return TaxClass(K_SAME, K_SAME, -1)
    if vat_e2 is None:
        return TaxClass(K_SAME, K_SAME, -1)
    return TaxClass(K_SAME, K_SCALED, v)


# ---- calendar (the reference's calendar_cuts, as tables; rules in pricing.calendar) ------------


def calendar_mask(tariff: Tariff, time_zone: str, instant_ms: int) -> int:
    """Bit j set where element j's time / date / weekday restrictions hold at the instant."""
    local = local_time(instant_ms, time_zone)
    mask = 0
    for j, el in enumerate(tariff.elements):
        if calendar_holds(el.restrictions, local):
            mask |= 1 << j
    return mask


@dataclass(frozen=True, slots=True)
class Calendar:
    """One (tariff, zone) over a date range.

    ``state_at``/``state_mask``: sorted instants; the mask holds from each instant to the next
    (the first instant is -inf). ``cuts``: sorted instants where the reference cuts a period.
    """

    state_at: np.ndarray
    state_mask: np.ndarray
    cuts: np.ndarray


def build_calendar(
    tariff: Tariff, time_zone: str, lo_ms: int, hi_ms: int, stretches: list[tuple[int, int]] | None = None
) -> Calendar:
    """The tariff's calendar in ``time_zone`` over the local dates of ``stretches`` (default: one,
    ``lo_ms``..``hi_ms``), each ±1 day: the state instants (each restriction boundary, each DST
    change) with the elements' mask from there on, and the instants where a period is cut."""
    cut_m, state_m = clock_minutes(tariff), state_minutes(tariff)
    n = len(tariff.elements)
    if not cut_m:  # no time / day / date restriction: one segment, no cut
        everything = (1 << n) - 1
        return Calendar(
            np.array([-(2**62)], np.int64), np.array([everything], np.uint64), np.zeros(0, np.int64)
        )
    tz = zone(time_zone)
    days: set[date] = set()
    for a, b in stretches or [(lo_ms, hi_ms)]:
        day, last = local_date(a, time_zone) - timedelta(days=1), local_date(b, time_zone) + timedelta(days=1)
        while day <= last:
            days.add(day)
            day += timedelta(days=1)
    cuts: set[int] = set()
    states: set[int] = set()
    for day in sorted(days):
        for m in state_m:
            for instant in wall_instants(day, m, tz):
                states.add(instant)
                if m in cut_m:
                    cuts.add(instant)
        for instant in dst_transitions(time_zone, day):
            states.add(instant)
            cuts.add(instant)
    at = sorted(states)
    masks = [calendar_mask(tariff, time_zone, at[0] - 1)]
    masks += [calendar_mask(tariff, time_zone, i) for i in at]
    return Calendar(
        np.array([-(2**62), *at], np.int64),
        np.array(masks, np.uint64),
        np.array(sorted(cuts), np.int64),
    )


# ---- the compiled batch -------------------------------------------------------------------------

S_ENERGY, S_TIME, S_FLAT = 0, 1, 2  # what a piece selects: ENERGY, its kind of time, FLAT
LUT_BITS = 8  # tariffs with at most this many elements select through a lookup table
TIME_CATEGORY = {RES: C_RESERVATION, CHG: C_TIME, PARK: C_PARKING}


@dataclass(frozen=True)
class Compiled:
    """All tables of one batch (flat numpy arrays, read-only; shared by threads).

    Selection rows: ``row = (tariff * 3 + phase) * 2 + expired``. A piece's element mask ``m``
    (calendar state & kWh/duration bucket & power/current) selects, per S_ENERGY / S_TIME /
    S_FLAT, the lowest bit of ``m & allowed[row, s]`` (for S_TIME of an expired reservation the
    RESERVATION_EXPIRES elements first). With ``lut`` (every tariff has <= LUT_BITS elements)
    the answer is read from ``lut[s, row << n_el | m]``.

    Components, indexed ``t * 65 + element`` (element 64 = none): energy ``pf_e``/``step_e``/
    ``ckey_e``, FLAT ``pf_f``/``ckey_f``; time by phase, ``(t * 65 + element) * 3 + phase``
    (TIME for reservation and charging, PARKING_TIME for parking): ``pf_t``/``step_t``/``ckey_t``.
    ``pf`` = price_e6 × F; ``ckey`` = category × (classes + 1) + tax class (the accumulator
    column; "none" lands in the extra class column and is dropped).
    """

    tariffs: tuple[Tariff, ...]
    zones: tuple[str, ...]
    n_el: int
    allowed: np.ndarray  # uint64 [rows * 3]
    expires: np.ndarray  # uint64 [T]
    any_expires: bool
    lut: np.ndarray | None  # uint8 [3, rows << n_el]
    n_kwh: int
    kwh_thr: np.ndarray  # int64 [T * n_kwh]
    n_dur: int
    dur_thr: np.ndarray  # int64 [T * n_dur] (ms)
    thr_mask: np.ndarray  # uint64 [(T * (n_kwh+1) + kwh bucket) * (n_dur+1) + duration bucket]
    meas_slots: tuple[int, ...]
    meas_limit: np.ndarray  # int64 [4, T*E]: min_power_w, max_power_w, min_current_ma, max_current_ma
    meas_has: np.ndarray  # bool [4, T*E]
    pf_e: np.ndarray
    step_e: np.ndarray
    ckey_e: np.ndarray
    pf_t: np.ndarray
    step_t: np.ndarray
    ckey_t: np.ndarray
    pf_f: np.ndarray
    ckey_f: np.ndarray
    pf_e_max: int
    pf_t_max: int
    pf_f_max: int
    classes: tuple[TaxClass, ...]
    lim: np.ndarray  # int64 [4, T] min excl, min incl, max excl, max incl (price_e6)
    lim_has: np.ndarray  # bool [4, T]
    taxes_known: np.ndarray  # bool [T]
    v23: np.ndarray  # bool [T]
    group_of: np.ndarray  # int64 [T*Z] → calendar group (-1: not compiled)
    cal_base: int
    cal_span: int
    state_key: np.ndarray  # int64 g*span + (instant - base), sorted
    state_mask: np.ndarray  # uint64
    cut_key: np.ndarray  # int64
    cut_at: np.ndarray  # int64 instants of cut_key
    state_next: np.ndarray  # int64 per state: key of the next state (huge for the last)
    next_cut: np.ndarray  # int64 per state: key of the first cut after the state's instant
    next_cut_pos: np.ndarray  # int64 per state: index of that cut in cut_key
    single_state: bool  # no calendar restriction anywhere: one state per group

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def ncc(self) -> int:
        return len(self.classes) + 1


def threshold_tables(
    tariffs: tuple[Tariff, ...], bounds: Callable[[Restrictions], tuple[int | None, int | None]]
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per tariff: sorted distinct thresholds (padded to K with PAD) and, for each of the K+1
    buckets ``[thr[b-1], thr[b])``, the mask of elements whose ``lo <= value < hi`` holds there."""
    per_t = []
    for tariff in tariffs:
        values = sorted({v for el in tariff.elements for v in bounds(el.restrictions) if v is not None})
        if any(abs(v) >= PAD // 2 for v in values):
            raise PricingOverflowError(
                f"tariff {tariff.id!r}: a kWh / duration restriction is out of the kernel's range"
            )
        per_t.append(values)
    k = max([len(v) for v in per_t] + [0])
    thr = np.full(len(tariffs) * max(k, 1), PAD, np.int64)
    mask = np.zeros(len(tariffs) * (k + 1), np.uint64)
    for t, (tariff, values) in enumerate(zip(tariffs, per_t, strict=True)):
        thr[t * max(k, 1) : t * max(k, 1) + len(values)] = values
        reps = [values[0] - 1, *values] if values else [0]
        for b in range(k + 1):
            rep = reps[min(b, len(reps) - 1)]
            m = 0
            for j, el in enumerate(tariff.elements):
                lo, hi = bounds(el.restrictions)
                if (lo is None or rep >= lo) and (hi is None or rep < hi):
                    m |= 1 << j
            mask[t * (k + 1) + b] = m
    return thr, mask, k


def compile_tariffs(
    tariffs: list[Tariff] | tuple[Tariff, ...],
    zones: list[str] | tuple[str, ...],
    group_ranges: dict[tuple[int, int], tuple[int, int, list[tuple[int, int]]]],
) -> Compiled:
    """Compile ``tariffs``; ``group_ranges[(tariff, zone)] = (first ms, last ms, stretches)`` of the
    periods priced with that tariff in that zone (:meth:`PeriodTable.group_ranges`; the calendar
    covers the stretches' local dates ±1 day)."""
    tariffs = tuple(tariffs)
    n_el = max([len(t.elements) for t in tariffs] + [1])
    if n_el > MAX_ELEMENTS:
        raise UncompilableTariffError(
            f"a tariff has {n_el} elements; the kernel handles at most {MAX_ELEMENTS}. "
            "Hint: price it with --engine reference"
        )
    return Compiled(
        tariffs=tariffs,
        zones=tuple(zones),
        n_el=n_el,
        **selection_tables(tariffs, n_el),
        **threshold_fields(tariffs),
        **measurement_limits(tariffs, n_el),
        **component_tables(tariffs),
        **tariff_limits(tariffs),
        **calendar_tables(tariffs, zones, group_ranges),
    )


def selection_tables(tariffs: tuple[Tariff, ...], n_el: int) -> dict[str, Any]:
    """Eligible elements per (tariff, phase, expired) and selection dimension, and the
    lowest-set-bit lookup table when tariffs are small."""
    n_t = len(tariffs)
    n_rows = n_t * 3 * 2
    allowed = np.zeros(n_rows * 3, np.uint64)
    expires = np.zeros(n_t, np.uint64)
    for t, tariff in enumerate(tariffs):
        plain = res = exp = 0
        has = [0, 0, 0, 0]
        for j, el in enumerate(tariff.elements):
            kind = el.restrictions.reservation
            if kind is None:
                plain |= 1 << j
            elif kind is ReservationKind.RESERVATION:
                res |= 1 << j
            else:
                exp |= 1 << j
            for d, dim in enumerate(DIMENSIONS):
                if el.component(dim) is not None:
                    has[d] |= 1 << j
        expires[t] = exp
        for phase in (RES, CHG, PARK):
            for expired in (0, 1):
                elig = (res | (exp if expired else 0)) if phase == RES else plain
                row = (t * 3 + phase) * 2 + expired
                allowed[row * 3 + S_ENERGY] = elig & has[D_ENERGY] if phase == CHG else 0
                allowed[row * 3 + S_TIME] = elig & has[D_PARKING if phase == PARK else D_TIME]
                allowed[row * 3 + S_FLAT] = elig & has[D_FLAT]
    lut = None
    if n_el <= LUT_BITS:
        m = np.arange(1 << n_el, dtype=np.uint64)[None, :]
        rows = np.arange(n_rows)
        lut = np.empty((3, n_rows << n_el), np.uint8)
        exp_row = expires[rows // 6][:, None] * ((rows % 2) == 1)[:, None].astype(np.uint64)
        for sd in (S_ENERGY, S_TIME, S_FLAT):
            cand = m & allowed[rows * 3 + sd][:, None]
            if sd == S_TIME:
                pri = cand & exp_row
                cand = np.where(pri != 0, pri, cand)
            lut[sd] = lowest_bit(cand).ravel()

    return {"allowed": allowed, "expires": expires, "any_expires": bool(expires.any()), "lut": lut}


def threshold_fields(tariffs: tuple[Tariff, ...]) -> dict[str, Any]:
    """kWh and duration thresholds: sorted per tariff, a mask per bucket between thresholds."""
    n_t = len(tariffs)

    def kwh_bounds(r: Restrictions) -> tuple[int | None, int | None]:
        return r.min_kwh_mwh, r.max_kwh_mwh

    def dur_bounds(r: Restrictions) -> tuple[int | None, int | None]:
        lo, hi = r.min_duration_s, r.max_duration_s
        return (
            None if lo is None else lo * MS_PER_SECOND,
            None if hi is None else hi * MS_PER_SECOND,
        )

    kwh_thr, kwh_mask, n_kwh = threshold_tables(tariffs, kwh_bounds)
    dur_thr, dur_mask, n_dur = threshold_tables(tariffs, dur_bounds)
    thr_mask = (kwh_mask.reshape(n_t, n_kwh + 1, 1) & dur_mask.reshape(n_t, 1, n_dur + 1)).ravel()

    return {
        "n_kwh": n_kwh,
        "kwh_thr": kwh_thr,
        "n_dur": n_dur,
        "dur_thr": dur_thr,
        "thr_mask": thr_mask,
    }


def measurement_limits(tariffs: tuple[Tariff, ...], n_el: int) -> dict[str, Any]:
    """Power / current limits per (tariff, element), and the element slots that have any."""
    n_t = len(tariffs)
    meas_limit = np.zeros((4, n_t * n_el), np.int64)
    meas_has = np.zeros((4, n_t * n_el), bool)
    slots: set[int] = set()
    for t, tariff in enumerate(tariffs):
        for j, el in enumerate(tariff.elements):
            r = el.restrictions
            for q, v in enumerate((r.min_power_w, r.max_power_w, r.min_current_ma, r.max_current_ma)):
                if v is not None:
                    if abs(v) >= 2**40:
                        raise PricingOverflowError(
                            f"tariff {tariff.id!r}: power/current limit {v} is out of range"
                        )
                    meas_limit[q, t * n_el + j] = v
                    meas_has[q, t * n_el + j] = True
                    slots.add(j)

    return {"meas_slots": tuple(sorted(slots)), "meas_limit": meas_limit, "meas_has": meas_has}


def component_tables(tariffs: tuple[Tariff, ...]) -> dict[str, Any]:
    """Per (tariff, element) and dimension: price × F, step and accumulator column (category ×
    tax class); the tax classes in use."""
    n_t = len(tariffs)
    class_ids: dict[TaxClass, int] = {}
    found: dict[tuple[int, int, int], tuple[int, int, int, int]] = {}  # (t, j, dim) → pf, step, cat, class
    for t, tariff in enumerate(tariffs):
        for j, el in enumerate(tariff.elements):
            for d, dim in enumerate(DIMENSIONS):
                hit = el.component(dim)
                if hit is None:
                    continue
                comp = hit[1]
                price = scaled(comp.price, 6, "price", tariff)
                pf = price * F_DIM[d]
                if abs(pf) > INT64_MAX // 4:
                    raise PricingOverflowError(
                        f"tariff {tariff.id!r}: price {comp.price} is too large for the kernel's int64 "
                        "fixed point. Hint: price it with --engine reference"
                    )
                step = comp.step_size * (MWH_PER_WH if d == D_ENERGY else MS_PER_SECOND)
                if abs(step) > 2**52:
                    raise PricingOverflowError(
                        f"tariff {tariff.id!r}: step_size {comp.step_size} out of range"
                    )
                vat = None if comp.vat is None else scaled(comp.vat, 2, "vat", tariff)
                if vat is not None and not -VAT_ONE < vat < 10**8:
                    raise UncompilableTariffError(f"tariff {tariff.id!r}: vat {comp.vat} is out of range")
                if d == D_FLAT:
                    cat = C_RESERVATION if el.restrictions.reservation is not None else C_FIXED
                else:
                    cat = (C_ENERGY, C_TIME, C_PARKING)[d]
                cls = class_ids.setdefault(tax_class(tariff, vat), len(class_ids))
                found[(t, j, d)] = (pf, step, cat, cls)
    classes = tuple(class_ids)
    ncc = len(classes) + 1
    none_key = len(classes)  # category 0, the extra class column
    pf_e, step_e, ckey_e = (np.zeros(n_t * E1, np.int64) for _ in range(3))
    pf_f, ckey_f = np.zeros(n_t * E1, np.int64), np.zeros(n_t * E1, np.int64)
    pf_t, step_t, ckey_t = (np.zeros(n_t * E1 * 3, np.int64) for _ in range(3))
    ckey_e[:] = ckey_f[:] = ckey_t[:] = none_key
    for (t, j, d), (pf, step, cat, cls) in found.items():
        i = t * E1 + j
        if d == D_ENERGY:
            pf_e[i], step_e[i], ckey_e[i] = pf, step, cat * ncc + cls
        elif d == D_FLAT:
            pf_f[i], ckey_f[i] = pf, cat * ncc + cls
        else:
            for phase in (PARK,) if d == D_PARKING else (RES, CHG):
                k = i * 3 + phase
                pf_t[k], step_t[k], ckey_t[k] = pf, step, TIME_CATEGORY[phase] * ncc + cls

    return {
        "pf_e": pf_e,
        "step_e": step_e,
        "ckey_e": ckey_e,
        "pf_t": pf_t,
        "step_t": step_t,
        "ckey_t": ckey_t,
        "pf_f": pf_f,
        "ckey_f": ckey_f,
        "pf_e_max": amax_of(pf_e),
        "pf_t_max": amax_of(pf_t),
        "pf_f_max": amax_of(pf_f),
        "classes": classes,
    }


def tariff_limits(tariffs: tuple[Tariff, ...]) -> dict[str, Any]:
    """Per tariff: min / max price (excl, incl) in 1e-6, whether taxes are known, 2.3.0 or not."""
    n_t = len(tariffs)
    lim = np.zeros((4, n_t), np.int64)
    lim_has = np.zeros((4, n_t), bool)
    for t, tariff in enumerate(tariffs):
        parts = (
            (tariff.min_price, "excl"),
            (tariff.min_price, "incl"),
            (tariff.max_price, "excl"),
            (tariff.max_price, "incl"),
        )
        for q, (limit, part) in enumerate(parts):
            value = None if limit is None else getattr(limit, part)
            if value is not None:
                v = scaled(value, 6, f"{'min' if q < 2 else 'max'}_price", tariff)
                if abs(v) > 2**60:
                    raise PricingOverflowError(f"tariff {tariff.id!r}: price limit {value} out of range")
                lim[q, t] = v
                lim_has[q, t] = True
    taxes_known = np.array([t.taxes_known for t in tariffs], bool)
    v23 = np.array([t.version.startswith("2.3") for t in tariffs], bool)

    return {"lim": lim, "lim_has": lim_has, "taxes_known": taxes_known, "v23": v23}


def calendar_tables(
    tariffs: tuple[Tariff, ...],
    zones: list[str] | tuple[str, ...],
    group_ranges: dict[tuple[int, int], tuple[int, int, list[tuple[int, int]]]],
) -> dict[str, Any]:
    """The calendars of every (tariff, zone) group as one sorted key space: state instants with
    their masks, cut instants, and per state the next cut."""
    n_t = len(tariffs)
    n_z = max(len(zones), 1)
    group_of = np.full(n_t * n_z, -1, np.int64)
    cals: list[Calendar] = []
    for g, ((t, z), (lo, hi, stretches)) in enumerate(sorted(group_ranges.items())):
        group_of[t * n_z + z] = g
        cals.append(build_calendar(tariffs[t], zones[z], lo, hi, stretches))
    instants = [c.state_at[1:] for c in cals] + [c.cuts for c in cals]
    instants += [np.array([lo, hi], np.int64) for lo, hi, _stretches in group_ranges.values()]
    flat = np.concatenate(instants) if instants else np.zeros(0, np.int64)
    base = int(flat.min()) - 1 if len(flat) else 0
    span = (int(flat.max()) - base + 2) if len(flat) else 2
    if len(cals) * span >= 2**62:
        raise PricingOverflowError(
            "the batch's time range × (tariff, zone) pairs does not fit the kernel's calendar keys. "
            "Hint: price smaller batches"
        )
    state_key, state_mask, cut_key, cut_at = [], [], [], []
    for g, c in enumerate(cals):
        state_key.append(g * span + np.maximum(c.state_at - base, 0))
        state_mask.append(c.state_mask)
        cut_key.append(g * span + (c.cuts - base))
        cut_at.append(c.cuts)

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    # a period starting in state i contains a cut iff next_cut[i] < its end (cuts are states too)
    next_pos = np.searchsorted(cat(cut_key, np.int64), cat(state_key, np.int64), "right")

    state_keys = cat(state_key, np.int64)
    cut_keys = cat(cut_key, np.int64)
    return {
        "group_of": group_of,
        "cal_base": base,
        "cal_span": span,
        "state_key": state_keys,
        "state_mask": cat(state_mask, np.uint64),
        "cut_key": cut_keys,
        "cut_at": cat(cut_at, np.int64),
        "state_next": np.append(state_keys[1:], np.int64(2**62)),
        "next_cut": np.append(cut_keys, np.int64(2**62))[next_pos],
        "next_cut_pos": next_pos,
        "single_state": all(len(c.state_at) == 1 for c in cals),
    }


def amax_of(x: np.ndarray) -> int:
    return max(int(x.max()), -int(x.min())) if x.size else 0


def lowest_bit(x: np.ndarray) -> np.ndarray:
    """Index of the lowest set bit of each uint64, NONE (64) for 0."""
    iso = x & (~x + np.uint64(1))
    return np.bitwise_count(iso - np.uint64(1)).astype(np.int64)
