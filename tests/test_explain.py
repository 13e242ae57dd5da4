"""``--explain`` adds up (issue 10, item 9): on every golden case with a CDR, the trace's rows
(pieces, FLAT amounts, step-size rows, the min/max clamp) sum to the priced totals, excl. and incl.
VAT, up to the 4-decimal rounding of each row; every row with an amount carries its VAT; piece
rows carry their local start time with its UTC offset beside the epoch ms."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from test_golden import FOLDERS, case_toml

from api.cli import main

CASES = [f for f in FOLDERS if (f / "cdr.json").exists()]
HALF = Decimal("0.00005")


def explain(folder: Path, tmp_path: Path) -> tuple[dict, list[dict]]:
    out = tmp_path / "out.ndjson"
    args = ["price", "--explain", "--out", str(out)]
    if case_toml(folder).get("time_zone"):
        args += ["--tz", case_toml(folder)["time_zone"]]
    assert main([*args, str(folder / "cdr.json")]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    trace = [json.loads(x) for x in Path(f"{out}.trace.ndjson").read_text().splitlines()]
    assert len(rows) == 1, folder.name
    return rows[0], trace


def total(trace: list[dict], column: str) -> tuple[Decimal, int]:
    values = [Decimal(r[column]) for r in trace if r[column] is not None]
    return sum(values, Decimal(0)), len(values)


@pytest.mark.parametrize("folder", CASES, ids=[f.name for f in CASES])
def test_trace_sums_to_the_totals(folder: Path, tmp_path: Path) -> None:
    row, trace = explain(folder, tmp_path)
    if row["total_cost_excl_vat"] is not None:
        excl, n = total(trace, "cost_excl_vat")
        assert abs(excl - Decimal(row["total_cost_excl_vat"])) <= HALF * (n + 1), excl
    if row["total_cost_incl_vat"] is not None:
        incl, n = total(trace, "cost_incl_vat")
        assert abs(incl - Decimal(row["total_cost_incl_vat"])) <= HALF * (n + 1)
        for r in trace:
            if r["cost_excl_vat"] is not None and r["cost_incl_vat"] is not None:
                assert (
                    Decimal(r["cost_excl_vat"]) + Decimal(r["vat_amount"]) - Decimal(r["cost_incl_vat"]) == 0
                )
    if row["min_max_applied"]:
        assert [r for r in trace if r["dimension"] == f"{row['min_max_applied'].upper()}_PRICE"]
    for r in trace:
        if r["piece"] is not None:
            local = datetime.fromisoformat(r["start_local"])
            assert local.utcoffset() is not None and int(local.timestamp() * 1000) == r["start"]


FLAT_CASES = [f for f in CASES if '"FLAT"' in (f / "cdr.json").read_text()]


@pytest.mark.parametrize("folder", FLAT_CASES, ids=[f.name for f in FLAT_CASES])
def test_flat_fees_have_their_amount(folder: Path, tmp_path: Path) -> None:
    """A FLAT component a piece chose has its fee as a row with its amount (the piece rows only show
    the choice)."""
    assert len(FLAT_CASES) >= 5
    _, trace = explain(folder, tmp_path)
    chosen = [r for r in trace if r["dimension"] == "FLAT" and r["piece"] is not None]
    fees = [r for r in trace if r["dimension"] == "FLAT" and r["piece"] is None]
    assert bool(chosen) == bool(fees)
    if folder.name in ("T03-announced", "T09"):  # start fees the spec prices
        assert fees
    assert all(r["cost_excl_vat"] is not None or r["cost_incl_vat"] is not None for r in fees)
