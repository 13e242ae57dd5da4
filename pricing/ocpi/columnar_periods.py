"""Charging periods and their dimensions as columns, for the columnar reader.

Volumes of one type in one period are summed exactly and rounded once (as
:func:`pricing.ocpi._common.periods_to_canonical` does); MIN_* / MAX_* take the extreme. A CDR
whose periods the parser would refuse (out of order, after the end, no dimension, a type of
another version, a bad volume) is left to it.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pricing.ocpi.columnar_values import (
    LIMIT,
    Checks,
    convert,
    exact,
    list_parts,
    parse_ts,
    per_parent_all,
    valid_mask,
)
from pricing.units import hours_to_ms, kwh_to_mwh

# CdrDimensionType of 2.2.1 / 2.3.0 (identical) and 2.1.1's FLAT; the code is the index
DIM_TYPES = (
    "ENERGY",
    "TIME",
    "PARKING_TIME",
    "RESERVATION_TIME",
    "MIN_POWER",
    "MAX_POWER",
    "MIN_CURRENT",
    "MAX_CURRENT",
    "CURRENT",
    "ENERGY_EXPORT",
    "ENERGY_IMPORT",
    "POWER",
    "STATE_OF_CHARGE",
    "FLAT",  # 2.1.1 only
)
DIMS_22 = np.arange(13)
DIMS_211 = np.array([0, 1, 2, 6, 7, 13])  # ENERGY, TIME, PARKING_TIME, MIN/MAX_CURRENT, FLAT
_SUMMED = {0: "energy_mwh", 1: "time_ms", 2: "parking_ms", 3: "reservation_ms"}
_EXTREME = {
    4: ("min_power_w", False),
    5: ("max_power_w", True),
    6: ("min_current_ma", False),
    7: ("max_current_ma", True),
}


def period_volumes(
    col: dict[str, pa.Array], ck: Checks, end: np.ndarray, allowed: np.ndarray
) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Charging periods and their dimensions: (periods, parent row per period, index inside the
    CDR, start ms, {flat volume column: (values, present)}); a CDR with no period, a period out of
    order or after the end, an unknown dimension or a bad volume falls back."""
    n = len(end)
    cp = col["charging_periods"]
    periods, p_parent, n_per = list_parts(cp)
    ck.require(n_per >= 1, "no charging period")
    p_start, ps_ok = parse_ts(periods.field("start_date_time"))
    dims_list = periods.field("dimensions")
    dims, d_parent, n_dim = list_parts(dims_list)
    p_ok = ps_ok & (n_dim >= 1)
    dtype = pc.index_in(dims.field("type"), value_set=pa.array(DIM_TYPES))
    d_code = pc.fill_null(dtype, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    vol = dims.field("volume")
    d_ok = np.isin(d_code, allowed) & valid_mask(vol)  # a type of another version: the parser's
    # a negative volume of any type, priced or not: the parser's NEGATIVE_VOLUME (check_volumes;
    # MIN_CURRENT / MIN_POWER it allows, but the units below are non-negative: it prices those)
    negative = pc.less(vol, pa.scalar(Decimal(0), vol.type))
    d_ok &= ~pc.fill_null(negative, False).to_numpy(zero_copy_only=False)
    n_p = len(p_start)
    # positions inside the CDR
    p_first = np.cumsum(n_per) - n_per
    p_idx = np.arange(n_p) - p_first[p_parent]
    back = np.zeros(n_p, bool)
    back[1:] = (p_idx[1:] > 0) & (p_start[1:] < p_start[:-1])
    p_ok &= ~back & (p_start <= end[p_parent])
    out = _summed_volumes(vol, d_code, d_parent, d_ok, n_p)
    out.update(_extreme_volumes(vol, d_code, d_parent, d_ok, n_p))
    p_ok &= per_parent_all(d_ok, d_parent, n_p)
    ck.require(per_parent_all(p_ok, p_parent, n), "charging period not in the columnar form")
    return periods, p_parent, p_idx, p_start, out


def _summed_volumes(
    vol: pa.Array, d_code: np.ndarray, d_parent: np.ndarray, d_ok: np.ndarray, n_p: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Energy and durations per period in units: the exact sum of same-type volumes, rounded
    once (as the parser does); clears ``d_ok`` where a value does not fit."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    kinds = {0: "mwh", 1: "ms", 2: "ms", 3: "ms"}
    for code, name in _SUMMED.items():
        sel = np.flatnonzero(d_code == code)
        v, v_ok = (
            convert(vol.take(pa.array(sel, pa.int64())), kinds[code])
            if len(sel)
            else (np.zeros(0, np.int64), np.zeros(0, bool))
        )
        d_ok[sel] &= v_ok
        vals = np.zeros(n_p, np.int64)
        has = np.zeros(n_p, bool)
        par = d_parent[sel]
        vals[par] = v
        has[par] = True
        dup = np.flatnonzero(par[1:] == par[:-1]) + 1
        if len(dup):
            for pp in np.unique(par[dup]).tolist():
                ds = sel[par == pp]
                if not d_ok[ds].all():  # a null or bad volume among them: the period falls back
                    continue
                total = sum((exact(vol, int(j)) for j in ds), Decimal(0))
                conv = kwh_to_mwh(total) if code == 0 else hours_to_ms(total)
                vals[pp] = conv
                if not 0 <= conv < LIMIT:
                    d_ok[ds] = False
        out[name] = (vals, has)
    return out


def _extreme_volumes(
    vol: pa.Array, d_code: np.ndarray, d_parent: np.ndarray, d_ok: np.ndarray, n_p: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Min / max power and current per period (the extreme of same-type values); clears
    ``d_ok`` where a value does not fit."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for code, (name, is_max) in _EXTREME.items():
        sel = np.flatnonzero(d_code == code)
        v, v_ok = (
            convert(vol.take(pa.array(sel, pa.int64())), "milli")
            if len(sel)
            else (np.zeros(0, np.int64), np.zeros(0, bool))
        )
        d_ok[sel] &= v_ok
        par = d_parent[sel]
        vals = np.full(n_p, -1 if is_max else LIMIT, np.int64)
        (np.maximum if is_max else np.minimum).at(vals, par, v)
        has = np.zeros(n_p, bool)
        has[par] = True
        out[name] = (np.where(has, vals, 0), has)
    return out
