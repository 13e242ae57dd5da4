"""A file's OCPI version is that of its first CDR: a JSON object before it that is not a CDR (``{}``,
a tariff) is rejected on its own and fixes nothing. One rule (:func:`pricing.ocpi.file_version_of`)
for the per-record reader, the columnar reader, the spans of a large file and reconcile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT
from test_price_cli import CDR, CDR_211, TARIFF

import pricing.batch
import pricing.ndjson_parallel
from api.cli import main
from pricing.batch import price_ndjson_columnar
from pricing.ocpi import file_version_of

CDR_230 = json.loads((ROOT / "fixtures/spec/examples/2.3.0/cdr_example.json").read_text())
NOT_CDRS = [{}, TARIFF, {"id": "x", "charging_periods": []}]  # the last lacks start_date_time


def test_only_a_cdr_fixes_the_version() -> None:
    assert [file_version_of(x) for x in (CDR_211, CDR, CDR_230)] == ["2.1.1", "2.2.1", "2.3.0"]
    assert [file_version_of(x) for x in [*NOT_CDRS, [CDR], "x"]] == [None] * 5


def lines_211() -> list[str]:
    """Non-CDR objects first, then 2.1.1 CDRs, then a 2.2.1 CDR (the one version mismatch)."""
    second = dict(CDR_211, id="second")
    return [json.dumps(x) for x in (*NOT_CDRS, CDR_211, second, CDR)]


EXPECTED_211 = (
    {4: "12345", 5: "second"},
    {1: "BAD_RECORD", 2: "BAD_RECORD", 3: "MISSING_FIELD", 6: "VERSION_MISMATCH"},
)


def run(tmp_path: Path, lines: list[str], *args: str) -> tuple[dict, dict]:
    src = tmp_path / "cdrs.ndjson"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / f"o{len(list(tmp_path.iterdir()))}.ndjson"
    assert main(["price", *args, "--tz", "Europe/Brussels", "--out", str(out), str(src)]) == 0
    rows = {r["line"]: r["cdr_id"] for r in map(json.loads, out.read_text().splitlines())}
    rejects = {r["line"]: r for r in map(json.loads, Path(f"{out}.rejects.ndjson").read_text().splitlines())}
    return rows, rejects


@pytest.mark.parametrize("args", [["--workers", "1"], ["--engine", "reference"]])
def test_objects_before_the_first_cdr_do_not_fix_the_version(tmp_path: Path, args: list[str]) -> None:
    rows, rejects = run(tmp_path, lines_211(), *args)
    assert (rows, {n: r["code"] for n, r in rejects.items()}) == EXPECTED_211
    assert "the file's first CDR was 2.1.1" in rejects[6]["message"]
    assert "not an OCPI CDR" in rejects[1]["message"] and "an OCPI tariff" in rejects[2]["message"]
    rows, rejects = run(tmp_path, [json.dumps(x) for x in ({}, CDR_230)], *args)
    assert (rows, list(rejects)) == ({2: CDR_230["id"]}, [1])


def test_spans_take_the_version_of_the_first_cdr(tmp_path: Path, monkeypatch) -> None:
    """A file of several spans: each is read with the version of the file's first CDR."""
    monkeypatch.setattr(pricing.batch, "SPAN_BYTES", 600)
    monkeypatch.setattr(pricing.ndjson_parallel, "SPAN_BYTES", 600)
    src = tmp_path / "cdrs.ndjson"
    src.write_text("\n".join(lines_211()) + "\n")
    assert len(pricing.ndjson_parallel.spans(str(src), 600)) > 2
    res = price_ndjson_columnar(src, None, tz="Europe/Brussels", workers=1)
    assert ({r["line"]: r["cdr_id"] for r in res.rows}, {f.line: f.code for f in res.rejects}) == EXPECTED_211


def test_reconcile_takes_the_version_of_the_first_cdr(tmp_path: Path, capsys) -> None:
    src = tmp_path / "cdrs.ndjson"
    src.write_text("\n".join(json.dumps(x) for x in ({}, CDR_211)) + "\n")
    out = tmp_path / "r.ndjson"
    assert main(["reconcile", "--tz", "Europe/Brussels", "--out", str(out), str(src)]) == 0
    assert capsys.readouterr().out.startswith("read 2, reconciled 1, rejected 1")
    rejects = [json.loads(x) for x in Path(f"{out}.rejects.ndjson").read_text().splitlines()]
    assert [(r["line"], r["code"]) for r in rejects] == [(1, "BAD_RECORD")]
