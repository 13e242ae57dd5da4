"""Every CSV roamledger writes is safe to open in a spreadsheet (issue 10, item 8): a text cell that
begins with = + - @ tab or CR is written with a leading apostrophe (OWASP CSV injection); numbers,
negative amounts included, are left as they are; our own reader undoes the rule exactly."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl
from hypothesis import given
from hypothesis import strategies as st
from test_settle import cdr, run_settle, write_month

from api.cli import main
from pricing.io import csv_safe, csv_safe_expr, csv_unsafe, write_csv
from settlement.output import write_lines_csv
from settlement.statement import LINE_COLUMNS

EVIL = ['=HYPERLINK("http://x","y")', "+SUM(A1)", "-2+3", "@cmd", "\t=1", "\r=1"]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def assert_neutral(cells: list[str]) -> None:
    for c in cells:
        assert c[:1] not in ("=", "+", "@", "\t", "\r") and not (c.startswith("-") and not c[1:2].isdigit())


@given(st.text(max_size=12))
def test_csv_safe_is_undone_by_csv_unsafe(text: str) -> None:
    safe = csv_safe(text)
    assert csv_unsafe(safe) == text
    assert safe[:1] not in ("=", "+", "-", "@", "\t", "\r") or safe.lstrip("+-").replace(".", "", 1).isdigit()
    assert pl.select(csv_safe_expr(pl.lit(text))).item() == safe


def test_a_number_followed_by_a_line_break_is_not_a_number() -> None:
    """One rule for dict rows (Python ``re``) and frames (polars' regex): a whole cell is a number
    or not; Python's ``$`` also matched before a final newline, polars' does not."""
    cells = ["-1\n", "+7\n", "-3.50\n", "-1\r", "-1\n2", "=1\n", "-1", "1\n"]
    expected = ["'-1\n", "'+7\n", "'-3.50\n", "'-1\r", "'-1\n2", "'=1\n", "-1", "1\n"]
    assert [csv_safe(c) for c in cells] == expected
    assert pl.select(csv_safe_expr(pl.Series(cells))).to_series().to_list() == expected


def test_numbers_are_left_alone() -> None:
    assert [csv_safe(x) for x in ("-3.50", "+7", "12", "-0.0001")] == ["-3.50", "+7", "12", "-0.0001"]
    assert [csv_safe(x) for x in ("-", "-x", "=1", "'=1")] == ["'-", "'-x", "'=1", "''=1"]


def test_settle_lines_csv_neutralizes_ids_and_locations(tmp_path: Path) -> None:
    cdrs = []
    for k, evil in enumerate(EVIL):
        c = cdr(evil, day=5 + k)
        c["location_id"] = evil
        cdrs.append(c)
    credit = cdr("CR1", day=20, credit_of=EVIL[0])  # negative amounts stay numbers
    cdrs.append(credit)
    src, tariffs, contracts = write_month(tmp_path, cdrs)
    out = tmp_path / "out"
    assert run_settle(tmp_path, src, tariffs, contracts, out) == 0
    rows = read_csv(out / "NL-CPO__DE-MSP__EUR" / "lines.csv")
    ids = {r["cdr_id"] for r in rows}
    assert ids == {"'" + e for e in EVIL} | {"CR1"}
    assert_neutral([v for r in rows for v in r.values()])
    neg = next(r for r in rows if r["cdr_id"] == "CR1")
    assert neg["line_excl_vat"].startswith("-") and float(neg["line_excl_vat"]) < 0
    assert neg["credit_reference_id"] == "'" + EVIL[0]
    # statement.json keeps the ids as they are (JSON is not a spreadsheet)
    st = json.loads((out / "NL-CPO__DE-MSP__EUR" / "statement.json").read_text())
    assert {ln["cdr_id"] for ln in st["lines"]} == set(EVIL) | {"CR1"}
    # --history reads the ids back as they were: a credit of an earlier run's line nets it
    (tmp_path / "later").mkdir()
    src2, tariffs2, contracts2 = write_month(tmp_path / "later", [cdr("CR2", day=21, credit_of=EVIL[1])])
    out2 = tmp_path / "out2"
    assert run_settle(tmp_path, src2, tariffs2, contracts2, out2, "--history", str(out)) == 0
    st2 = json.loads((out2 / "NL-CPO__DE-MSP__EUR" / "statement.json").read_text())
    assert [ln["cdr_id"] for ln in st2["lines"]] == ["CR2"]  # not disputed as a credit without original


def test_price_and_reconcile_csv_neutralize(tmp_path: Path) -> None:
    cdrs = [cdr(e, day=5 + k) for k, e in enumerate(EVIL)]
    src, tariffs, _ = write_month(tmp_path, cdrs)
    for cmd in ("price", "reconcile"):
        out = tmp_path / f"{cmd}.csv"
        assert main([cmd, "--tariffs", str(tariffs), "--out", str(out), str(src)]) == 0
        rows = read_csv(out)
        assert {r["cdr_id"] for r in rows} == {"'" + e for e in EVIL}
        assert_neutral([v for r in rows for v in r.values() if v])


def test_the_dict_and_frame_writers_agree(tmp_path: Path) -> None:
    """write_csv (dict rows) and write_lines_csv (frames, both engines) apply the same rule."""
    rows = [{"cdr_id": e, "n": "-1.00"} for e in EVIL]
    write_csv(tmp_path / "a.csv", rows, ["cdr_id", "n"])
    assert [r["cdr_id"] for r in read_csv(tmp_path / "a.csv")] == [csv_safe(e) for e in EVIL]
    frame = pl.DataFrame({c: [""] * len(EVIL) for c in LINE_COLUMNS}).with_columns(pl.Series("cdr_id", EVIL))
    with open(tmp_path / "b.csv", "wb") as fh:
        write_lines_csv(fh, frame)
    assert [r["cdr_id"] for r in read_csv(tmp_path / "b.csv")] == [csv_safe(e) for e in EVIL]
