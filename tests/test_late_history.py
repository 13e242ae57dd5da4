"""A CDR of a month already settled, in file mode (the new-user trial, session 5): the store's late
rule (settlement.rules.settles_in, LATE_CDR) with ``--history`` as the paid months. October is
settled with K1; November brings K1-CR, a credit of K1 (session in October), and K2. With October's
run as history the credit settles in November as a late line netting K1, in both engines alike;
without history it is out of month and the finding says how to settle it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from trial import cdr_221, write_inputs, write_ndjson

from api.cli import main

FOLDER = "NL-ABC__DE-MSP__EUR"
K1 = cdr_221("K1", "2026-10-15T10:00:00Z", "2026-10-15T11:00:00Z")
K1_CR = cdr_221(
    "K1-CR",
    "2026-10-15T10:00:00Z",
    "2026-10-15T11:00:00Z",
    excl=-3.50,
    incl=-4.24,
    credit=True,
    credit_reference_id="K1",
)
K1_CR["last_updated"] = "2026-11-05T00:00:00Z"
K2 = cdr_221("K2", "2026-11-15T10:00:00Z", "2026-11-15T11:00:00Z")


def run(tmp_path: Path, nov: list[dict], *extra: str, out: str = "nov") -> Path:
    d = write_inputs(tmp_path)
    common = ["--tariffs", str(d / "tariffs"), "--contracts", str(d / "contracts.json")]
    if not (tmp_path / "oct").exists():
        oct_cdrs = write_ndjson(tmp_path / "oct.ndjson", [K1])
        assert (
            main(
                [
                    "settle",
                    "--cdrs",
                    str(oct_cdrs),
                    *common,
                    "--month",
                    "2026-10",
                    "--out",
                    str(tmp_path / "oct"),
                ]
            )
            == 0
        )
    nov_cdrs = write_ndjson(tmp_path / "nov.ndjson", nov)
    argv = ["settle", "--cdrs", str(nov_cdrs), *common, "--month", "2026-11", *extra]
    assert main([*argv, "--out", str(tmp_path / out)]) == 0
    return tmp_path / out


def findings(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "findings.ndjson").read_text().splitlines()]


def test_a_late_credit_of_a_paid_month_settles_as_a_late_line_in_both_engines(tmp_path: Path) -> None:
    outs = [
        run(tmp_path, [K1_CR, K2], "--history", str(tmp_path / "oct"), "--engine", e, out=e)
        for e in ("local", "columnar")
    ]
    for out in outs:
        with open(out / FOLDER / "lines.csv", encoding="utf-8", newline="") as fh:
            lines = {r["cdr_id"]: r for r in csv.DictReader(fh)}
        assert set(lines) == {"K1-CR", "K2"}
        assert lines["K1-CR"]["line_excl_vat"] == "-3.50" and "LATE_CDR" in lines["K1-CR"]["reasons"]
        codes = {(f["cdr_id"], f["code"]) for f in findings(out)}
        assert ("K1-CR", "LATE_CDR") in codes
        assert not {c for _, c in codes} & {"OUT_OF_MONTH", "CREDIT_WITHOUT_ORIGINAL"}
        counts = json.loads((out / "manifest.json").read_text())["counts"]
        assert (counts["settled"], counts["out_of_month"]) == (2, 0)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    for f in files:
        if f.name != "manifest.json":  # it names the engine
            assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f


def test_a_resent_cdr_the_paid_month_read_stays_out_of_month(tmp_path: Path) -> None:
    out = run(tmp_path, [K1, K2], "--history", str(tmp_path / "oct"))
    codes = {(f["cdr_id"], f["code"]) for f in findings(out)}
    assert ("K1", "OUT_OF_MONTH") in codes and ("K1", "LATE_CDR") not in codes


def test_without_history_the_credit_is_out_of_month_and_says_how_to_settle_it(tmp_path: Path) -> None:
    out = run(tmp_path, [K1_CR, K2])
    outside = [f for f in findings(out) if f["code"] == "OUT_OF_MONTH"]
    assert [f["cdr_id"] for f in outside] == ["K1-CR"]
    assert "--history" in outside[0]["message"]
