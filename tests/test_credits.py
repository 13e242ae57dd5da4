"""Credit CDRs on statements (the new-user trial, session 6): an original is credited once (a second
credit of it is CREDIT_DUPLICATE, disputed and never paid) in a run, across runs with ``--history``
and from the store, in both engines alike; a credit's quantities net its original's in the totals
and the chart; the reconciliation shows the recomputed amount with the credit's sign; the roaming
fee per session nets credited sessions and never shows a negative count; a negative amount due says
that the CPO owes the eMSP. Inputs are small copies of /tmp/trial/crd and /tmp/trial/hist2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from trial import CONTRACTS, cdr_221, write_inputs, write_ndjson

from api.cli import main

FOLDER = "NL-ABC__DE-MSP__EUR"
FEE_CONTRACTS = {**CONTRACTS, "default": {**CONTRACTS["default"], "roaming_fee_per_session": "0.10"}}


def credit(cid: str, of: str, start: str, end: str, **extra: object) -> dict:
    c = cdr_221(cid, start, end, excl=-3.50, incl=-4.24, credit=True, credit_reference_id=of, **extra)
    return c


N1 = cdr_221("N1", "2026-11-03T10:00:00Z", "2026-11-03T11:00:00Z")
N1_C = credit("N1-C", "N1", "2026-11-03T10:00:00Z", "2026-11-03T11:00:00Z")
N1_C2 = credit("N1-C2", "N1", "2026-11-03T10:00:00Z", "2026-11-03T11:00:00Z")
N2 = cdr_221("N2", "2026-11-04T10:00:00Z", "2026-11-04T11:00:00Z")
K1 = cdr_221("K1", "2026-10-12T10:00:00Z", "2026-10-12T11:00:00Z")
K1_C = credit("K1-C", "K1", "2026-10-12T10:00:00Z", "2026-10-12T11:00:00Z")
K1_C2 = credit("K1-C2", "K1", "2026-10-12T10:00:00Z", "2026-10-12T11:00:00Z")


def settle(
    tmp: Path, month: str, cdrs: list[dict], out: str, *extra: str, contracts: dict | None = None
) -> Path:
    d = write_inputs(tmp, contracts or FEE_CONTRACTS)
    src = write_ndjson(tmp / month / "cdrs.ndjson", cdrs)
    argv = [
        "settle",
        "--cdrs",
        str(src),
        "--tariffs",
        str(d / "tariffs"),
        "--contracts",
        str(d / "contracts.json"),
    ]
    assert main([*argv, "--month", month, *extra, "--out", str(tmp / out)]) == 0
    return tmp / out


def lines_of(out: Path) -> dict[str, dict]:
    with open(out / FOLDER / "lines.csv", encoding="utf-8", newline="") as fh:
        return {r["cdr_id"]: r for r in csv.DictReader(fh)}


def findings(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "findings.ndjson").read_text().splitlines()]


def statement(out: Path) -> dict:
    return json.loads((out / FOLDER / "statement.json").read_text())


def assert_same_run(a: Path, b: Path) -> None:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        if f.name != "manifest.json":  # it names the engine
            assert (a / f).read_bytes() == (b / f).read_bytes(), f


@pytest.mark.parametrize("disputed", ["exclude", "include"])
def test_a_second_credit_of_one_original_is_disputed_and_never_paid(tmp_path: Path, disputed: str) -> None:
    contracts = {**FEE_CONTRACTS, "default": {**FEE_CONTRACTS["default"], "disputed": disputed}}
    outs = [
        settle(tmp_path, "2026-11", [N1, N1_C, N1_C2, N2], e, "--engine", e, contracts=contracts)
        for e in ("local", "columnar")
    ]
    assert_same_run(*outs)
    out = outs[0]
    assert set(lines_of(out)) == {"N1", "N1-C", "N2"}  # N1 netted once, N2 paid
    dup = [f for f in findings(out) if f["code"] == "CREDIT_DUPLICATE"]
    assert [f["cdr_id"] for f in dup] == ["N1-C2"]
    assert "'N1-C'" in dup[0]["message"] and "not paid" in dup[0]["message"]
    doc = statement(out)
    assert [(d["cdr_id"], d["dispute_reason"]) for d in doc["disputed"]] == [("N1-C2", "CREDIT_DUPLICATE")]
    assert doc["totals"]["total_excl_vat"] == "3.50"  # N1 + N1-C = 0, N2 = 3.50
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert (counts["settled"], counts["excluded"]) == (3, 1)


def test_a_second_credit_of_an_original_credited_in_an_earlier_run_is_disputed(tmp_path: Path) -> None:
    october = settle(tmp_path, "2026-10", [K1, K1_C], "oct")
    outs = [
        settle(tmp_path, "2026-11", [K1_C2, N2], e, "--history", str(october), "--engine", e)
        for e in ("local", "columnar")
    ]
    assert_same_run(*outs)
    out = outs[0]
    assert set(lines_of(out)) == {"N2"}
    codes = {(f["cdr_id"], f["code"]) for f in findings(out)}
    assert {("K1-C2", "CREDIT_DUPLICATE"), ("K1-C2", "LATE_CDR")} <= codes
    assert "earlier run" in next(f["message"] for f in findings(out) if f["code"] == "CREDIT_DUPLICATE")


def test_a_credit_that_does_not_net_does_not_use_the_original_up(tmp_path: Path) -> None:
    """A credit of the wrong amount (here over-crediting: −5.00 for 3.50) is CREDIT_AMOUNT_MISMATCH
    and disputed; the later credit that nets the original is its credit."""
    over = dict(N1_C, total_cost={"excl_vat": -5.00, "incl_vat": -6.05})
    out = settle(tmp_path, "2026-11", [N1, over, N1_C2], "run")
    assert set(lines_of(out)) == {"N1", "N1-C2"}
    codes = {(f["cdr_id"], f["code"]) for f in findings(out)}
    assert ("N1-C", "CREDIT_AMOUNT_MISMATCH") in codes
    assert not any(c == "CREDIT_DUPLICATE" for _, c in codes)


def test_a_second_credit_from_the_store_is_disputed(tmp_path: Path) -> None:
    d = write_inputs(tmp_path, FEE_CONTRACTS)
    url = f"sqlite:///{tmp_path / 'rl.db'}"
    oct_cdrs = write_ndjson(tmp_path / "oct.ndjson", [K1, K1_C])
    assert main(["import", "--store", url, "--tariffs", str(d / "tariffs"), str(oct_cdrs)]) == 0
    contracts = ["--contracts", str(d / "contracts.json")]
    assert main(["close", "--store", url, "--month", "2026-10", "--settle", *contracts]) == 0
    nov_cdrs = write_ndjson(tmp_path / "nov.ndjson", [K1_C2, N2])
    assert main(["import", "--store", url, str(nov_cdrs)]) == 0
    outs = []
    for e in ("local", "columnar"):
        argv = ["settle", "--store", url, "--month", "2026-11", *contracts, "--engine", e]
        assert main([*argv, "--out", str(tmp_path / e)]) == 0
        outs.append(tmp_path / e)
    assert_same_run(*outs)
    assert set(lines_of(outs[0])) == {"N2"}
    codes = {(f["cdr_id"], f["code"]) for f in findings(outs[0])}
    assert ("K1-C2", "CREDIT_DUPLICATE") in codes
