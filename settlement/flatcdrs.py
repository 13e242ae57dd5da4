"""Flat-layout Parquet months (:mod:`pricing.flat`) for settlement: pieces, exact money columns and
canonical :class:`~pricing.model.Cdr` objects for the records that need per-record work.

Both settlement engines read flat files through here, so they see the same records, the same
rejects and the same line numbers (``line`` = 1-based row of the record's first period).
"""

from __future__ import annotations

import dataclasses
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


def piece_cdrs(piece: FlatPiece, fr: Any, ks: Sequence[int]) -> list[Cdr]:
    """Records ``ks`` of a split piece as complete canonical CDRs (money, parties, credit)."""
    import pyarrow as pa

    from pricing.periods import flat_cdr

    if not ks:
        return []
    t = piece.table
    rows = pa.array(fr.first_row[list(ks)], pa.int64())

    def take(name: str) -> list[Any]:
        return optional_column(t, name).take(rows).to_pylist()

    excl, excl_ok = decimal_e6(t.column("reported_total_excl"))
    incl, incl_ok = decimal_e6(t.column("reported_total_incl"))
    extra = {name: take(name) for name in (*SETTLEMENT_COLUMNS, "emsp_country_code", "emsp_party_id")}
    out = []
    for j, k in enumerate(ks):
        r = int(fr.first_row[k])
        money = None
        if excl_ok[r] or incl_ok[r]:
            money = Money(
                e4_decimal(int(excl[r]) // E6_PER_E4) if excl_ok[r] else None,
                e4_decimal(int(incl[r]) // E6_PER_E4) if incl_ok[r] else None,
            )
        out.append(
            dataclasses.replace(
                flat_cdr(fr, k),
                total_cost=money,
                emsp_country_code=extra["emsp_country_code"][j],
                emsp_party_id=extra["emsp_party_id"][j],
                location_id=extra["location_id"][j],
                contract_id=extra["contract_id"][j],
                credit=bool(extra["credit"][j]),
                credit_reference_id=extra["credit_reference_id"][j],
            )
        )
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
