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

    # local start: a day of the month and a time of day from a daily profile
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

    # charging: AC constant power, DC tapering stages (breakpoints in time and power)
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
    K = 6  # breakpoints: up to 5 + one threshold crossing
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
    # the min_power crossing becomes a breakpoint of its own (power exactly at the limit)
    ti = world.tariff_index(cpo, is_dc)
    thr = world.power_w[ti]
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
    bp_t = np.take_along_axis(bp_t, order, axis=1)
    bp_p = np.take_along_axis(bp_p, order, axis=1)
    tc = np.where(bp_t < INF, bp_t, -1).max(axis=1)  # end of charging (offset from the start)

    # parking after charging
    u = rng.random(n)
    park_ac = np.where(rng.random(n) < 0.5, rng.uniform(5 * 60, 3600, n), rng.uniform(3600, 12 * 3600, n))
    park = np.where(
        is_dc == 1,
        np.where(u < 0.10, rng.uniform(5 * 60, 40 * 60, n), 0),
        np.where(u < 0.40, park_ac, 0),
    )
    park = _snap(park)
    end = start + tc + park

    # sort the block by start; numbers follow that order
    o = np.lexsort((np.arange(n), start))
    cpo, loc, evse, emsp, contract, version, is_dc = (
        a[o] for a in (cpo, loc, evse, emsp, contract, version, is_dc)
    )
    start, end, park, tc, bp_t, bp_p, ti = start[o], end[o], park[o], tc[o], bp_t[o], bp_p[o], ti[o]
    seq = g0 + np.arange(n, dtype=np.int64)
    sloppy_draw = np.random.default_rng([cfg.seed, 2, block_idx]).random(n)

    # ---- stages: charging stages between breakpoints, then one parking stage
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
    st_ti = ti[s_idx]
    phase = is_park.astype(np.int64)
    cpo_s = cpo[s_idx]

    # ---- cuts inside stages: clock times (3 days × 3 minutes), duration, kWh threshold
    ns = len(s_idx)
    cuts = np.full((ns, 11), INF, dtype=np.int64)
    mins = world.clock_min[st_ti, phase]  # (ns, 3)
    local_a = np.empty(ns, dtype=np.int64)
    for ci, z in enumerate(world.zones):
        m = cpo_s == ci
        local_a[m] = z.to_local(a[m])
    day0 = local_a - local_a % 86400
    naive_c = day0[:, None, None] + (np.arange(3) * 86400)[None, :, None] + mins[:, None, :] * 60
    clock_c = np.empty_like(naive_c)
    for ci, z in enumerate(world.zones):
        m = cpo_s == ci
        clock_c[m] = z.to_utc(naive_c[m])
    clock_c = clock_c.reshape(ns, 9)
    ok = (
        (np.broadcast_to(mins[:, None, :], (ns, 3, 3)).reshape(ns, 9) >= 0)
        & (clock_c > a[:, None])
        & (clock_c < b[:, None])
    )
    # straddling sessions: some with a clock cut lose those cuts (~straddle_rate of all sessions)
    has_clock = np.zeros(n, dtype=bool)
    np.logical_or.at(has_clock, s_idx, ok.any(axis=1))
    share = has_clock.sum()
    p_sloppy = min(1.0, cfg.straddle_rate * n / share) if share else 0.0
    sloppy = has_clock & (sloppy_draw < p_sloppy)
    ok &= ~sloppy[s_idx][:, None]
    cuts[:, :9] = np.where(ok, clock_c, INF)
    dlim = world.dur_s[st_ti, phase]
    dc_cut = start[s_idx] + dlim
    cuts[:, 9] = np.where((dlim > 0) & (dc_cut > a) & (dc_cut < b), dc_cut, INF)
    kthr = world.kwh_wh[st_ti]
    T = kthr - cum
    has_k = (phase == 0) & (kthr > 0) & (T > 0) & (T < e)
    dsafe = np.maximum(d, 1)
    esafe = np.maximum(e, 1)
    koff = ((T * dsafe + esafe - 1) // esafe + GRID - 1) // GRID * GRID
    koff = np.where(koff >= d, d - GRID, koff)
    has_k &= koff > 0
    kcut = np.where(has_k, a + koff, INF)
    cuts[:, 10] = kcut
    cuts.sort(axis=1)
    dup = np.zeros_like(cuts, dtype=bool)
    dup[:, 1:] = (cuts[:, 1:] == cuts[:, :-1]) & (cuts[:, 1:] < INF)
    cuts[dup] = INF
    cuts.sort(axis=1)
    ncut = (cuts < INF).sum(axis=1)

    # cumulative energy at each cut: pro rata by time, exactly the threshold at the kWh cut
    rel = np.where(cuts < INF, cuts - a[:, None], 0)
    V = e[:, None] * rel // dsafe[:, None]
    Tm = np.where(has_k, T, 0)[:, None]
    before = cuts < kcut[:, None]
    after = (cuts > kcut[:, None]) & (cuts < INF)
    V = np.where(cuts == kcut[:, None], Tm, np.where(before & has_k[:, None], np.minimum(V, Tm), V))
    V = np.where(after & has_k[:, None], np.maximum(V, Tm), V)

    # ---- periods
    npieces = ncut + 1
    rep = np.repeat(np.arange(ns), npieces)
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
    p_park = is_park[rep]
    p_dur = p_end - p_start
    # DC power at the period edges (decreasing): MAX at the start, MIN at the end
    span = np.maximum(d[rep], 1)
    pw0 = pa[rep] + (pb[rep] - pa[rep]) * (p_start - a[rep]) / span
    pw1 = pa[rep] + (pb[rep] - pa[rep]) * (p_end - a[rep]) / span
    dc_row = (is_dc[s_idx][rep] == 1) & ~p_park
    p_pmax = np.where(dc_row, np.ceil(np.round(pw0, 6) / 100).astype(np.int64) * 100, -1)
    p_pmin = np.where(dc_row, np.floor(np.round(pw1, 6) / 100).astype(np.int64) * 100, -1)
    sess_of_piece = s_idx[rep]
    p_off = np.searchsorted(sess_of_piece, np.arange(n + 1))
    straddles = sloppy.copy()
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
        straddles=straddles,
        p_off=p_off,
        p_start=p_start,
        p_dur=p_dur,
        p_park=p_park,
        p_energy_wh=p_energy,
        p_pmin_w=p_pmin,
        p_pmax_w=p_pmax,
    )
