"""Flat-layout Parquet months (:mod:`pricing.flat`) for settlement: pieces, exact money columns and
canonical :class:`~pricing.model.Cdr` objects for the records that need per-record work.

Both settlement engines read flat files through here, so they see the same records, the same
rejects and the same line numbers (``line`` = 1-based row of the record's first period).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from pricing import errors as E
from pricing.model import Cdr, Money

E6_PER_E4 = 100
SETTLEMENT_COLUMNS = ("location_id", "contract_id", "credit", "credit_reference_id")


@dataclass
class FlatPiece:
    """A run of whole CDRs of one flat file, and where it starts in the file."""

    source: str
    row0: int  # rows of the file before this piece
    table: Any  # pyarrow.Table
    base: int = 0  # rows of all inputs before this piece (input order across files)


def is_flat_file(path: str | Path) -> bool:
    from pricing.batch import flat_parquet

    return flat_parquet(Path(path))


def iter_pieces(paths: Sequence[str | Path], max_rows: int = 500_000) -> Iterator[FlatPiece]:
    from pricing.flat import iter_flat_tables

    base = 0
    for path in paths:
        row0 = 0
        for table in iter_flat_tables(str(path), max_rows):
            yield FlatPiece(str(path), row0, table, base)
            row0 += table.num_rows
            base += table.num_rows


def decimal_e6(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """A ``decimal128(38, 6)`` column as exact int64 micro-units (0 where null) and a valid mask.

    Reads the 128-bit two's complement values directly; a value beyond int64 raises."""
    import pyarrow as pa

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(arr)
    if pa.types.is_null(arr.type) or n == 0:
        return np.zeros(n, np.int64), np.zeros(n, bool)
    if arr.type != pa.decimal128(38, 6):
        arr = arr.cast(pa.decimal128(38, 6))
    words = np.frombuffer(arr.buffers()[1], dtype=np.int64).reshape(-1, 2)[arr.offset : arr.offset + n]
    lo, hi = words[:, 0], words[:, 1]
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    if np.any(valid & (hi != (lo >> 63))):
        raise E.RoamledgerError("a reported amount does not fit 64-bit micro-units")
    return np.where(valid, lo, 0), valid


def optional_column(table: Any, name: str) -> Any:
    """A settlement column, or an all-null one when the file does not have it."""
    import pyarrow as pa

    if name in table.column_names:
        return table.column(name)
    return pa.nulls(table.num_rows, pa.bool_() if name == "credit" else pa.string())


def precision_rejects(table: Any, first_row: np.ndarray) -> dict[int, tuple[str, str, str]]:
    """Records whose reported totals need more than 4 decimals (record → (code, message, path))."""
    out: dict[int, tuple[str, str, str]] = {}
    for name, path in (
        ("reported_total_excl", "$.total_cost.excl_vat"),
        ("reported_total_incl", "$.total_cost.incl_vat"),
    ):
        v, ok = decimal_e6(table.column(name))
        bad = np.flatnonzero((ok & (v % E6_PER_E4 != 0))[first_row])
        for k in bad.tolist():
            out.setdefault(
                k,
                (
                    E.UNSUPPORTED_PRECISION,
                    f"{name}: {Decimal(int(v[first_row[k]])).scaleb(-6)} has more than 4 decimals. "
                    "Hint: OCPI amounts carry at most 4 decimals; round them at the source",
                    path,
                ),
            )
    return out


def e4_decimal(v: int) -> Decimal:
    return Decimal(v).scaleb(-4)


PERIOD_FIELDS = {  # CdrPeriod field → flat column
    "start_ms": "period_start_ms",
    "energy_mwh": "energy_mwh",
    "time_ms": "time_ms",
    "parking_ms": "parking_ms",
    "reservation_ms": "reservation_ms",
    "min_power_w": "min_power_w",
    "max_power_w": "max_power_w",
    "min_current_ma": "min_current_ma",
    "max_current_ma": "max_current_ma",
    "tariff_id": "tariff_id",
}
CDR_FIELDS = {  # Cdr field → flat column (first row of the record)
    "id": "cdr_id",
    "version": "ocpi_version",
    "start_ms": "cdr_start_ms",
    "end_ms": "cdr_end_ms",
    "currency": "currency",
    "country_code": "country_code",
    "party_id": "party_id",
    "location_country": "location_country",
    "location_time_zone": "time_zone",
    "emsp_country_code": "emsp_country_code",
    "emsp_party_id": "emsp_party_id",
    "location_id": "location_id",
    "contract_id": "contract_id",
    "credit": "credit",
    "credit_reference_id": "credit_reference_id",
}


def piece_cdrs(piece: FlatPiece, fr: Any, ks: Sequence[int]) -> list[Cdr]:
    """Records ``ks`` of a split piece as complete canonical CDRs (periods, money, parties,
    credit), read column-wise (one Arrow ``take`` per column, no per-value lookups). Values are
    those of :func:`pricing.periods.flat_cdr`: an empty ``tariff_id`` names no tariff."""
    import pyarrow as pa

    from pricing.model import CdrPeriod

    if not ks:
        return []
    t = piece.table
    k = np.asarray(ks, np.int64)
    first = np.asarray(fr.first_row, np.int64)
    ends = np.append(first[1:], t.num_rows)
    lo, hi = first[k], ends[k]
    counts = hi - lo
    starts = np.cumsum(counts) - counts
    rows = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts - lo, counts)
    per_row = {f: optional_column(t, c).take(pa.array(rows)).to_pylist() for f, c in PERIOD_FIELDS.items()}
    per_row["tariff_id"] = [x or None for x in per_row["tariff_id"]]
    per_cdr = {f: optional_column(t, c).take(pa.array(lo)).to_pylist() for f, c in CDR_FIELDS.items()}
    excl, excl_ok = decimal_e6(t.column("reported_total_excl"))
    incl, incl_ok = decimal_e6(t.column("reported_total_incl"))
    names = list(PERIOD_FIELDS)
    columns = [per_row[f] for f in names]
    out = []
    for j in range(len(k)):
        r = int(lo[j])
        a, b = int(starts[j]), int(starts[j] + counts[j])
        periods = tuple(
            CdrPeriod(**dict(zip(names, vals, strict=True)))
            for vals in zip(*(c[a:b] for c in columns), strict=True)
        )
        money = None
        if excl_ok[r] or incl_ok[r]:
            money = Money(
                e4_decimal(int(excl[r]) // E6_PER_E4) if excl_ok[r] else None,
                e4_decimal(int(incl[r]) // E6_PER_E4) if incl_ok[r] else None,
            )
        fields = {f: per_cdr[f][j] for f in CDR_FIELDS}
        fields["version"] = fields["version"] or ""
        fields["credit"] = bool(fields["credit"])
        out.append(Cdr(periods=periods, total_cost=money, **fields))
    return out


def split_piece(piece: FlatPiece) -> tuple[Any, dict[int, tuple[str, str, str]]]:
    """``split_flat`` of the piece and its structural rejects (incl. money precision)."""
    from pricing.periods import split_flat

    fr = split_flat(piece.table)
    rejects = dict(fr.rejects)
    for k, rej in precision_rejects(piece.table, fr.first_row).items():
        rejects.setdefault(k, rej)
    return fr, rejects


def record_id(fr: Any, k: int) -> str | None:
    code, values = fr.cols["cdr_id"]
    r = fr.first_row[k]
    return None if code[r] < 0 else values[int(code[r])]
