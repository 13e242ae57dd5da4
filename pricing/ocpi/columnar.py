"""Nested OCPI CDRs (NDJSON) → the flat layout of :mod:`pricing.flat`, read as columns.

:func:`read_ndjson_flat` reads an NDJSON file of OCPI 2.2.1 / 2.3.0 CDRs with
``pyarrow.json.read_json`` (an explicit schema; every number as ``decimal128(38, 18)``, never a
float), block by block (64 MB, cut at line ends), explodes ``charging_periods`` and pivots the
``dimensions`` by type into the flat volume columns with the rounding of :mod:`pricing.units`
(half-up, from the exact decimal, after summing same-type volumes like the parser).

Only records that the per-record parser (:func:`pricing.ocpi.parse_cdr`) would certainly accept
and convert to the same canonical CDR go columnar. Everything else becomes a fallback
:class:`~pricing.io.Record` (decoded exactly as :func:`pricing.io.read_records` would) for the
per-record path: broken or odd lines (not one ``{…}`` object, invalid UTF-8, the text ``null``
anywhere, a lone ``\\r``), a block that pyarrow refuses (bisected down to a few lines), a missing
or unexpected field value, an unknown dimension type, a negative volume, end before start,
periods out of order or after the end, embedded ``tariffs``, credit CDRs, a version other than the
file's, 2.1.1 CDRs, a repeated ``cdr_id`` right after the same id, values too large for the
integer units. The first JSON object of the file always falls back: it fixes the file's OCPI
version in the per-record path. Each non-blank line is counted exactly once:
``table CDRs + len(fallback) == records read by read_records``.

:func:`pricing.batch.price_ndjson_columnar` prices such a file and returns the same
:class:`~pricing.results.BatchResult` as ``price_records(iter_sources([path]), …, engine="kernel")``;
the reasons each fallback Record left the columnar path are counted (``reasons``) and reported
in the result's ``fallbacks``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from pricing.flat import arrow_schema
from pricing.io import Record, _read_ndjson
from pricing.ocpi import CDR_MONEY, detect_version
from pricing.units import hours_to_ms, kwh_to_mwh

BLOCK_BYTES = 64 << 20
BISECT_LINES = 8  # a failing piece this small is decoded line by line
SCALE = 18
LIMIT = 1 << 62  # converted values must stay below this (int64 with room for sums)

_DEC = pa.decimal128(38, SCALE)
_S = pa.string()
_PRICE = pa.struct(
    [
        ("excl_vat", _DEC),
        ("incl_vat", _DEC),
        ("before_taxes", _DEC),
        ("after_taxes", _DEC),
        (
            "taxes",
            pa.list_(
                pa.struct([("name", _S), ("account_number", _S), ("percentage", _DEC), ("amount", _DEC)])
            ),
        ),
    ]
)
MONEY = CDR_MONEY
SCHEMA = pa.schema(
    [
        ("country_code", _S),
        ("party_id", _S),
        ("id", _S),
        ("start_date_time", _S),
        ("end_date_time", _S),
        ("session_id", _S),
        (
            "cdr_token",
            pa.struct(
                [("country_code", _S), ("party_id", _S), ("uid", _S), ("type", _S), ("contract_id", _S)]
            ),
        ),
        ("auth_method", _S),
        ("authorization_reference", _S),
        (
            "cdr_location",
            pa.struct([("id", _S), ("country", _S), ("evse_uid", _S), ("evse_id", _S), ("connector_id", _S)]),
        ),
        ("meter_id", _S),
        ("currency", _S),
        ("tariffs", pa.list_(pa.struct([("id", _S)]))),
        (
            "charging_periods",
            pa.list_(
                pa.struct(
                    [
                        ("start_date_time", _S),
                        ("dimensions", pa.list_(pa.struct([("type", _S), ("volume", _DEC)]))),
                        ("tariff_id", _S),
                    ]
                )
            ),
        ),
        *((m, _PRICE) for m in MONEY),
        ("total_energy", _DEC),
        ("total_time", _DEC),
        ("total_parking_time", _DEC),
        ("remark", _S),
        ("invoice_reference_id", _S),
        ("credit", pa.bool_()),
        ("credit_reference_id", _S),
        ("home_charging_compensation", pa.bool_()),
        ("last_updated", _S),
    ]
)
_PARSE = pj.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore")

# CdrDimensionType of 2.2.1 / 2.3.0 (identical); the code is the index
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
)
_SUMMED = {0: "energy_mwh", 1: "time_ms", 2: "parking_ms", 3: "reservation_ms"}
_EXTREME = {
    4: ("min_power_w", False),
    5: ("max_power_w", True),
    6: ("min_current_ma", False),
    7: ("max_current_ma", True),
}


# ---- exact decimal arithmetic on decimal128 words ----------------------------------------------


def _words(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(low uint64, high int64) words of a decimal128 array (nulls: whatever the buffer holds)."""
    n = len(arr)
    w = np.frombuffer(arr.buffers()[1], np.uint64, count=2 * (arr.offset + n))[2 * arr.offset :]
    return w[0::2].copy(), w[1::2].view(np.int64).copy()


def _divmod(lo: np.ndarray, hi: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
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


def _half(q: np.ndarray, r: np.ndarray, d: int) -> np.ndarray:
    return q + (2 * r >= d)


def convert(arr: pa.Array, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """A non-negative decimal128(38, 18) column in integer units, rounded half-up like
    :func:`pricing.units.round_scaled`; kind ``mwh`` (kWh → mWh), ``ms`` (h → ms), ``milli``
    (kW → W, A → mA), ``e6`` (exact 6 decimals, else not ok). Returns (values, ok)."""
    lo, hi = _words(arr)
    ok = (hi >= 0) & (hi < (1 << 16))
    lo = np.where(ok, lo, 0).astype(np.uint64)
    hi = np.where(ok, hi, 0)
    if kind == "mwh":
        q, r = _divmod(lo, hi, 10**12)
        out = _half(q, r, 10**12)
    elif kind == "e6":
        q, r = _divmod(lo, hi, 10**12)
        out, ok = q, ok & (r == 0)
    elif kind == "ms":  # u·36 / 10^13
        q, r = _divmod(lo, hi, 10**13)
        r36 = r * 36
        out = q * 36 + _half(r36 // 10**13, r36 % 10**13, 10**13)
    elif kind == "milli":  # u / 10^15
        q, r = _divmod(lo, hi, 10**12)
        q2, r2 = np.divmod(q, 1000)
        out = _half(q2, r2 * 10**12 + r, 10**15)
    else:
        raise ValueError(kind)
    ok &= out < LIMIT
    return np.where(ok, out, 0), ok


def _exact(arr: pa.Array, i: int) -> Decimal:
    return arr[i].as_py()


# ---- timestamps ---------------------------------------------------------------------------------

_DIGITS20 = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])


def parse_ts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``YYYY-MM-DDTHH:MM:SSZ`` or ``…SS.mmmZ`` strings → (UTC epoch ms, ok). Any other form
    (offsets, other fractions, no ``Z``) is not ok: the parser decides those records."""
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
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    for width in (20, 24):
        sel = np.flatnonzero(valid & (length == width))
        if not len(sel):
            continue
        m = data[off[:-1][sel, None] + np.arange(width)].astype(np.int64)
        dig = m[:, _DIGITS20] - 48
        good = ((dig >= 0) & (dig <= 9)).all(axis=1)
        good &= (m[:, 4] == 45) & (m[:, 7] == 45) & (m[:, 10] == 84) & (m[:, 13] == 58) & (m[:, 16] == 58)
        good &= m[:, width - 1] == 90
        frac = np.zeros(len(sel), np.int64)
        if width == 24:
            fd = m[:, 20:23] - 48
            good &= (m[:, 19] == 46) & ((fd >= 0) & (fd <= 9)).all(axis=1)
            frac = fd[:, 0] * 100 + fd[:, 1] * 10 + fd[:, 2]
        y = dig[:, 0] * 1000 + dig[:, 1] * 100 + dig[:, 2] * 10 + dig[:, 3]
        mo = dig[:, 4] * 10 + dig[:, 5]
        d = dig[:, 6] * 10 + dig[:, 7]
        hh = dig[:, 8] * 10 + dig[:, 9]
        mi = dig[:, 10] * 10 + dig[:, 11]
        ss = dig[:, 12] * 10 + dig[:, 13]
        leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
        mdays = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(mo, 0, 12)]
        mdays = mdays + (leap & (mo == 2))
        good &= (
            (y >= 1) & (mo >= 1) & (mo <= 12) & (d >= 1) & (d <= mdays) & (hh < 24) & (mi < 60) & (ss < 60)
        )
        yy = y - (mo <= 2)
        era = yy // 400
        yoe = yy - era * 400
        doy = (153 * (mo + np.where(mo > 2, -3, 9)) + 2) // 5 + d - 1
        doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
        days = era * 146097 + doe - 719468
        ms[sel] = ((days * 24 + hh) * 60 + mi) * 60_000 + ss * 1000 + frac
        ok[sel] = good
    return np.where(ok, ms, 0), ok


# ---- reading ------------------------------------------------------------------------------------


def _blocks(path: str, size: int) -> Iterator[bytes]:
    """The file in pieces of about ``size`` bytes, each ending with ``\\n``."""
    carry = b""
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(size)
            if not chunk:
                break
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            carry = data[cut:]
            yield data[:cut]
    if carry:
        yield carry + b"\n"


def _line_record(raw: bytes, src: str, n: int) -> Record | None:
    """The Record :func:`pricing.io.read_records` makes of line ``n`` (None for a blank line)."""
    for rec in _read_ndjson(raw, src):
        err = rec.error
        if err is not None:
            err = type(err)(err.code, err.message, err.source, n, err.record_id, err.path, err.severity)
        return Record(rec.source, n, rec.obj, err)
    return None


class _State:
    def __init__(self, src: str, reasons: Counter[str] | None) -> None:
        self.src = src
        self.file_version: str | None = None  # set by the first JSON object (per-record path)
        self.last_id: str | None = None
        self.line0 = 0  # lines before the current block
        self.tables: list[pa.Table] = []
        self.fallback: list[Record] = []
        self.reasons: Counter[str] = Counter() if reasons is None else reasons


def read_ndjson_flat(
    path: str | os.PathLike[str], block_bytes: int = BLOCK_BYTES, reasons: Counter[str] | None = None
) -> tuple[pa.Table, list[Record]]:
    """(flat table of the columnar CDRs, per-record fallback Records), both in line order.

    The table has the columns of :func:`pricing.flat.arrow_schema` plus ``line`` (int64, the
    CDR's 1-based line number, on each of its rows). ``reasons``, when given, counts the fallback
    Records by why they left the columnar path (``"first record"``, ``"credit"``, …).
    """
    src = str(path)
    st = _State(src, reasons)
    for block in _blocks(src, block_bytes):
        _do_block(st, block)
    schema = arrow_schema().append(pa.field("line", pa.int64()))
    table = pa.concat_tables(st.tables) if st.tables else schema.empty_table()
    st.fallback.sort(key=lambda r: r.line or 0)
    return table, st.fallback


def _do_block(st: _State, block: bytes) -> None:
    buf = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts = np.r_[0, ends[:-1] + 1]
    n_lines = len(ends)
    line0 = st.line0
    st.line0 += n_lines
    if b"\r" in block and _lone_cr(buf):
        # a lone \r is a line break for splitlines(): let the reader's own logic count
        parts = block.splitlines()
        for i, raw in enumerate(parts):
            rec = _fallback_raw(st, raw, line0 + i + 1, "lone carriage return in the block")
            if (
                st.file_version is None
                and rec is not None
                and rec.error is None
                and isinstance(rec.obj, dict)
            ):
                st.file_version = _detect(rec.obj)
        st.line0 = line0 + len(parts)
        return
    why = _python_lines(st, block, buf, starts, ends, line0)
    lines = np.flatnonzero(why == "")
    work = block
    if len(lines) < n_lines:
        arr = bytearray(block)
        for i in np.flatnonzero(why != "").tolist():
            arr[starts[i] : ends[i]] = b" " * int(ends[i] - starts[i])
            _fallback_raw(st, block[starts[i] : ends[i]], line0 + i + 1, str(why[i]))
        work = bytes(arr)
    if not len(lines):
        return
    for table, idx in _parse(work, starts, ends, lines):
        if table is None:
            # a 2.1.1 file's money is plain numbers, not the Price objects of the schema
            why_not = "OCPI 2.1.1" if st.file_version == "2.1.1" else "pyarrow could not read the line"
            for i in idx.tolist():
                _fallback_raw(st, block[starts[i] : ends[i]], line0 + i + 1, why_not)
            continue
        bad, flat = _flatten(table, line0 + idx + 1, st)
        for k in np.flatnonzero(bad != "").tolist():
            i = int(idx[k])
            _fallback_raw(st, block[starts[i] : ends[i]], line0 + i + 1, str(bad[k]))
        if flat is not None and flat.num_rows:
            st.tables.append(flat)


def _lone_cr(buf: np.ndarray) -> bool:
    """Whether some \r of the block is not followed by \n."""
    cr = np.flatnonzero(buf == 13)
    return bool((cr + 1 >= len(buf)).any() or (buf[np.minimum(cr + 1, len(buf) - 1)] != 10).any())


def _python_lines(
    st: _State, block: bytes, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, line0: int
) -> np.ndarray:
    """Per line of the block, why it is decoded in Python ("" for none): not one ``{…}`` object
    (blank lines are dropped there), an explicit null, invalid UTF-8, or the file's first JSON
    object (it fixes the file's version)."""
    n_lines = len(ends)
    why = np.full(n_lines, "", object)

    def mark(i: int, reason: str) -> None:
        if not why[i]:
            why[i] = reason

    last = ends - 1
    last_c = buf[np.maximum(last, 0)]
    last = np.where((last_c == 13) & (last >= starts), last - 1, last)
    nonempty = last >= starts
    shape = nonempty & (buf[np.minimum(starts, len(buf) - 1)] == 123) & (buf[np.maximum(last, 0)] == 125)
    why[~shape] = "not one JSON object on the line"
    at = block.find(b"null")  # an explicit null: key presence is not visible in columns
    while at >= 0:
        i = int(np.searchsorted(ends, at))
        mark(i, "explicit null")
        at = block.find(b"null", int(ends[i]) + 1)
    pos = 0  # invalid UTF-8: those lines only (Python's decoder says where)
    view = memoryview(block)
    while pos < len(block):
        try:
            str(view[pos:], "utf-8")
            break
        except UnicodeDecodeError as exc:
            i = int(np.searchsorted(ends, pos + exc.start))
            mark(i, "invalid UTF-8")
            pos = int(ends[i]) + 1
    if st.file_version is None:  # the first JSON object fixes the file's version: per-record
        for i in range(n_lines):
            mark(i, "first record (fixes the file's OCPI version)")
            rec = _line_record(block[starts[i] : ends[i]], st.src, line0 + i + 1)
            if rec is not None and rec.error is None and isinstance(rec.obj, dict):
                st.file_version = _detect(rec.obj)
                break
    return why


def _fallback_raw(st: _State, raw: bytes, n: int, reason: str) -> Record | None:
    rec = _line_record(raw, st.src, n)
    if rec is not None:
        st.fallback.append(rec)
        st.reasons[reason] += 1
    return rec


def _detect(obj: dict[str, Any]) -> str:
    return detect_version(obj, "cdr")


def _parse(
    work: bytes, starts: np.ndarray, ends: np.ndarray, lines: np.ndarray
) -> Iterator[tuple[Any, np.ndarray]]:
    """Arrow tables over runs of ``lines`` (row k = line lines[k]); a run that does not parse is
    halved until it does, or yielded as (None, lines) once it is small."""
    todo = [lines]
    while todo:
        part = todo.pop()
        lo, hi = int(starts[part[0]]), int(ends[part[-1]]) + 1
        try:
            opts = pj.ReadOptions(use_threads=True, block_size=max(1 << 20, min(hi - lo + 1, 16 << 20)))
            table = pj.read_json(
                pa.BufferReader(pa.py_buffer(work).slice(lo, hi - lo)),
                read_options=opts,
                parse_options=_PARSE,
            )
            if table.num_rows != len(part):
                raise ValueError("row count differs from line count")
            yield table, part
        except (pa.ArrowException, ValueError):
            if len(part) <= BISECT_LINES:
                yield None, part
            else:
                mid = len(part) // 2
                todo.append(part[mid:])
                todo.append(part[:mid])


# ---- nested → flat ------------------------------------------------------------------------------


def _arr(col: Any) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _valid(a: pa.Array) -> np.ndarray:
    return a.is_valid().to_numpy(zero_copy_only=False)


def _list_parts(a: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(flattened values, parent index per value, length per list with 0 for null)."""
    values = a.flatten()
    parent = pc.list_parent_indices(a).to_numpy(zero_copy_only=False).astype(np.int64)
    lengths = pc.fill_null(pc.list_value_length(a), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    return values, parent, lengths


def _per_parent_all(flags: np.ndarray, parent: np.ndarray, n: int) -> np.ndarray:
    bad = np.zeros(n, bool)
    bad[parent[~flags]] = True
    return ~bad


def _dec6(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    words = np.empty(2 * len(values), np.int64)
    words[0::2] = values
    words[1::2] = values >> 63
    mask = None if valid.all() else pa.array(valid, pa.bool_()).buffers()[1]
    return pa.Array.from_buffers(pa.decimal128(38, 6), len(values), [mask, pa.py_buffer(words.tobytes())])


class _Checks:
    """Which rows may go columnar, and for the others the first reason found."""

    def __init__(self, n: int) -> None:
        self.ok = np.ones(n, bool)
        self.why = np.full(n, "", object)

    def require(self, good: np.ndarray, reason: str) -> None:
        self.why[self.ok & ~good] = reason
        self.ok &= good


def _flatten(t: pa.Table, line: np.ndarray, st: _State) -> tuple[np.ndarray, pa.Table | None]:
    """(per row: why it goes to the per-record path, "" for none; flat table of the others)."""
    n = t.num_rows
    col = {name: _arr(t.column(name)) for name in t.column_names}
    ck = _Checks(n)
    start, end = _check_cdr(col, ck)
    version, v221, v230 = _cdr_version(col, ck, st)
    totals = _check_money(col, ck, v221, v230)
    periods, p_parent, p_idx, p_start, out = _period_volumes(col, ck, end)
    _check_repeated_ids(col["id"], ck, st)
    ok = ck.ok
    rows = np.flatnonzero(ok[p_parent])
    if not len(rows):
        return ck.why, None
    rp = p_parent[rows]
    take_r = pa.array(rp, pa.int64())
    take_p = pa.array(rows, pa.int64())
    i64 = pa.int64()

    def cdr(a: pa.Array) -> pa.Array:
        return a.take(take_r)

    def ints(values: np.ndarray, has: np.ndarray | None = None) -> pa.Array:
        return pa.array(values, i64, mask=None if has is None else ~has)

    token, loc = col["cdr_token"], col["cdr_location"]
    columns = {
        "cdr_id": cdr(col["id"]),
        "ocpi_version": pa.array(version[rp], _S),
        "country_code": cdr(col["country_code"]),
        "party_id": cdr(col["party_id"]),
        "emsp_country_code": cdr(token.field("country_code")),
        "emsp_party_id": cdr(token.field("party_id")),
        "cdr_start_ms": ints(start[rp]),
        "cdr_end_ms": ints(end[rp]),
        "currency": cdr(col["currency"]),
        "time_zone": pa.nulls(len(rows), _S),
        "location_country": cdr(loc.field("country")),
        "period_idx": pa.array(p_idx[rows].astype(np.int32), pa.int32()),
        "period_start_ms": ints(p_start[rows]),
        "tariff_id": periods.field("tariff_id").take(take_p),
    }
    for name in (
        "energy_mwh",
        "time_ms",
        "parking_ms",
        "reservation_ms",
        "min_power_w",
        "max_power_w",
        "min_current_ma",
        "max_current_ma",
    ):
        v, h = out[name]
        columns[name] = ints(v[rows], h[rows])
    for key, name in (("excl", "reported_total_excl"), ("incl", "reported_total_incl")):
        v, h = totals[key]
        columns[name] = _dec6(v[rp], h[rp])
    columns["line"] = ints(line[rp].astype(np.int64))
    schema = arrow_schema().append(pa.field("line", i64))
    return ck.why, pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def _check_cdr(col: dict[str, pa.Array], ck: _Checks) -> tuple[np.ndarray, np.ndarray]:
    """Required CDR fields, currency, token and location, no embedded tariffs, not a credit,
    readable timestamps with end >= start; returns (start, end) in epoch ms."""
    for name in ("id", "country_code", "party_id", "currency", "total_energy", "total_time"):
        ck.require(_valid(col[name]), f"missing {name}")
    blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(col["id"])), 0)
    ck.require(~pc.fill_null(blank, False).to_numpy(zero_copy_only=False), "empty id")
    cur = col["currency"]
    ck.require(
        pc.fill_null(pc.and_(pc.equal(pc.binary_length(cur), 3), pc.ascii_is_alpha(cur)), False).to_numpy(
            zero_copy_only=False
        ),
        "currency is not 3 letters",
    )
    token, loc = col["cdr_token"], col["cdr_location"]
    ck.require(_valid(token), "missing cdr_token")
    ck.require(_valid(loc), "missing cdr_location")
    ck.require(_valid(token.field("contract_id")), "missing cdr_token.contract_id")
    ck.require(_valid(loc.field("id")), "missing cdr_location.id")
    ck.require(_valid(loc.field("country")), "missing cdr_location.country")
    ck.require(~_valid(col["tariffs"]), "embedded tariffs")
    ck.require(~pc.fill_null(col["credit"], False).to_numpy(zero_copy_only=False), "credit")
    start, s_ok = parse_ts(col["start_date_time"])
    end, e_ok = parse_ts(col["end_date_time"])
    ck.require(s_ok & e_ok, "timestamp not in the columnar form")
    ck.require(end >= start, "end before start")
    lu = col["last_updated"]
    _, lu_ok = parse_ts(lu)
    ck.require(lu_ok | ~_valid(lu), "timestamp not in the columnar form")
    return start, end


def _cdr_version(
    col: dict[str, pa.Array], ck: _Checks, st: _State
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(version per row, is 2.2.1, is 2.3.0) from total_cost's first Price key (before_taxes /
    taxes / after_taxes → 2.3.0, else 2.2.1); a row of another version than the file's falls back."""
    tc = col["total_cost"]
    ck.require(_valid(tc), "missing total_cost")
    v230 = _valid(tc.field("before_taxes")) | _valid(tc.field("taxes")) | _valid(tc.field("after_taxes"))
    v221 = ~v230 & (_valid(tc.field("excl_vat")) | _valid(tc.field("incl_vat")))
    version = np.where(v230, "2.3.0", "2.2.1")
    ck.require(v230 | v221, "total_cost of no known version")
    ck.require(version == st.file_version, "version other than the file's")
    return version, v221, v230


def _check_money(
    col: dict[str, pa.Array], ck: _Checks, v221: np.ndarray, v230: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every Price of the CDR well formed for its version; the reported total as exact
    micro-units: {"excl": (values, present), "incl": (values, present)}."""
    n = len(v230)
    totals: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for m in MONEY:
        p = col[m]
        present = _valid(p)
        bt = p.field("before_taxes")
        ev = p.field("excl_vat")
        ck.require(~present | np.where(v230, _valid(bt), _valid(ev)), f"{m} without its amount")
        taxes = p.field("taxes")
        items, parent, _ = _list_parts(taxes)
        item_ok = _valid(items.field("name")) & _valid(items.field("amount"))
        ck.require(~v230 | _per_parent_all(item_ok, parent, n), f"{m} tax line incomplete")
        if m == "total_cost":
            excl, x_ok = convert(pc.if_else(pa.array(v230), bt, ev), "e6")
            ck.require(x_ok, "amount out of range")
            iv, i_ok = convert(p.field("incl_vat"), "e6")
            iv_has = _valid(p.field("incl_vat"))
            ck.require(~(v221 & iv_has) | i_ok, "amount out of range")
            amt, a_ok = convert(items.field("amount"), "e6")
            ck.require(_per_parent_all(a_ok | ~v230[parent], parent, n), "amount out of range")
            tax_sum = np.zeros(n, np.int64)
            np.add.at(tax_sum, parent, amt)
            t_has = _valid(taxes)
            incl = np.where(v230, excl + tax_sum, iv)
            incl_has = np.where(v230, t_has, iv_has)
            totals["excl"] = (excl, np.ones(n, bool))
            totals["incl"] = (incl, incl_has)
    return totals


def _period_volumes(
    col: dict[str, pa.Array], ck: _Checks, end: np.ndarray
) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Charging periods and their dimensions: (periods, parent row per period, index inside the
    CDR, start ms, {flat volume column: (values, present)}); a CDR with no period, a period out of
    order or after the end, an unknown dimension or a bad volume falls back."""
    n = len(end)
    cp = col["charging_periods"]
    periods, p_parent, n_per = _list_parts(cp)
    ck.require(n_per >= 1, "no charging period")
    p_start, ps_ok = parse_ts(periods.field("start_date_time"))
    dims_list = periods.field("dimensions")
    dims, d_parent, n_dim = _list_parts(dims_list)
    p_ok = ps_ok & (n_dim >= 1)
    dtype = pc.index_in(dims.field("type"), value_set=pa.array(DIM_TYPES))
    d_code = pc.fill_null(dtype, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    vol = dims.field("volume")
    d_ok = (d_code >= 0) & _valid(vol)
    n_p = len(p_start)
    # positions inside the CDR
    p_first = np.cumsum(n_per) - n_per
    p_idx = np.arange(n_p) - p_first[p_parent]
    back = np.zeros(n_p, bool)
    back[1:] = (p_idx[1:] > 0) & (p_start[1:] < p_start[:-1])
    p_ok &= ~back & (p_start <= end[p_parent])
    out = _summed_volumes(vol, d_code, d_parent, d_ok, n_p)
    out.update(_extreme_volumes(vol, d_code, d_parent, d_ok, n_p))
    # negative volumes: convert() refuses them (hi < 0), so d_ok is False there
    p_ok &= _per_parent_all(d_ok, d_parent, n_p)
    ck.require(_per_parent_all(p_ok, p_parent, n), "charging period not in the columnar form")
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
                total = sum((_exact(vol, int(j)) for j in ds), Decimal(0))
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


def _check_repeated_ids(ids: pa.Array, ck: _Checks, st: _State) -> None:
    """A repeated cdr_id right after the same id would merge two CDRs in the flat layout."""
    ok = ck.ok
    cand = np.flatnonzero(ok)
    if len(cand):
        cid = ids.take(pa.array(cand, pa.int64()))
        prev = pa.concat_arrays([pa.array([st.last_id], pa.string()), cid.slice(0, len(cid) - 1)])
        same = pc.fill_null(pc.equal(cid, prev), False).to_numpy(zero_copy_only=False)
        ck.why[cand[same]] = "cdr_id repeated on the next line"
        ok[cand[same]] = False
        kept = cand[~same]
        if len(kept):
            st.last_id = ids[int(kept[-1])].as_py()
