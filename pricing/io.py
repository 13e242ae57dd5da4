"""Reading OCPI records and writing result tables.

Readers never raise on a bad record: a line that is not JSON becomes a :class:`Record` carrying a
``BAD_JSON`` finding, with its source file and line, and reading goes on.

* ``.json``: one object, an array of objects, or an OCPI response envelope (``{"data": …}``).
  For an array, ``line`` is the 1-based item number. A ``.json`` file whose first line is a JSON
  value on its own is read as NDJSON; any other ``.json`` file that does not parse is one
  ``BAD_JSON`` record at the line of its error (not one per line).
* ``.ndjson`` / ``.jsonl``: one object per line; ``line`` is the line number.
* ``.parquet``: one nested OCPI object per row (``line`` = 1-based row number).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pricing import errors as E
from pricing.errors import Finding, InputError
from pricing.files import READABLE, check_not_compressed
from pricing.flat import parquet_read
from pricing.jsontext import (
    lone_surrogate,
    may_hold_surrogate,
    single_value,
    split_deep,
    surrogate_finding,
    too_deep,
    too_deep_finding,
)


@dataclass(frozen=True, slots=True)
class Record:
    source: str
    line: int | None
    obj: Any = None
    error: Finding | None = None
    # (country code, party id) the record is held under (a store's key): the CPO of a CDR that
    # names none (OCPI 2.1.1)
    party: tuple[str, str] | None = None


def loads(text: str | bytes) -> Any:
    """JSON with exact numbers: non-integers become Decimal, never float."""
    return json.loads(text, parse_float=Decimal)


class TooDeep(ValueError):
    """A JSON text nested deeper than :data:`pricing.jsontext.MAX_JSON_DEPTH` (not decoded)."""


def loads_bounded(data: bytes) -> Any:
    """:func:`loads` of a text nested at most :data:`~pricing.jsontext.MAX_JSON_DEPTH` levels
    deep; :class:`TooDeep` otherwise (the same answer wherever it is called from, as Python's
    own limit is not)."""
    if too_deep(data):
        raise TooDeep(data)
    try:
        return loads(data)
    except RecursionError:  # a caller deep in its own stack: still too deep to read here
        raise TooDeep(data) from None


def unwrap_envelope(doc: Any) -> Any:
    """The ``data`` of an OCPI response envelope (``{"data": …, "status_code": …, "timestamp": …}``),
    else ``doc`` itself. An envelope carries records: its ``data`` is an object or an array, and
    it has no ``id`` of its own (every CDR, tariff and session has one), so a record with vendor
    fields named ``data`` and ``timestamp`` stays a record, and an error response (``data`` null)
    is refused as what it is, an object that is no record (its keys named)."""
    if (
        isinstance(doc, dict)
        and isinstance(doc.get("data"), (dict, list))
        and ("status_code" in doc or "timestamp" in doc)
        and "id" not in doc
    ):
        return doc["data"]
    return doc


def read_records(path: str | os.PathLike[str]) -> Iterator[Record]:
    p = Path(path)
    src = str(path)
    if not p.exists():
        raise InputError(f"{src}: no such file. Hint: check the path")
    if p.is_dir():
        for child in sorted(p.iterdir()):
            if child.suffix.lower() in READABLE and child.is_file():
                yield from read_records(child)
        return
    check_not_compressed(p)
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        yield from _read_parquet(p, src)
    elif suffix in (".ndjson", ".jsonl"):
        yield from _read_ndjson(p.read_bytes(), src)
    else:
        data = p.read_bytes()
        try:
            doc = unwrap_envelope(loads_bounded(data))
        except TooDeep:
            if _first_line_is_json(data) or not single_value(data):  # NDJSON under a .json name
                yield from _read_ndjson(data, src)
            else:  # its items one by one: only those too deep are rejected
                yield from _deep_document(data, src)
            return
        except ValueError as exc:
            if _first_line_is_json(data):  # NDJSON under a .json name
                yield from _read_ndjson(data, src)
            else:  # one document with an error in it: reported once, where it is
                yield _broken_document(exc, src)
            return
        checked = may_hold_surrogate(data)
        if isinstance(doc, list):
            for i, item in enumerate(doc, start=1):
                yield decoded_record(src, i, item, checked)
        else:
            yield decoded_record(src, 1, doc, checked)


def decoded_record(src: str, line: int, obj: Any, check_text: bool = True) -> Record:
    """The Record of a decoded item; an ``INVALID_VALUE`` reject when a string of it holds a lone
    surrogate (``check_text``: the text it came from has a surrogate escape)."""
    found = lone_surrogate(obj) if check_text else None
    if found is not None:
        return Record(src, line, None, surrogate_finding(found, src, line))
    return Record(src, line, obj)


def _deep_document(data: bytes, src: str) -> Iterator[Record]:
    """A ``.json`` document too deep to decode at once: the items of its array (or envelope's
    ``data`` array), each decoded on its own (line = item number), or one ``BAD_JSON`` record."""
    items = split_deep(data)
    if items is None:
        yield Record(src, 1, None, too_deep_finding(src, 1, "the document"))
        return
    for i, raw in enumerate(items, start=1):
        try:
            item = loads_bounded(raw)
        except TooDeep:
            yield Record(src, i, None, too_deep_finding(src, i, f"item {i} of the array"))
            continue
        except ValueError as exc:
            msg = f"item {i} of the array is not valid JSON ({exc}). Hint: fix the item there"
            yield Record(src, i, None, Finding(E.BAD_JSON, msg, src, i))
            continue
        yield decoded_record(src, i, item, may_hold_surrogate(raw))


def ndjson_lines(data: bytes) -> list[bytes]:
    """The lines of NDJSON text: each ends at ``\n`` (a ``\r`` just before it, a CRLF line end,
    is not part of the line); the text after the last ``\n``, if any, is the last line. Line k of
    this list is line k of ``grep -n``, ``sed`` and every editor. A ``\r`` elsewhere is a byte of
    its line (JSON whitespace between values; invalid inside a string), not a line break."""
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _first_line_is_json(data: bytes) -> bool:
    """Whether the first non-blank line of ``data`` is a JSON value on its own (NDJSON), as the
    first line of an indented document (``{``) never is."""
    first = next((line for line in ndjson_lines(data) if line.strip()), b"")
    try:
        loads_bounded(first)
    except ValueError:
        return False
    return True


def _broken_document(exc: ValueError, src: str) -> Record:
    """The one ``BAD_JSON`` record of a ``.json`` file that is not valid JSON: line and column of
    the error (a file that is not UTF-8 has neither)."""
    if isinstance(exc, json.JSONDecodeError):
        line: int | None = exc.lineno
        what = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    else:
        line, what = None, str(exc)
    msg = (
        f"the file is not valid JSON ({what}). Hint: a .json file holds one JSON document (an object, "
        "an array or an OCPI envelope); fix it there, or name a file of one object per line .ndjson"
    )
    return Record(src, line, None, Finding(E.BAD_JSON, msg, src, line))


def _read_ndjson(data: bytes, src: str) -> Iterator[Record]:
    for n, raw in enumerate(ndjson_lines(data), start=1):
        if not raw.strip():
            continue
        try:
            obj = loads_bounded(raw)
        except TooDeep:
            yield Record(src, n, None, too_deep_finding(src, n))
            continue
        except ValueError as exc:
            hint = "each line must hold one complete JSON object"
            if isinstance(exc, UnicodeDecodeError):
                hint = "OCPI JSON is UTF-8: save the file as UTF-8 (its bytes here are in another encoding)"
            elif b"\r" in raw:
                hint += " and end with \\n or \\r\\n (it holds a carriage return: another system's line end?)"
            msg = f"line is not valid JSON ({exc}). Hint: {hint}"
            yield Record(src, n, None, Finding(E.BAD_JSON, msg, src, n))
            continue
        yield decoded_record(src, n, unwrap_envelope(obj), may_hold_surrogate(raw))


def _read_parquet(p: Path, src: str) -> Iterator[Record]:
    with parquet_read(p):
        table = pq.read_table(p)
    for i, row in enumerate(table.to_pylist(), start=1):
        yield Record(src, i, _drop_nulls(row))


def _drop_nulls(value: Any) -> Any:
    """Parquet fills absent struct fields with nulls; OCPI means 'absent' by omission."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def iter_sources(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Record]:
    for path in paths:
        yield from read_records(path)


# ---- writing ------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__}")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default)


def dumps(row: dict[str, Any]) -> str:
    """One row as compact JSON (one encoder for every row: ``json.dumps`` with options builds a
    new one per call, about half its time on a row of a few fields)."""
    return _ENCODER.encode(row)


def write_ndjson(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(dumps(r) + "\n" for r in rows))


def write_csv(path: str | os.PathLike[str], rows: list[dict[str, Any]], columns: list[str]) -> None:
    parts = [csv_row(columns)]
    parts += [csv_row([_csv_cell(r.get(c)) for c in columns]) for r in rows]
    atomic_write_text(path, "".join(parts))


def csv_row(cells: list[str]) -> str:
    """One CSV row ending in ``\n``. A cell holding a line break (``\r`` included) is quoted: the
    writer's terminator is ``\r\n`` (csv quotes the characters of its terminator), cut back here."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(cells)
    return buf.getvalue()[:-2] + "\n"


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    return csv_safe(str(v))


# ---- CSV cells safe for spreadsheets ------------------------------------------------------------
# A spreadsheet runs a cell that begins with = + - @ (or a tab / CR before one) as a formula, so a CDR
# id such as '=HYPERLINK(...)' in a CSV would be a formula injection (OWASP "CSV injection"). Such a
# cell is written with a leading apostrophe, which spreadsheets show as text. Numbers ("-3.50")
# are left alone: they are what a negative amount looks like. A cell that itself begins with an
# apostrophe gets one more, so the rule is undone exactly by dropping one (:func:`csv_unsafe`).
# One rule, two regex engines (Python's ``re`` for dict rows, polars' for frames): the number
# pattern must match the whole cell, and their ``$`` differ (Python's also matches before a final
# newline: "-1\n" was a number there and a formula in polars), so it is anchored by ``fullmatch``
# in Python and by ``^…\z`` in polars, never with ``$``.
CSV_FORMULA_START = r"[=+\-@\t\r']"  # the cell's first character
CSV_NUMBER = r"[+-]?[0-9]+(?:\.[0-9]+)?"  # the whole cell
_FORMULA_START = re.compile(CSV_FORMULA_START)
_NUMBER = re.compile(CSV_NUMBER)


def csv_safe(text: str) -> str:
    """A CSV cell's text neutralized for spreadsheets (see above)."""
    if _FORMULA_START.match(text) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_unsafe(text: str) -> str:
    """The text :func:`csv_safe` was given (for reading our own CSV files back)."""
    return text[1:] if text.startswith("'") else text


def csv_safe_expr(expr: pl.Expr) -> pl.Expr:
    """:func:`csv_safe` of a string column (null stays null)."""
    risky = expr.str.contains(f"^{CSV_FORMULA_START}") & ~expr.str.contains(f"^(?:{CSV_NUMBER})\\z")
    return pl.when(risky).then(expr.str.replace("^", "'")).otherwise(expr)


def write_parquet(
    path: str | os.PathLike[str], rows: list[dict[str, Any]], columns: list[str], decimal_columns: list[str]
) -> None:
    """Decimal columns as decimal128(38, 4); the ``taxes`` list as list<struct>."""

    dec = pa.decimal128(38, 4)
    tax_type = pa.list_(pa.struct([("name", pa.string()), ("percentage", pa.string()), ("amount", dec)]))
    arrays, fields = [], []
    for c in columns:
        values = [r.get(c) for r in rows]
        if c in decimal_columns:
            typ: pa.DataType = dec
            values = [None if v is None else Decimal(v) for v in values]
        elif c == "taxes":
            typ = tax_type
            values = [
                None
                if v is None
                else [{**t, "amount": None if t["amount"] is None else Decimal(t["amount"])} for t in v]
                for v in values
            ]
        elif c == "line":
            typ = pa.int64()
        elif any(isinstance(v, bool) for v in values) and all(
            v is None or isinstance(v, bool) for v in values
        ):
            typ = pa.bool_()  # reconcile's ``credit``
        else:
            typ = pa.string()
        arrays.append(pa.array(values, type=typ))
        fields.append(pa.field(c, typ))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    tmp = temp_sibling(path)
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def write_table(
    path: str | os.PathLike[str], rows: list[dict[str, Any]], columns: list[str], decimal_columns: list[str]
) -> None:
    suffix = Path(path).suffix.lower()
    if getattr(rows, "rendered_ndjson", False) and suffix in (".ndjson", ".jsonl"):
        rows.write(path)  # pricing.rendered.RenderedRows: NDJSON lines rendered where priced
        return
    frame = getattr(rows, "frame", None)
    if frame is not None and suffix in (".ndjson", ".jsonl", ".csv", ".parquet"):
        write_frame(path, frame, columns, decimal_columns)  # the same bytes, column by column
        return
    ordered = [{c: r.get(c) for c in columns} for r in rows]
    if suffix in (".ndjson", ".jsonl"):
        write_ndjson(path, ordered)
    elif suffix == ".csv":
        write_csv(path, ordered, columns)
    elif suffix == ".parquet":
        write_parquet(path, ordered, columns, decimal_columns)
    else:
        raise InputError(
            f"cannot write {suffix or 'a file without suffix'}. Hint: use .ndjson, .csv or .parquet"
        )


# ---- result rows as one polars DataFrame ----------------------------------------------------------

TAX_FIELDS = ("name", "percentage", "amount")


class RowFrame:
    """Result rows held as one polars DataFrame that reads like a list of dicts.

    Columns: decimal columns exact ``Decimal(38, 4)`` (read as their 4-decimal text, as in the
    dict rows), ``line`` Int64, ``taxes`` List(Struct(name, percentage, amount)) of strings, every
    other column String. :func:`write_table` writes the frame column by column, byte for byte
    what it writes for the equal list of dicts. ``append`` / ``extend`` / ``sort`` turn it into
    that list first (same rows, slower).
    """

    def __init__(self, frame: Any) -> None:
        self._frame = frame
        self._list: list[dict[str, Any]] | None = None

    @property
    def frame(self) -> Any:
        """The DataFrame, or None once the rows became a list."""
        return self._frame if self._list is None else None

    def rows(self) -> list[dict[str, Any]]:
        if self._list is None:
            self._list = text_frame(self._frame).to_dicts()
            self._frame = None
        return self._list

    def __len__(self) -> int:
        return self._frame.height if self._list is None else len(self._list)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._list is None:
            return text_frame(self._frame).iter_rows(named=True)
        return iter(self._list)

    def __getitem__(self, i: Any) -> Any:
        if self._list is None and isinstance(i, int):
            return text_frame(self._frame[i]).row(0, named=True)
        return self.rows()[i]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RowFrame):
            other = list(other)
        return isinstance(other, list) and list(self) == other

    __hash__ = None  # type: ignore[assignment]

    def append(self, row: dict[str, Any]) -> None:
        self.rows().append(row)

    def extend(self, rows: Iterable[dict[str, Any]]) -> None:
        self.rows().extend(rows)

    def sort(self, *, key: Any = None, reverse: bool = False) -> None:
        self.rows().sort(key=key, reverse=reverse)


def text_frame(frame: Any) -> Any:
    """Decimal columns as their text (``Decimal(38, 4)`` → ``"1.2300"``, exact)."""

    return frame.with_columns(pl.col(pl.Decimal).cast(pl.String))


def frame_schema(columns: list[str], decimal_columns: Iterable[str] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {c: pl.String for c in columns}
    if "line" in schema:
        schema["line"] = pl.Int64
    if "taxes" in schema:
        schema["taxes"] = pl.List(pl.Struct({f: pl.String for f in TAX_FIELDS}))
    for c in decimal_columns:
        if c in schema:
            schema[c] = pl.Decimal(38, 4)
    return schema


DECIMAL_TEXT = re.compile(r"-?[0-9]{1,30}\.[0-9]{4}")


def rows_to_frame(rows: list[dict[str, Any]], columns: list[str], decimal_columns: Iterable[str] = ()) -> Any:
    """Dict rows (values: str / None, ``line`` int, ``taxes`` list of dicts, decimal columns the
    4-decimal text) as a RowFrame's frame; TypeError when a value does not fit that shape."""

    decimal = set(decimal_columns)
    for r in rows:
        for c in columns:
            v = r.get(c)
            if v is None:
                continue
            if c == "line":
                ok = type(v) is int
            elif c == "taxes":
                ok = isinstance(v, list) and all(
                    isinstance(t, dict)
                    and list(t) == list(TAX_FIELDS)
                    and all(x is None or type(x) is str for x in t.values())
                    for t in v
                )
            elif c in decimal:
                ok = type(v) is str and DECIMAL_TEXT.fullmatch(v) is not None and v != "-0.0000"
            else:
                ok = type(v) is str
            if not ok:
                raise TypeError(f"{c}: {v!r} does not fit a result frame")
    text = pl.DataFrame(
        [{c: r.get(c) for c in columns} for r in rows], schema=frame_schema(columns), orient="row"
    )
    return text.with_columns(pl.col(c).cast(pl.Decimal(38, 4)) for c in columns if c in decimal)


def _risky_table(chars: str) -> np.ndarray:
    table = np.zeros(256, bool)
    table[[ord(c) for c in chars]] = True
    return table


# bytes after which a value needs more than quotes (JSON) or any quotes (CSV)
JSON_RISKY = _risky_table("".join(map(chr, range(32))) + '"\\')
CSV_RISKY = _risky_table(',"\r\n')


def _risky_rows(series: Any, table: np.ndarray) -> Any:
    """Row numbers (polars UInt32 series) whose value contains a byte of ``table``; a scan of the
    Arrow data buffers first (usually it finds none and no row is looked at)."""

    arr = series.to_arrow()
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    suspect = False
    for ch in chunks:
        if not (pa.types.is_string(ch.type) or pa.types.is_large_string(ch.type)):
            suspect = True
            break
        buf = ch.buffers()[2]
        if buf is not None and buf.size and table[np.frombuffer(buf, np.uint8)].any():
            suspect = True
            break
    if not suspect:
        return pl.Series([], dtype=pl.UInt32)
    chars = "".join(chr(i) for i in np.flatnonzero(table))
    pattern = "[" + "".join(f"\\x{ord(c):02x}" for c in chars) + "]"
    return series.str.contains(pattern).fill_null(False).arg_true()


def _patched(series: Any, table: np.ndarray, plain: Any, fn: Any) -> Any:
    """``plain(series)`` (a Series), with ``fn(value)`` at the rows whose value has a byte of
    ``table`` (computed in Python: few)."""

    idx = _risky_rows(series, table)
    out = plain(series)
    if len(idx):
        values = series.gather(idx).to_list()
        out = out.scatter(idx, pl.Series([fn(v) for v in values], dtype=pl.String))
    return out


def _quote(s: Any) -> Any:
    return pl.select(pl.concat_str([pl.lit('"'), pl.lit(s), pl.lit('"')])).to_series().alias(s.name)


def json_strings(series: Any) -> Any:
    """Per value, ``json.dumps(value, ensure_ascii=False)`` (``null`` for None): quotes around
    values that need no escape, Python's encoder for the others."""

    s = series.cast(pl.String)
    out = _patched(s, JSON_RISKY, _quote, lambda v: json.dumps(v, ensure_ascii=False))
    return out.fill_null("null")


def _tax_json(series: Any) -> Any:
    """The ``taxes`` List(Struct) column as JSON text per row (``null`` for None)."""

    n = len(series)
    lists = series.to_arrow()
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    lists = lists.cast(pa.large_list(lists.type.value_type))
    values = lists.flatten()
    out = pl.Series("t", ["[]"] * 0, dtype=pl.String)
    if len(values):
        parts = []
        for k, f in enumerate(TAX_FIELDS):
            text = json_strings(pl.Series(pl.from_arrow(values.field(f))).cast(pl.String))
            parts.extend([pl.lit(("," if k else "") + f'"{f}":'), pl.lit(text)])
        elem = pl.select(pl.concat_str([pl.lit("{"), *parts, pl.lit("}")]).alias("e")).to_series()
        offsets = np.frombuffer(lists.buffers()[1], np.int64, count=lists.offset + n + 1)[lists.offset :]
        parent = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))
        grouped = (
            pl.DataFrame({"p": parent, "e": elem})
            .group_by("p", maintain_order=True)
            .agg(pl.col("e").str.join(","))
        )
        out = pl.Series("t", [""] * n, dtype=pl.String).scatter(grouped["p"], grouped["e"])
    else:
        out = pl.Series("t", [""] * n, dtype=pl.String)
    return pl.select(
        pl.when(pl.lit(series.is_not_null()))
        .then("[" + pl.lit(out) + "]")
        .otherwise(pl.lit("null"))
        .alias("t")
    ).to_series()


def _json_parts(frame: Any, c: str) -> list[Any]:
    """Column ``c`` as ``json.dumps`` text per row, in pieces to be concatenated: literal text
    (str) and expressions over the frame or Series. Where the column has no null and no value
    to escape, its quotes are literal text (they fold into the text around the value)."""

    if c not in frame.columns:
        return ["null"]
    s = frame.get_column(c)
    if c == "taxes" and isinstance(s.dtype, pl.List):
        return [pl.lit(_tax_json(s))]
    whole = not s.null_count()
    if s.dtype.is_integer():
        text = pl.col(c).cast(pl.String)
        return [text if whole else text.fill_null("null")]
    # a decimal's text is digits, point and minus; a string's may need escapes
    if isinstance(s.dtype, pl.Decimal) or (s.dtype == pl.String and not len(_risky_rows(s, JSON_RISKY))):
        text = pl.col(c).cast(pl.String)
        if whole:
            return ['"', text, '"']
        return [pl.concat_str([pl.lit('"'), text, pl.lit('"')]).fill_null("null")]
    return [pl.lit(json_strings(s))]


WRITE_ROWS = 100_000  # rows rendered at a time: the text of one piece is held, not the file's


def write_lines(path: str | os.PathLike[str], pieces: Iterable[Any]) -> np.ndarray:
    """Each piece a Series of strings, one per line, each ending with ``\n``, written as is
    (atomically), one piece after the other; returns each line's size in bytes."""

    tmp = temp_sibling(path)
    sizes = [np.zeros(0, np.int64)]
    with open(tmp, "wb") as fh:
        for lines in pieces:
            if len(lines):
                text, offsets = _line_text(lines)
                fh.write(text)
                sizes.append(np.diff(offsets))
    os.replace(tmp, path)
    return np.concatenate(sizes)


def _line_text(lines: Any) -> tuple[memoryview, np.ndarray]:
    """A Series of lines as (their text, one buffer: Arrow's, not copied; their n + 1 offsets)."""
    text = lines.to_arrow()
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if not pa.types.is_large_string(text.type):
        text = text.cast(pa.large_string())
    offsets = np.frombuffer(text.buffers()[1], np.int64, count=len(text) + 1, offset=8 * text.offset)
    return memoryview(text.buffers()[2])[int(offsets[0]) : int(offsets[-1])], offsets


def write_ndjson_frame(path: str | os.PathLike[str], frame: Any, columns: list[str]) -> np.ndarray:
    """A result frame (:class:`RowFrame`'s) as NDJSON, :data:`WRITE_ROWS` rows rendered at a
    time; returns each line's size in bytes."""

    return write_lines(path, (_ndjson_lines(part, columns) for part in _slices(frame)))


def ndjson_frame_text(frame: Any, columns: list[str]) -> bytes:
    """The bytes :func:`write_ndjson_frame` writes for ``frame`` (rendered :data:`WRITE_ROWS`
    rows at a time)."""
    pieces = (_ndjson_lines(part, columns) for part in _slices(frame))
    return b"".join(_line_text(lines)[0] for lines in pieces if len(lines))


def _slices(frame: Any) -> Iterator[Any]:
    for offset in range(0, frame.height, WRITE_ROWS):
        yield frame.slice(offset, WRITE_ROWS)


def write_frame(
    path: str | os.PathLike[str], frame: Any, columns: list[str], decimal_columns: list[str]
) -> None:
    """:func:`write_table` for a :class:`RowFrame`'s frame: the same bytes as for its dict rows.
    NDJSON and CSV are rendered :data:`WRITE_ROWS` rows at a time (each row's text depends on that
    row only), so the text of the whole file is never in memory."""

    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        _write_parquet_frame(path, frame, columns, decimal_columns)
        return
    if suffix == ".csv":
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(columns)
        head = pl.Series("l", [header.getvalue()], dtype=pl.String)
        body = (_csv_lines(part, columns) for part in _slices(frame))
        write_lines(path, itertools.chain([head], body))
        return
    write_ndjson_frame(path, frame, columns)


def _csv_lines(frame: Any, columns: list[str]) -> Any:
    cells = [_csv_column(frame, c) for c in columns]
    line = pl.concat_str([pl.concat_str(cells, separator=","), pl.lit("\n")])
    return frame.select(line.alias("l")).to_series()


def _ndjson_lines(frame: Any, columns: list[str]) -> Any:
    """Each row's NDJSON line, ``\n`` included: one concatenation over the frame, the keys and
    the literal pieces of :func:`_json_parts` joined into one text between values (no string
    column per value: ~35 % less time than a column per value)."""
    parts: list[Any] = []
    text: list[str] = []
    for k, c in enumerate(columns):
        text.append(("{" if k == 0 else ",") + json.dumps(c, ensure_ascii=False) + ":")
        for part in _json_parts(frame, c):
            if isinstance(part, str):
                text.append(part)
                continue
            if text:
                parts.append(pl.lit("".join(text)))
                text.clear()
            parts.append(part)
    parts.append(pl.lit("".join(text) + "}\n"))
    return frame.select(pl.concat_str(parts).alias("l")).to_series()


def _csv_one(v: str) -> str:
    return csv_row([v, ""])[:-2]  # the cell, without the empty second cell and the line end


def _csv_column(frame: Any, c: str) -> Any:
    """Column ``c`` as the CSV text :func:`write_csv` writes for ``_csv_cell(row.get(c))``."""

    if c not in frame.columns:
        return pl.lit("")
    s = frame.get_column(c)
    if c == "taxes" and isinstance(s.dtype, pl.List):
        text = _tax_json(s)
        text = pl.select(pl.when(pl.lit(s.is_null())).then(pl.lit("")).otherwise(pl.lit(text))).to_series()
        return pl.lit(_patched(text, CSV_RISKY, lambda x: x, _csv_one))
    if isinstance(s.dtype, pl.Decimal) or s.dtype.is_numeric():
        return pl.col(c).cast(pl.String).fill_null("")
    text = s.cast(pl.String).to_frame("t").select(csv_safe_expr(pl.col("t"))).to_series()
    if not len(_risky_rows(text, CSV_RISKY)):
        return pl.lit(text.fill_null(""))
    return pl.lit(_patched(text.fill_null(""), CSV_RISKY, lambda x: x, _csv_one))


def _write_parquet_frame(
    path: str | os.PathLike[str], frame: Any, columns: list[str], decimal_columns: list[str]
) -> None:
    dec = pa.decimal128(38, 4)
    tax_type = pa.list_(pa.struct([("name", pa.string()), ("percentage", pa.string()), ("amount", dec)]))
    arrays, fields = [], []
    n = frame.height
    for c in columns:
        if c in decimal_columns:
            typ: pa.DataType = dec
        elif c == "taxes":
            typ = tax_type
        elif c == "line":
            typ = pa.int64()
        else:
            typ = pa.string()
        if c in frame.columns:
            arr = frame.get_column(c).to_arrow()
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            if c in decimal_columns and not pa.types.is_decimal(arr.type):
                arr = arr.cast(pa.string())  # text (or large_string) → exact decimal
            if arr.type != typ:
                arr = arr.cast(typ)
        else:
            arr = pa.nulls(n, typ)
        arrays.append(arr)
        fields.append(pa.field(c, typ))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    tmp = temp_sibling(path)
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def temp_sibling(path: str | os.PathLike[str]) -> str:
    """Where a file is written before it is renamed to ``path``: a hidden sibling named after it
    and this process (a user's ``path.tmp`` is never overwritten; two runs never share one)."""
    head, name = os.path.split(os.fspath(path))
    return os.path.join(head, f".{name}.roamledger-partial-{os.getpid()}")


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write to a temporary file and rename: a crash never leaves a half-written output.

    UTF-8; a lone surrogate (not Unicode text: a record's string never holds one, a reject may
    quote one) is written as its ``\\udXXX`` escape, which in a JSON string reads back as itself."""
    tmp = temp_sibling(path)
    with open(tmp, "w", encoding="utf-8", errors="backslashreplace", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)
