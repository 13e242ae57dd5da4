"""Rows rendered as NDJSON where each span was priced, merged when written: the same bytes as the
merged result rows written by ``write_table``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

import pricing.rendered
from benchmarks.workload import cli as gen
from pricing.batch import load_tariffs, price_ndjson_columnar
from pricing.io import RowFrame, rows_to_frame, write_table
from pricing.ndjson_parallel import price_ndjson_spans
from pricing.policy import PricingPolicy
from pricing.rendered import RenderedRows, spill_dir, spill_rows
from pricing.report import DECIMAL_COLUMNS
from pricing.results import ROW_COLUMNS
from tests.property.test_rowframe import weird_rows


@pytest.fixture(scope="module")
def month(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("month")
    parser = argparse.ArgumentParser(prog="roamledger")
    gen.add_parser(parser.add_subparsers(dest="command", required=True))
    argv = ["--cdrs", "500", "--seed", "3", "--malformed", "6", "--credit-rate", "0.03"]
    argv += ["--duplicate-rate", "0.03", "--quiet", "--out", str(folder / "m.ndjson")]
    args = parser.parse_args(["generate", *argv])
    assert args.func(args) == 0
    return folder


@pytest.mark.parametrize("workers", [1, 2])
def test_rendered_spans_write_the_bytes_of_the_merged_rows(workers, month, tmp_path, monkeypatch):
    monkeypatch.setattr(pricing.rendered, "MERGE_ROWS", 37)  # many merge pieces
    store, _ = load_tariffs([month / "tariffs"])
    path = str(month / "m.ndjson")
    one = price_ndjson_columnar(path, store)
    args = (price_ndjson_columnar, path, store, PricingPolicy(), None, workers, 1 << 15)
    rendered = price_ndjson_spans(*args, render_ndjson=True)
    assert rendered is not None and isinstance(rendered.rows, RenderedRows)
    assert len(rendered.rows.spills) > 3
    assert (rendered.read, len(rendered.rows), rendered.rejects) == (one.read, one.priced, one.rejects)
    assert rendered.fallbacks == one.fallbacks
    write_table(tmp_path / "one.ndjson", one.rows, ROW_COLUMNS, DECIMAL_COLUMNS)
    folder = rendered.rows.folder
    write_table(tmp_path / "spans.ndjson", rendered.rows, ROW_COLUMNS, DECIMAL_COLUMNS)
    assert (tmp_path / "spans.ndjson").read_bytes() == (tmp_path / "one.ndjson").read_bytes()
    assert not os.path.exists(folder)  # the temporary files went


def test_spilled_dict_rows_and_frames_are_the_same_lines(tmp_path):
    """A span whose rows came per record (dicts) spills the bytes its frame would; lines and
    odd strings survive the merge (here: two spans, one of each kind, shifted)."""
    rows = sorted(weird_rows(), key=lambda r: (r["cdr_id"], r["line"] or 0))
    folder = spill_dir()
    a = spill_rows(rows, os.path.join(folder, "a.ndjson"))
    b = spill_rows(
        RowFrame(rows_to_frame(rows, ROW_COLUMNS, DECIMAL_COLUMNS)), os.path.join(folder, "b.ndjson")
    )
    assert Path(a.path).read_bytes() == Path(b.path).read_bytes()
    shifted = [{**r, "line": None if r["line"] is None else r["line"] + 100} for r in rows]
    rendered = RenderedRows([a, b.shifted(100)], folder)
    rendered.write(tmp_path / "merged.ndjson")
    expected = sorted(rows + shifted, key=lambda r: (r["cdr_id"], r["line"] or 0))
    write_table(tmp_path / "expected.ndjson", expected, ROW_COLUMNS, DECIMAL_COLUMNS)
    assert (tmp_path / "merged.ndjson").read_bytes() == (tmp_path / "expected.ndjson").read_bytes()
    with pytest.raises(TypeError):
        list(rendered)
