"""Reading OCPI records and writing result tables.

Readers never raise on a bad record: a line that is not JSON becomes a :class:`Record` carrying a
``BAD_JSON`` finding, with its source file and line, and reading goes on.

* ``.json``: one object, an array of objects, or an OCPI response envelope (``{"data": …}``).
  For an array, ``line`` is the 1-based item number. A ``.json`` file that is not one JSON
  document is read as NDJSON.
* ``.ndjson`` / ``.jsonl``: one object per line; ``line`` is the line number.
* ``.parquet``: one nested OCPI object per row (``line`` = 1-based row number).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from pricing import errors as E
from pricing.errors import Finding, InputError


@dataclass(frozen=True, slots=True)
class Record:
    source: str
    line: int | None
    obj: Any = None
    error: Finding | None = None


def loads(text: str | bytes) -> Any:
    """JSON with exact numbers: non-integers become Decimal, never float."""
    return json.loads(text, parse_float=Decimal)


def unwrap_envelope(doc: Any) -> Any:
    if isinstance(doc, dict) and "data" in doc and ("status_code" in doc or "timestamp" in doc):
        return doc["data"]
    return doc


def read_records(path: str | os.PathLike[str]) -> Iterator[Record]:
    p = Path(path)
    src = str(path)
    if not p.exists():
        raise InputError(f"{src}: no such file. Hint: check the path")
    if p.is_dir():
        for child in sorted(p.iterdir()):
            if child.suffix.lower() in (".json", ".ndjson", ".jsonl", ".parquet"):
                yield from read_records(child)
        return
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        yield from _read_parquet(p, src)
    elif suffix in (".ndjson", ".jsonl"):
        yield from _read_ndjson(p.read_bytes(), src)
    else:
        data = p.read_bytes()
        try:
            doc = unwrap_envelope(loads(data))
        except ValueError:
            yield from _read_ndjson(data, src)
            return
        if isinstance(doc, list):
            for i, item in enumerate(doc, start=1):
                yield Record(src, i, item)
        else:
            yield Record(src, 1, doc)


def _read_ndjson(data: bytes, src: str) -> Iterator[Record]:
    for n, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = loads(raw)
        except ValueError as exc:
            msg = f"line is not valid JSON ({exc}). Hint: each line must hold one complete JSON object"
            yield Record(src, n, None, Finding(E.BAD_JSON, msg, src, n))
            continue
        yield Record(src, n, unwrap_envelope(obj))


def _read_parquet(p: Path, src: str) -> Iterator[Record]:
    import pyarrow.parquet as pq

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


def dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def write_ndjson(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(dumps(r) + "\n" for r in rows))


def write_csv(path: str | os.PathLike[str], rows: list[dict[str, Any]], columns: list[str]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_csv_cell(r.get(c)) for c in columns])
    atomic_write_text(path, buf.getvalue())


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    return str(v)


def write_parquet(
    path: str | os.PathLike[str], rows: list[dict[str, Any]], columns: list[str], decimal_columns: list[str]
) -> None:
    """Decimal columns as decimal128(38, 4); the ``taxes`` list as list<struct>."""
    import pyarrow as pa
    import pyarrow.parquet as pq

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
        else:
            typ = pa.string()
        arrays.append(pa.array(values, type=typ))
        fields.append(pa.field(c, typ))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    tmp = f"{path}.tmp"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def write_table(
    path: str | os.PathLike[str], rows: list[dict[str, Any]], columns: list[str], decimal_columns: list[str]
) -> None:
    suffix = Path(path).suffix.lower()
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


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write to a temporary file and rename: a crash never leaves a half-written output."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (manifests record every input this way)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def all_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every file under the given files/directories, sorted within a directory."""
    out: list[Path] = []
    for p in map(Path, paths):
        out.extend(sorted(c for c in p.rglob("*") if c.is_file()) if p.is_dir() else [p])
    return out
