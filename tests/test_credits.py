"""Credit CDRs on statements (the new-user trial, session 6): an original is credited once (a second
credit of it is CREDIT_DUPLICATE, disputed and never paid) in a run, across runs with ``--history``
and from the store, in both engines alike; a credit's quantities net its original's in the totals
and the chart; the reconciliation shows the recomputed amount with the credit's sign; the roaming
fee per session nets credited sessions and never shows a negative count; a negative amount due says
that the CPO owes the eMSP. Inputs are small copies of /tmp/trial/crd and /tmp/trial/hist2."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest
from trial import CONTRACTS, TARIFF_221, cdr_221, write_inputs, write_ndjson

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
    page = (out / FOLDER / "statement.html").read_text(encoding="utf-8")
    assert "second credit of a CDR already credited" in page and "CREDIT_DUPLICATE" not in page
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


def test_a_credits_energy_nets_its_originals_in_the_totals_and_the_chart(tmp_path: Path) -> None:
    K2 = cdr_221("K2", "2026-10-13T10:00:00Z", "2026-10-13T11:00:00Z", kwh=20, excl=6.50, incl=7.87)
    outs = [settle(tmp_path, "2026-10", [K1, K1_C, K2], e, "--engine", e) for e in ("local", "columnar")]
    assert_same_run(*outs)
    out = outs[0]
    assert lines_of(out)["K1-C"]["energy_kwh"] == "-10.0000"  # the sign of its money
    assert statement(out)["totals"]["energy_kwh"] == "20.0000"  # K1 + K1-C = 0, K2 = 20
    page = (out / FOLDER / "statement.html").read_text()
    assert "<title>2026-10-12: 0.0 kWh</title>" in page and "<title>2026-10-13: 20.0 kWh</title>" in page


def test_the_recomputed_total_of_a_credit_carries_its_sign(tmp_path: Path) -> None:
    short = dict(K1_C, total_cost={"excl_vat": -3.00, "incl_vat": -3.63})  # credits 0.50 too little
    out = settle(tmp_path, "2026-10", [K1, short], "run")
    rows = {r["cdr_id"]: r for r in map(json.loads, (out / "reconciliation.ndjson").read_text().splitlines())}
    row = rows["K1-C"]
    assert (row["reported_total_excl_vat"], row["recomputed_total_excl_vat"]) == ("-3.0000", "-3.5000")
    assert row["diff_excl_vat"] == "0.5000"  # reported − recomputed, as the row shows them


def test_the_fee_per_session_nets_credited_sessions_and_a_credit_balance_says_who_pays(
    tmp_path: Path,
) -> None:
    october = settle(tmp_path, "2026-10", [K1], "oct")
    for locale, words in (
        ("en_GB", "Credit balance: the CPO ABC Laden B.V. owes the eMSP DE*MSP €4.36, due by"),
        ("fr_FR", "Solde créditeur : le CPO ABC Laden B.V. doit à l'eMSP DE*MSP 4,36\xa0€"),
    ):
        out = settle(tmp_path, "2026-11", [K1_C], locale, "--history", str(october), "--locale", locale)
        doc = statement(out)
        assert [(f["basis"], f["amount"]) for f in doc["fees"]] == [
            ("0 sessions - 1 credited x 0.10", "-0.10")
        ]
        assert doc["totals"]["amount_due"] == "-4.36"  # −4.24 and the fee refund −0.10 − 0.02 VAT
        page = (out / FOLDER / "statement.html").read_text()
        assert words in page, page
        assert "-1" not in doc["fees"][0]["basis"]


def test_a_session_and_its_credit_pay_no_fee(tmp_path: Path) -> None:
    out = settle(tmp_path, "2026-11", [N1, N1_C, N2], "run")
    assert [(f["basis"], f["amount"]) for f in statement(out)["fees"]] == [
        ("2 sessions - 1 credited x 0.10", "0.10")
    ]
    page = (out / FOLDER / "statement.html").read_text()
    assert ": (2 − 1 credited) × €0.10," in page
    assert "Credit balance" not in page


def test_a_conflicting_resend_is_disputed_as_such(tmp_path: Path) -> None:
    resent = dict(N1, total_cost={"excl_vat": 4.00, "incl_vat": 4.84})  # same id, other content
    outs = [settle(tmp_path, "2026-11", [N1, resent], e, "--engine", e) for e in ("local", "columnar")]
    assert_same_run(*outs)
    disputed = statement(outs[0])["disputed"]
    assert [d["dispute_reason"] for d in disputed] == ["conflicting re-send (same CDR id, other content)"]
    assert "OVERCHARGED" in disputed[0]["reasons"]  # what it would cost is still among its codes
    fr = settle(tmp_path, "2026-11", [N1, resent], "fr", "--locale", "fr_FR")
    assert "renvoi divergent" in (fr / FOLDER / "statement.html").read_text()


def test_two_cpos_numbering_their_cdrs_alike_are_two_cdrs_not_a_resend(tmp_path: Path) -> None:
    """OCPI CDR ids are unique per CPO (country_code, party_id): NL*ABC's "1" and NL*XYZ's "1" are
    two CDRs, both paid (the record engine called the second a conflicting re-send and did not pay
    it); a conflicting copy under one CPO is still one, in both engines alike."""
    d = write_inputs(tmp_path)
    other = {**TARIFF_221, "party_id": "XYZ", "id": "XYZ-T1"}
    (d / "tariffs" / "XYZ-T1.json").write_text(json.dumps(other), encoding="utf-8")
    abc = cdr_221("1", "2026-11-03T10:00:00Z", "2026-11-03T11:00:00Z")
    xyz = cdr_221("1", "2026-11-05T10:00:00Z", "2026-11-05T11:00:00Z")
    xyz["party_id"], xyz["charging_periods"][0]["tariff_id"] = "XYZ", "XYZ-T1"
    again = cdr_221("2", "2026-11-06T10:00:00Z", "2026-11-06T11:00:00Z")
    changed = {**again, "total_cost": {"excl_vat": 3.60, "incl_vat": 4.36}}
    outs = [
        settle(tmp_path, "2026-11", [abc, xyz, again, changed], e, "--engine", e)
        for e in ("local", "columnar")
    ]
    assert_same_run(*outs)
    codes = {(f["cdr_id"], f["code"]) for f in findings(outs[0])}
    assert ("1", "DUPLICATE_CDR") not in codes and ("2", "DUPLICATE_CDR") in codes
    mine = lines_of(outs[0])["1"]
    with open(outs[0] / "NL-XYZ__DE-MSP__EUR" / "lines.csv", encoding="utf-8", newline="") as fh:
        theirs = next(csv.DictReader(fh))
    assert (mine["disputed"], theirs["disputed"]) == ("false", "false"), (mine, theirs)
    assert theirs["cdr_id"] == "1" and theirs["line_excl_vat"] == "3.50"


def test_a_cdr_id_in_another_case_is_the_same_cdr(tmp_path: Path) -> None:
    """OCPI CDR ids are CiStrings: "MINP" and "minp" of one CPO are one CDR sent twice (the
    new-user trial's session was paid twice under the two spellings), in both engines alike."""
    first = cdr_221("MINP", "2026-11-03T10:00:00Z", "2026-11-03T11:00:00Z")
    again = cdr_221("minp", "2026-11-03T10:00:00Z", "2026-11-03T11:00:00Z")
    outs = [settle(tmp_path, "2026-11", [first, again], e, "--engine", e) for e in ("local", "columnar")]
    assert_same_run(*outs)
    dup = [f for f in findings(outs[0]) if f["code"] == "DUPLICATE_CDR"]
    assert {f["cdr_id"] for f in dup} == {"MINP", "minp"}, dup
    paid = [r for r in lines_of(outs[0]).values() if r["disputed"] == "false"]
    assert len(paid) <= 1, "one session is paid once at most"


def test_a_cdr_id_in_another_case_from_the_store_is_the_same_cdr(tmp_path: Path) -> None:
    """The store keeps both spellings as received (append-only); settling the month from it judges
    them as one CDR sent twice, in both engines alike."""
    d = write_inputs(tmp_path)
    url = f"sqlite:///{tmp_path / 'rl.db'}"
    first = cdr_221("MINP", "2026-11-03T10:00:00Z", "2026-11-03T11:00:00Z")
    again = cdr_221("minp", "2026-11-03T10:00:00Z", "2026-11-03T11:00:00Z")
    cdrs = write_ndjson(tmp_path / "nov.ndjson", [first, again, N2])
    assert main(["import", "--store", url, "--tariffs", str(d / "tariffs"), str(cdrs)]) == 0
    outs = []
    for e in ("local", "columnar"):
        argv = ["settle", "--store", url, "--month", "2026-11", "--contracts", str(d / "contracts.json")]
        assert main([*argv, "--engine", e, "--out", str(tmp_path / e)]) == 0
        outs.append(tmp_path / e)
    assert_same_run(*outs)
    assert {f["cdr_id"] for f in findings(outs[0]) if f["code"] == "DUPLICATE_CDR"} == {"MINP", "minp"}


@pytest.mark.parametrize("layout", ["ndjson", "parquet"])
def test_price_writes_a_credit_cdrs_money_negated_as_reconcile_does(tmp_path: Path, layout: str) -> None:
    """A credit CDR (the original's data, its money negated: PRICING-SEMANTICS §4.2) is priced
    negative by ``price`` — every cost column and 2.3.0 tax amount, quantities positive — as
    ``reconcile`` recomputes it (price wrote it positive: summing its output counted a credited
    session twice). Both engines and the columnar reader agree."""
    from api.cli import main

    src = tmp_path / f"m.{layout}"
    argv = ["generate", "--cdrs", "400", "--seed", "9", "--credit-rate", "0.1", "--quiet", "--out", str(src)]
    argv += ["--tariffs-out", str(tmp_path / "t")]
    argv += ["--versions", "2.2.1:50,2.3.0:50"] if layout == "ndjson" else []
    assert main(argv) == 0
    files = sorted(tmp_path.glob(f"m*.{layout}"))
    outs = {}
    for engine in ("kernel", "reference"):
        outs[engine] = tmp_path / f"p_{engine}.ndjson"
        assert (
            main(
                [
                    "price",
                    "--tariffs",
                    str(tmp_path / "t"),
                    "--engine",
                    engine,
                    "--out",
                    str(outs[engine]),
                    *map(str, files),
                ]
            )
            == 0
        )
    assert outs["kernel"].read_bytes() == outs["reference"].read_bytes()
    assert (
        main(
            [
                "reconcile",
                "--tariffs",
                str(tmp_path / "t"),
                "--out",
                str(tmp_path / "r.ndjson"),
                *map(str, files),
            ]
        )
        == 0
    )
    key = ("source", "line")
    rows = {tuple(r[k] for k in key): r for r in map(json.loads, outs["kernel"].read_text().splitlines())}
    recon = [json.loads(x) for x in (tmp_path / "r.ndjson").read_text().splitlines()]
    credits = [r for r in recon if r["credit"]]
    assert len(credits) > 10
    for r in recon:
        row = rows[tuple(r[k] for k in key)]
        assert row["total_cost_excl_vat"] == r["recomputed_total_excl_vat"]
        assert row["total_cost_incl_vat"] == r["recomputed_total_incl_vat"]
        if r["credit"]:
            assert Decimal(row["total_cost_excl_vat"]) < 0 < Decimal(row["total_energy_kwh"])
            assert all(Decimal(t["amount"]) <= 0 for t in row["taxes"] or [])
    assert any(rows[tuple(r[k] for k in key)]["taxes"] for r in credits) == (layout == "ndjson")
