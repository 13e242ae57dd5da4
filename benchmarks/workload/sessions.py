"""Sessions and their charging periods, generated vectorized one block at a time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks.workload.specs import CPO_WEIGHTS, EMSP_WEIGHTS, GRID, INF
from benchmarks.workload.world import World

# ---- sessions and charging periods (vectorized per block) ---------------------------------------


@dataclass
class Block:
    """One block of sessions (sorted by start) and their charging periods (``p_*``)."""

    seq: np.ndarray  # global session number (ids)
    cpo: np.ndarray
    loc: np.ndarray
    evse: np.ndarray
    emsp: np.ndarray
    contract: np.ndarray
    version: np.ndarray  # index into cfg.versions
    is_dc: np.ndarray
    start: np.ndarray  # UTC s
    end: np.ndarray
    sloppy: np.ndarray  # periods straddle a clock boundary (CPO priced by period start)
    straddles: np.ndarray  # ... and one actually does
    p_off: np.ndarray  # [n + 1] first period of each session
    p_start: np.ndarray
    p_dur: np.ndarray  # s
    p_park: np.ndarray  # bool
    p_energy_wh: np.ndarray
    p_pmin_w: np.ndarray  # -1 = not reported
    p_pmax_w: np.ndarray

    @property
    def n(self) -> int:
        return len(self.seq)


def _snap(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.int64) // GRID) * GRID


def _weights(values: tuple[float, ...], k: int) -> np.ndarray:
    w = np.array(values[:k], dtype=float)
    return w / w.sum()


def generate_block(world: World, block_idx: int, g0: int, n: int) -> Block:
    """The sessions ``g0 .. g0 + n - 1`` (block ``block_idx``) and their charging periods.

    The random draws happen in a fixed order (part of the determinism contract): the helpers are
    called in the order of the original single function and draw from the same stream.
    """
    cfg = world.cfg
    rng = np.random.default_rng([cfg.seed, 1, block_idx])
    ncpo = len(world.cpos)
    cpo = rng.choice(ncpo, size=n, p=_weights(CPO_WEIGHTS, ncpo))
    loc = rng.integers(0, world.n_loc, n)
    emsp = rng.choice(len(world.emsps), size=n, p=_weights(EMSP_WEIGHTS, len(world.emsps)))
    contract = rng.integers(0, world.n_contracts, n)
    version = rng.choice(len(cfg.versions), size=n, p=np.array(cfg.version_weights))
    is_dc = world.loc_is_dc[cpo, loc].astype(np.int64)
    evse = rng.integers(0, 1 << 30, n) % world.loc_evses[cpo, loc]
    start = _start_times(world, rng, n, cpo, is_dc)
    bp_t, bp_p, ti = _charging_curves(world, rng, n, cpo, loc, is_dc)
    tc = np.where(bp_t < INF, bp_t, -1).max(axis=1)  # end of charging (offset from the start)
    park = _parking(rng, n, is_dc)
    end = start + tc + park

    # sort the block by start; numbers follow that order
    o = np.lexsort((np.arange(n), start))
    cpo, loc, evse, emsp, contract, version, is_dc = (
        a[o] for a in (cpo, loc, evse, emsp, contract, version, is_dc)
    )
    start, end, park, tc, bp_t, bp_p, ti = start[o], end[o], park[o], tc[o], bp_t[o], bp_p[o], ti[o]
    seq = g0 + np.arange(n, dtype=np.int64)
    sloppy_draw = np.random.default_rng([cfg.seed, 2, block_idx]).random(n)

    st = _stages(start, end, park, tc, bp_t, bp_p, ti, cpo)
    cuts, kcut, k_volume, sloppy = _cuts(world, st, start, sloppy_draw)
    p_start, p_dur, p_park, p_energy, p_pmin, p_pmax, p_off = _periods(st, cuts, kcut, k_volume, is_dc)
    return Block(
        seq=seq,
        cpo=cpo,
        loc=loc,
        evse=evse,
        emsp=emsp,
        contract=contract,
        version=version,
        is_dc=is_dc,
        start=start,
        end=end,
        sloppy=sloppy,
        straddles=sloppy.copy(),
        p_off=p_off,
        p_start=p_start,
        p_dur=p_dur,
        p_park=p_park,
        p_energy_wh=p_energy,
        p_pmin_w=p_pmin,
        p_pmax_w=p_pmax,
    )


def _start_times(
    world: World, rng: np.random.Generator, n: int, cpo: np.ndarray, is_dc: np.ndarray
) -> np.ndarray:
    """UTC session starts: a day of the month and a local time of day from a daily profile."""
    cfg = world.cfg
    day = rng.integers(0, world.month_days, n)
    mix = rng.random(n)
    tod_h = np.where(
        is_dc == 1,
        np.where(mix < 0.8, rng.normal(14.0, 4.0, n), rng.uniform(0, 24, n)),
        np.where(
            mix < 0.35,
            rng.normal(8.5, 1.2, n),
            np.where(mix < 0.75, rng.normal(18.0, 1.8, n), rng.uniform(0, 24, n)),
        ),
    )
    tod = np.clip(tod_h, 0, 23.99) * 3600
    naive = world.month_start_naive + day * 86400 + tod.astype(np.int64)
    # a few sessions forced into the night of a DST change (inside the month)
    u = rng.random(n)
    shift = rng.uniform(-3.0 * 3600, 2.5 * 3600, n).astype(np.int64)
    for ci, days in enumerate(world.dst_days):
        if days:
            pick = (u < cfg.dst_rate) & (cpo == ci)
            naive = np.where(pick, days[0] + shift, naive)
    # out-of-month: start and end entirely in the previous / next month
    u = rng.random(n)
    prev_start = world.month_start_naive - 3 * 86400 + rng.integers(0, 12 * 3600, n)
    next_start = world.next_month_start_naive + 2 * 3600 + rng.integers(0, 24 * 3600, n)
    naive = np.where(u < cfg.out_of_month_rate / 2, prev_start, naive)
    naive = np.where((u >= cfg.out_of_month_rate / 2) & (u < cfg.out_of_month_rate), next_start, naive)
    naive = _snap(naive)
    start = np.empty(n, dtype=np.int64)
    for ci, z in enumerate(world.zones):
        m = cpo == ci
        start[m] = z.to_utc(naive[m])
    return start


K = 6  # breakpoints of a charging curve: up to 5 + one threshold crossing


def _charging_curves(
    world: World, rng: np.random.Generator, n: int, cpo: np.ndarray, loc: np.ndarray, is_dc: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Charging power over time: AC constant, DC tapering stages; breakpoints (time, power), tariff."""
    pnom = world.loc_pnom_w[cpo, loc]
    ac_car = np.array([3700, 7400, 11000, 22000])[rng.choice(4, size=n, p=[0.1, 0.3, 0.4, 0.2])]
    p_ac = (np.minimum(pnom, ac_car) * rng.uniform(0.85, 0.98, n)).astype(np.int64) // 100 * 100
    need_kwh = np.clip(rng.lognormal(np.log(14.0), 0.7, n), 1.0, 75.0)
    tc_ac = _snap(np.clip(need_kwh * 1000 / p_ac * 3600, 6 * 60, 11 * 3600)) + GRID
    dc_car = np.array([50000, 100000, 150000, 200000])[rng.choice(4, size=n, p=[0.15, 0.35, 0.3, 0.2])]
    p0_dc = np.maximum(
        50_000, (np.minimum(pnom, dc_car) * rng.uniform(0.9, 1.0, n)).astype(np.int64) // 100 * 100
    )
    tc_dc = _snap(rng.uniform(10 * 60, 50 * 60, n)) + GRID
    n_st = rng.integers(2, 4, n)  # DC taper stages (plus the min_power crossing)
    bp_t = np.full((n, K), INF, dtype=np.int64)
    bp_p = np.zeros((n, K), dtype=np.int64)
    frac = np.cumsum(rng.uniform(0.5, 1.5, (n, 4)), axis=1)
    frac = frac / frac[np.arange(n), n_st - 1][:, None]
    ratio = np.cumprod(rng.uniform(0.6, 0.92, (n, 4)), axis=1)
    for j in range(5):
        if j == 0:
            t_j = np.zeros(n, dtype=np.int64)
            p_j = np.where(is_dc == 1, p0_dc, p_ac)
        else:
            t_j = np.where(is_dc == 1, _snap(frac[:, j - 1] * tc_dc), tc_ac)
            p_j = np.where(is_dc == 1, (p0_dc * ratio[:, j - 1]).astype(np.int64) // 100 * 100, p_ac)
        valid = np.where(is_dc == 1, j <= n_st, j <= 1)
        bp_t[:, j] = np.where(valid, t_j, INF)
        bp_p[:, j] = np.where(valid, p_j, 0)
    for j in range(1, 5):  # strictly increasing after snapping to the grid
        bp_t[:, j] = np.where(bp_t[:, j] < INF, np.maximum(bp_t[:, j], bp_t[:, j - 1] + GRID), INF)
    ti = world.tariff_index(cpo, is_dc)
    bp_t, bp_p = _power_crossing(bp_t, bp_p, world.power_w[ti], n)
    return bp_t, bp_p, ti


def _power_crossing(
    bp_t: np.ndarray, bp_p: np.ndarray, thr: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The min_power crossing becomes a breakpoint of its own (power exactly at the limit)."""
    cross_t = np.full(n, INF, dtype=np.int64)
    for j in range(4):
        ok = (bp_t[:, j + 1] < INF) & (thr > 0) & (bp_p[:, j] > thr) & (bp_p[:, j + 1] < thr)
        span = np.maximum(bp_p[:, j] - bp_p[:, j + 1], 1)
        t_x = bp_t[:, j] + _snap((bp_p[:, j] - thr) * (bp_t[:, j + 1] - bp_t[:, j]) // span)
        at_start = ok & (t_x <= bp_t[:, j])  # within a grid step of a breakpoint: move that one
        at_end = ok & (t_x >= bp_t[:, j + 1])
        bp_p[:, j] = np.where(at_start, thr, bp_p[:, j])
        bp_p[:, j + 1] = np.where(at_end, thr, bp_p[:, j + 1])
        cross_t = np.where(ok & ~at_start & ~at_end, t_x, cross_t)
    bp_t[:, 5] = cross_t
    bp_p[:, 5] = np.where(cross_t < INF, thr, 0)
    order = np.argsort(bp_t, axis=1, kind="stable")
    return np.take_along_axis(bp_t, order, axis=1), np.take_along_axis(bp_p, order, axis=1)


def _parking(rng: np.random.Generator, n: int, is_dc: np.ndarray) -> np.ndarray:
    """Parking after charging (s): ~40 % of AC and ~10 % of DC sessions."""
    u = rng.random(n)
    park_ac = np.where(rng.random(n) < 0.5, rng.uniform(5 * 60, 3600, n), rng.uniform(3600, 12 * 3600, n))
    park = np.where(
        is_dc == 1,
        np.where(u < 0.10, rng.uniform(5 * 60, 40 * 60, n), 0),
        np.where(u < 0.40, park_ac, 0),
    )
    return _snap(park)


@dataclass
class _Stages:
    """Charging stages between breakpoints, then one parking stage (one row per stage)."""

    n: int  # sessions
    s_idx: np.ndarray  # session of the stage
    is_park: np.ndarray
    a: np.ndarray  # stage start (UTC s)
    b: np.ndarray  # stage end
    pa: np.ndarray  # power at a (W)
    pb: np.ndarray  # power at b
    d: np.ndarray  # duration (s)
    e: np.ndarray  # energy (Wh)
    cum: np.ndarray  # session energy before the stage (Wh)
    ti: np.ndarray  # tariff index
    phase: np.ndarray  # 0 charging, 1 parking
    cpo: np.ndarray


def _stages(
    start: np.ndarray,
    end: np.ndarray,
    park: np.ndarray,
    tc: np.ndarray,
    bp_t: np.ndarray,
    bp_p: np.ndarray,
    ti: np.ndarray,
    cpo: np.ndarray,
) -> _Stages:
    n = len(start)
    st_valid = np.zeros((n, K), dtype=bool)
    st_valid[:, :5] = bp_t[:, 1:] < INF
    st_valid[:, 5] = park > 0
    s_idx, s_col = np.nonzero(st_valid)
    is_park = s_col == 5
    col = np.minimum(s_col, 4)
    a = np.where(is_park, start[s_idx] + tc[s_idx], start[s_idx] + bp_t[s_idx, col])
    b = np.where(is_park, end[s_idx], start[s_idx] + bp_t[s_idx, np.minimum(col + 1, K - 1)])
    pa = np.where(is_park, 0, bp_p[s_idx, col])
    pb = np.where(is_park, 0, bp_p[s_idx, np.minimum(col + 1, K - 1)])
    d = b - a
    e = np.where(is_park, 0, (pa + pb) * d // 7200)
    sess_first = np.searchsorted(s_idx, np.arange(n))
    cum_all = np.cumsum(e) - e
    cum = cum_all - cum_all[sess_first][s_idx]
    return _Stages(
        n=n,
        s_idx=s_idx,
        is_park=is_park,
        a=a,
        b=b,
        pa=pa,
        pb=pb,
        d=d,
        e=e,
        cum=cum,
        ti=ti[s_idx],
        phase=is_park.astype(np.int64),
        cpo=cpo[s_idx],
    )


def _cuts(
    world: World, st: _Stages, start: np.ndarray, sloppy_draw: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cuts inside stages: clock times (3 days × 3 minutes), duration, kWh threshold.

    Returns the sorted cuts per stage (INF = none), the kWh cut, the energy the session has at that
    cut (0 where none) and the sloppy sessions (a clock cut dropped: they straddle a price change).
    """
    a, b, n = st.a, st.b, st.n
    ns = len(st.s_idx)
    cuts = np.full((ns, 11), INF, dtype=np.int64)
    mins = world.clock_min[st.ti, st.phase]  # (ns, 3)
    local_a = np.empty(ns, dtype=np.int64)
    for ci, z in enumerate(world.zones):
        m = st.cpo == ci
        local_a[m] = z.to_local(a[m])
    day0 = local_a - local_a % 86400
    naive_c = day0[:, None, None] + (np.arange(3) * 86400)[None, :, None] + mins[:, None, :] * 60
    clock_c = np.empty_like(naive_c)
    for ci, z in enumerate(world.zones):
        m = st.cpo == ci
        clock_c[m] = z.to_utc(naive_c[m])
    clock_c = clock_c.reshape(ns, 9)
    ok = (
        (np.broadcast_to(mins[:, None, :], (ns, 3, 3)).reshape(ns, 9) >= 0)
        & (clock_c > a[:, None])
        & (clock_c < b[:, None])
    )
    # straddling sessions: some with a clock cut lose those cuts (~straddle_rate of all sessions)
    has_clock = np.zeros(n, dtype=bool)
    np.logical_or.at(has_clock, st.s_idx, ok.any(axis=1))
    share = has_clock.sum()
    p_sloppy = min(1.0, world.cfg.straddle_rate * n / share) if share else 0.0
    sloppy = has_clock & (sloppy_draw < p_sloppy)
    ok &= ~sloppy[st.s_idx][:, None]
    cuts[:, :9] = np.where(ok, clock_c, INF)
    dlim = world.dur_s[st.ti, st.phase]
    dc_cut = start[st.s_idx] + dlim
    cuts[:, 9] = np.where((dlim > 0) & (dc_cut > a) & (dc_cut < b), dc_cut, INF)
    kthr = world.kwh_wh[st.ti]
    T = kthr - st.cum
    has_k = (st.phase == 0) & (kthr > 0) & (T > 0) & (T < st.e)
    dsafe = np.maximum(st.d, 1)
    esafe = np.maximum(st.e, 1)
    koff = ((T * dsafe + esafe - 1) // esafe + GRID - 1) // GRID * GRID
    koff = np.where(koff >= st.d, st.d - GRID, koff)
    has_k &= koff > 0
    kcut = np.where(has_k, a + koff, INF)
    cuts[:, 10] = kcut
    cuts.sort(axis=1)
    dup = np.zeros_like(cuts, dtype=bool)
    dup[:, 1:] = (cuts[:, 1:] == cuts[:, :-1]) & (cuts[:, 1:] < INF)
    cuts[dup] = INF
    cuts.sort(axis=1)
    return cuts, kcut, np.where(has_k, T, 0), sloppy


def _periods(
    st: _Stages, cuts: np.ndarray, kcut: np.ndarray, k_volume: np.ndarray, is_dc: np.ndarray
) -> tuple[np.ndarray, ...]:
    """The charging periods: (start, duration, parking?, energy, min power, max power, offsets)."""
    a, b, e, n = st.a, st.b, st.e, st.n
    ncut = (cuts < INF).sum(axis=1)
    # cumulative energy at each cut: pro rata by time, exactly the threshold at the kWh cut
    has_k = kcut < INF
    rel = np.where(cuts < INF, cuts - a[:, None], 0)
    V = e[:, None] * rel // np.maximum(st.d, 1)[:, None]
    Tm = k_volume[:, None]
    before = cuts < kcut[:, None]
    after = (cuts > kcut[:, None]) & (cuts < INF)
    V = np.where(cuts == kcut[:, None], Tm, np.where(before & has_k[:, None], np.minimum(V, Tm), V))
    V = np.where(after & has_k[:, None], np.maximum(V, Tm), V)

    npieces = ncut + 1
    rep = np.repeat(np.arange(len(st.s_idx)), npieces)
    first_piece = np.cumsum(npieces) - npieces
    k = np.arange(len(rep)) - first_piece[rep]
    last = k == ncut[rep]
    prev_col = np.maximum(k - 1, 0)
    this_col = np.minimum(k, cuts.shape[1] - 1)
    p_start = np.where(k == 0, a[rep], cuts[rep, prev_col])
    p_end = np.where(last, b[rep], cuts[rep, this_col])
    v0 = np.where(k == 0, 0, V[rep, prev_col])
    v1 = np.where(last, e[rep], V[rep, this_col])
    p_energy = v1 - v0
    p_park = st.is_park[rep]
    p_dur = p_end - p_start
    # DC power at the period edges (decreasing): MAX at the start, MIN at the end
    pa, pb = st.pa, st.pb
    span = np.maximum(st.d[rep], 1)
    pw0 = pa[rep] + (pb[rep] - pa[rep]) * (p_start - a[rep]) / span
    pw1 = pa[rep] + (pb[rep] - pa[rep]) * (p_end - a[rep]) / span
    dc_row = (is_dc[st.s_idx][rep] == 1) & ~p_park
    p_pmax = np.where(dc_row, np.ceil(np.round(pw0, 6) / 100).astype(np.int64) * 100, -1)
    p_pmin = np.where(dc_row, np.floor(np.round(pw1, 6) / 100).astype(np.int64) * 100, -1)
    sess_of_piece = st.s_idx[rep]
    p_off = np.searchsorted(sess_of_piece, np.arange(n + 1))
    return p_start, p_dur, p_park, p_energy, p_pmin, p_pmax, p_off
