"""The vectorized pricer: a periods table and compiled tariff tables in, result columns out.

Pure: numpy, the canonical model, units and policy, and the tables of :mod:`pricing.period_table` /
:mod:`pricing.compile`. No I/O, no Python loop over sessions or periods (the loops below run over
thresholds, tax classes, used (category, class) columns and VAT rates). It computes exactly what
:func:`pricing.reference.price_session` computes; ``tests/property`` holds it to that, column by
column, on random tariffs × sessions × policies.

Per chunk of ~20k sessions (PERF-NOTES: faster and far leaner than whole arrays; chunks may run on
a thread pool):

1. pieces — a period is cut at the reference's calendar instants (found through the calendar
   state of its start: "next cut after this state"), at kWh thresholds (``ceil((T − c)·d / E)``)
   and at duration thresholds; piece ``[a, b)`` gets ``floor(E·b/d) − floor(E·a/d)`` of the energy;
2. selection — per piece the mask of elements whose restrictions hold (calendar state at the piece
   start, kWh / duration bucket, power / current per period); ENERGY, the piece's kind of time
   (TIME, or PARKING_TIME when parking) and FLAT take its lowest set bit among the elements
   eligible in that phase (reservation rules, RESERVATION_EXPIRES first for expired TIME) — a
   256-entry table per (tariff, phase, expired) when tariffs have at most 8 elements;
3. step rounding on session totals: last relevant piece (running max of the index), same tariff
   slot, both ``time_step_rounding`` readings, ``step_exact_multiple``;
4. money — every billed quantity becomes ``n = price_e6 · F · qty``, an exact integer over
   ``D0 = 1.8e9`` in units of 1e-4 (F = 18 / 5 / 1.8e7 for mWh / ms / FLAT), summed per
   (category × tax class, session) with ``np.add.at`` (two int64 limbs when one could overflow).
   Each sum becomes (excl, incl) as an exact pair ``W + R / D`` with ``0 <= R < D`` and
   ``D = D0 · Λ``: Λ = 10_000, or per session the lcm of 10_000 and every ``10_000 + vat_e2`` of a
   ``tax_included = YES`` class it uses, so dividing by ``1 + vat/100`` stays exact. Clamps compare
   pairs; 4-decimal half-up rounding reads ``2R >= D``. Sessions whose Λ would not fit, and the
   2.3.0 tax lines scaled after a min/max clamp (``amount · target / total``), use the same code
   on Python ints (numpy object arrays, only those sessions).

Every product and sum is bounded first; :class:`~pricing.errors.PricingOverflowError` is raised
rather than wrapping or saturating (the batch then prices that block with the reference and counts
it as a fallback). Step 4 lives in :mod:`pricing.kernel_money`, the int64 helpers in
:mod:`pricing.fixed_point`; turning result columns into report rows is :mod:`pricing.report`'s job.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from pricing.compile import (
    ALL,
    C_PARKING,
    C_RESERVATION,
    C_TIME,
    CHG,
    E1,
    N_CATEGORIES,
    NONE,
    PARK,
    RES,
    Compiled,
    compile_tariffs,
    lowest_bit,
)
from pricing.fixed_point import (
    I64,
    LIMB,
    MAX,
    SAFE,
    amax,
    check_group_sums,
    first_of,
    floor_muldiv,
    last_of,
    mul,
    overflow,
    round_up,
    seg_sum,
)
from pricing.kernel_money import settle_money
from pricing.model import COST_CATEGORIES
from pricing.period_table import PeriodTable
from pricing.policy import (
    FlatFee,
    MissingMeasurement,
    PeriodBoundaries,
    PricingPolicy,
    StepRoundingScope,
    TimeStepRounding,
)

CHUNK = 20_000
ONE_LIMB_BELOW = SAFE  # bound on Σ price × quantity for the one-limb path (tests lower it)
CATEGORY_NAMES = COST_CATEGORIES
MIN_MAX = (None, "min", "max")
TIME_KIND_CATEGORY = np.array([C_RESERVATION, C_TIME, C_PARKING], I64)  # by phase code


# ---- exact int64 helpers ------------------------------------------------------------------------


# ---- 1. pieces ----------------------------------------------------------------------------------


@dataclass
class Pieces:
    period: np.ndarray  # index into the chunk's periods
    a: np.ndarray  # offset of the piece in its period (ms)
    b: np.ndarray
    off: np.ndarray  # per period, n_p + 1 offsets into the pieces
    later: np.ndarray  # the pieces that start at a cut (not at their period's start)
    whole: bool  # one piece per period, [0, d)


def cut_pieces(
    pt: PeriodTable,
    ct: Compiled,
    k0: np.ndarray,
    seg: np.ndarray,
    dpos: np.ndarray,
    cum: np.ndarray,
    elapsed0: np.ndarray,
) -> Pieces:
    """Reference ``split_pieces`` with the ``split`` policy: cut at calendar instants and kWh /
    duration thresholds strictly inside each period. ``k0``: calendar key of each period start,
    ``seg``: its calendar state."""
    n_p = pt.n_periods
    t, e = pt.tariff, pt.energy
    parts_p: list[np.ndarray] = []
    parts_o: list[np.ndarray] = []
    if len(ct.cut_key):  # calendar cuts c with start < c < end
        has = np.flatnonzero(ct.next_cut[seg] < k0 + dpos)
        if len(has):
            lo = ct.next_cut_pos[seg[has]]
            n_h = np.searchsorted(ct.cut_key, k0[has] + dpos[has], "left") - lo
            total = int(n_h.sum())
            p = np.repeat(has, n_h)
            first = np.cumsum(n_h) - n_h
            pos = np.arange(total, dtype=I64) - np.repeat(first - lo, n_h)
            parts_p.append(p)
            parts_o.append(ct.cut_at[pos] - pt.start[p])
    one = len(ct.tariffs) == 1
    for k in range(ct.n_kwh):  # kWh: first offset where cum + floor(e·o/d) >= T
        thr = ct.kwh_thr[k] if one else ct.kwh_thr[t * ct.n_kwh + k]
        idx = np.flatnonzero((cum < thr) & (thr <= cum + e) & (dpos > 0))  # (implies e > 0)
        if len(idx):
            x = (thr if one else thr[idx]) - cum[idx]
            parts_p.append(idx)
            parts_o.append(-(-mul(x, dpos[idx], "kWh threshold × duration") // e[idx]))
    for k in range(ct.n_dur):  # duration: elapsed time reaches L
        o = (ct.dur_thr[k] if one else ct.dur_thr[t * ct.n_dur + k]) - elapsed0
        idx = np.flatnonzero((o > 0) & (o < dpos))
        if len(idx):
            parts_p.append(idx)
            parts_o.append(o[idx])
    if not parts_p:
        return whole_pieces(n_p, dpos)
    cp = np.concatenate(parts_p)
    co = np.concatenate(parts_o)
    keep = (co > 0) & (co < dpos[cp])
    cp, co = cp[keep], co[keep]
    if not len(cp):
        return whole_pieces(n_p, dpos)
    width = amax(dpos) + 1
    if n_p * width < MAX:
        key = np.sort(cp * width + co)
        key = key[np.r_[True, key[1:] != key[:-1]]]
        cp, co = key // width, key % width
    else:
        order = np.lexsort((co, cp))
        cp, co = cp[order], co[order]
        fresh = np.r_[True, (cp[1:] != cp[:-1]) | (co[1:] != co[:-1])]
        cp, co = cp[fresh], co[fresh]
    n_cuts = np.bincount(cp, minlength=n_p)
    count = n_cuts + 1
    off = np.zeros(n_p + 1, I64)
    np.cumsum(count, out=off[1:])
    period = np.repeat(np.arange(n_p, dtype=I64), count)
    a = np.zeros(int(off[-1]), I64)
    first_cut = np.cumsum(n_cuts) - n_cuts
    later = off[cp] + 1 + np.arange(len(cp), dtype=I64) - first_cut[cp]  # pieces after a cut
    a[later] = co
    b = np.empty_like(a)
    b[:-1] = a[1:]
    b[off[1:] - 1] = dpos
    return Pieces(period, a, b, off, later, False)


def whole_pieces(n_p: int, dpos: np.ndarray) -> Pieces:
    idx = np.arange(n_p, dtype=I64)
    return Pieces(idx, np.zeros(n_p, I64), dpos, np.arange(n_p + 1, dtype=I64), np.zeros(0, I64), True)


# ---- 2. selection -------------------------------------------------------------------------------


def measurement_mask(
    pt: PeriodTable, ct: Compiled, policy: PricingPolicy, dpos: np.ndarray
) -> np.ndarray | None:
    """Per period: the elements whose power / current limits hold (reference ``measurements_hold``)."""
    if not ct.meas_slots:
        return None
    mm = np.full(pt.n_periods, ALL, np.uint64)
    e3600 = mul(pt.energy, 3600, "energy × 3600")
    for j in ct.meas_slots:
        idx = pt.tariff * ct.n_el + j
        ok = np.ones(pt.n_periods, bool)
        for q in range(4):
            has = ct.meas_has[q, idx]
            if not has.any():
                continue
            limit = ct.meas_limit[q, idx]
            is_min = q in (0, 2)
            value = pt.meas[q]
            measured = value >= limit if is_min else value < limit
            if policy.missing_measurement is MissingMeasurement.MATCH:
                missing = np.ones(pt.n_periods, bool)
            elif policy.missing_measurement is MissingMeasurement.NO_MATCH:
                missing = np.zeros(pt.n_periods, bool)
            elif q < 2:  # derive the average power: mWh · 3600 / ms against W
                ld = mul(limit, dpos, "power limit × duration")
                derived = e3600 >= ld if is_min else e3600 < ld
                missing = np.where(dpos > 0, derived, True)
            else:
                missing = np.ones(pt.n_periods, bool)
            ok &= ~has | np.where(pt.meas_has[q], measured, missing)
        mm &= np.where(ok, ALL, ~np.uint64(1 << j))
    return mm


def select(
    ct: Compiled,
    t: np.ndarray,
    row: np.ndarray,
    state: np.ndarray,
    cum: np.ndarray,
    elapsed: np.ndarray,
    mm: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The element (NONE if none) pricing ENERGY, the piece's kind of time and FLAT: reference
    ``select`` — the lowest set bit of the mask of elements whose restrictions hold."""
    m = state
    if ct.n_kwh or ct.n_dur:
        one = len(ct.tariffs) == 1
        b = np.zeros(len(t), I64) if one else t * (ct.n_kwh + 1)
        tk = 0 if one else t * ct.n_kwh
        for k in range(ct.n_kwh):
            b += cum >= (ct.kwh_thr[k] if one else ct.kwh_thr[tk + k])
        if ct.n_dur:
            b *= ct.n_dur + 1
            td = 0 if one else t * ct.n_dur
            for k in range(ct.n_dur):
                b += elapsed >= (ct.dur_thr[k] if one else ct.dur_thr[td + k])
        m = m & ct.thr_mask[b]
    if mm is not None:
        m = m & mm
    if ct.lut is not None:
        idx = (row << ct.n_el) | m.astype(I64)
        return ct.lut[0][idx], ct.lut[1][idx], ct.lut[2][idx]
    out = []
    for sd in range(3):
        c = m & ct.allowed[row * 3 + sd]
        if sd == 1 and ct.any_expires:  # an expired reservation: EXPIRES elements first
            pri = c & ct.expires[t]
            c = np.where(pri != 0, pri, c)
        out.append(lowest_bit(c))
    return out[0], out[1], out[2]


# ---- 3.–5. one chunk ----------------------------------------------------------------------------


@dataclass
class Priced:
    """Pieces with their selections."""

    p: np.ndarray  # period
    s: np.ndarray  # session
    t: np.ndarray
    ph: np.ndarray
    energy: np.ndarray
    dur: np.ndarray
    el_e: np.ndarray
    el_t: np.ndarray
    el_f: np.ndarray


@dataclass
class ChunkState:
    """Per period of a chunk: what selection needs besides the period table."""

    dpos: np.ndarray  # duration, at least 0
    ed_bound: int  # bound on energy × duration (pro-rata products)
    cum: np.ndarray  # session energy before the period
    elapsed0: np.ndarray  # charging time elapsed at the period start
    row: np.ndarray  # selection row: (tariff, phase, expired)
    mm: np.ndarray | None  # measurement mask (None: no power / current restriction)
    k0: np.ndarray  # calendar key of the period start
    seg: np.ndarray  # calendar state at the period start


def price_chunk(pt: PeriodTable, ct: Compiled, policy: PricingPolicy) -> dict[str, np.ndarray]:
    """Steps 1.–5. for one chunk of sessions: result columns per session (see :func:`price_table`)."""
    n_s, n_p = pt.n_sessions, pt.n_periods
    st = chunk_state(pt, ct, policy)
    split = policy.period_boundaries is PeriodBoundaries.SPLIT
    out: dict[str, np.ndarray] = {}
    if policy.period_boundaries is PeriodBoundaries.FLAG:
        out["straddle_sess"], out["straddle_src"] = straddling(
            price_pieces(cut_pieces(pt, ct, st.k0, st.seg, st.dpos, st.cum, st.elapsed0), pt, ct, st), pt
        )
    pcs = (
        cut_pieces(pt, ct, st.k0, st.seg, st.dpos, st.cum, st.elapsed0)
        if split
        else whole_pieces(n_p, st.dpos)
    )
    pc = price_pieces(pcs, pt, ct, st)
    sess_off = pcs.off[pt.s_off]  # per session, offsets into the pieces
    steps = step_rounding(pc, pt, ct, policy, sess_off)
    fi = flat_fee_pieces(pc, pt, policy, n_s)
    out.update(cost_sums(pc, pt, ct, steps, fi, sess_off))

    # ---- quantities
    out["energy_mwh"] = seg_sum(pt.energy, pt.s_off)
    out["extra_energy_mwh"] = steps.extra_e
    for name, ph in (("charging_ms", CHG), ("parking_ms", PARK), ("reservation_ms", RES)):
        out[name] = seg_sum(np.where(pt.phase == ph, st.dpos, 0), pt.s_off)
    for name, c in (("time", C_TIME), ("parking", C_PARKING), ("reservation", C_RESERVATION)):
        out[f"extra_{name}_ms"] = np.where(steps.cat_t == c, steps.extra_t, 0)
    return out


def chunk_state(pt: PeriodTable, ct: Compiled, policy: PricingPolicy) -> ChunkState:
    """Cumulative energy and elapsed time per period, its selection row, measurement mask and
    calendar state (bounds checked first)."""
    n_s, n_p = pt.n_sessions, pt.n_periods
    sess, phase, energy = pt.sess, pt.phase, pt.energy
    dpos = np.maximum(pt.dur, 0)
    e_max, d_max = amax(energy), amax(dpos)
    if e_max * max(n_p, 1) >= SAFE or d_max * max(n_p, 1) >= SAFE:
        raise overflow("the chunk's total energy or duration")

    # per period: cumulative energy before it and elapsed time at its start
    excl_cs = np.cumsum(energy) - energy
    cum = excl_cs - excl_cs[np.minimum(pt.s_off[:-1], max(n_p - 1, 0))][sess] if n_p else excl_cs
    is_res = phase == RES
    if is_res.any():
        first_chg = first_of(~is_res, sess, n_s)
        chg_start = np.where(first_chg >= 0, pt.start[np.maximum(first_chg, 0)], pt.s_start)
        elapsed0 = pt.start - np.where(is_res, pt.s_start[sess], chg_start[sess])
    else:  # charging starts with each session's first period
        elapsed0 = pt.start - pt.start[pt.s_off[:-1]][sess] if n_p else pt.start
    n_z = max(len(ct.zones), 1)
    g = ct.group_of[pt.tariff * n_z + pt.s_zone[sess]]
    if (g < 0).any():
        raise ValueError("a (tariff, zone) pair of the table was not compiled")
    row = (pt.tariff * 3 + phase) * 2 + pt.s_expired[sess]
    mm = measurement_mask(pt, ct, policy, dpos)
    k0 = g * ct.cal_span + (pt.start - ct.cal_base)  # calendar key of each period start
    seg = g if ct.single_state else np.searchsorted(ct.state_key, k0, "right") - 1
    return ChunkState(dpos, e_max * d_max, cum, elapsed0, row, mm, k0, seg)


def price_pieces(pc: Pieces, pt: PeriodTable, ct: Compiled, st: ChunkState) -> Priced:
    """The pieces with their energy (pro rata inside a cut period), running energy and time,
    calendar state and selected elements."""
    energy, sess, phase = pt.energy, pt.sess, pt.phase
    if pc.whole:
        p, en, du, cum_pc, el_pc = pc.period, energy, st.dpos, st.cum, st.elapsed0
        row_pc, mm_pc, seg_pc = st.row, st.mm, st.seg
    else:
        p = pc.period
        en, du = energy[p], pc.b - pc.a
        cum_pc, el_pc = st.cum[p], st.elapsed0[p]
        row_pc, mm_pc, seg_pc = st.row[p], None if st.mm is None else st.mm[p], st.seg[p]
        cut = np.flatnonzero((np.diff(pc.off) > 1)[p])  # every piece of a cut period
        if len(cut):  # energy pro rata: [a, b) gets floor(E·b/d) − floor(E·a/d)
            d, e = st.dpos[p[cut]], en[cut]
            ea = floor_muldiv(e, pc.a[cut], d, st.ed_bound)
            en[cut] = floor_muldiv(e, pc.b[cut], d, st.ed_bound) - ea
            cum_pc[cut] += ea
            el_pc[cut] += pc.a[cut]
        lp = pc.later
        if len(lp) and not ct.single_state:  # a later piece may start in a later state
            key = st.k0[p[lp]] + pc.a[lp]
            moved = np.flatnonzero(ct.state_next[seg_pc[lp]] <= key)
            if len(moved):
                seg_pc[lp[moved]] = np.searchsorted(ct.state_key, key[moved], "right") - 1
    t = pt.tariff[p]
    el_e, el_t, el_f = select(ct, t, row_pc, ct.state_mask[seg_pc], cum_pc, el_pc, mm_pc)
    return Priced(p, sess[p], t, phase[p], en, du, el_e.astype(I64), el_t.astype(I64), el_f.astype(I64))


@dataclass
class Steps:
    """Step rounding per session: the added energy / time and the component that bills it."""

    i_e: np.ndarray  # per piece: energy component index
    i_t: np.ndarray  # per piece: time component index
    i_f: np.ndarray  # per piece: FLAT component index
    extra_e: np.ndarray  # per session: mWh added by step rounding
    extra_t: np.ndarray  # per session: ms added by step rounding
    ie_last: np.ndarray  # per session: the energy component that bills extra_e
    it_last: np.ndarray  # per session: the time component that bills extra_t
    cat_t: np.ndarray  # per session: the category of extra_t


def step_rounding(
    pc: Priced, pt: PeriodTable, ct: Compiled, policy: PricingPolicy, sess_off: np.ndarray
) -> Steps:
    """Reference ``step_rounding``: on the session total of the last relevant piece's tariff
    slot, by that piece's component (both ``time_step_rounding`` readings)."""
    n_s = pt.n_sessions
    s_pc, t_pc, ph_pc = pc.s, pc.t, pc.ph
    slot_pc = pt.slot[pc.p]
    n_pc = len(s_pc)
    i_e = t_pc * E1 + pc.el_e
    i_t = (t_pc * E1 + pc.el_t) * 3 + ph_pc
    i_f = t_pc * E1 + pc.el_f
    exact = policy.step_exact_multiple
    has_e = pc.el_e != NONE
    last_e = last_of(has_e, sess_off)
    le = np.maximum(last_e, 0)
    extra_e = np.zeros(n_s, I64)
    ie_last = i_e[le] if n_pc else np.zeros(n_s, I64)
    multi = bool(pt.slot.any())  # some session has several tariffs: step rounding per tariff
    whole = policy.step_rounding_scope is StepRoundingScope.SESSION  # every piece of the session
    if n_pc and has_e.any():
        same = has_e & (slot_pc == slot_pc[le][s_pc]) if multi else has_e
        if whole:
            same = np.ones(n_pc, bool)
        q_e = seg_sum(np.where(same, pc.energy, 0), sess_off)
        extra_e = np.where(last_e >= 0, round_up(q_e, ct.step_e[ie_last], exact) - q_e, 0)
    has_t = pc.el_t != NONE
    last_t = last_of(has_t, sess_off)
    lt = np.maximum(last_t, 0)
    kind = ph_pc[lt] if n_pc else np.zeros(n_s, I64)
    extra_t = np.zeros(n_s, I64)
    it_last = i_t[lt] if n_pc else np.zeros(n_s, I64)
    if n_pc and has_t.any():
        if policy.time_step_rounding is TimeStepRounding.COMBINED:
            in_kind = np.where(kind[s_pc] != RES, ph_pc != RES, ph_pc == RES)
        else:
            in_kind = ph_pc == kind[s_pc]
        same_t = has_t & in_kind & (slot_pc == slot_pc[lt][s_pc]) if multi else has_t & in_kind
        if whole:
            same_t = in_kind
        q_t = seg_sum(np.where(same_t, pc.dur, 0), sess_off)
        extra_t = np.where(last_t >= 0, round_up(q_t, ct.step_t[it_last], exact) - q_t, 0)
    return Steps(i_e, i_t, i_f, extra_e, extra_t, ie_last, it_last, TIME_KIND_CATEGORY[kind])


def flat_fee_pieces(pc: Priced, pt: PeriodTable, policy: PricingPolicy, n_s: int) -> np.ndarray:
    """The pieces whose FLAT component is billed: once per distinct component (or only the first
    of the session)."""
    s_pc = pc.s
    slot_pc = pt.slot[pc.p]
    n_pc = len(s_pc)
    has_f = pc.el_f != NONE
    if policy.flat_fee is FlatFee.ONCE_PER_SESSION:
        fi = first_of(has_f, s_pc, n_s)
        return fi[fi >= 0]
    fkey = slot_pc * E1 + pc.el_f
    new = np.empty(n_pc, bool)
    if n_pc:
        new[0] = True
        np.not_equal(fkey[1:], fkey[:-1], out=new[1:])
        new[1:] |= s_pc[1:] != s_pc[:-1]
    fi = np.flatnonzero(has_f & new)
    sf = s_pc[fi]
    if len(fi) > 1 and not (sf[1:] != sf[:-1]).all():  # a session with several FLAT runs
        width = int(slot_pc.max()) * E1 + E1 + 1
        _, first = np.unique(sf * width + fkey[fi], return_index=True)
        fi = fi[first]
    return fi


def cost_sums(
    pc: Priced, pt: PeriodTable, ct: Compiled, steps: Steps, fi: np.ndarray, sess_off: np.ndarray
) -> dict[str, np.ndarray]:
    """Contributions → exact sums per (session, category, tax class) → :func:`settle_money`."""
    n_s = pt.n_sessions
    s_pc = pc.s
    i_e, i_t, i_f = steps.i_e, steps.i_t, steps.i_f
    extra_e, extra_t, ie_last, it_last = steps.extra_e, steps.extra_t, steps.ie_last, steps.it_last
    ncc = ct.ncc
    w = N_CATEGORIES * ncc
    ext_e = np.flatnonzero(extra_e)
    ext_t = np.flatnonzero(extra_t)
    streams = [  # accumulator column-major: key = (category × (classes + 1) + class) · n_s + session
        (ct.ckey_e[i_e] * n_s + s_pc, ct.pf_e[i_e], pc.energy),
        (ct.ckey_t[i_t] * n_s + s_pc, ct.pf_t[i_t], pc.dur),
        (ct.ckey_f[i_f[fi]] * n_s + s_pc[fi], ct.pf_f[i_f[fi]], None),
        (ct.ckey_e[ie_last[ext_e]] * n_s + ext_e, ct.pf_e[ie_last[ext_e]], extra_e[ext_e]),
        (ct.ckey_t[it_last[ext_t]] * n_s + ext_t, ct.pf_t[it_last[ext_t]], extra_t[ext_t]),
    ]
    size = n_s * w
    cnt = np.zeros(size, bool)  # which (category, class, session) has a line at all
    for key, _, _ in streams:
        cnt[key] = True
    per_session = (int(np.diff(sess_off).max()) * 3 + 4) if n_s else 1
    q_t_max = max(amax(pc.dur), amax(extra_t))
    all_keys = None

    def accumulate(parts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        nonlocal all_keys
        acc = np.zeros(size, I64)
        if max([amax(n) for _, n in parts] + [0]) * per_session >= SAFE:
            all_keys = np.concatenate([k for k, _ in parts]) if all_keys is None else all_keys
            check_group_sums(
                np.concatenate([n for _, n in parts]), all_keys % n_s, n_s, per_session, "a session's cost"
            )
        for key, n in parts:
            np.add.at(acc, key, n)
        return acc

    bound = max(ct.pf_e_max * max(amax(pc.energy), amax(extra_e)), ct.pf_t_max * q_t_max, ct.pf_f_max)
    if bound * per_session < ONE_LIMB_BELOW:  # the usual case: one int64 per sum
        acc = accumulate([(k, pf if q is None else pf * q) for k, pf, q in streams])
        money = settle_money(ct, pt, acc, cnt)
    else:  # two limbs: Σ price·qty = Σ price·(qty // LIMB) · LIMB + Σ price·(qty % LIMB)
        lo_parts, hi_parts = [], []
        for k, pf, q in streams:
            q = np.ones(len(k), I64) if q is None else q
            q_hi, q_lo = np.divmod(q, LIMB)
            lo_parts.append((k, mul(pf, q_lo, "price × quantity")))
            hi_parts.append((k, mul(pf, q_hi, "price × quantity")))
        money = settle_money(ct, pt, accumulate(lo_parts), cnt, accumulate(hi_parts))
    return money


def straddling(pc: Priced, pt: PeriodTable) -> tuple[np.ndarray, np.ndarray]:
    """Reference ``straddling_periods``: (session, source index) pairs whose split pieces were
    priced by different (dimension, element) sets."""
    sig = (pc.el_f * 65 + pc.el_t) * 65 + pc.el_e
    s, src, ph = pc.s, pt.src[pc.p], pc.ph
    if not len(s):
        return np.zeros(0, I64), np.zeros(0, I64)
    order = np.lexsort((sig, ph, src, s))
    s, src, ph, sig = s[order], src[order], ph[order], sig[order]
    new = np.r_[True, (s[1:] != s[:-1]) | (src[1:] != src[:-1]) | (ph[1:] != ph[:-1])]
    first = np.flatnonzero(new)
    last = np.r_[first[1:], len(s)] - 1
    hit = first[sig[first] != sig[last]]
    if not len(hit):
        return np.zeros(0, I64), np.zeros(0, I64)
    pairs = np.unique(np.stack([s[hit], src[hit]], axis=1), axis=0)
    return pairs[:, 0].astype(I64), pairs[:, 1].astype(I64)


# ---- public entries -----------------------------------------------------------------------------


def price_table(
    pt: PeriodTable,
    policy: PricingPolicy | None = None,
    compiled: Compiled | None = None,
    workers: int = 1,
    chunk: int = CHUNK,
) -> dict[str, np.ndarray]:
    """Price a periods table; one entry per session in every ``*_e4`` / quantity column, plus
    the flattened tax lines (``tax_sess``, ``tax_rate_e2``, ``tax_amount_e4``) and the
    ``flag`` policy's straddling periods (``straddle_sess``, ``straddle_src``)."""
    policy = policy or PricingPolicy()
    ct = compiled or compile_tariffs(pt.tariffs, pt.zones, pt.group_ranges())
    n_s = pt.n_sessions
    bounds = [(lo, min(lo + chunk, n_s)) for lo in range(0, n_s, chunk)] or [(0, 0)]

    def run(lohi: tuple[int, int]) -> dict[str, np.ndarray]:
        return price_chunk(pt.chunk(*lohi), ct, policy)

    if workers > 1 and len(bounds) > 1:
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(run, bounds))
    else:
        parts = [run(b) for b in bounds]
    out: dict[str, np.ndarray] = {}
    for name in parts[0]:
        if name in ("tax_sess", "straddle_sess"):
            out[name] = np.concatenate([p[name] + lo for p, (lo, _) in zip(parts, bounds, strict=True)])
        else:
            out[name] = np.concatenate([p[name] for p in parts])
    return out
