"""Step 4 of the kernel (:mod:`pricing.kernel`): exact sums per (session, category, tax class)
become excl / incl amounts, totals, min / max clamps and 2.3.0 tax lines.

Each sum is an exact pair ``W + R / D`` with ``0 <= R < D`` and ``D = D0 · Λ`` (see the kernel's
module docstring); sessions whose Λ would not fit int64 run the same code on Python ints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pricing.compile import D0, K_SCALED, K_UNKNOWN, N_CATEGORIES, VAT_ONE, Compiled
from pricing.fixed_point import I64, LIMB, MAX, mul, overflow, round_e4
from pricing.model import COST_CATEGORIES
from pricing.period_table import PeriodTable

CATEGORY_NAMES = COST_CATEGORIES


def settle_money(
    ct: Compiled, pt: PeriodTable, acc: np.ndarray, cnt: np.ndarray, acc_hi: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per (session, category, class) sums over D0 → rounded category amounts, totals after the
    clamps and the 2.3.0 tax lines, exactly (see the module docstring).

    Only the (category, class) columns used in the chunk are computed. Sessions whose common
    denominator would not fit int64 (``tax_included = YES`` tariffs with several unusual VAT
    rates) run the same code on Python ints (numpy object arrays)."""
    n_s = pt.n_sessions
    nc, ncc = ct.n_classes, ct.ncc
    acc = acc.reshape(N_CATEGORIES * ncc, n_s)
    cnt = cnt.reshape(N_CATEGORIES * ncc, n_s)
    used = np.flatnonzero(cnt.any(axis=1) & (np.arange(N_CATEGORIES * ncc) % ncc < nc))
    col_cat, col_cls = used // ncc, used % ncc
    present = cnt[used]  # (columns, sessions)
    a = acc[used]
    if acc_hi is None:
        q0 = a // D0
        r0 = a - q0 * D0
    else:  # the sum is a + hi · LIMB
        hi = acc_hi.reshape(N_CATEGORIES * ncc, n_s)[used]
        a1q = hi // D0
        t = (hi - a1q * D0) * LIMB + a  # < D0 · 2^24 + SAFE
        tq = t // D0
        r0 = t - tq * D0
        q0 = mul(a1q, LIMB, "a session's cost") + tq
    lam, big = denominators(ct, present, col_cls)
    prim, known = pt.s_primary, pt.s_taxes_known
    if not big.any():
        return money(ct, q0, r0, present, col_cat, col_cls, lam, prim, known)
    small = ~big
    x = money(
        ct,
        q0[:, small],
        r0[:, small],
        present[:, small],
        col_cat,
        col_cls,
        lam[small],
        prim[small],
        known[small],
    )
    y = money(
        ct,
        q0[:, big].astype(object),
        r0[:, big].astype(object),
        present[:, big],
        col_cat,
        col_cls,
        None,
        prim[big],
        known[big],
    )
    out: dict[str, np.ndarray] = {}
    for name in x:
        if name.startswith("tax_"):
            continue
        col = np.empty(n_s, x[name].dtype)
        col[small] = x[name]
        col[big] = y[name].astype(x[name].dtype)
        out[name] = col
    idx_small, idx_big = np.flatnonzero(small), np.flatnonzero(big)
    sess = np.concatenate([idx_small[x["tax_sess"]], idx_big[y["tax_sess"]]])
    order = np.argsort(sess, kind="stable")  # both halves are sorted by (session, rate)
    out["tax_sess"] = sess[order]
    out["tax_rate_e2"] = np.concatenate([x["tax_rate_e2"], y["tax_rate_e2"]])[order]
    out["tax_amount_e4"] = np.concatenate([x["tax_amount_e4"], y["tax_amount_e4"]])[order]
    return out


def denominators(ct: Compiled, present: np.ndarray, col_cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Λ per session (lcm of 10_000 and the present YES classes' 10_000 + vat_e2) and the
    sessions where D0 · Λ would be too large for int64 arithmetic."""
    classes = ct.classes
    growth = 2 + max([c.m for c in classes] + [VAT_ONE]) // VAT_ONE  # convert(): R < D · (1 + m/1e4)
    lam_cap = MAX // ((N_CATEGORIES * max(len(classes), 1) * 2 + 16) * growth) // D0
    lam = np.full(present.shape[1], VAT_ONE, I64)
    big = np.zeros(present.shape[1], bool)
    for c in sorted({int(c) for c in col_cls if classes[c].excl_kind == K_SCALED}):
        m = classes[c].m
        here = present[col_cls == c].any(axis=0)
        q = lam // np.gcd(lam, m)
        too = here & (q > lam_cap // m)
        big |= too
        lam = np.where(here & ~too, q * m, lam)
    return lam, big


def dm(x: np.ndarray, y: Any) -> tuple[np.ndarray, np.ndarray]:
    return x // y, x % y


@dataclass(frozen=True)
class Scale:
    """The common denominator ``D = D0 · Λ`` of one money computation, on int64 or on Python
    ints (``exact``: numpy object arrays, unbounded)."""

    exact: bool
    lam: Any  # Λ: an int, or per session
    dd: Any  # D0 · Λ

    def times(self, x: np.ndarray, y: int) -> np.ndarray:
        return x * y if self.exact else mul(x, y, "an amount × (1 + VAT)")

    def convert(self, q0: np.ndarray, r0: np.ndarray, num: int, den: int) -> tuple[np.ndarray, np.ndarray]:
        """A column's q0·D0 + r0 scaled by num/den, as (W, R) over D = D0 · Λ."""
        lam, dd = self.lam, self.dd
        if num == 1 and den == 1:
            return q0, r0 * lam
        x = self.times(q0, num)
        a = x // den
        r = ((x - a * den) * D0 + r0 * num) * (lam // den)  # < (den + num) · D0 · Λ / den
        q = r // dd
        return a + q, r - q * dd

    def normalize(self, w: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = r // self.dd
        return w + q, r - q * self.dd

    def rounded(self, w: np.ndarray, r: np.ndarray) -> np.ndarray:
        dd = self.dd
        out = round_e4(w, r, dd if np.ndim(dd) == 0 or w.ndim == 1 else dd[:, None])
        if self.exact:
            if len(out) and np.abs(out).max() > MAX:
                raise overflow("an amount")
            return out.astype(I64)
        return out


def money(
    ct: Compiled,
    q0: np.ndarray,
    r0: np.ndarray,
    present: np.ndarray,
    col_cat: np.ndarray,
    col_cls: np.ndarray,
    lam: np.ndarray | None,
    prim: np.ndarray,
    tk: np.ndarray,
) -> dict[str, np.ndarray]:
    """The money steps on int64 (``lam`` given) or on Python ints (``q0`` of dtype object), for
    the sums ``q0 · D0 + r0`` of the used (category, class) columns (rows of ``q0``)."""
    n_s = q0.shape[1]
    exact = q0.dtype == object
    classes = [ct.classes[c] for c in col_cls.tolist()]
    exk = [c.excl_kind for c in classes]
    ink = [c.incl_kind for c in classes]
    ms = [c.m for c in classes]
    if exact:  # Λ in Python ints, unbounded
        lam = np.full(n_s, VAT_ONE, object)
        for k, kind in enumerate(exk):
            if kind == K_SCALED:
                lam = np.where(present[k], lam // np.gcd(lam, ms[k]) * ms[k], lam)
    assert lam is not None
    if not exact and n_s and (lam == lam[0]).all():  # one denominator: scalar arithmetic
        lam = int(lam[0])
    sc = Scale(exact, lam, D0 * lam)
    ex = [
        sc.convert(q0[k], r0[k], VAT_ONE, ms[k]) if exk[k] == K_SCALED else sc.convert(q0[k], r0[k], 1, 1)
        for k in range(len(classes))
    ]
    inc = [
        sc.convert(q0[k], r0[k], ms[k], VAT_ONE) if ink[k] == K_SCALED else sc.convert(q0[k], r0[k], 1, 1)
        for k in range(len(classes))
    ]
    ex_known = np.array([x != K_UNKNOWN for x in exk], bool)
    in_known = np.array([x != K_UNKNOWN for x in ink], bool)
    out, totals = category_amounts(sc, n_s, q0.dtype, ex, inc, ex_known, in_known, present, col_cat, tk)
    tex_w, tex_r, tex_unknown, tin_w, tin_r, tin_unknown = totals
    how_ex = how_in = np.zeros(n_s, I64)
    if ct.lim_has.any():  # clamps: the primary tariff's limits
        tex_w, tex_r, how_ex = clamp_total(sc, ct, prim, tex_w, tex_r, tex_unknown, 0, 2)
        tin_w, tin_r, how_in = clamp_total(sc, ct, prim, tin_w, tin_r, tin_unknown, 1, 3)
    # nothing to pay: 0 incl. VAT whatever the VAT (2.1.1's free-of-charge example)
    zw, zr = sc.normalize(tex_w, tex_r)
    free = tin_unknown & ~tex_unknown & (zw == 0) & (zr == 0)
    if free.any():
        tin_unknown = tin_unknown & ~free
        tin_w, tin_r = np.where(free, 0, tin_w), np.where(free, 0, tin_r)
    out["total_excl_e4"] = sc.rounded(tex_w, tex_r)
    out["total_excl_null"] = tex_unknown
    out["total_incl_e4"] = sc.rounded(tin_w, tin_r)
    out["total_incl_null"] = tin_unknown
    how = np.where(how_ex != 0, how_ex, how_in)
    out["min_max"] = how
    scale = ~tex_unknown & ~tin_unknown & (how != 0)
    out.update(tax_line_amounts(sc, ct, prim, classes, ex, inc, present, scale, (tex_w, tex_r, tin_w, tin_r)))
    return out


def category_amounts(
    sc: Scale,
    n_s: int,
    dtype: Any,
    ex: list[tuple[np.ndarray, np.ndarray]],
    inc: list[tuple[np.ndarray, np.ndarray]],
    ex_known: np.ndarray,
    in_known: np.ndarray,
    present: np.ndarray,
    col_cat: np.ndarray,
    tk: np.ndarray,
) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, ...]]:
    """Per cost category the rounded excl / incl amounts and their null masks, and the exact
    session totals (excl W, R, unknown, incl W, R, unknown) before clamps."""
    zero = np.zeros(n_s, dtype)
    no = np.zeros(n_s, bool)
    cat_w: dict[str, list[np.ndarray]] = {"ex": [], "in": []}
    cat_r: dict[str, list[np.ndarray]] = {"ex": [], "in": []}
    cat_unknown: dict[str, list[np.ndarray]] = {"ex": [], "in": []}
    out: dict[str, np.ndarray] = {}
    for c, name in enumerate(CATEGORY_NAMES):
        cols = np.flatnonzero(col_cat == c)
        if not len(cols):
            out[f"{name}_excl_e4"] = np.zeros(n_s, I64)
            out[f"{name}_excl_null"] = no
            out[f"{name}_incl_e4"] = np.zeros(n_s, I64)
            out[f"{name}_incl_null"] = ~tk
            for side in ("ex", "in"):
                cat_w[side].append(zero)
                cat_r[side].append(zero)
                cat_unknown[side].append(no)
            continue
        hl = present[cols[0]] if len(cols) == 1 else present[cols].any(axis=0)
        for side, parts, known, label in (("ex", ex, ex_known, "excl"), ("in", inc, in_known, "incl")):
            k = cols[known[cols]].tolist()
            if len(k) == 1:  # convert() returns 0 <= R < D
                w, r = parts[k[0]]
            elif k:
                w, r = sc.normalize(sum(parts[i][0] for i in k), sum(parts[i][1] for i in k))
            else:
                w, r = zero, zero
            u = cols[~known[cols]]
            unknown = present[u].any(axis=0) if len(u) else no
            cat_w[side].append(w)
            cat_r[side].append(r)
            cat_unknown[side].append(unknown)
            out[f"{name}_{label}_e4"] = np.where(hl, sc.rounded(w, r), 0)
            out[f"{name}_{label}_null"] = hl & unknown if side == "ex" else np.where(hl, unknown, ~tk)
    tex_w, tex_r = sc.normalize(sum(cat_w["ex"]), sum(cat_r["ex"]))
    tin_w, tin_r = sc.normalize(sum(cat_w["in"]), sum(cat_r["in"]))
    tex_unknown = np.logical_or.reduce(cat_unknown["ex"])
    tin_unknown = np.logical_or.reduce(cat_unknown["in"])
    return out, (tex_w, tex_r, tex_unknown, tin_w, tin_r, tin_unknown)


def clamp_total(
    sc: Scale,
    ct: Compiled,
    prim: np.ndarray,
    w: np.ndarray,
    r: np.ndarray,
    unknown: np.ndarray,
    lo_i: int,
    hi_i: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A total clamped to the primary tariff's min / max price (rows ``lo_i`` / ``hi_i`` of
    ``ct.lim``); per session 1 where the minimum applied, 2 where the maximum did."""
    lim, lim_has = ct.lim[:, prim], ct.lim_has[:, prim]
    if sc.exact:
        lim = lim.astype(object)
    dd = sc.dd
    lw, lr = dm(lim[lo_i], 100)
    hw, hr = dm(lim[hi_i], 100)
    lr, hr = lr * (dd // 100), hr * (dd // 100)
    below = lim_has[lo_i] & ~unknown & ((w < lw) | ((w == lw) & (r < lr)))
    above = lim_has[hi_i] & ~unknown & ~below & ((w > hw) | ((w == hw) & (r > hr)))
    w = np.where(below, lw, np.where(above, hw, w))
    r = np.where(below, lr, np.where(above, hr, r))
    return w, r, np.where(below, 1, np.where(above, 2, 0)).astype(I64)


def tax_line_amounts(
    sc: Scale,
    ct: Compiled,
    prim: np.ndarray,
    classes: list[Any],
    ex: list[tuple[np.ndarray, np.ndarray]],
    inc: list[tuple[np.ndarray, np.ndarray]],
    present: np.ndarray,
    clamped: np.ndarray,
    totals: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> dict[str, np.ndarray]:
    """2.3.0 tax lines: per VAT rate, Σ (incl − excl) over the lines that know both, scaled to
    the clamped total where a min / max applied (``clamped``)."""
    n_s = len(prim)
    v23 = ct.v23[prim]
    tl = [c.tax_line for c in classes]
    vat = [c.vat_e2 for c in classes]
    rates = sorted({v for v, ok in zip(vat, tl, strict=True) if ok}) if v23.any() else []
    out: dict[str, np.ndarray] = {}
    out["tax_sess"] = out["tax_rate_e2"] = out["tax_amount_e4"] = np.zeros(0, I64)
    if not rates:
        return out
    per_w, per_r, per_here = [], [], []
    for rate in rates:
        k = [i for i in range(len(classes)) if tl[i] and vat[i] == rate]
        w, r = sc.normalize(sum(inc[i][0] - ex[i][0] for i in k), sum(inc[i][1] - ex[i][1] for i in k))
        per_w.append(w)
        per_r.append(r)
        per_here.append(present[k].any(axis=0))
    tw, tr, here = np.stack(per_w, 1), np.stack(per_r, 1), np.stack(per_here, 1)
    amt = sc.rounded(tw, tr)
    scale = v23 & clamped & here.any(axis=1)
    if scale.any():
        d_arr = np.broadcast_to(np.asarray(sc.dd, dtype=object if sc.exact else I64), (n_s,))
        amt = scaled_taxes(amt, tw, tr, here, scale, d_arr, *totals)
    rs, rr = np.nonzero(here & v23[:, None])
    out["tax_sess"] = rs.astype(I64)
    out["tax_rate_e2"] = np.array(rates, I64)[rr]
    out["tax_amount_e4"] = amt[rs, rr]
    return out


def scaled_taxes(amt, tw, tr, here, scale, dd, tex_w, tex_r, tin_w, tin_r) -> np.ndarray:
    """Reference ``scale_taxes`` for the clamped sessions: amount · target / total, rounded
    half-up — in Python ints (numpy object arrays; only these sessions)."""
    rows = np.flatnonzero(scale)
    d = dd[rows].astype(object)[:, None]
    a = tw[rows].astype(object) * d + tr[rows].astype(object)  # (k, rates) numerators over D
    a = np.where(here[rows], a, 0)
    total = a.sum(axis=1)[:, None]
    target = (
        (tin_w[rows].astype(object) - tex_w[rows].astype(object)) * d[:, 0]
        + (tin_r[rows].astype(object) - tex_r[rows].astype(object))
    )[:, None]
    nonzero = total != 0
    num = a * target
    den = np.where(nonzero, total * d, 1)
    sign = np.where((num < 0) != (den < 0), -1, 1)
    num, den = abs(num), abs(den)
    q = (2 * num + den) // (2 * den)
    scaled_amt = np.where(here[rows], np.where(nonzero, sign * q, amt[rows].astype(object)), 0)
    if np.abs(scaled_amt).max() > MAX:
        raise overflow("a tax amount")
    out = amt.copy()
    out[rows] = scaled_amt.astype(I64)
    return out
