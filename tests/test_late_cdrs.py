"""Late CDRs of closed months (issue 12, item 3): both engines take the same late CDRs into a month,
as late lines with a LATE_CDR finding, and write byte-identical runs (the record engine is the
oracle, as in tests/test_settle_columnar.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_settle_columnar import assert_same_run, generate

from settlement.columnar.settle import settle_columnar
from settlement.jobs import settle, write_run
from settlement.rules import LATE_CDR

MONTH = "2026-10"


@pytest.mark.parametrize("piece_rows", [500_000, 997])
def test_both_engines_equal_on_a_month_with_late_cdrs(tmp_path: Path, piece_rows: int) -> None:
    cdrs, tariffs, contracts = generate(tmp_path, 21)
    before, _ = settle([cdrs], [tariffs], MONTH, contracts_path=contracts)
    outside = sorted({ln.cdr.id for ln in before.out_of_month})
    assert len(outside) >= 5
    # the CDRs that ended outside the month are the late CDRs of a closed month here
    late = dict.fromkeys(outside, "2026-09")
    result, c = settle([cdrs], [tariffs], MONTH, contracts_path=contracts, late=late)
    local = write_run(result, c, tmp_path / "local", MONTH, [cdrs], {})
    out, counts, _ = settle_columnar(
        [cdrs], [tariffs], MONTH, tmp_path / "columnar", contracts_path=contracts,
        piece_rows=piece_rows, late=late,
    )  # fmt: skip
    assert counts == result.counts
    assert_same_run(local, out)
    assert counts["out_of_month"] == 0 and counts["read"] == before.counts["read"]
    moved = counts["settled"] + counts["excluded"] - before.counts["settled"] - before.counts["excluded"]
    assert moved == before.counts["out_of_month"], "every late CDR in exactly one bucket of this month"
    findings = [json.loads(x) for x in (out / "findings.ndjson").read_text().splitlines()]
    late_found = [f for f in findings if f["code"] == LATE_CDR]
    assert sorted({f["cdr_id"] for f in late_found}) == outside
    assert all("2026-09" in f["message"] and MONTH in f["message"] for f in late_found)
    assert not any(f["code"] == "OUT_OF_MONTH" for f in findings)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["record_path"]["late CDR"] > 0
    lines = []
    for st in out.glob("*/statement.json"):
        lines += [ln for ln in json.loads(st.read_text())["lines"] if LATE_CDR in ln["reasons"].split(",")]
    assert lines and {ln["cdr_id"] for ln in lines} <= set(outside)
    pages = "".join(p.read_text() for p in out.glob("*/statement.html"))
    assert "late CDR: the session ended in" in pages
