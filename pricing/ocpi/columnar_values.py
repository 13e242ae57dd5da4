"""Exact column arithmetic for the columnar OCPI reader (:mod:`pricing.ocpi.columnar`).

Kept apart from the reader because both CDR shapes (2.1.1 and 2.2.x) use it: decimal128 values to
the integer units of :mod:`pricing.units` with the same half-up rounding (never through a float),
OCPI timestamps to epoch ms, list-column helpers and :class:`Checks`, which keeps for each row
the first reason it cannot go columnar.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pricing.flat_columns import valid_mask
from pricing.jsontext import MAX_JSON_DEPTH, too_deep

LIMIT = 1 << 62  # converted values must stay below this (int64 with room for sums)
SCAN_BYTES = 1 << 18  # bytes compared at a time by positions() / count_of()


# ---- bytes of a block ---------------------------------------------------------------------------


def positions(buf: np.ndarray, value: int) -> np.ndarray:
    """Indices (int64, ascending) of ``value`` in a uint8 array, :data:`SCAN_BYTES` at a time: a
    fresh mask as large as a 32 MB block costs more in page faults than the comparison (measured:
    17 ms median, 66 ms worst, against 8.6 / 9.4 ms in pieces)."""
    parts = [np.flatnonzero(buf[i : i + SCAN_BYTES] == value) + i for i in range(0, len(buf), SCAN_BYTES)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


NEST_CHUNK = 1024  # bytes whose '{' and '[' are counted together (< 256 per byte lane of a word)


def deep_lines(block: bytes, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The lines (indices) of a block whose JSON nests deeper than
    :data:`pricing.jsontext.MAX_JSON_DEPTH` (the per-record reader rejects them BAD_JSON: Python's
    json cannot be trusted that deep; such a line goes per record for that reject).

    A line nests at most as deep as it has ``{`` and ``[`` bytes (which differ only in bit 0x20),
    and has at most those of the :data:`NEST_CHUNK`-byte pieces it overlaps: counted per piece
    without an index per byte (~6 ms per 32 MB), eight pieces' bytes summed at once as the byte
    lanes of uint64 words. Only a line with more than MAX_JSON_DEPTH there is measured exactly
    (:func:`pricing.jsontext.too_deep`, the reader's own test)."""
    full = len(buf) // NEST_CHUNK * NEST_CHUNK
    counts = []
    for i in range(0, full, SCAN_BYTES):
        flags = (buf[i : min(i + SCAN_BYTES, full)] | 0x20) == 0x7B
        lanes = flags.view(np.uint64).reshape(-1, NEST_CHUNK // 8).sum(axis=1, dtype=np.uint64)
        counts.append(lanes.view(np.uint8).reshape(-1, 8).sum(axis=1, dtype=np.int64))
    counts.append(np.array([np.count_nonzero((buf[full:] | 0x20) == 0x7B)], np.int64))
    cum = np.r_[0, np.cumsum(np.concatenate(counts))]
    bound = cum[ends // NEST_CHUNK + 1] - cum[starts // NEST_CHUNK]
    cand = np.flatnonzero(bound > MAX_JSON_DEPTH).tolist()
    return np.array([i for i in cand if too_deep(block[starts[i] : ends[i]])], np.int64)


def count_of(buf: np.ndarray, value: int) -> int:
    """How many bytes of a uint8 array are ``value`` (:data:`SCAN_BYTES` at a time)."""
    steps = range(0, len(buf), SCAN_BYTES)
    return sum(int(np.count_nonzero(buf[i : i + SCAN_BYTES] == value)) for i in steps)


# ---- exact decimal arithmetic on decimal128 words ----------------------------------------------


def words(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(low uint64, high int64) words of a decimal128 array (nulls: whatever the buffer holds)."""
    n = len(arr)
    w = np.frombuffer(arr.buffers()[1], np.uint64, count=2 * (arr.offset + n))[2 * arr.offset :]
    return w[0::2].copy(), w[1::2].view(np.int64).copy()


def div_mod(lo: np.ndarray, hi: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """``u // d`` and ``u % d`` for u = hi·2^64 + lo, 0 ≤ hi < 2^16, d < 2^44 (16-bit limbs)."""
    dd = np.uint64(d)
    rem = hi.astype(np.uint64)  # < 2^16 < d
    q = np.zeros(len(lo), np.uint64)
    for shift in (48, 32, 16, 0):
        cur = (rem << np.uint64(16)) | ((lo >> np.uint64(shift)) & np.uint64(0xFFFF))
        qq = cur // dd
        rem = cur - qq * dd
        q |= qq << np.uint64(shift)
    return q.astype(np.int64), rem.astype(np.int64)


def half_up(q: np.ndarray, r: np.ndarray, d: int) -> np.ndarray:
    return q + (2 * r >= d)


def convert(arr: pa.Array, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """A decimal128(38, 18) column in integer units, rounded half-up like
    :func:`pricing.units.round_scaled`; kind ``mwh`` (kWh → mWh), ``ms`` (h → ms), ``milli``
    (kW → W, A → mA): non-negative only (a negative volume is the parser's reject); ``e6``
    (money, exact 6 decimals, else not ok): either sign, since a credit CDR's money is negative.
    Returns (values, ok)."""
    lo, hi = words(arr)
    neg = np.zeros(len(lo), bool)
    if kind == "e6":  # money may be negative (credit CDRs): work on |u|, negate at the end
        neg = hi < 0
        if neg.any():
            lo, hi = lo.copy(), hi.copy()
            nlo = (~lo[neg]) + np.uint64(1)
            hi[neg] = ~hi[neg] + (nlo == 0)
            lo[neg] = nlo
    ok = (hi >= 0) & (hi < (1 << 16))
    lo = np.where(ok, lo, 0).astype(np.uint64)
    hi = np.where(ok, hi, 0)
    if kind == "mwh":
        q, r = div_mod(lo, hi, 10**12)
        out = half_up(q, r, 10**12)
    elif kind == "e6":
        q, r = div_mod(lo, hi, 10**12)
        out, ok = q, ok & (r == 0)
    elif kind == "ms":  # u·36 / 10^13
        q, r = div_mod(lo, hi, 10**13)
        r36 = r * 36
        out = q * 36 + half_up(r36 // 10**13, r36 % 10**13, 10**13)
    elif kind == "milli":  # u / 10^15
        q, r = div_mod(lo, hi, 10**12)
        q2, r2 = np.divmod(q, 1000)
        out = half_up(q2, r2 * 10**12 + r, 10**15)
    else:
        raise ValueError(kind)
    ok &= out < LIMIT
    return np.where(ok, np.where(neg, -out, out), 0), ok


def exact(arr: pa.Array, i: int) -> Decimal:
    return arr[i].as_py()


# ---- timestamps ---------------------------------------------------------------------------------

_DIGITS19 = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]  # YYYY MM DD hh mm ss
_TENS = np.array([10, 1] * 7, np.int32)  # each digit's weight within its pair
_PUNCT_AT = np.array([4, 7, 13, 16])
_PUNCT = np.frombuffer(b"--::", np.uint8)
_MDAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int32)
_ZONE_DIGITS = {0: [], 1: [], 5: [-4, -3, -2, -1], 6: [-5, -4, -2, -1]}  # zone: its length
_SECONDS = 19  # YYYY-MM-DDTHH:MM:SS
MAX_FRACTION = 9  # fraction digits read here (more: the parser decides)
MAX_WIDTH = _SECONDS + 1 + MAX_FRACTION + 6


def _days(y: Any, mo: Any, d: Any) -> Any:
    """Days since 1970-01-01 of a proleptic Gregorian date (arrays or ints)."""
    yy = y - (mo <= 2)
    era = yy // 400
    yoe = yy - era * 400
    doy = (153 * (mo + np.where(mo > 2, -3, 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


MIN_MS = int(_days(1, 1, 1)) * 86_400_000  # datetime.min, 0001-01-01T00:00:00Z
END_MS = int(_days(10000, 1, 1)) * 86_400_000  # just after datetime.max


def parse_ts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """OCPI DateTime strings → (UTC epoch ms, ok), read exactly as the per-record parser
    (:func:`pricing.ocpi._common.parse_datetime`) reads them, for the forms
    ``YYYY-MM-DD(T|t| )HH:MM:SS``, then ``.`` or ``,`` and 1–9 fraction digits (half-up to the
    millisecond) or none, then ``Z``, ``z``, ``±HH:MM``, ``±HHMM`` or nothing (UTC), ASCII
    digits only. Other strings are not ok (the parser decides those records: it reads some more
    forms, such as no seconds or more fraction digits), and so is an instant the parser refuses
    or cannot hold (out of 0001–9999 after the offset, an offset of 24 h or more).

    The strings of one width are one (rows, width) byte matrix: a view of Arrow's data when they
    are all its bytes (the usual column: one form, nulls empty), else gathered. Each width is
    read in at most four layouts, told by its last bytes (``Z``, ``±HH:MM``, ``±HHMM``, none).
    Digits and fields in int32, the epoch milliseconds in int64."""
    n = len(arr)
    ms = np.zeros(n, np.int64)
    ok = np.zeros(n, bool)
    if n == 0:
        return ms, ok
    arr = arr.cast(pa.string()) if arr.type != pa.string() else arr
    off = np.frombuffer(arr.buffers()[1], np.int32, count=arr.offset + n + 1)[arr.offset :]
    buf = arr.buffers()[2]
    data = np.frombuffer(buf, np.uint8) if buf is not None else np.zeros(0, np.uint8)
    length = np.diff(off)
    cand = valid_mask(arr) & (length >= _SECONDS) & (length <= MAX_WIDTH)
    one = cand.all() and (length == length[0]).all()
    widths = [int(length[0])] if one else np.flatnonzero(np.bincount(length[cand])).tolist()
    for width in widths:
        sel = np.flatnonzero(cand & (length == width))
        if off[-1] - off[0] == len(sel) * width:  # no other string has a byte: one matrix
            m = data[off[0] : off[-1]].reshape(len(sel), width)
        else:
            m = data[off[:-1][sel].astype(np.intp)[:, None] + np.arange(width)]
        zone = _zone(m, width)
        groups = [(1, None)] if zone is None else [(z, np.flatnonzero(zone == z)) for z in (0, 1, 5, 6)]
        for z, rows in groups:
            if rows is not None and len(rows) in (0, len(sel)):
                if not len(rows):
                    continue
                rows = None  # one layout: the matrix as it is
            at = sel if rows is None else sel[rows]
            ms[at], ok[at] = _read(m if rows is None else m[rows], width, z)
    return np.where(ok, ms, 0), ok


def _zone(m: np.ndarray, width: int) -> np.ndarray | None:
    """Per row the length of its zone (1: ``Z``, 6: ``±HH:MM``, 5: ``±HHMM``, 0: none), told by
    its last bytes; None when every row ends with ``Z`` (the usual column)."""
    last = m[:, -1]
    z = (last == 90) | (last == 122)
    if z.all():
        return None
    zone = np.where(z, 1, 0).astype(np.int8)
    if width >= _SECONDS + 5:
        sign = m[:, -5]
        zone[~z & ((sign == 43) | (sign == 45))] = 5
    if width >= _SECONDS + 6:
        sign = m[:, -6]
        zone[~z & ((sign == 43) | (sign == 45)) & (m[:, -3] == 58)] = 6
    return zone


def _read(m: np.ndarray, width: int, zone: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of one layout (``width`` bytes, a zone of ``zone`` bytes as :func:`_zone` told it:
    its ``Z``, sign and colon are checked there) → (epoch ms, ok)."""
    core = width - zone  # the date, the time and the fraction
    k = core - _SECONDS - 1  # fraction digits
    if core != _SECONDS and not 1 <= k <= MAX_FRACTION:
        return np.zeros(len(m), np.int64), np.zeros(len(m), bool)
    k = max(k, 0)
    cols = [*_DIGITS19, *range(_SECONDS + 1, _SECONDS + 1 + k), *(width + i for i in _ZONE_DIGITS[zone])]
    dig = m[:, cols].astype(np.int32) - 48
    good = (dig.view(np.uint32) <= 9).all(axis=1)  # a byte below '0' wraps around
    good &= (m[:, _PUNCT_AT] == _PUNCT).all(axis=1)
    sep = m[:, 10]
    good &= ((sep | 32) == 116) | (sep == 32)  # T or t, or a space
    tens = dig[:, :14] * _TENS
    pair = tens[:, 0::2] + tens[:, 1::2]  # century, year of it, month, day, hour, minute, second
    y = pair[:, 0] * 100 + pair[:, 1]
    mo, d, hh, mi, ss = pair[:, 2], pair[:, 3], pair[:, 4], pair[:, 5], pair[:, 6]
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    mdays = _MDAYS[np.clip(mo, 0, 12)] + (leap & (mo == 2))
    good &= (y >= 1) & (mo >= 1) & (mo <= 12) & (d >= 1) & (d <= mdays) & (hh < 24) & (mi < 60) & (ss < 60)
    at = ((_days(y, mo, d).astype(np.int64) * 24 + hh) * 60 + mi) * 60_000 + ss * 1000
    frac: Any = 0
    if k:
        sep = m[:, _SECONDS]
        good &= (sep == 46) | (sep == 44)  # . or ,
        f = dig[:, 14 : 14 + k]
        w = (100, 10, 1)
        frac = sum(f[:, i] * w[i] for i in range(min(k, 3))) + (f[:, 3] >= 5 if k > 3 else 0)
    if zone > 1:  # ±HH:MM or ±HHMM
        o = dig[:, 14 + k :]
        minutes = (o[:, 0] * 10 + o[:, 1]) * 60 + o[:, 2] * 10 + o[:, 3]
        good &= minutes < 24 * 60
        at -= np.where(m[:, width - zone] == 45, -1, 1) * minutes.astype(np.int64) * 60_000
        good &= at >= MIN_MS  # the parser's datetime holds 0001-01-01 to 9999-12-31
    if k:
        at += frac
    if k or zone > 1:
        good &= at < END_MS
    return at, good


def one_chunk(col: Any) -> pa.Array:
    """A column as one Array: its only chunk as it is (``combine_chunks`` would copy it), or the
    chunks joined."""
    if isinstance(col, pa.ChunkedArray):
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


def list_parts(a: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(flattened values, parent index per value, length per list with 0 for null)."""
    values = a.flatten()
    parent = pc.list_parent_indices(a).to_numpy(zero_copy_only=False).astype(np.int64)
    lengths = pc.fill_null(pc.list_value_length(a), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    return values, parent, lengths


def per_parent_all(flags: np.ndarray, parent: np.ndarray, n: int) -> np.ndarray:
    bad = np.zeros(n, bool)
    bad[parent[~flags]] = True
    return ~bad


def dec6(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    words = np.empty(2 * len(values), np.int64)
    words[0::2] = values
    words[1::2] = values >> 63
    mask = None if valid.all() else pa.array(valid, pa.bool_()).buffers()[1]
    return pa.Array.from_buffers(pa.decimal128(38, 6), len(values), [mask, pa.py_buffer(words.tobytes())])


class Checks:
    """Which rows may go columnar, and for the others the first reason found."""

    def __init__(self, n: int) -> None:
        self.ok = np.ones(n, bool)
        self.why = np.full(n, "", object)

    def require(self, good: np.ndarray, reason: str) -> None:
        self.why[self.ok & ~good] = reason
        self.ok &= good
