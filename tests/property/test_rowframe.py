"""Vectorized result output: ``flat_kernel_result`` (rows as one polars frame) equals the
per-record path, and ``write_table`` writes a RowFrame byte for byte like the equal dict rows."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

import pricing.io
from pricing import batch
from pricing.batch import flat_file_kernel, flat_kernel_result, price_flat_file
from pricing.io import RowFrame, rows_to_frame, write_table
from pricing.report import DECIMAL_COLUMNS
from pricing.results import ROW_COLUMNS, merge_rows
from tests.property.strategies import policies
from tests.property.test_flat import TARIFFS, tables

SUFFIXES = (".ndjson", ".csv", ".parquet")


def same_files(rows: list[dict], frame_rows: RowFrame, d: Path) -> None:
    for suffix in SUFFIXES:
        write_table(d / f"list{suffix}", rows, ROW_COLUMNS, DECIMAL_COLUMNS)
        write_table(d / f"frame{suffix}", frame_rows, ROW_COLUMNS, DECIMAL_COLUMNS)
        assert (d / f"list{suffix}").read_bytes() == (d / f"frame{suffix}").read_bytes(), suffix


@settings(max_examples=60)
@given(tables(), policies, st.sampled_from([None, "Europe/Amsterdam"]))
def test_flat_kernel_frame_equals_per_record(table, policy, tz):
    from pricing.flat import split_flat

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        path = d / "flat.parquet"
        pq.write_table(table, path)
        ref = price_flat_file(path, TARIFFS, policy, tz, engine="reference")
        fr = split_flat(pq.read_table(path))
        got = flat_kernel_result(fr, TARIFFS, policy, tz, 1, str(path), fr.first_row + 1)
        assert got.rows.frame is not None
        assert got.read == ref.read
        assert got.rows == ref.rows
        assert got.rejects == ref.rejects
        assert got.warnings == ref.warnings
        same_files(ref.rows, got.rows, d)
        pieces = batch.FLAT_PIECE_ROWS
        try:  # the whole file in small pieces (never splitting a CDR)
            batch.FLAT_PIECE_ROWS = 3
            got = flat_file_kernel(str(path), TARIFFS, policy, tz, 2)
        finally:
            batch.FLAT_PIECE_ROWS = pieces
        assert (got.read, got.rows, got.rejects, got.warnings) == (
            ref.read,
            ref.rows,
            ref.rejects,
            ref.warnings,
        )


WEIRD = [
    "a",
    'q"uote',
    "back\\slash",
    "nl\nx",
    "cr\rx",
    "tab\tx",
    "ctl\x01\x1fx",
    "comma,x",
    "ü€😀",
    "",
    " x",
    "-1\n",  # not a number: a formula guard in both writers (Python's `$` matched before the \n)
    "+2.5\n",
]


def weird_rows() -> list[dict]:
    rows = []
    for i, w in enumerate(WEIRD):
        row = {c: "1.2345" for c in DECIMAL_COLUMNS}
        row.update(
            cdr_id=w,
            currency="EUR",
            tariff_id=None if i % 3 == 0 else w,
            time_zone="Europe/Berlin",
            total_cost_incl_vat=None if i % 2 else "-12.0000",
            min_max_applied=[None, "min", "max"][i % 3],
            taxes=[
                None,
                [],
                [{"name": "VAT", "percentage": "21", "amount": "-0.0100"}],
                [
                    {"name": w, "percentage": "9.5", "amount": None},
                    {"name": "VAT", "percentage": "0", "amount": "1"},
                ],
            ][i % 4],
            ocpi_version="2.3.0",
            source='src,"x',
            line=None if i == 2 else i + 1,
        )
        rows.append({c: row.get(c) for c in ROW_COLUMNS})
    return rows


def test_row_frame_writes_the_same_bytes_for_odd_strings(tmp_path: Path) -> None:
    rows = weird_rows()
    for part in (rows, rows[:1], []):
        for decimals in (DECIMAL_COLUMNS, ()):  # exact Decimal(38, 4) columns, or their text
            frame_rows = RowFrame(rows_to_frame(part, ROW_COLUMNS, decimals))
            assert frame_rows == part
            same_files(part, frame_rows, tmp_path)


def test_row_frame_written_in_pieces_is_the_same_file(tmp_path: Path, monkeypatch) -> None:
    """NDJSON and CSV rendered a few rows at a time (odd strings in some pieces only): the same
    bytes as in one piece."""
    rows = weird_rows() * 3
    frame_rows = RowFrame(rows_to_frame(rows, ROW_COLUMNS, DECIMAL_COLUMNS))
    for suffix in SUFFIXES:
        write_table(tmp_path / f"whole{suffix}", frame_rows, ROW_COLUMNS, DECIMAL_COLUMNS)
    for piece in (1, 4, len(rows) - 1):
        monkeypatch.setattr(pricing.io, "WRITE_ROWS", piece)
        for suffix in SUFFIXES:
            write_table(tmp_path / f"p{suffix}", frame_rows, ROW_COLUMNS, DECIMAL_COLUMNS)
            assert (tmp_path / f"p{suffix}").read_bytes() == (tmp_path / f"whole{suffix}").read_bytes()
    same_files(rows, frame_rows, tmp_path)


def test_merge_rows_sorts_like_the_list_path() -> None:
    rows = weird_rows()
    framed = RowFrame(rows_to_frame(rows[::2], ROW_COLUMNS, DECIMAL_COLUMNS))
    merged = merge_rows([framed, rows[1::2]])
    assert merged.frame is not None
    expected = sorted(rows, key=lambda r: (r["source"], r["line"] or 0, r["cdr_id"]))  # input order
    assert list(merged) == expected
    odd = [{**rows[0], "taxes": [{"name": "VAT", "percentage": "21", "amount": Decimal(1)}]}]
    # a value that does not fit a frame: the whole becomes a sorted list
    assert isinstance(merge_rows([framed, odd]), list)
    assert isinstance(merge_rows([framed, [{**rows[0], "total_cost_excl_vat": "1.5"}]]), list)
