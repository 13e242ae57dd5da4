"""Reconciliation and monthly settlement, end to end through the CLI, on a small hand-made month."""

from __future__ import annotations

import copy
import errno
import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
from test_price_cli import CDR, TARIFF

import pricing.batch
import settlement.jobs as jobs
from api.cli import main
from pricing.errors import PricingOverflowError

MONTH = "2026-10"


def cdr(
    cid: str,
    *,
    day: int = 5,
    kwh: str = "10",
    reported: str | None = None,
    emsp: str = "MSP",
    currency: str = "EUR",
    credit_of: str | None = None,
    incl: str | None = None,
) -> dict:
    """A 2.2.1 CDR of NL*CPO on 2026-10-<day>, 10:00-11:00 UTC, priced 0.50 + kWh x 0.30 (21 % VAT)."""
    c = copy.deepcopy(CDR)
    c["id"] = cid
    c["start_date_time"] = f"2026-10-{day:02d}T10:00:00Z"
    c["end_date_time"] = f"2026-10-{day:02d}T11:00:00Z"
    c["charging_periods"][0]["start_date_time"] = c["start_date_time"]
    c["charging_periods"][0]["dimensions"] = [
        {"type": "ENERGY", "volume": kwh},
        {"type": "TIME", "volume": 1},
    ]
    c["cdr_token"] = dict(c["cdr_token"], party_id=emsp)
    c["currency"] = currency
    c.pop("tariffs")
    excl = Decimal("0.50") + Decimal(kwh) * Decimal("0.30") if reported is None else Decimal(reported)
    inc = excl * Decimal("1.21") if incl is None else Decimal(incl)
    sign = -1 if credit_of else 1
    c["total_cost"] = {"excl_vat": str(sign * excl), "incl_vat": str(sign * inc)}
    c["total_energy"] = kwh
    if credit_of:
        c["credit"] = True
        c["credit_reference_id"] = credit_of
    return c


def write_month(tmp: Path, cdrs: list, extra_lines: tuple[str, ...] = ()) -> tuple[Path, Path, Path]:
    src = tmp / "cdrs.ndjson"
    src.write_text("".join(json.dumps(c) + "\n" for c in cdrs) + "".join(x + "\n" for x in extra_lines))
    tariffs = tmp / "tariffs.json"
    gbp = dict(TARIFF, id="T1-GBP", currency="GBP")
    tariffs.write_text(json.dumps([TARIFF, gbp]))
    contracts = tmp / "contracts.json"
    contracts.write_text(
        json.dumps(
            {
                "statement_time_zone": "Europe/Amsterdam",
                "default": {
                    "basis": "reported",
                    "tolerance": "0.01",
                    "disputed": "exclude",
                    "payment_terms_days": 30,
                },
                "fx_rates": {"GBP/EUR": "1.1650"},
                "pairs": {
                    "NL*CPO/DE*MSP": {
                        "roaming_fee_per_session": "0.15",
                        "reporting_currency": "EUR",
                        "vat_rate": "21",
                    }
                },
            }
        )
    )
    return src, tariffs, contracts


def run_settle(tmp: Path, src: Path, tariffs: Path, contracts: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "settle",
            "--cdrs",
            str(src),
            "--tariffs",
            str(tariffs),
            "--month",
            MONTH,
            "--contracts",
            str(contracts),
            "--out",
            str(out),
            *extra,
        ]
    )


def month_cdrs() -> list[dict]:
    gbp = cdr("G1", currency="GBP")
    gbp["charging_periods"][0]["tariff_id"] = "T1-GBP"
    return [
        cdr("A1", kwh="10"),  # 3.50 / 4.235 → line 3.50 / 4.24
        cdr("A2", kwh="7.777", day=6),  # exact 2.8331 → rounding
        cdr("A3", kwh="10", reported="3.60", day=7),  # overcharged by 0.10
        cdr("A1-C", kwh="10", credit_of="A1", day=8),  # credit nets A1
        cdr("A4", kwh="5", day=9),
        cdr("A4", kwh="5", day=9),  # identical duplicate
        cdr("X9-C", kwh="5", credit_of="X9", day=10),  # credit without original
        cdr("B1", kwh="20", emsp="OTH"),  # another eMSP
        cdr("S1", day=1),  # ends 2026-10-01 11:00 UTC: in month
        dict(cdr("S2", day=1), start_date_time="2026-09-30T21:00:00Z", end_date_time="2026-09-30T21:30:00Z"),
        gbp,  # same pair, another currency
    ]


def test_settle_month_counts_lines_credits_disputes(tmp_path: Path, capsys) -> None:
    s2 = month_cdrs()[9]
    s2["charging_periods"][0]["start_date_time"] = s2["start_date_time"]
    cdrs = month_cdrs()
    cdrs[9] = s2
    src, tariffs, contracts = write_month(tmp_path, cdrs, ('{"truncated": ',))
    out = tmp_path / "out"
    assert run_settle(tmp_path, src, tariffs, contracts, out) == 0
    printed = capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    c = manifest["counts"]
    assert c["read"] == 12
    assert c["read"] == c["settled"] + c["excluded"] + c["rejected"] + c["out_of_month"]
    assert (c["rejected"], c["out_of_month"]) == (1, 1)
    assert f"read {c['read']}, settled {c['settled']}" in printed

    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == ["NL-CPO__DE-MSP__EUR", "NL-CPO__DE-MSP__GBP", "NL-CPO__DE-OTH__EUR"]
    st = json.loads((out / "NL-CPO__DE-MSP__EUR" / "statement.json").read_text())
    ids = [ln["cdr_id"] for ln in st["lines"]]
    assert "A1" in ids and "A1-C" in ids and "A2" in ids and "S1" in ids
    assert ids.count("A4") == 1  # the identical resend is excluded
    assert "A3" not in ids and "X9-C" not in ids  # disputed, excluded by contract
    disputed = {d["cdr_id"]: d["dispute_reason"] for d in st["disputed"]}
    assert disputed["A3"] == "overcharged beyond tolerance"
    assert "CREDIT_WITHOUT_ORIGINAL" in disputed["X9-C"]
    # lines rounded half-up to cents; credit nets its original exactly
    by_id = {ln["cdr_id"]: ln for ln in st["lines"]}
    assert (by_id["A1"]["line_excl_vat"], by_id["A1"]["line_incl_vat"]) == ("3.50", "4.24")
    assert Decimal(by_id["A1"]["line_incl_vat"]) + Decimal(by_id["A1-C"]["line_incl_vat"]) == 0
    t = st["totals"]
    assert Decimal(t["total_excl_vat"]) == sum(Decimal(ln["line_excl_vat"]) for ln in st["lines"])
    unrounded = sum(Decimal(ln["amount_excl_vat"]) for ln in st["lines"])
    assert Decimal(t["rounding_difference_excl_vat"]) == Decimal(t["total_excl_vat"]) - unrounded
    assert t["vat_by_rate"][0]["rate"] == "21"
    # contract fee: 0.15 per session, credits net their sessions (A1, A2, S1, A4 minus A1-C = 3),
    # both counts said (no negative count)
    # the fee carries the contract's VAT rate (0.45 x 21 % = 0.0945 -> 0.09)
    assert st["fees"] == [
        {
            "label": "Roaming fee per session",
            "basis": "4 sessions - 1 credited x 0.15",
            "amount": "0.45",
            "vat_rate": "21",
            "vat": "0.09",
            "amount_incl_vat": "0.54",
        }
    ]
    assert Decimal(t["amount_due"]) == Decimal(t["total_incl_vat"]) + Decimal("0.54")
    assert t["amount_due_basis"] == "incl. VAT" and t["vat_note"] is None
    assert t["due_date"] == "2026-11-30"
    gbp = json.loads((out / "NL-CPO__DE-MSP__GBP" / "statement.json").read_text())
    assert gbp["totals"]["fx_rate"] == "1.1650"
    findings = [json.loads(x) for x in (out / "findings.ndjson").read_text().splitlines()]
    codes = {f["code"] for f in findings}
    assert {
        "OUT_OF_MONTH",
        "OVERCHARGED",
        "DUPLICATE_CDR",
        "CREDIT_WITHOUT_ORIGINAL",
        "MIXED_CURRENCIES",
    } <= codes
    over = [f for f in findings if f["cdr_id"] == "A3" and f["code"] == "OVERCHARGED"]
    assert any("0.1000 EUR more than the tariff gives" in f["message"] for f in over)
    irr = json.loads((out / "NL-CPO__DE-MSP__EUR" / "invoice_reconciliation_record.json").read_text())
    assert irr["cdrs"] == ids and (irr["country_code"], irr["party_id"]) == ("NL", "CPO")
    html = (out / "NL-CPO__DE-MSP__EUR" / "statement.html").read_text()
    assert "<svg" in html and "Disputed lines" in html and "€" in html


def test_rerun_is_byte_identical_and_survives_a_killed_run(tmp_path: Path) -> None:
    src, tariffs, contracts = write_month(tmp_path, month_cdrs())
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_settle(tmp_path, src, tariffs, contracts, a) == 0
    # `b` holds an earlier run (of another month), and a killed run left a partial folder: the next
    # run cleans the partial folder and replaces `b` whole (a folder with other files is refused:
    # test_cli_exit.py)
    assert run_settle(tmp_path, src, tariffs, contracts, b, "--month", "2026-11") == 2
    assert (b / "manifest.json").exists()
    (tmp_path / ".b.partial-dead").mkdir()
    (tmp_path / ".b.partial-dead" / "statement.json").write_text("half")
    assert run_settle(tmp_path, src, tariffs, contracts, b) == 0
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        if rel.name == "manifest.json":  # paths of the outputs differ, inputs are the same
            continue
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert not list(tmp_path.glob(".b.partial-*"))


@pytest.mark.parametrize("engine", ["local", "columnar"])
def test_a_failed_rerun_keeps_the_earlier_run_and_the_users_folder(
    tmp_path: Path, capsys, engine: str
) -> None:
    """A run that fails (a --month typo: no session in it) next to an earlier good run in --out:
    the earlier run stays as it was and the failed one is written beside it (OUT.failed, named in
    the error). A folder the user made (empty, private) is written into, never replaced: its
    inode and mode stay; a later run swaps the files inside it."""
    src, tariffs, contracts = write_month(tmp_path, month_cdrs())
    out = tmp_path / "out"
    out.mkdir(mode=0o700)
    os.chmod(out, 0o700)
    ident = (out.stat().st_ino, out.stat().st_mode)
    assert run_settle(tmp_path, src, tariffs, contracts, out, "--engine", engine) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert (out.stat().st_ino, out.stat().st_mode) == ident and len(before) > 4
    capsys.readouterr()
    assert run_settle(tmp_path, src, tariffs, contracts, out, "--engine", engine, "--month", "2030-01") == 2
    failed = json.loads((tmp_path / "out.failed" / "manifest.json").read_text())
    assert failed["month"] == "2030-01" and failed["counts"]["settled"] == 0
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        f"roamledger: error: no session of the 11 records ended in 2030-01 "
        f"({failed['counts']['out_of_month']} out of month) (the earlier run in {out} is kept as it was). "
        "Hint: check --month"
    )
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert run_settle(tmp_path, src, tariffs, contracts, out, "--engine", engine, "--locale", "fr_FR") == 0
    assert (out.stat().st_ino, out.stat().st_mode) == ident
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after.keys() == before.keys() and after != before  # the statements in French now
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_locale_formats_the_html(tmp_path: Path) -> None:
    src, tariffs, contracts = write_month(tmp_path, [cdr("A1", kwh="4000")])
    out = tmp_path / "out"
    assert run_settle(tmp_path, src, tariffs, contracts, out, "--locale", "fr_FR") == 0
    html = (out / "NL-CPO__DE-MSP__EUR" / "statement.html").read_text()
    # 0.50 + 4000 kWh x 0.30 = 1200.50; x 1.21 = 1452.605 → 1452.61, written the French way
    assert "1\u202f452,61\xa0€" in html or "1\xa0452,61\xa0€" in html


def test_basis_recomputed_pays_the_tariff(tmp_path: Path) -> None:
    src, tariffs, contracts = write_month(tmp_path, [cdr("A3", kwh="10", reported="3.60")])
    out = tmp_path / "out"
    assert run_settle(tmp_path, src, tariffs, contracts, out, "--basis", "recomputed") == 0
    st = json.loads((out / "NL-CPO__DE-MSP__EUR" / "statement.json").read_text())
    assert [ln["line_excl_vat"] for ln in st["lines"]] == ["3.50"]


def test_empty_input_is_an_input_error_with_zero_counts(tmp_path: Path, capsys) -> None:
    src, tariffs, contracts = write_month(tmp_path, [])
    out = tmp_path / "out"
    assert run_settle(tmp_path, src, tariffs, contracts, out) == 2
    assert "nothing read" in capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"read": 0, "settled": 0, "excluded": 0, "rejected": 0, "out_of_month": 0}
    assert manifest["statements"] == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere; permissions cannot be tested as root")
def test_unwritable_output_is_a_clear_error(tmp_path: Path, capsys) -> None:
    src, tariffs, contracts = write_month(tmp_path, [cdr("A1")])
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert run_settle(tmp_path, src, tariffs, contracts, locked / "out") == 2
    finally:
        locked.chmod(0o700)
    assert "Hint: choose a writable --out directory" in capsys.readouterr().err
    assert not list(locked.iterdir())


def test_output_path_that_is_a_file_is_a_clear_error(tmp_path: Path, capsys) -> None:
    """Works as root too: a regular file where the parent directory should be."""
    src, tariffs, contracts = write_month(tmp_path, [cdr("A1")])
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    assert run_settle(tmp_path, src, tariffs, contracts, blocker / "out") == 2
    assert "cannot write to" in capsys.readouterr().err
    assert blocker.read_text() == "not a directory"


def test_reconcile_statuses_and_words(tmp_path: Path, capsys) -> None:
    rows = [
        cdr("OK", kwh="10"),
        cdr("ROUND", kwh="7.777", reported="2.83", incl="3.43"),
        cdr("OVER", kwh="10", reported="3.60"),
    ]
    src, tariffs, _ = write_month(tmp_path, rows)
    out = tmp_path / "recon.csv"
    assert main(["reconcile", "--tariffs", str(tariffs), "--out", str(out), str(src)]) == 0
    assert "MATCH 1, ROUNDING 1, OVERCHARGED 1" in capsys.readouterr().out
    lines = out.read_text().splitlines()
    assert lines[0].startswith("cdr_id,status,reasons")
    status = {ln.split(",")[0]: ln.split(",")[1] for ln in lines[1:]}
    assert status == {"OK": "MATCH", "OVER": "OVERCHARGED", "ROUND": "ROUNDING"}


def test_dask_engine_gives_byte_identical_statements(tmp_path: Path, monkeypatch) -> None:
    """A 2-worker LocalCluster, with partitions small enough that the month spans several."""
    import settlement.jobs as jobs

    monkeypatch.setattr(jobs, "CHUNK", 3)
    src, tariffs, contracts = write_month(tmp_path, month_cdrs(), ('{"truncated": ',))
    local, dask = tmp_path / "local", tmp_path / "dask"
    assert run_settle(tmp_path, src, tariffs, contracts, local, "--engine", "local") == 0
    assert run_settle(tmp_path, src, tariffs, contracts, dask, "--engine", "dask") == 0
    files = sorted(p.relative_to(local) for p in local.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(dask) for p in dask.rglob("*") if p.is_file())
    for rel in files:
        if rel.name == "manifest.json":
            a = json.loads((local / rel).read_text())
            b = json.loads((dask / rel).read_text())
            assert a["settings"].pop("engine") == "local" and b["settings"].pop("engine") == "dask"
            assert a == b
        else:
            assert (local / rel).read_bytes() == (dask / rel).read_bytes(), rel


def test_python_api_reconcile_and_settle(tmp_path: Path) -> None:
    import settlement

    src, tariffs, _ = write_month(tmp_path, [cdr("OK"), cdr("OVER", reported="3.60")])
    lines, rejects = settlement.reconcile([src], [tariffs])
    assert {ln.cdr.id: ln.status for ln in lines} == {"OK": "MATCH", "OVER": "OVERCHARGED"}
    assert rejects == []
    result = settlement.settle([src], [tariffs], MONTH, tz="Europe/Amsterdam")
    assert [st.folder for st in result.statements] == ["NL-CPO__DE-MSP__EUR"]
    assert result.counts["read"] == 2
    # the CLI's names: contracts= is --contracts (its fee shows on the statement)
    _, _, contracts = write_month(tmp_path, [cdr("OK"), cdr("OVER", reported="3.60")])
    seen: list[str] = []
    with_terms = settlement.settle(
        [src], [tariffs], MONTH, contracts=contracts, basis="recomputed", progress=seen.append
    )
    st = with_terms.statements[0]
    assert st.terms.basis == "recomputed" and st.fees[0].label == "Roaming fee per session"
    assert seen and all(isinstance(x, str) for x in seen)


def test_kernel_and_reference_pricers_settle_identically(tmp_path: Path) -> None:
    src, tariffs, contracts = write_month(tmp_path, month_cdrs())
    k, r = tmp_path / "k", tmp_path / "r"
    assert run_settle(tmp_path, src, tariffs, contracts, k, "--pricer", "kernel") == 0
    assert run_settle(tmp_path, src, tariffs, contracts, r, "--pricer", "reference") == 0
    for path in sorted(p for p in k.rglob("*") if p.is_file()):
        other = r / path.relative_to(k)
        if path.name == "manifest.json":
            a, b = json.loads(path.read_text()), json.loads(other.read_text())
            assert (a["settings"].pop("pricer"), b["settings"].pop("pricer")) == ("kernel", "reference")
            assert a == b
        else:
            assert path.read_bytes() == other.read_bytes(), path.name


def test_the_readme_main_job_on_the_sample_month(tmp_path: Path, capsys) -> None:
    """The README's first command: the shipped sample month settles, and every record is accounted for."""
    from conftest import ROOT

    sample = ROOT / "fixtures" / "sample"
    out = tmp_path / "out"
    args = [
        "settle",
        "--cdrs",
        str(sample / "cdrs"),
        "--tariffs",
        str(sample / "tariffs"),
        "--month",
        MONTH,
        "--contracts",
        str(sample / "contracts.json"),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    c = json.loads((out / "manifest.json").read_text())["counts"]
    summary = json.loads((sample / "summary.json").read_text())
    assert c["read"] == summary["read"] == c["settled"] + c["excluded"] + c["rejected"] + c["out_of_month"]
    out_of_month = summary["out_of_month_lines"]
    assert c["out_of_month"] == out_of_month["before"] + out_of_month["after"]
    rejects = [json.loads(x) for x in (out / "rejects.ndjson").read_text().splitlines()]
    # the malformed records that cannot be parsed are rejects; unknown tariff / wrong currency
    # parse fine and become disputed (excluded) lines with their finding instead
    assert {r["code"] for r in rejects} == {
        "BAD_JSON",
        "MISSING_FIELD",
        "NEGATIVE_VOLUME",
        "VERSION_MISMATCH",
    }
    folders = [p for p in out.iterdir() if p.is_dir()]
    assert len(folders) >= 12 and all((f / "statement.html").exists() for f in folders)


def test_a_pricing_bug_is_an_error_not_a_business_status(tmp_path: Path, monkeypatch) -> None:
    """Only the pricing's declared refusals (RoamledgerError) become NOT_PRICED lines; any other
    exception is a bug and stops the run (the command line says so in one sentence, exit 70)."""

    src, tariffs, _ = write_month(tmp_path, [cdr("OK")])

    def refuse(sessions, policy):
        return [PricingOverflowError("too big to price") for _ in sessions]

    monkeypatch.setattr(jobs, "kernel_outcomes", refuse)
    result, _ = jobs.settle([src], [tariffs], MONTH, tz="Europe/Amsterdam")
    [line] = result.lines
    assert line.status == "NOT_PRICED" and "too big to price" in line.findings[-1].message

    monkeypatch.undo()

    def crash(sessions, policy, workers=1):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(pricing.batch, "price_sessions_detailed", crash)
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        jobs.settle([src], [tariffs], MONTH, tz="Europe/Amsterdam")
    args = ["settle", "--cdrs", str(src), "--tariffs", str(tariffs), "--month", MONTH, "--engine", "local"]
    assert main([*args, "--out", str(tmp_path / "out")]) == 70, "the command line: a bug, one sentence"


def test_a_rename_refused_midway_puts_the_earlier_run_back(tmp_path: Path, capsys, monkeypatch) -> None:
    """The new files cannot be renamed into --out (a mount point: EXDEV) after the earlier ones were
    moved aside: they are moved back, nothing hidden stays, and one sentence says what to do."""
    src, tariffs, contracts = write_month(tmp_path, month_cdrs())
    out = tmp_path / "out"
    assert run_settle(tmp_path, src, tariffs, contracts, out) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    rename = Path.rename

    def refusing(self: Path, target):  # entries of the new run into `out` cross a device
        if Path(target).parent == out and ".partial-" in self.parent.name:
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(self))
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", refusing)
    capsys.readouterr()
    assert run_settle(tmp_path, src, tariffs, contracts, out, "--locale", "fr_FR") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        f"roamledger: error: cannot write into {out}: Invalid cross-device link (the earlier files stay as "
        "they were). Hint: if it is a mount point, give a folder inside it as --out"
    )
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
