"""Nested OCPI CDRs (NDJSON) → the flat layout of :mod:`pricing.flat`, read as columns.

:func:`read_ndjson_flat` reads an NDJSON file of OCPI 2.1.1, 2.2.1 or 2.3.0 CDRs with
``pyarrow.json.read_json`` (an explicit schema per shape: 2.1.1 has its own; every number as
``decimal128(38, 18)``, never a float), block by block (64 MB, cut at line ends), explodes
``charging_periods`` and pivots the ``dimensions`` by type into the flat volume columns with the
rounding of :mod:`pricing.units` (half-up, from the exact decimal, after summing same-type volumes
like the parser).

Every shape a CPO sends stays columnar: explicit nulls (an optional field's null is its absence),
unknown fields, empty or non-empty embedded ``tariffs`` (:mod:`pricing.ocpi.columnar_tariffs`),
credit CDRs (negative money), 2.3.0 taxes, CRLF line ends, a UTF-8 BOM, the file's first record
(decoded here once, to fix the file's OCPI version as the parser does). Only what the per-record
parser (:func:`pricing.ocpi.parse_cdr`) might judge differently becomes a fallback
:class:`~pricing.io.Record` (decoded exactly as :func:`pricing.io.read_records` would), so that
the parser gives its exact reject: broken lines (not one ``{…}`` object between blanks, invalid
UTF-8), lines pyarrow refuses (the block is cut around them:
:func:`pricing.ocpi.columnar_parse.parse_runs`), a missing or wrong value, a null that could decide
the version (:mod:`pricing.ocpi.columnar_lines`), an unknown dimension type, a negative volume,
end before start, periods out of order or after the end, a version other than the file's,
values too large for the integer units. Each non-blank line is counted exactly once:
``table CDRs + len(fallback) == records read by read_records``. The table's ``line`` column keeps
the same ``cdr_id`` on two lines two records (:func:`pricing.flat.split_flat`).

:func:`pricing.batch.price_ndjson_columnar` prices such a file and returns the same
:class:`~pricing.results.BatchResult` as ``price_records(iter_sources([path]), …, engine="kernel")``;
the reasons each fallback Record left the columnar path are counted (``reasons``) and reported
in the result's ``fallbacks``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from pricing.flat import arrow_schema
from pricing.io import Record, _read_ndjson, loads
from pricing.jsontext import MAX_JSON_DEPTH
from pricing.model import Tariff
from pricing.ocpi import CDR_MONEY, COUNTRY_CODE, PARTY_ID, file_version_of
from pricing.ocpi.columnar_lines import key_null_lines, object_bounds
from pricing.ocpi.columnar_parse import parse_runs
from pricing.ocpi.columnar_periods import DIMS_22, DIMS_211, period_volumes
from pricing.ocpi.columnar_reported import reported as _reported
from pricing.ocpi.columnar_tariffs import EmbeddedTariffs, connector_tariff_ids
from pricing.ocpi.columnar_values import (
    Checks,
    convert,
    dec6,
    deep_lines,
    list_parts,
    one_chunk,
    parse_ts,
    per_parent_all,
    positions,
    valid_mask,
)

BLOCK_BYTES = 64 << 20
SCALE = 18

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
# OCPI 2.1.1 CDRs have their own shape: money is a plain number (excl. VAT), the full Location
# (its time_zone, and connector tariff_ids that name the tariff), auth_id for the token. The
# 2.2-only keys and cost fields are read too, only to see that a line is not 2.1.1 after all.
_CONNECTOR = pa.struct([("id", _S), ("tariff_id", _S)])
_EVSE = pa.struct([("uid", _S), ("evse_id", _S), ("connectors", pa.list_(_CONNECTOR))])
V22_KEYS = ("end_date_time", "cdr_token", "cdr_location", "country_code", "party_id")
SCHEMA_211 = pa.schema(
    [
        ("id", _S),
        ("start_date_time", _S),
        ("stop_date_time", _S),
        ("auth_id", _S),
        ("auth_method", _S),
        (
            "location",
            pa.struct([("id", _S), ("country", _S), ("time_zone", _S), ("evses", pa.list_(_EVSE))]),
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
                    ]
                )
            ),
        ),
        ("total_cost", _DEC),
        ("total_energy", _DEC),
        ("total_time", _DEC),
        ("total_parking_time", _DEC),
        ("remark", _S),
        ("last_updated", _S),
        *((m, _PRICE) for m in MONEY[1:]),  # a Price here tells 2.2.1 / 2.3.0
        ("end_date_time", _S),
        ("cdr_token", pa.struct([("contract_id", _S)])),
        ("cdr_location", pa.struct([("id", _S)])),
        ("country_code", _S),
        ("party_id", _S),
    ]
)
_PARSE_211 = pj.ParseOptions(explicit_schema=SCHEMA_211, unexpected_field_behavior="ignore")
BOM = b"\xef\xbb\xbf"

# ---- reading ------------------------------------------------------------------------------------


def _blocks(path: str, size: int, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
    """Bytes ``start:stop`` of the file in pieces of about ``size`` bytes, each ending with ``\\n``."""
    carry = b""
    with open(path, "rb") as fh:
        fh.seek(start)
        left = -1 if stop is None else stop - start
        while left:
            chunk = fh.read(size if left < 0 else min(size, left))
            left = left if left < 0 else left - len(chunk)
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
    def __init__(self, src: str, reasons: Counter[str] | None, known: frozenset[str] | None) -> None:
        self.src = src
        self.known = known  # ids of the tariffs pricing will look 2.1.1 connector tariff_ids up in
        # None: the caller did not say which tariffs it prices with, so embedded ones go per record
        self.embedded = None if known is None else EmbeddedTariffs(given=bool(known))
        self.file_version: str | None = None  # set by the first CDR (pricing.ocpi.file_version_of)
        self.line0 = 0  # lines before the current block
        self.at_start = True  # the first block is the file's start (a BOM may open it)
        self.tables: list[pa.Table] = []
        self.fallback: list[Record] = []
        self.reasons: Counter[str] = Counter() if reasons is None else reasons


def table_schema() -> pa.Schema:
    """The reader's table: the flat layout with its optional columns, plus ``line``."""
    return arrow_schema(optional=True, reported=True).append(pa.field("line", pa.int64()))


def read_ndjson_flat(
    path: str | os.PathLike[str],
    block_bytes: int = BLOCK_BYTES,
    reasons: Counter[str] | None = None,
    versions: dict[str, str] | None = None,
    known_tariffs: frozenset[str] | None = None,
    embedded: list[Tariff] | None = None,
    span: tuple[int, int, str | None] | None = None,
    stats: dict[str, int] | None = None,
    seen: dict[str, Any] | None = None,
) -> tuple[pa.Table, list[Record]]:
    """(flat table of the columnar CDRs, per-record fallback Records), both in line order.

    The table has the columns of :func:`table_schema` (the flat layout with the settlement
    columns, plus ``line``: int64, the CDR's 1-based line number, on each of its rows).
    ``reasons``, when given, counts the fallback Records by why they left the columnar path
    (``"credit without credit_reference_id"``, …);
    ``versions``, when given, receives ``{path: OCPI version of its first CDR}`` (what the
    per-record path checks every other CDR of the file against). ``known_tariffs``: the ids of
    the tariffs the CDRs will be priced with (``TariffSet.by_id``); a 2.1.1 CDR names its tariff
    by its connectors' ``tariff_id``, the first one of these that is known
    (:func:`pricing.sessions.select_tariffs`), so without them such a CDR goes per record; they
    also decide how embedded tariffs are used (:mod:`pricing.ocpi.columnar_tariffs`: an empty set
    means none given). ``embedded``, when given, receives the embedded tariffs the columnar CDRs
    are to be priced with when no tariffs are given.

    ``span=(start, stop, file_version)`` reads only bytes ``start:stop`` (cut at line ends by the
    caller) as if they were a file of their own whose first record had that version; its line
    numbers count from the span's start, and ``stats["lines"]`` receives how many it had, so a
    caller reading a file in spans in several processes renumbers each by the lines before it.
    ``seen``: the embedded tariffs first seen before (``EmbeddedTariffs.by_id``, with no tariffs
    given), updated in place with this file's.
    """
    src = str(path)
    st = _State(src, reasons, known_tariffs)
    if seen is not None and st.embedded is not None:
        st.embedded.by_id = seen
    start, stop = 0, None
    if span is not None:
        start, stop, st.file_version = span
        st.at_start = start == 0
    for block in _blocks(src, block_bytes, start, stop):
        _do_block(st, block)
    if stats is not None:
        stats["lines"] = st.line0
    schema = table_schema()
    table = pa.concat_tables(st.tables) if st.tables else schema.empty_table()
    st.fallback.sort(key=lambda r: r.line or 0)
    if versions is not None and st.file_version is not None:
        versions[src] = st.file_version
    if embedded is not None and st.embedded is not None:
        embedded.extend(st.embedded.tariffs())
    return table, st.fallback


def _block_lines(st: _State, block: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(the block's bytes, its lines' starts and ends, the lines before it); counts its lines."""
    buf = np.frombuffer(block, np.uint8)
    ends = positions(buf, 10)
    starts = np.r_[0, ends[:-1] + 1]
    line0 = st.line0
    if line0 == 0 and st.at_start and block.startswith(BOM + b"{"):
        # json.loads reads a UTF-8 BOM at the start (utf-8-sig); the columns start after it
        starts[0] = len(BOM)
    st.line0 += len(ends)
    return buf, starts, ends, line0


def line_records(
    path: str | os.PathLike[str], lines: np.ndarray, span: tuple[int, int, str | None] | None = None
) -> list[Record]:
    """The Records of these lines (1-based, sorted; counted from the span's start like
    :func:`read_ndjson_flat`'s), as the per-record path reads them: for CDRs the columnar reader
    read but the kernel refused (:func:`pricing.batch.price_ndjson_columnar`)."""
    src = str(path)
    st = _State(src, None, None)
    start, stop = (0, None) if span is None else span[:2]
    st.at_start = start == 0
    out: list[Record] = []
    for block in _blocks(src, BLOCK_BYTES, start, stop):
        _buf, starts, ends, line0 = _block_lines(st, block)
        lo, hi = np.searchsorted(lines, [line0 + 1, st.line0 + 1])
        for n in lines[lo:hi].tolist():
            i = n - line0 - 1
            rec = _line_record(block[starts[i] : ends[i]], src, n)
            if rec is not None:
                out.append(rec)
        if hi == len(lines):
            break
    return out


def _do_block(st: _State, block: bytes) -> None:
    buf, starts, ends, line0 = _block_lines(st, block)
    n_lines = len(ends)
    why = _python_lines(st, block, buf, starts, ends, line0)
    for i in deep_lines(block, buf, starts, ends).tolist():  # json, per record, decides
        why[i] = why[i] or f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
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
    opts = _PARSE_211 if st.file_version == "2.1.1" else _PARSE
    for table, idx in parse_runs(work, starts, ends, lines, opts):
        if table is None:
            for i in idx.tolist():
                _fallback_raw(
                    st, block[starts[i] : ends[i]], line0 + i + 1, "pyarrow could not read the line"
                )
            continue

        def raw_of(k: int, idx: np.ndarray = idx) -> bytes:
            return block[starts[idx[k]] : ends[idx[k]]]

        bad, flat = _flatten(table, line0 + idx + 1, st, raw_of)
        for k in np.flatnonzero(bad != "").tolist():
            i = int(idx[k])
            _fallback_raw(st, block[starts[i] : ends[i]], line0 + i + 1, str(bad[k]))
        if flat is not None and flat.num_rows:
            st.tables.append(flat)


def _python_lines(
    st: _State, block: bytes, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, line0: int
) -> np.ndarray:
    """Per line of the block, why it is decoded in Python ("" for none): not one ``{…}`` object
    between JSON blanks (blank lines are dropped there), an explicit null that could decide
    the version, invalid UTF-8, or a line before the file's first CDR (while the version is not
    fixed, lines are decoded here until a CDR fixes it: :func:`pricing.ocpi.file_version_of`)."""
    n_lines = len(ends)
    why = np.full(n_lines, "", object)

    def mark(i: int, reason: str) -> None:
        if not why[i]:
            why[i] = reason

    first, last = object_bounds(buf, starts, ends)  # blanks around the object are JSON's
    n = len(buf)
    shape = (last >= first) & (buf[np.minimum(first, n - 1)] == 123) & (buf[np.maximum(last, 0)] == 125)
    why[~shape] = "not one JSON object on the line"
    for i in key_null_lines(block, buf, starts, ends).tolist():
        mark(i, "explicit null in a key that decides the OCPI version")
    pos = len(block) if _utf8(block) else 0  # invalid UTF-8: those lines only (Python's decoder says where)
    view = memoryview(block)
    while pos < len(block):
        try:
            str(view[pos:], "utf-8")
            break
        except UnicodeDecodeError as exc:
            i = int(np.searchsorted(ends, pos + exc.start))
            mark(i, "invalid UTF-8")
            pos = int(ends[i]) + 1
    if st.file_version is None:  # the first CDR fixes the file's version (decoded here)
        for i in range(n_lines):
            rec = _line_record(block[starts[i] : ends[i]], st.src, line0 + i + 1)
            if rec is None or rec.error is not None:
                mark(i, "not valid JSON")  # a line before it that json refuses (or blank)
                continue
            st.file_version = _detect(rec.obj)
            if st.file_version is not None:
                break
            mark(i, "not a CDR, before the file's first CDR")
    return why


def _utf8(block: bytes) -> bool:
    """Whether the block is valid UTF-8 (Arrow's validation: ~5x faster than decoding it)."""
    offsets = pa.py_buffer(np.array([0, len(block)], np.int64).tobytes())
    try:
        pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(block)]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _fallback_raw(st: _State, raw: bytes, n: int, reason: str) -> Record | None:
    rec = _line_record(raw, st.src, n)
    if rec is not None:
        st.fallback.append(rec)
        st.reasons[reason] += 1
    return rec


def _detect(obj: Any) -> str | None:
    """The version ``obj`` fixes for the file (None: not a CDR): :func:`pricing.ocpi.file_version_of`."""
    return file_version_of(obj)


# ---- nested → flat ------------------------------------------------------------------------------


def _flatten(
    t: pa.Table, line: np.ndarray, st: _State, raw_of: Callable[[int], bytes]
) -> tuple[np.ndarray, pa.Table | None]:
    """(per row: why it goes to the per-record path, "" for none; flat table of the others)."""
    n = t.num_rows
    col = {name: one_chunk(t.column(name)) for name in t.column_names}
    ck = Checks(n)
    if st.file_version == "2.1.1":
        start, end, per_cdr, totals, conn_tariff = _cdr_211(col, ck, st.known)
        allowed = DIMS_211
    else:
        start, end, per_cdr, totals = _cdr_22(col, ck, st)
        conn_tariff, allowed = None, DIMS_22
    periods, p_parent, p_idx, p_start, out = period_volumes(col, ck, end, allowed)
    chosen = _check_tariffs(col, ck, st, per_cdr["ocpi_version"], periods, p_parent, raw_of)
    if chosen and conn_tariff is not None:  # 2.1.1 rows priced with their own tariffs
        rows_c = np.fromiter(chosen, np.int64, len(chosen))
        conn_tariff = pc.replace_with_mask(
            conn_tariff, pa.array(np.isin(np.arange(n), rows_c)), pa.array(list(chosen.values()), _S)
        )
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

    columns = {name: cdr(a) for name, a in per_cdr.items()}
    columns.update(
        {
            "cdr_start_ms": ints(start[rp]),
            "cdr_end_ms": ints(end[rp]),
            "period_idx": pa.array(p_idx[rows].astype(np.int32), pa.int32()),
            "period_start_ms": ints(p_start[rows]),
            "tariff_id": periods.field("tariff_id").take(take_p) if conn_tariff is None else cdr(conn_tariff),
        }
    )
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
        columns[name] = dec6(v[rp], h[rp])
    columns["line"] = ints(line[rp].astype(np.int64))
    schema = table_schema()
    return ck.why, pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


Money = dict[str, tuple[np.ndarray, np.ndarray]]


def _cdr_22(
    col: dict[str, pa.Array], ck: Checks, st: _State
) -> tuple[np.ndarray, np.ndarray, dict[str, pa.Array], Money]:
    """A 2.2.1 / 2.3.0 row: (start ms, end ms, per-CDR flat columns, reported totals)."""
    start, end = _check_cdr(col, ck)
    version, v221, v230 = _cdr_version(col, ck, st)
    totals = _check_money(col, ck, v221, v230)
    token, loc = col["cdr_token"], col["cdr_location"]
    per_cdr = {
        "cdr_id": col["id"],
        "ocpi_version": pa.array(version, _S),
        "country_code": col["country_code"],
        "party_id": col["party_id"],
        "emsp_country_code": token.field("country_code"),
        "emsp_party_id": token.field("party_id"),
        "currency": col["currency"],
        "time_zone": pa.nulls(len(version), _S),
        "location_country": loc.field("country"),
        "location_id": loc.field("id"),
        "contract_id": token.field("contract_id"),
        "credit": col["credit"],
        "credit_reference_id": col["credit_reference_id"],
        **_reported(col, ck, v230),
    }
    return start, end, per_cdr, totals


def _cdr_211(
    col: dict[str, pa.Array], ck: Checks, known: frozenset[str] | None
) -> tuple[np.ndarray, np.ndarray, dict[str, pa.Array], Money, pa.Array]:
    """A 2.1.1 row: (start ms, stop ms, per-CDR flat columns, reported totals, the tariff its
    connectors name). No 2.2 key (else the parser sees another version), the required fields,
    readable times, no embedded tariffs, total_cost exact in micro-units."""
    n = len(col["id"])
    for key in V22_KEYS:
        ck.require(~valid_mask(col[key]), "version other than the file's")
    for m in MONEY[1:]:  # total_energy_cost & co. with a Price key: the parser's VERSION_MISMATCH
        price = col[m]
        keyed = np.zeros(n, bool)
        for f in _PRICE:
            keyed |= valid_mask(price.field(f.name))
        ck.require(~keyed, "version other than the file's")
    # no id: maybe an OCPI envelope, which pricing.io.unwrap_envelope reads per record
    for name in ("id", "auth_id", "currency", "total_cost", "total_energy", "total_time"):
        ck.require(valid_mask(col[name]), f"missing {name}")
    _check_id(col["id"], ck)
    _check_currency(col["currency"], ck)
    loc = col["location"]
    ck.require(valid_mask(loc), "missing location")
    ck.require(valid_mask(loc.field("id")), "missing location.id")
    ck.require(valid_mask(loc.field("country")), "missing location.country")
    start, end = _check_times(col, ck, "stop_date_time")
    excl, x_ok = convert(col["total_cost"], "e6")
    ck.require(x_ok, "amount out of range")
    totals = {"excl": (excl, np.ones(n, bool)), "incl": (np.zeros(n, np.int64), np.zeros(n, bool))}
    per_cdr = {
        "cdr_id": col["id"],
        "ocpi_version": pa.array(np.full(n, "2.1.1"), _S),
        "country_code": pa.nulls(n, _S),
        "party_id": pa.nulls(n, _S),
        "emsp_country_code": pa.nulls(n, _S),
        "emsp_party_id": pa.nulls(n, _S),
        "currency": col["currency"],
        "time_zone": loc.field("time_zone"),
        "location_country": loc.field("country"),
        "location_id": loc.field("id"),
        "contract_id": col["auth_id"],
        "credit": pa.nulls(n, pa.bool_()),
        "credit_reference_id": pa.nulls(n, _S),
        **_reported(col, ck, None),
    }
    return start, end, per_cdr, totals, _connector_tariff(loc, ck, known)


def _connector_tariff(loc: pa.Array, ck: Checks, known: frozenset[str] | None) -> pa.Array:
    """Per CDR the first connector ``tariff_id`` (document order) among the known tariffs, null
    for none: the choice of :func:`pricing.sessions.select_tariffs` for a CDR whose periods name
    no tariff (2.1.1 periods never do)."""
    n = len(loc)
    evses, e_parent, _ = list_parts(loc.field("evses"))
    conns, c_parent, _ = list_parts(evses.field("connectors"))
    tid = conns.field("tariff_id")
    cdr_of = e_parent[c_parent]
    # a null evse or connector (not an object) is the parser's WRONG_TYPE
    whole = per_parent_all(valid_mask(evses), e_parent, n) & per_parent_all(valid_mask(conns), cdr_of, n)
    ck.require(whole, "null in location.evses or their connectors")
    has = valid_mask(tid)
    named = np.zeros(n, bool)
    named[cdr_of[has]] = True
    if known is None:  # nobody said which tariffs exist: such CDRs go per record
        ck.require(~named, "2.1.1 connector tariff_id and no tariff ids given")
        return pa.nulls(n, _S)
    hit = pc.fill_null(pc.is_in(tid, value_set=pa.array(sorted(known), _S)), False)
    idx = np.flatnonzero(hit.to_numpy(zero_copy_only=False) & has)
    first = np.full(n, -1, np.int64)
    cdrs, pos = np.unique(cdr_of[idx], return_index=True)
    first[cdrs] = idx[pos]
    if known:  # tariffs named, none of them given: the per-record rule decides (not "the only one")
        ck.require(~named | (first >= 0), "2.1.1 connector tariff_ids none of the given tariffs")
    return tid.take(pa.array(first, pa.int64(), mask=first < 0))


def _check_id(ids: pa.Array, ck: Checks) -> None:
    """An empty or blank CDR id is the parser's INVALID_VALUE reject: such lines go per record."""
    blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(ids)), 0)
    ck.require(~pc.fill_null(blank, False).to_numpy(zero_copy_only=False), "empty id")


def _check_currency(cur: pa.Array, ck: Checks) -> None:
    ck.require(
        pc.fill_null(pc.and_(pc.equal(pc.binary_length(cur), 3), pc.ascii_is_alpha(cur)), False).to_numpy(
            zero_copy_only=False
        ),
        "currency is not 3 letters",
    )


def _check_tariffs(
    col: dict[str, pa.Array],
    ck: Checks,
    st: _State,
    version: pa.Array,
    periods: pa.Array,
    p_parent: np.ndarray,
    raw_of: Callable[[int], bytes],
) -> dict[int, str]:
    """Embedded tariffs: an empty list is no tariff at all (sessions.select_tariffs); a row with
    some is decoded and judged by :class:`EmbeddedTariffs` (each distinct tariff parsed once).
    Returns, for the 2.1.1 rows priced with their own tariffs, row → the tariff id that prices it."""
    n_tariffs = pc.fill_null(pc.list_value_length(col["tariffs"]), 0).to_numpy(zero_copy_only=False)
    emb = st.embedded
    chosen: dict[int, str] = {}
    if emb is None:
        ck.require(n_tariffs == 0, "embedded tariffs")
        return chosen
    if not emb.given:
        ck.require(n_tariffs > 0, "no tariffs given or embedded")
    cand = np.flatnonzero(ck.ok & (n_tariffs > 0))
    if not len(cand):
        return chosen
    names = periods.type.names if pa.types.is_struct(periods.type) else []
    pids = periods.field("tariff_id").to_pylist() if "tariff_id" in names else [None] * len(p_parent)
    lo = np.searchsorted(p_parent, cand)
    hi = np.searchsorted(p_parent, cand, "right")
    versions = version.to_pylist()
    for k, a, b in zip(cand.tolist(), lo.tolist(), hi.tolist(), strict=True):
        obj = loads(raw_of(k))
        tariffs = obj.get("tariffs") if isinstance(obj, dict) else None
        why, tid = emb.row(tariffs, versions[k], pids[a:b], connector_tariff_ids(obj))
        if why:
            ck.why[k] = why
            ck.ok[k] = False
        elif tid is not None:
            chosen[k] = tid
    return chosen


def _check_times(col: dict[str, pa.Array], ck: Checks, end_key: str) -> tuple[np.ndarray, np.ndarray]:
    start, s_ok = parse_ts(col["start_date_time"])
    end, e_ok = parse_ts(col[end_key])
    ck.require(s_ok & e_ok, "timestamp not in the columnar form")
    ck.require(end >= start, "end before start")
    lu = col["last_updated"]
    _, lu_ok = parse_ts(lu)
    ck.require(lu_ok | ~valid_mask(lu), "timestamp not in the columnar form")
    return start, end


def _check_party(values: pa.Array, pattern: str, ck: Checks, what: str) -> None:
    """A party code (given) of OCPI's form (``COUNTRY_CODE`` / ``PARTY_ID`` of the wire models):
    other values go per record, which refuses them with the parser's message."""
    bad = pc.invert(pc.match_substring_regex(values, f"^{pattern}$"))
    ck.require(~pc.fill_null(bad, False).to_numpy(zero_copy_only=False), what)


def _check_cdr(col: dict[str, pa.Array], ck: Checks) -> tuple[np.ndarray, np.ndarray]:
    """Required CDR fields, currency, party codes, token and location, no embedded tariffs, a
    credit names what it credits, readable timestamps with end >= start; returns (start, end)
    in epoch ms."""
    # no id: maybe an OCPI envelope, which pricing.io.unwrap_envelope reads per record
    for name in ("id", "country_code", "party_id", "currency", "total_energy", "total_time"):
        ck.require(valid_mask(col[name]), f"missing {name}")
    _check_id(col["id"], ck)
    _check_currency(col["currency"], ck)
    token, loc = col["cdr_token"], col["cdr_location"]
    for cc, pid in (
        (col["country_code"], col["party_id"]),
        (token.field("country_code"), token.field("party_id")),
    ):
        _check_party(cc, COUNTRY_CODE.pattern, ck, "country code not 2 letters")
        _check_party(pid, PARTY_ID.pattern, ck, "party id not 3 letters or digits")
    ck.require(valid_mask(token), "missing cdr_token")
    ck.require(valid_mask(loc), "missing cdr_location")
    ck.require(valid_mask(token.field("contract_id")), "missing cdr_token.contract_id")
    ck.require(valid_mask(loc.field("id")), "missing cdr_location.id")
    ck.require(valid_mask(loc.field("country")), "missing cdr_location.country")
    credit = pc.fill_null(col["credit"], False).to_numpy(zero_copy_only=False)
    # the parser's test is `not credit_reference_id`: null and "" alike
    named = pc.fill_null(pc.greater(pc.binary_length(col["credit_reference_id"]), 0), False)
    ck.require(~credit | named.to_numpy(zero_copy_only=False), "credit without credit_reference_id")
    return _check_times(col, ck, "end_date_time")


def _cdr_version(
    col: dict[str, pa.Array], ck: Checks, st: _State
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(version per row, is 2.2.1, is 2.3.0) from total_cost's first Price key (before_taxes /
    taxes / after_taxes → 2.3.0, else 2.2.1); a row of another version than the file's falls back."""
    tc = col["total_cost"]
    ck.require(valid_mask(tc), "missing total_cost")
    v230 = (
        valid_mask(tc.field("before_taxes"))
        | valid_mask(tc.field("taxes"))
        | valid_mask(tc.field("after_taxes"))
    )
    v221 = ~v230 & (valid_mask(tc.field("excl_vat")) | valid_mask(tc.field("incl_vat")))
    version = np.where(v230, "2.3.0", "2.2.1")
    ck.require(v230 | v221, "total_cost of no known version")
    ck.require(version == st.file_version, "version other than the file's")
    return version, v221, v230


def _check_money(
    col: dict[str, pa.Array], ck: Checks, v221: np.ndarray, v230: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every Price of the CDR well formed for its version; the reported total as exact
    micro-units: {"excl": (values, present), "incl": (values, present)}."""
    n = len(v230)
    totals: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for m in MONEY:
        p = col[m]
        present = valid_mask(p)
        bt = p.field("before_taxes")
        ev = p.field("excl_vat")
        ck.require(~present | np.where(v230, valid_mask(bt), valid_mask(ev)), f"{m} without its amount")
        taxes = p.field("taxes")
        items, parent, _ = list_parts(taxes)
        item_ok = valid_mask(items.field("name")) & valid_mask(items.field("amount"))
        ck.require(~v230 | per_parent_all(item_ok, parent, n), f"{m} tax line incomplete")
        if m == "total_cost":
            excl, x_ok = convert(pc.if_else(pa.array(v230), bt, ev), "e6")
            ck.require(x_ok, "amount out of range")
            iv, i_ok = convert(p.field("incl_vat"), "e6")
            iv_has = valid_mask(p.field("incl_vat"))
            ck.require(~(v221 & iv_has) | i_ok, "amount out of range")
            amt, a_ok = convert(items.field("amount"), "e6")
            ck.require(per_parent_all(a_ok | ~v230[parent], parent, n), "amount out of range")
            tax_sum = np.zeros(n, np.int64)
            np.add.at(tax_sum, parent, amt)
            t_has = valid_mask(taxes)
            incl = np.where(v230, excl + tax_sum, iv)
            incl_has = np.where(v230, t_has, iv_has)
            totals["excl"] = (excl, np.ones(n, bool))
            totals["incl"] = (incl, incl_has)
    return totals
