"""Statement totals add up and say what they are (issue 10, item 5), on every statement of the sample
month and of generated months, in both engines, with and without the contract's VAT rates.

net + VAT = gross; the VAT bases add up to the net; amount due = gross + fees incl. their VAT, or
(net amounts only, with the reason in one sentence) net + net fees."""

from __future__ import annotations

import csv
import json
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from trial import write_inputs

from api.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample"


def check_statement(doc: dict) -> str:
    """Assert the totals identities of one statement.json; returns its kind ("gross" or "net")."""
    t = doc["totals"]
    D = Decimal
    net = D(t["total_excl_vat"])
    assert net == sum((D(ln["line_excl_vat"]) for ln in doc["lines"]), D(0))
    rows = t["vat_by_rate"]
    assert sum((D(r["base_excl_vat"]) for r in rows), D(0)) == net  # the VAT bases are the net
    unknown = [ln for ln in doc["lines"] if ln["line_vat"] is None]
    assert t["vat_unknown_lines"] == len(unknown)
    no_cdr_vat = [ln for ln in doc["lines"] if ln["amount_incl_vat"] is None]  # 2.1.1: the contract's
    assert t["vat_from_contract_lines"] == len(no_cdr_vat) - len(unknown)
    for r in rows:
        if r["source"] == "cdr":
            mine = [
                ln for ln in doc["lines"] if ln["amount_incl_vat"] is not None and ln["vat_rate"] == r["rate"]
            ]
            assert D(r["base_excl_vat"]) == sum((D(ln["line_excl_vat"]) for ln in mine), D(0))
            assert D(r["vat"]) == sum((D(ln["line_vat"]) for ln in mine), D(0))
        else:  # the lines without VAT information, at the contract's rate or unknown
            assert D(r["base_excl_vat"]) == sum((D(ln["line_excl_vat"]) for ln in no_cdr_vat), D(0))
            if r["source"] == "contract":  # one rule for a line's VAT: rate x its net, per line
                for ln in no_cdr_vat:
                    assert ln["vat_rate"] == r["rate"]
                    want = (D(ln["line_excl_vat"]) * D(r["rate"]) / 100).quantize(
                        D(ln["line_vat"]), ROUND_HALF_UP
                    )
                    assert D(ln["line_vat"]) == want
                    assert D(ln["line_incl_vat"]) == D(ln["line_excl_vat"]) + D(ln["line_vat"])
                assert D(r["vat"]) == sum((D(ln["line_vat"]) for ln in no_cdr_vat), D(0))
    fees_net = sum((D(f["amount"]) for f in doc["fees"]), D(0))
    assert D(t["fees_total"]) == fees_net
    if t["vat_total"] is not None:
        vat = D(t["vat_total"])
        assert vat == sum((D(r["vat"]) for r in rows), D(0))
        assert net + vat == D(t["total_incl_vat"])
        # finance sums the lines to the statement: every line has its VAT, and they add up
        assert not unknown
        assert vat == sum((D(ln["line_vat"]) for ln in doc["lines"]), D(0))
        assert D(t["total_incl_vat"]) == sum((D(ln["line_incl_vat"]) for ln in doc["lines"]), D(0))
        for f in doc["fees"]:
            assert D(f["amount"]) + D(f["vat"]) == D(f["amount_incl_vat"])
        fees_incl = D(t["fees_total_incl_vat"])
        assert fees_incl == fees_net + D(t["fees_vat"])
        assert D(t["amount_due"]) == D(t["total_incl_vat"]) + fees_incl
        assert t["amount_due_basis"] == "incl. VAT"
        contract_rows = [r for r in rows if r["source"] == "contract"]
        assert bool(contract_rows) == bool(no_cdr_vat) == bool(t["vat_note"])
        return "gross"
    assert t["total_incl_vat"] is None and t["fees_vat"] is None
    assert D(t["amount_due"]) == net + fees_net
    assert t["amount_due_basis"] == "excl. VAT (net amounts only)"
    assert t["vat_note"] and "net amounts only" in t["vat_note"]
    return "net"


def check_run(out: Path) -> dict[str, int]:
    kinds = {"gross": 0, "net": 0}
    noted = 0
    for path in sorted(out.glob("*/statement.json")):
        doc = json.loads(path.read_text())
        kinds[check_statement(doc)] += 1
        noted += bool(doc["totals"]["vat_note"])
    findings = [json.loads(x) for x in (out / "findings.ndjson").read_text().splitlines()]
    vat_findings = [f for f in findings if f["code"] in ("VAT_FROM_CONTRACT", "VAT_UNKNOWN")]
    assert len(vat_findings) == noted  # one finding per statement that needed a word on VAT
    return kinds


def settle(out: Path, cdrs: Path, tariffs: Path, contracts: Path, *extra: str) -> None:
    argv = ["settle", "--cdrs", str(cdrs), "--tariffs", str(tariffs), "--month", "2026-10"]
    assert main([*argv, "--contracts", str(contracts), "--out", str(out), *extra]) == 0


def without_vat_rates(src: Path, dst: Path) -> Path:
    doc = json.loads(src.read_text())
    doc.pop("vat_rates", None)
    dst.write_text(json.dumps(doc))
    return dst


def test_sample_month_totals_add_up(tmp_path: Path) -> None:
    settle(tmp_path / "out", SAMPLE / "cdrs", SAMPLE / "tariffs", SAMPLE / "contracts.json")
    kinds = check_run(tmp_path / "out")
    assert kinds == {"gross": 13, "net": 0}  # the sample contracts set a VAT rate per CPO country


def test_sample_month_without_vat_rates_states_net_only(tmp_path: Path) -> None:
    contracts = without_vat_rates(SAMPLE / "contracts.json", tmp_path / "c.json")
    settle(tmp_path / "out", SAMPLE / "cdrs", SAMPLE / "tariffs", contracts)
    kinds = check_run(tmp_path / "out")
    assert kinds["net"] > 0  # 2.1.1 lines (or fees) with no contract rate: net amounts only


@pytest.mark.parametrize("vat_rates", [True, False])
def test_generated_months_totals_add_up_in_both_engines(tmp_path: Path, vat_rates: bool) -> None:
    cdrs = tmp_path / "m.parquet"
    args = ["generate", "--cdrs", "600", "--seed", "5", "--out", str(cdrs), "--quiet"]
    args += ["--versions", "2.2.1:40,2.1.1:30,2.3.0:30", "--credit-rate", "0.03", "--duplicate-rate", "0.02"]
    args += ["--tariffs-out", str(tmp_path / "tariffs"), "--contracts-out", str(tmp_path / "contracts.json")]
    assert main(args) == 0
    contracts = tmp_path / "contracts.json"
    if not vat_rates:
        contracts = without_vat_rates(contracts, tmp_path / "c.json")
    for engine in ("local", "columnar"):
        out = tmp_path / engine
        settle(out, cdrs, tmp_path / "tariffs", contracts, "--engine", engine)
        kinds = check_run(out)
        assert kinds["gross" if vat_rates else "net"] > 0


@pytest.mark.parametrize("engine", ["local", "columnar"])
def test_zero_amounts_have_the_currency_decimals(tmp_path: Path, engine: str) -> None:
    """A statement whose only line is disputed and excluded owes 0.00 (not "0"), in both engines."""
    from test_settle import cdr, run_settle, write_month

    src, tariffs, contracts = write_month(tmp_path, [cdr("A1", reported="9.99")])
    assert run_settle(tmp_path, src, tariffs, contracts, tmp_path / "out", "--engine", engine) == 0
    doc = json.loads((tmp_path / "out" / "NL-CPO__DE-MSP__EUR" / "statement.json").read_text())
    t = doc["totals"]
    assert (t["lines"], t["disputed_lines"]) == (0, 1)
    assert t["amount_due"] == "0.00"
    for key in (
        "total_excl_vat",
        "vat_total",
        "total_incl_vat",
        "fees_total",
        "fees_vat",
        "fees_total_incl_vat",
    ):
        assert t[key] is None or re.fullmatch(r"-?\d+\.\d\d", t[key]), (key, t[key])


def test_2_1_1_line_carries_the_contracts_vat_in_both_engines(tmp_path: Path) -> None:
    """The new-user trial: a 2.1.1 CDR in a statement whose contract sets 21 % for NL. Its line in
    lines.csv and statement.json has the VAT the totals include (4.00 + 0.84), so the CSV sums to
    the statement, and the statement does not count it as a line of unknown VAT."""
    inputs = write_inputs(tmp_path)
    outs = []
    for engine in ("local", "columnar"):
        out = tmp_path / engine
        argv = ["settle", "--cdrs", str(inputs / "cdrs"), "--tariffs", str(inputs / "tariffs")]
        argv += ["--month", "2026-11", "--contracts", str(inputs / "contracts.json"), "--engine", engine]
        assert main([*argv, "--out", str(out)]) == 0
        check_run(out)
        folder = out / "NL-ABC__DE-MSP__EUR"
        with open(folder / "lines.csv", encoding="utf-8", newline="") as fh:
            rows = {r["cdr_id"]: r for r in csv.DictReader(fh)}
        line = rows["ABC211-C1"]
        assert (line["amount_incl_vat"], line["vat_rate"]) == ("", "21")
        assert (line["line_excl_vat"], line["line_vat"], line["line_incl_vat"]) == ("4.00", "0.84", "4.84")
        t = json.loads((folder / "statement.json").read_text())["totals"]
        assert sum(Decimal(r["line_incl_vat"]) for r in rows.values()) == Decimal(t["total_incl_vat"])
        assert (t["vat_unknown_lines"], t["vat_from_contract_lines"]) == (0, 1)
        outs.append(
            {
                p.relative_to(out): p.read_bytes()
                for p in out.rglob("*")
                if p.is_file() and p.name != "manifest.json"
            }
        )
    assert outs[0] == outs[1]
