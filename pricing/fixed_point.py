"""Exact int64 fixed-point helpers of the kernel: bounded products and sums, segment sums,
first / last per session, step rounding and half-up division.

Every product and sum is bounded first; :class:`~pricing.errors.PricingOverflowError` (a
:class:`~pricing.errors.KernelRefusal`) is raised rather than wrapping or saturating.
"""

from __future__ import annotations

import numpy as np

from pricing.errors import PricingOverflowError

I64 = np.int64
MAX = 2**63 - 1
SAFE = 2**62  # bound for values that are summed a few times more
LIMB = 2**24  # second limb of price × quantity sums when one int64 might not hold them


def overflow(what: str) -> PricingOverflowError:
    return PricingOverflowError(
        f"{what} does not fit the kernel's int64 fixed point; nothing was wrapped or saturated. "
        "Hint: price these sessions with --engine reference (exact, unbounded)"
    )


def amax(x: np.ndarray | int) -> int:
    """max |x| (as a Python int; 0 for an empty array)."""
    if isinstance(x, int):
        return abs(x)
    if not x.size:
        return 0
    return max(int(x.max()), -int(x.min()))


def mul(x: np.ndarray, y: np.ndarray | int, what: str) -> np.ndarray:
    """x · y elementwise; PricingOverflowError if any product leaves int64."""
    if amax(x) * amax(y) <= MAX:
        return x * y
    ax, ay = np.abs(x), np.abs(y)
    if ((ax > 0) & (ay > MAX // np.maximum(ax, 1))).any():
        raise overflow(what)
    return x * y


def check_group_sums(x: np.ndarray, group: np.ndarray, n_groups: int, per_group: int, what: str) -> None:
    """Every group's sum of |x| stays below SAFE (exact: |x| is summed as two 32-bit halves)."""
    if amax(x) * max(per_group, 1) < SAFE:
        return
    ax = np.abs(x)
    hi = np.zeros(n_groups, I64)
    lo = np.zeros(n_groups, I64)
    np.add.at(hi, group, ax >> 32)
    np.add.at(lo, group, ax & 0xFFFFFFFF)
    if ((hi >= SAFE >> 32) | ((hi << 32) >= SAFE - lo)).any():
        raise overflow(what)


def floor_muldiv(e: np.ndarray, a: np.ndarray, d: np.ndarray, bound: int | None = None) -> np.ndarray:
    """floor(e·a/d) exactly for d > 0, 0 <= a <= d (energy pro rata); ``bound`` >= max |e·a|."""
    if (amax(e) * amax(a) if bound is None else bound) <= MAX:
        return e * a // d
    q, r = np.divmod(e, d)
    return mul(q, a, "energy × offset") + mul(r, a, "energy × offset") // d


def seg_sum(x: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Sums of consecutive segments ``x[off[i]:off[i+1]]`` (the caller bounded the total)."""
    cs = np.zeros(len(x) + 1, I64)
    np.cumsum(x, out=cs[1:])
    return cs[off[1:]] - cs[off[:-1]]


def first_of(mask: np.ndarray, sess: np.ndarray, n_s: int) -> np.ndarray:
    """Per session, the index of its first True element of ``mask``; -1 if none (``sess`` sorted)."""
    idx = np.flatnonzero(mask)
    out = np.full(n_s, -1, I64)
    if len(idx):
        s = sess[idx]
        keep = np.empty(len(s), bool)
        keep[0] = True
        np.not_equal(s[1:], s[:-1], out=keep[1:])
        out[s[keep]] = idx[keep]
    return out


def last_of(mask: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Per segment ``[off[i], off[i+1])``, the index of its last True element of ``mask``; -1 if none
    (a running max of the index)."""
    n = len(mask)
    if not n:
        return np.full(len(off) - 1, -1, I64)
    run = np.maximum.accumulate(np.where(mask, np.arange(n, dtype=I64), -1))
    end = off[1:] - 1
    last = run[np.maximum(end, 0)]
    return np.where((last >= off[:-1]) & (end >= off[:-1]), last, -1)


def round_up(q: np.ndarray, step: np.ndarray, exact_multiple_is_rounded: bool) -> np.ndarray:
    ok = (step > 0) & (q > 0)
    st = np.where(ok, step, 1)
    up = -(-q // st) * st if exact_multiple_is_rounded else (q // st + 1) * st
    return np.where(ok, up, q)


def round_e4(w: np.ndarray, r: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Half-up (away from zero on a tie) of W + R/D, 0 <= R < D: the reference ``round_half_up``."""
    up = (2 * r >= d).astype(I64)
    if w.dtype != object and (w >= 0).all():
        return w + up
    neg_r = np.where(r > 0, d - r, 0)
    neg = -((-w - (r > 0).astype(I64)) + (2 * neg_r >= d).astype(I64))
    return np.where(w >= 0, w + up, neg)


def half_up_div(n: np.ndarray, k: int) -> np.ndarray:
    """round_half_up(n / k) for ints (quantities: mWh → 1e-4 kWh with k = 100, ms → k = 360)."""
    q, r = np.divmod(np.abs(n), k)
    q = q + (2 * r >= k)
    return np.where(n < 0, -q, q)
