"""Months settled from the store see contract terms and the CPO of stored 2.1.1 CDRs (the new-user
trial, session 5): a 2.1.1 CDR names no party, the store holds it under its CPO (the sending
party's token, or ``import --party``); the eMSP comes from the contracts' ``parties_211``. Contract
terms reach the store path by ``settle --store --contracts``, ``close --settle --contracts`` and
``POST /v1/settlements`` (tests/api/test_settlement_contracts.py), kept with the run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import sqlalchemy as sa
from test_store import url  # noqa: F401  (the per-test SQLite / PostgreSQL store fixture)
from trial import write_inputs

from api.cli import main
from settlement.store import Store
from settlement.store.schema import run_files, settlement_runs

FOLDER = "NL-ABC__DE-MSP__EUR"


def import_trial(store_url: str, tmp_path: Path) -> Path:
    d = write_inputs(tmp_path)
    tariffs = ["--tariffs", str(d / "tariffs")]
    assert (
        main(["import", "--store", store_url, *tariffs, str(d / "cdrs" / "v211.ndjson"), "--party", "NL*ABC"])
        == 0
    )
    assert main(["import", "--store", store_url, *tariffs, str(d / "cdrs" / "month.ndjson")]) == 0
    return d


def line_ids(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as fh:
        return [r["cdr_id"] for r in csv.DictReader(fh)]


def test_a_stored_211_cdr_settles_under_its_cpo_in_both_engines(url: str, tmp_path: Path) -> None:  # noqa: F811
    d = import_trial(url, tmp_path)
    common = ["settle", "--store", url, "--month", "2026-11", "--contracts", str(d / "contracts.json")]
    for engine in ("local", "columnar"):
        assert main([*common, "--engine", engine, "--out", str(tmp_path / engine)]) == 0
    assert "ABC211-C1" in line_ids(tmp_path / "local" / FOLDER / "lines.csv")
    files = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").rglob("*") if p.is_file())
    assert files == sorted(
        p.relative_to(tmp_path / "columnar") for p in (tmp_path / "columnar").rglob("*") if p.is_file()
    )
    for f in files:
        if f.name != "manifest.json":  # it names the engine
            assert (tmp_path / "local" / f).read_bytes() == (tmp_path / "columnar" / f).read_bytes(), f
    # without contracts the CPO is still known (the store's key); only the eMSP mapping is missing
    assert main(["settle", "--store", url, "--month", "2026-11", "--out", str(tmp_path / "bare")]) == 0
    findings = [json.loads(x) for x in (tmp_path / "bare" / "findings.ndjson").read_text().splitlines()]
    unknown = [f for f in findings if f["code"] == "PARTY_UNKNOWN"]
    assert [f["cdr_id"] for f in unknown] == ["ABC211-C1"]
    assert "eMSP of contract id prefix 'DEMSP'" in unknown[0]["message"]
    assert "CPO of location" not in unknown[0]["message"]


def test_close_settle_takes_the_contracts_and_keeps_them_with_the_run(url: str, tmp_path: Path) -> None:  # noqa: F811
    d = import_trial(url, tmp_path)
    contracts = d / "contracts.json"
    assert (
        main(["close", "--store", url, "--month", "2026-11", "--settle", "--contracts", str(contracts)]) == 0
    )
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            options = json.loads(conn.execute(sa.select(settlement_runs.c.options)).scalar_one())
            files = dict(conn.execute(sa.select(run_files.c.path, run_files.c.content)).all())
    finally:
        store.close()
    assert options["contracts"] == json.loads(contracts.read_text())  # the run can be reproduced
    assert options["zone"] == "Europe/Amsterdam"  # the contracts' statement zone
    doc = json.loads(files[f"{FOLDER}/statement.json"])
    assert "ABC211-C1" in [ln["cdr_id"] for ln in doc["lines"]]
    assert doc["parties"]["cpo"]["name"] == "ABC Laden B.V." and doc["time_zone"] == "Europe/Amsterdam"
    assert files[f"{FOLDER}/lines.csv"].count("\n") == 4  # header, 2 CDRs of 2.2.1, the 2.1.1 one


def test_close_settle_refuses_a_bad_contracts_file(url: str, tmp_path: Path, capsys) -> None:  # noqa: F811
    import_trial(url, tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"default": {"tolerance": "abc"}}))
    assert main(["close", "--store", url, "--month", "2026-11", "--settle", "--contracts", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.json: default.tolerance" in err


def test_close_settle_refuses_a_month_with_no_cdrs(url: str, tmp_path: Path, capsys) -> None:  # noqa: F811
    """A typo in --month (no CDR of it in the store): the run settles nothing and the month is
    not closed (it was, for good: its later CDRs would have become late lines of the next)."""
    d = import_trial(url, tmp_path)
    contracts = ["--contracts", str(d / "contracts.json")]
    assert main(["close", "--store", url, "--month", "2026-05", "--settle", *contracts]) == 2
    assert "settled nothing (nothing read)" in capsys.readouterr().err.strip().splitlines()[-1]
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("select count(*) from closed_months")).scalar() == 0
    finally:
        store.close()
    assert main(["close", "--store", url, "--month", "2026-11", "--settle", *contracts]) == 0
