"""Rows rendered as NDJSON where each span was priced, gathered in span order beside the output and
renamed into place: the same bytes as the merged result rows written by ``write_table``."""

from __future__ import annotations

import argparse
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

import pricing.ndjson_parallel
import pricing.rendered
from benchmarks.workload import cli as gen
from pricing.batch import load_tariffs, price_ndjson_columnar
from pricing.io import RowFrame, ndjson_lines, rows_to_frame, write_table
from pricing.ndjson_parallel import count_lines, price_ndjson_spans, spans
from pricing.policy import CDR_POLICY
from pricing.rendered import ALIGN, DirectFile, RenderedRows, render_rows, rows_file
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
def test_rendered_spans_write_the_bytes_of_the_merged_rows(workers, month, tmp_path):
    store, _ = load_tariffs([month / "tariffs"])
    path = str(month / "m.ndjson")
    one = price_ndjson_columnar(path, store)
    args = (price_ndjson_columnar, path, store, CDR_POLICY, None, workers, 1 << 15)
    out = tmp_path / "spans.ndjson"
    rendered = price_ndjson_spans(*args, render_ndjson=out)
    assert isinstance(rendered.rows, RenderedRows)
    gathered = rendered.rows.path
    assert Path(gathered).parent == tmp_path and os.path.exists(gathered)  # beside the output
    assert (rendered.read, len(rendered.rows), rendered.rejects) == (one.read, one.priced, one.rejects)
    assert rendered.fallbacks == one.fallbacks
    write_table(tmp_path / "one.ndjson", one.rows, ROW_COLUMNS, DECIMAL_COLUMNS)
    write_table(out, rendered.rows, ROW_COLUMNS, DECIMAL_COLUMNS)
    assert out.read_bytes() == (tmp_path / "one.ndjson").read_bytes()
    assert not os.path.exists(gathered)  # renamed into place
    lines = [json.loads(x)["line"] for x in out.read_bytes().splitlines()]
    assert lines == sorted(lines)  # input order


def test_rendered_rows_are_the_lines_write_table_writes(tmp_path):
    """A span whose rows came per record (dicts) renders the bytes its frame would; odd strings
    survive; spans are appended in order; an unwritten file goes with its object."""
    rows = sorted(weird_rows(), key=lambda r: (r["source"], r["line"] or 0, r["cdr_id"]))
    a = render_rows(rows)
    b = render_rows(RowFrame(rows_to_frame(rows, ROW_COLUMNS, DECIMAL_COLUMNS)))
    assert a == b and len(a) == len(rows)
    write_table(tmp_path / "expected.ndjson", rows, ROW_COLUMNS, DECIMAL_COLUMNS)
    assert a.text == (tmp_path / "expected.ndjson").read_bytes()
    out = tmp_path / "o.ndjson"
    rendered = RenderedRows(rows_file(out))
    rendered.append(a)
    rendered.append(render_rows([]))
    rendered.append(b)
    rendered.close()
    assert len(rendered) == 2 * len(rows)
    with pytest.raises(TypeError):
        list(rendered)
    rendered.write(out)
    assert out.read_bytes() == a.text + b.text
    left = RenderedRows(rows_file(tmp_path / "x.ndjson"))
    left.append(a)
    gathered = left.path
    del left
    assert not os.path.exists(gathered)


def test_rendered_rows_move_across_file_systems(tmp_path, monkeypatch):
    """Where the rename is refused (another file system), the rows are copied into place."""
    rows = weird_rows()
    rendered = RenderedRows(rows_file(tmp_path / "o.ndjson"))
    text = render_rows(sorted(rows, key=lambda r: (r["source"], r["line"] or 0, r["cdr_id"])))
    rendered.append(text)
    gathered = rendered.path
    real = os.replace

    def replace(src, dst):
        if src == gathered:
            raise OSError(18, "Invalid cross-device link")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    rendered.write(tmp_path / "elsewhere.ndjson")
    assert (tmp_path / "elsewhere.ndjson").read_bytes() == text.text
    assert not os.path.exists(gathered)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere.ndjson"]


@pytest.mark.parametrize(
    "data",
    [b"", b"a", b"a\n", b"a\r\nb", b"a\rb\r\n\r\nc\r", b"\n\n\r", b"a\r\rb\n\r"],
)
def test_line_counts_are_those_of_the_reader_and_of_grep(data):
    """A line ends at \\n (a lone \\r is a byte of its line), as ``grep -c ''`` counts."""
    grep_c = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    assert count_lines(data) == len(ndjson_lines(data)) == grep_c
    for start in range(len(data) + 1):  # any range of it (a span of a file)
        for end in range(start, len(data) + 1):
            assert count_lines(data, end, start) == len(ndjson_lines(data[start:end])), (start, end)


@pytest.mark.parametrize("workers", [1, 2])
def test_rendered_lines_numbered_across_odd_line_ends(workers, month, tmp_path):
    """CRLF line ends, a lone carriage return (inside a line: JSON whitespace there) and no line end
    at the end: the lines counted before each span are the ones the reader numbers, so the rendered
    lines carry the file's numbers."""
    store, _ = load_tariffs([month / "tariffs"])
    lines = (month / "m.ndjson").read_bytes().splitlines()
    third = len(lines) // 3
    path = tmp_path / "odd.ndjson"
    lines[third] = lines[third].replace(b'",', b'",\r', 1)
    path.write_bytes(b"\r\n".join(lines[:third]) + b"\r\n" + b"\n".join(lines[third:]))
    one = price_ndjson_columnar(path, store)
    assert one.read == sum(1 for line in lines if line.strip())  # the \\r line is one record
    args = (price_ndjson_columnar, str(path), store, CDR_POLICY, None, workers, 1 << 15)
    rendered = price_ndjson_spans(*args, render_ndjson=tmp_path / "spans.ndjson")
    assert len(spans(str(path), 1 << 15)) > 3
    assert (rendered.read, rendered.rejects, rendered.warnings) == (one.read, one.rejects, one.warnings)
    write_table(tmp_path / "one.ndjson", one.rows, ROW_COLUMNS, DECIMAL_COLUMNS)
    write_table(tmp_path / "spans.ndjson", rendered.rows, ROW_COLUMNS, DECIMAL_COLUMNS)
    assert (tmp_path / "spans.ndjson").read_bytes() == (tmp_path / "one.ndjson").read_bytes()


def test_rendered_span_priced_again_keeps_its_line_numbers(tmp_path, monkeypatch):
    """No tariffs given and a late span that took another body for an embedded tariff id: it is
    priced again (in this process) and rendered with the same line numbers as the first time."""
    folder = tmp_path / "emb"
    folder.mkdir()
    parser = argparse.ArgumentParser(prog="roamledger")
    gen.add_parser(parser.add_subparsers(dest="command", required=True))
    argv = ["--cdrs", "400", "--seed", "5", "--malformed", "4", "--embed-tariffs", "--quiet"]
    args = parser.parse_args(["generate", *argv, "--out", str(folder / "m.ndjson")])
    assert args.func(args) == 0
    path = folder / "m.ndjson"
    lines = path.read_bytes().splitlines(keepends=True)
    marker = b'"tariffs":[{'
    late = next(k for k in range(len(lines) * 2 // 3, len(lines)) if marker in lines[k])
    lines[late] = lines[late].replace(marker, marker + b'"tariff_alt_url":"https://example.com/t",', 1)
    path.write_bytes(b"".join(lines))
    one = price_ndjson_columnar(path, None)
    assert one.fallbacks["columnar_reader: embedded tariff differs from an earlier one with the same id"]
    again = []
    first_try = pricing.ndjson_parallel._price_span

    def price_span(*args, seen=None, **kw):
        if seen is not None:
            again.append(kw["line0"])
        return first_try(*args, seen=seen, **kw)

    monkeypatch.setattr(pricing.ndjson_parallel, "_price_span", price_span)
    rendered = price_ndjson_spans(
        price_ndjson_columnar,
        str(path),
        None,
        CDR_POLICY,
        None,
        1,
        1 << 15,
        render_ndjson=tmp_path / "spans.ndjson",
    )
    assert again and min(again) > 0
    assert rendered is not None and (rendered.read, rendered.rejects) == (one.read, one.rejects)
    write_table(tmp_path / "one.ndjson", one.rows, ROW_COLUMNS, DECIMAL_COLUMNS)
    write_table(tmp_path / "spans.ndjson", rendered.rows, ROW_COLUMNS, DECIMAL_COLUMNS)
    assert (tmp_path / "spans.ndjson").read_bytes() == (tmp_path / "one.ndjson").read_bytes()


def test_two_workers_start_one_process_and_price_spans_here_too(month, tmp_path, monkeypatch):
    """With 2 workers one process is started; this one prices spans meanwhile (the started one
    takes seconds to import), and the written bytes are those of one process."""
    here = []
    first_try = pricing.ndjson_parallel._here
    monkeypatch.setattr(pricing.ndjson_parallel, "_here", lambda *a: here.append(a[2]) or first_try(*a))
    store, _ = load_tariffs([month / "tariffs"])
    path = str(month / "m.ndjson")
    one = price_ndjson_columnar(path, store)
    args = (price_ndjson_columnar, path, store, CDR_POLICY, None, 2, 1 << 15)
    rendered = price_ndjson_spans(*args, render_ndjson=tmp_path / "spans.ndjson")
    assert here and len(here) < len(spans(path, 1 << 15))
    write_table(tmp_path / "one.ndjson", one.rows, ROW_COLUMNS, DECIMAL_COLUMNS)
    write_table(tmp_path / "spans.ndjson", rendered.rows, ROW_COLUMNS, DECIMAL_COLUMNS)
    assert (tmp_path / "spans.ndjson").read_bytes() == (tmp_path / "one.ndjson").read_bytes()


def test_pricing_processes_skip_pyarrows_pandas_import_and_pandas_still_works():
    """skip_pandas_probe: Arrow conversions of Python values no longer import pandas (0.2–0.4 s
    per pricing process), and a later to_pandas still gets pandas."""
    code = (
        "import sys, numpy as np, pyarrow as pa, pyarrow.compute as pc\n"
        "from pricing.ndjson_parallel import skip_pandas_probe\n"
        "skip_pandas_probe()\n"
        "pa.array(np.arange(3)); pc.equal(pa.array([1]), 0)\n"
        "print('pandas' in sys.modules)\n"
        "print(type(pa.table({'a': [1]}).to_pandas()).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "DataFrame"]


@pytest.mark.parametrize(
    "sizes", [[], [1], [ALIGN - 1, 1], [ALIGN + 1], [3 * ALIGN, 5, 2 * ALIGN], [20_000] * 7]
)
def test_direct_file_holds_exactly_what_was_appended(tmp_path: Path, sizes: list[int]) -> None:
    """Appended past the page cache through two 8 KB buffers (so pieces cross and fill them):
    the file is the pieces' bytes, the padding of the last block cut off."""
    path = tmp_path / "rows"
    pieces = [bytes((k * 7 + i) % 251 for i in range(n)) for k, n in enumerate(sizes)]
    out = DirectFile(str(path), buffer_bytes=2 * ALIGN)
    for piece in pieces:
        out.write(piece)
    out.close()
    out.close()  # twice: nothing more happens
    assert path.read_bytes() == b"".join(pieces)
    with pytest.raises(FileExistsError):  # a new file only, like open(path, "xb")
        DirectFile(str(path))


def test_direct_file_falls_back_to_the_cache_where_the_transfer_is_refused(
    tmp_path: Path, monkeypatch
) -> None:
    """A file system that takes O_DIRECT at open but refuses the transfer (EINVAL): the flag is
    dropped and the same bytes are written through the cache; other errors are raised."""
    write, calls = os.write, []

    def refusing(fd: int, data) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            raise OSError(errno.EINVAL, "Invalid argument")
        return write(fd, data)

    monkeypatch.setattr(pricing.rendered.os, "write", refusing)
    path = tmp_path / "rows"
    out = DirectFile(str(path), buffer_bytes=2 * ALIGN)
    out.write(b"x" * (5 * ALIGN + 3))
    out.close()
    assert path.read_bytes() == b"x" * (5 * ALIGN + 3) and len(calls) > 2

    def full(fd: int, data) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pricing.rendered.os, "write", full)
    out = DirectFile(str(tmp_path / "other"), buffer_bytes=2 * ALIGN)
    with pytest.raises(OSError, match="No space"):
        out.write(b"y" * (6 * ALIGN))
        out.close()
    out.close()  # the file is closed all the same
