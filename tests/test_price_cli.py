"""`roamledger price`: inputs, outputs, rejects. Every bad record is one reject row; the run goes on."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from conftest import ROOT

import pricing
from api.cli import main
from pricing.batch import price_batch
from pricing.report import COLUMNS, DECIMAL_COLUMNS

TARIFF = {
    "country_code": "NL",
    "party_id": "CPO",
    "id": "T1",
    "currency": "EUR",
    "elements": [
        {"price_components": [{"type": "FLAT", "price": 0.50, "vat": 21.0, "step_size": 1}]},
        {"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 21.0, "step_size": 1}]},
    ],
    "last_updated": "2024-01-01T00:00:00Z",
}

CDR = {
    "country_code": "NL",
    "party_id": "CPO",
    "id": "CDR-1",
    "start_date_time": "2024-06-03T08:00:00Z",
    "end_date_time": "2024-06-03T09:00:00Z",
    "cdr_token": {"country_code": "DE", "party_id": "MSP", "uid": "X", "type": "RFID", "contract_id": "C1"},
    "auth_method": "WHITELIST",
    "cdr_location": {
        "id": "L1",
        "address": "Street 1",
        "city": "Utrecht",
        "country": "NLD",
        "coordinates": {"latitude": "52.0", "longitude": "5.1"},
        "evse_uid": "E1",
        "evse_id": "NL*CPO*E1",
        "connector_id": "1",
        "connector_standard": "IEC_62196_T2",
        "connector_format": "SOCKET",
        "connector_power_type": "AC_3_PHASE",
    },
    "currency": "EUR",
    "tariffs": [TARIFF],
    "charging_periods": [
        {
            "start_date_time": "2024-06-03T08:00:00Z",
            "dimensions": [{"type": "ENERGY", "volume": 10}, {"type": "TIME", "volume": 1}],
            "tariff_id": "T1",
        }
    ],
    "total_cost": {"excl_vat": 3.50, "incl_vat": 4.235},
    "total_energy": 10,
    "total_time": 1,
    "last_updated": "2024-06-03T09:05:00Z",
}

CDR_211 = json.loads((ROOT / "fixtures/spec/examples/2.1.1/cdr_example.json").read_text())


def variant(cdr_id: str, **changes) -> dict:
    c = copy.deepcopy(CDR)
    c["id"] = cdr_id
    for key, value in changes.items():
        if value is None:
            c.pop(key, None)
        else:
            c[key] = value
    return c


def bad_batch() -> list[str]:
    """Line 1 is good; every other line is broken in exactly one way."""
    late = variant("late")
    late["charging_periods"] = [dict(late["charging_periods"][0], start_date_time="2024-06-03T10:00:00Z")]
    order = variant("order")
    p = order["charging_periods"][0]
    order["charging_periods"] = [dict(p, start_date_time="2024-06-03T08:30:00Z"), p]
    neg = variant("neg")
    neg["charging_periods"] = [
        dict(neg["charging_periods"][0], dimensions=[{"type": "ENERGY", "volume": -1}])
    ]
    nf = variant("notfound", tariffs=None)
    nf["charging_periods"] = [dict(nf["charging_periods"][0], tariff_id="NOPE")]
    expired_tariff = dict(TARIFF, end_date_time="2024-01-31T00:00:00Z")
    usa = variant("usa")
    usa["cdr_location"] = dict(usa["cdr_location"], country="USA")
    lines = [
        variant("good"),
        '{"id": "broken", "currency": ',
        variant("nocurrency", currency=None),
        variant("wrongtype", total_energy="lots"),
        neg,
        order,
        late,
        variant("usd", currency="USD"),
        nf,
        variant("oldtariff", tariffs=[expired_tariff]),
        usa,
        CDR_211,
    ]
    return [x if isinstance(x, str) else json.dumps(x) for x in lines]


EXPECTED_CODES = {
    2: "BAD_JSON",
    3: "MISSING_FIELD",
    4: "WRONG_TYPE",
    5: "NEGATIVE_VOLUME",
    6: "PERIODS_OUT_OF_ORDER",
    7: "PERIOD_AFTER_END",
    8: "CURRENCY_MISMATCH",
    9: "TARIFF_NOT_FOUND",
    10: "TARIFF_NOT_VALID_AT_START",
    11: "TZ_UNRESOLVED",
    12: "VERSION_MISMATCH",
}


def test_every_bad_record_is_one_reject_and_the_run_goes_on(tmp_path: Path, capsys) -> None:
    src = tmp_path / "cdrs.ndjson"
    src.write_text("\n".join(bad_batch()) + "\n")
    out = tmp_path / "priced.ndjson"
    assert main(["price", "--out", str(out), str(src)]) == 0
    assert capsys.readouterr().out.strip() == "read 12, priced 1, rejected 11"
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["cdr_id"] for r in rows] == ["good"]
    rejects = [json.loads(x) for x in (tmp_path / "priced.ndjson.rejects.ndjson").read_text().splitlines()]
    assert {r["line"]: r["code"] for r in rejects} == EXPECTED_CODES
    for r in rejects:
        assert r["source"] == str(src)
        assert "Hint" in r["message"] or r["code"] in ("MISSING_FIELD", "WRONG_TYPE"), r
        assert r["message"]
    meta = json.loads((tmp_path / "priced.ndjson.meta.json").read_text())
    assert meta["counts"] == {"read": 12, "priced": 1, "rejected": 11}


def test_result_row_has_the_contract_columns_and_amounts(tmp_path: Path) -> None:
    src = tmp_path / "one.json"
    src.write_text(json.dumps(CDR))
    out = tmp_path / "o.ndjson"
    assert main(["price", "--out", str(out), str(src)]) == 0
    row = json.loads(out.read_text())
    assert list(row)[: len(COLUMNS)] == COLUMNS
    assert row["total_cost_excl_vat"] == "3.5000"  # 0.50 + 10 kWh x 0.30
    assert row["total_cost_incl_vat"] == "4.2350"
    assert row["time_zone"] == "Europe/Amsterdam"
    assert row["billed_energy_kwh"] == "10.0000"
    assert row["taxes"] is None  # 2.2.1: VAT per component only, no 2.3.0 tax lines


def test_a_rerun_leaves_no_earlier_findings_beside_its_output(tmp_path: Path) -> None:
    """A run writes its findings file even when it has none (empty), so the findings of an earlier
    run under the same --out never stay beside the new output; meta.json lists the run's files
    (an earlier --explain run's trace is not one of them)."""
    cdr, tariff = straddling_cdr()  # a finding: the period straddles a price change
    src, tariffs = tmp_path / "c.ndjson", tmp_path / "t.json"
    src.write_text(json.dumps(cdr) + "\n")
    tariffs.write_text(json.dumps(tariff))
    out = tmp_path / "o.ndjson"
    assert main(["price", "--tariffs", str(tariffs), "--explain", "--out", str(out), str(src)]) == 0
    findings = tmp_path / "o.ndjson.findings.ndjson"
    assert findings.read_text().strip()
    src.write_text(json.dumps(CDR) + "\n")
    assert main(["price", "--out", str(out), str(src)]) == 0
    assert findings.read_text() == ""
    meta = json.loads((tmp_path / "o.ndjson.meta.json").read_text())
    files = ("", ".findings.ndjson", ".meta.json", ".rejects.ndjson")
    assert meta["outputs"] == sorted(f"o.ndjson{s}" for s in files)
    assert (tmp_path / "o.ndjson.trace.ndjson").exists()  # the earlier run's, not listed


@pytest.mark.parametrize("command", ["price", "reconcile"])
def test_out_naming_a_folder_fails_before_the_run(tmp_path: Path, command: str, capsys) -> None:
    """--out naming an existing folder: one sentence before anything is read (it failed only after
    the whole run, on the rename, naming a hidden staging path), and nothing written beside it."""
    src = tmp_path / "one.json"
    src.write_text(json.dumps(CDR))
    out = tmp_path / "o.ndjson"
    out.mkdir()
    assert main([command, "--out", str(out), str(src)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    hint = f"Hint: name a file in it, e.g. {out / out.name}"
    assert err == [f"roamledger: error: --out {out}: is a folder, and the output is one file. {hint}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.ndjson", "one.json"] and not any(out.iterdir())


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".ndjson"])
def test_output_formats_and_byte_identical_reruns(tmp_path: Path, suffix: str) -> None:
    src = tmp_path / "cdrs.ndjson"
    src.write_text("\n".join(bad_batch()) + "\n")
    a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    assert main(["price", "--out", str(a), str(src)]) == 0
    assert main(["price", "--out", str(b), str(src)]) == 0
    assert a.read_bytes() == b.read_bytes()
    if suffix == ".parquet":
        df = pl.read_parquet(a)
        assert df.columns[: len(COLUMNS)] == COLUMNS
        assert df["total_cost_excl_vat"].dtype == pl.Decimal(38, 4)
        assert str(df["total_cost_excl_vat"][0]) == "3.5000"
    if suffix == ".csv":
        assert a.read_text().splitlines()[0].split(",")[: len(COLUMNS)] == COLUMNS


def test_json_array_envelope_and_separate_tariffs(tmp_path: Path) -> None:
    envelope = {
        "status_code": 1000,
        "timestamp": "2024-06-04T00:00:00Z",
        "data": [variant("a"), variant("b")],
    }
    src = tmp_path / "env.json"
    src.write_text(json.dumps(envelope))
    tariffs = tmp_path / "tariffs"
    tariffs.mkdir()
    (tariffs / "t1.json").write_text(json.dumps(dict(TARIFF, elements=TARIFF["elements"][1:])))
    res = price_batch([src], tariffs=[tariffs])
    assert (res.read, res.priced, res.rejected) == (2, 2, 0)
    # --tariffs wins over the embedded tariff: no start fee
    assert [r["total_cost_excl_vat"] for r in res.rows] == ["3.0000", "3.0000"]
    assert [r["line"] for r in res.rows] == [1, 2]


def test_explain_writes_a_per_period_trace(tmp_path: Path) -> None:
    src = tmp_path / "one.json"
    src.write_text(json.dumps(CDR))
    out = tmp_path / "o.csv"
    assert main(["price", "--explain", "--out", str(out), str(src)]) == 0
    trace = [json.loads(x) for x in (tmp_path / "o.csv.trace.ndjson").read_text().splitlines()]
    dims = sorted((t["dimension"], t["element"]) for t in trace)
    assert dims == [("ENERGY", 1), ("FLAT", 0), ("FLAT", 0)]  # the piece's choice, then the fee row
    energy = next(t for t in trace if t["dimension"] == "ENERGY")
    assert (energy["quantity"], energy["price"], energy["cost_excl_vat"]) == ("10.0000", "0.3", "3.0000")
    fee = next(t for t in trace if t["dimension"] == "FLAT" and t["piece"] is None)
    assert (fee["cost_excl_vat"], fee["vat_amount"], fee["cost_incl_vat"]) == ("0.5000", "0.1050", "0.6050")


def test_policy_and_tz_flags(tmp_path: Path) -> None:
    src = tmp_path / "one.json"
    usa = variant("usa")
    usa["cdr_location"] = dict(usa["cdr_location"], country="USA")
    src.write_text(json.dumps(usa))
    out = tmp_path / "o.ndjson"
    assert (
        main(
            [
                "price",
                "--tz",
                "America/New_York",
                "--policy",
                "period_boundaries=flag",
                "--out",
                str(out),
                str(src),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["time_zone"] == "America/New_York"
    meta = json.loads((tmp_path / "o.ndjson.meta.json").read_text())
    assert meta["policy"]["period_boundaries"] == "flag"


@pytest.mark.parametrize(
    "argv",
    [
        ["price", "--out", "x.ndjson", "does-not-exist.json"],
        ["price", "--policy", "nonsense=1", "--out", "x.ndjson", "fixtures"],
        ["price", "--policy", "flat_fee=sometimes", "--out", "x.ndjson", "fixtures"],
        ["price", "--tz", "Mars/Olympus", "--out", "x.ndjson", "fixtures"],
        ["price", "--out", "x.xlsx", "fixtures"],
    ],
)
def test_wrong_command_lines_exit_2_with_a_message(argv, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(argv) == 2
    assert "roamledger: error:" in capsys.readouterr().err


def test_python_api_returns_a_polars_frame() -> None:
    df, rejects = pricing.price_cdrs([variant("x"), {"id": "broken"}])
    assert df.height == 1
    assert [(r.code, r.line, r.source) for r in rejects] == [("MISSING_FIELD", 2, "<memory>")]
    assert df.columns[: len(COLUMNS)] == COLUMNS
    assert str(df["total_cost_incl_vat"][0]) == "4.2350"


def test_python_api_returns_a_pandas_frame_with_exact_decimals() -> None:
    """``frame="pandas"``: decimal columns stay exact decimals (Arrow decimal128), never float."""
    df, _ = pricing.price_cdrs([variant("x"), variant("y")], frame="pandas")
    assert isinstance(df, pd.DataFrame) and len(df) == 2
    assert list(df.columns[: len(COLUMNS)]) == COLUMNS
    for c in DECIMAL_COLUMNS:
        assert df[c].dtype == pd.ArrowDtype(pa.decimal128(38, 4)), c
        assert not pd.api.types.is_float_dtype(df[c].dtype), c
    value = df["total_cost_incl_vat"].iloc[0]
    assert isinstance(value, Decimal) and value == Decimal("4.2350") and str(value) == "4.2350"
    assert df["total_cost_incl_vat"].sum() == Decimal("8.4700")  # exact arithmetic, no float drift
    polars_frame, _ = pricing.price_cdrs([variant("x"), variant("y")])
    assert df["cdr_id"].tolist() == polars_frame["cdr_id"].to_list()
    with pytest.raises(pricing.RoamledgerError, match="frame="):
        pricing.price_cdrs([variant("x")], frame="arrow")


def test_console_script_help_has_an_example() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "api.cli", "price", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "example:" in out and "roamledger price" in out


def test_sample_month_kernel_with_columnar_reader_equals_reference(tmp_path: Path, capsys) -> None:
    """The default path for NDJSON (kernel + columnar reader) writes the same bytes as the oracle."""
    sample = ROOT / "fixtures" / "sample"
    outs = {}
    for engine in ("kernel", "reference"):
        out = tmp_path / f"{engine}.ndjson"
        args = ["price", "--engine", engine, "--tariffs", str(sample / "tariffs"), "--out", str(out)]
        assert main([*args, str(sample / "cdrs")]) == 0
        outs[engine] = (out.read_bytes(), (tmp_path / f"{engine}.ndjson.rejects.ndjson").read_bytes())
    assert outs["kernel"] == outs["reference"]
    assert capsys.readouterr().out.count("read 4845, priced 4835, rejected 10") == 2


def test_nested_ocpi_cdrs_in_parquet(tmp_path: Path) -> None:
    """Parquet with one nested OCPI CDR per row (struct/list columns) is read like JSON."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(json.dumps(variant(f"P{i}"))) for i in range(3)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "nested.parquet")
    res = price_batch([tmp_path / "nested.parquet"])
    assert (res.read, res.priced, res.rejected) == (3, 3, 0)
    assert [r["total_cost_excl_vat"] for r in res.rows] == ["3.5000"] * 3
    assert [r["line"] for r in res.rows] == [1, 2, 3]


@pytest.mark.parametrize("engine", ["kernel", "reference"])
def test_a_session_is_priced_with_the_tariff_version_published_before_it(tmp_path: Path, engine: str) -> None:
    """Versions of one tariff id (a store keeps every one a CPO sent): the newest published by the
    session start; a session before every publication takes the first version."""
    tariffs = tmp_path / "tariffs"
    tariffs.mkdir()
    for name, updated, price in (("v1", "2024-06-01T00:00:00Z", 0.30), ("v2", "2024-06-10T00:00:00Z", 0.40)):
        t = copy.deepcopy(TARIFF)
        t["last_updated"] = updated
        t["elements"][1]["price_components"][0]["price"] = price
        (tariffs / f"{name}.json").write_text(json.dumps(t))

    def at(cdr_id: str, day: str) -> dict:
        c = variant(
            cdr_id, tariffs=None, start_date_time=f"{day}T08:00:00Z", end_date_time=f"{day}T09:00:00Z"
        )
        c["charging_periods"] = [dict(c["charging_periods"][0], start_date_time=f"{day}T08:00:00Z")]
        return c

    src = tmp_path / "cdrs.ndjson"
    src.write_text(
        "".join(
            json.dumps(at(i, d)) + "\n"
            for i, d in (("A", "2024-06-03"), ("B", "2024-06-12"), ("C", "2024-05-20"))
        )
    )
    out = tmp_path / "p.ndjson"
    assert main(["price", "--engine", engine, "--tariffs", str(tariffs), "--out", str(out), str(src)]) == 0
    rows = {r["cdr_id"]: r["total_cost_excl_vat"] for r in map(json.loads, out.read_text().splitlines())}
    assert rows == {"A": "3.5000", "B": "4.5000", "C": "3.5000"}


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_workers_is_auto_or_a_count(value: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["price", "--workers", value, "--out", "x.ndjson", "fixtures"])
    assert exc.value.code == 2
    assert "is not 'auto' or a whole number of at least 1" in capsys.readouterr().err


def test_two_worker_processes_write_the_same_bytes_as_auto(tmp_path: Path) -> None:
    sample = ROOT / "fixtures" / "sample"
    outs = []
    for workers in ("auto", "2"):
        out = tmp_path / workers / "o.ndjson"
        args = ["price", "--workers", workers, "--tariffs", str(sample / "tariffs"), "--out", str(out)]
        assert main([*args, str(sample / "cdrs" / "cdrs.ndjson")]) == 0
        outs.append((out.read_bytes(), Path(f"{out}.rejects.ndjson").read_bytes()))
    assert outs[0] == outs[1] and outs[0][0]


def straddling_cdr() -> tuple[dict, dict]:
    """A CDR whose one charging period crosses 04:00 local on the DST night (01:00-04:00 CEST/CET
    at 0.20/kWh, after it 0.40/kWh), and its tariff; the CPO split it (2.40)."""
    tariff = copy.deepcopy(TARIFF) | {"id": "TS", "last_updated": "2026-01-01T00:00:00Z"}
    tariff["elements"] = [
        {
            "price_components": [{"type": "ENERGY", "price": 0.2, "vat": 21, "step_size": 1}],
            "restrictions": {"day_of_week": ["SUNDAY"], "start_time": "01:00", "end_time": "04:00"},
        },
        {"price_components": [{"type": "ENERGY", "price": 0.4, "vat": 21, "step_size": 1}]},
    ]
    cdr = variant("STRAD", start_date_time="2026-10-24T23:00:00Z", end_date_time="2026-10-25T04:00:00Z")
    cdr.pop("tariffs")
    cdr["charging_periods"] = [
        {
            "start_date_time": "2026-10-24T23:00:00Z",
            "dimensions": [{"type": "ENERGY", "volume": 10}, {"type": "TIME", "volume": 5}],
            "tariff_id": "TS",
        }
    ]
    cdr |= {"total_cost": {"excl_vat": 2.4, "incl_vat": 2.9}, "total_energy": 10, "total_time": 5}
    return cdr, tariff


@pytest.mark.parametrize("engine", ["reference", "kernel"])
def test_price_and_reconcile_recompute_a_straddling_cdr_alike(tmp_path: Path, engine: str) -> None:
    """price said 2.40 (split pro rata by default) while reconcile and settle said 2.00 (the state at
    the period's start, PRICING-SEMANTICS §2.4 (b)) and OVERCHARGED: one truth now, CDR_POLICY,
    with the straddle a finding of both; --policy period_boundaries=split still splits."""
    cdr, tariff = straddling_cdr()
    (tmp_path / "c.ndjson").write_text(json.dumps(cdr) + "\n")
    (tmp_path / "t.json").write_text(json.dumps(tariff))
    common = ["--tariffs", str(tmp_path / "t.json")]
    cdrs = str(tmp_path / "c.ndjson")
    assert main(["price", *common, "--engine", engine, "--out", str(tmp_path / "p.csv"), cdrs]) == 0
    assert main(["reconcile", *common, "--out", str(tmp_path / "r.ndjson"), cdrs]) == 0
    row = pl.read_csv(tmp_path / "p.csv", infer_schema=False).row(0, named=True)
    line = json.loads((tmp_path / "r.ndjson").read_text())
    assert row["total_cost_excl_vat"] == line["recomputed_total_excl_vat"] == "2.0000"
    assert row["total_cost_incl_vat"] == line["recomputed_total_incl_vat"] == "2.4200"
    found = [json.loads(x)["code"] for x in (tmp_path / "p.csv.findings.ndjson").read_text().splitlines()]
    assert found == ["PERIOD_STRADDLES_BOUNDARY"]
    assert json.loads((tmp_path / "p.csv.meta.json").read_text())["policy"]["period_boundaries"] == "flag"
    # a --policy pair changes its own field only (reconcile kept flag; price too)
    split = ["--policy", "period_boundaries=split"]
    assert main(["price", *common, *split, "--out", str(tmp_path / "s.csv"), cdrs]) == 0
    assert main(["reconcile", *common, *split, "--out", str(tmp_path / "s.ndjson"), cdrs]) == 0
    assert pl.read_csv(tmp_path / "s.csv", infer_schema=False)["total_cost_excl_vat"][0] == "2.4000"
    assert json.loads((tmp_path / "s.ndjson").read_text())["recomputed_total_excl_vat"] == "2.4000"
    other = ["--policy", "flat_fee=once_per_session"]
    assert main(["reconcile", *common, *other, "--out", str(tmp_path / "o.ndjson"), cdrs]) == 0
    assert json.loads((tmp_path / "o.ndjson").read_text())["recomputed_total_excl_vat"] == "2.0000"
    frame, _ = pricing.price_cdrs(cdrs, str(tmp_path / "t.json"))
    assert str(frame["total_cost_excl_vat"][0]) == "2.0000"


def test_batch_commands_set_the_allocator_default_unless_the_user_did(tmp_path: Path, monkeypatch) -> None:
    """`price` (a batch command) sets polars' jemalloc default (freed pages kept 10 s for reuse:
    page faults per span) and one OpenBLAS thread before it loads polars and numpy, for itself and
    the workers that inherit them; a value the user set is kept; a non-batch command leaves the
    environment alone."""
    from api.cli import BATCH_ALLOCATOR, BATCH_BLAS

    src = tmp_path / "one.json"
    src.write_text(json.dumps(CDR))
    out = tmp_path / "o.ndjson"
    for name, default in (BATCH_ALLOCATOR, BATCH_BLAS):
        monkeypatch.delenv(name, raising=False)
        assert main(["lint", str(src)]) in (0, 1, 2)
        assert name not in os.environ
        assert main(["price", "--out", str(out), str(src)]) == 0
        assert os.environ[name] == default
        monkeypatch.setenv(name, "7")
        assert main(["price", "--out", str(out), str(src)]) == 0
        assert os.environ[name] == "7"


def test_price_starts_its_helper_processes_before_it_loads_the_pricing(tmp_path: Path) -> None:
    """`price` on one NDJSON file priced on several processes starts the helpers first (they load
    the pricing's modules while the command does), and the spans are priced on those very
    helpers; the output is the one-process output."""
    src = tmp_path / "cdrs.ndjson"
    src.write_text("".join(json.dumps(dict(CDR, id=f"CDR-{i}")) + "\n" for i in range(40)))
    probe = (
        "import sys, pricing.workers as w\n"
        "start, take = w.start_helpers, w.take_helpers\n"
        "def started(n):\n"
        "    print('start', n, 'pricing.batch' in sys.modules, 'polars' in sys.modules)\n"
        "    start(n)\n"
        "def taken(n):\n"
        "    pool = take(n)\n"
        "    print('take', n, pool is not None)\n"
        "    return pool\n"
        "w.start_helpers, w.take_helpers = started, taken\n"
        "from api.cli import main\n"
        "if __name__ == '__main__':\n"
        "    sys.exit(main(sys.argv[1:]))\n"
    )
    script = tmp_path / "probe.py"
    script.write_text(probe)
    outs = []
    for workers in ("2", "1"):
        out = tmp_path / f"w{workers}.ndjson"
        args = [sys.executable, str(script), "price", "--workers", workers, "--out", str(out), str(src)]
        done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, check=True)
        outs.append(out.read_bytes())
        if workers == "2":
            assert "start 1 False False" in done.stdout, done.stdout  # before numpy/polars/pricing
            assert "take 1 True" in done.stdout, done.stdout
        else:
            assert "start 0" in done.stdout and "take" not in done.stdout, done.stdout
    assert outs[0] == outs[1]


def test_helpers_started_early_are_taken_once_and_only_by_their_count() -> None:
    from pricing import workers

    workers.start_helpers(1)
    pool = workers.take_helpers(1)
    assert pool is not None and workers.take_helpers(1) is None  # the caller owns them now
    assert pool.submit(sum, [1, 2]).result() == 3
    pool.shutdown()
    workers.start_helpers(1)
    assert workers.take_helpers(2) is None  # another count: those started are stopped
    assert workers.take_helpers(1) is None
    workers.start_helpers(0)
    assert workers.take_helpers(0) is None


def test_helpers_ignore_ctrl_c_and_the_command_keeps_its_handler() -> None:
    """Ctrl-C reaches every process of the group: the helpers ignore it (the command stops them),
    so no helper prints a traceback; the command still gets KeyboardInterrupt."""
    from pricing import workers

    before = signal.getsignal(signal.SIGINT)
    pool = workers.helper_pool(1)
    try:
        assert pool.submit(signal.getsignal, signal.SIGINT).result() == signal.SIG_IGN
    finally:
        pool.shutdown()
    assert signal.getsignal(signal.SIGINT) is before


def test_a_failed_run_does_not_wait_for_the_input_hashes(tmp_path: Path, monkeypatch) -> None:
    """A run that fails (here: a --tariffs file that is not JSON) stops hashing its inputs rather
    than waiting for a large file's digest."""
    import api.cli.price

    stopped = []

    def slow_hash(path, stop=None):
        stopped.append(stop.wait(60))  # a large file: done only when the run says stop
        raise InterruptedError("stopped")

    monkeypatch.setattr(api.cli.price, "sha256_file", slow_hash)
    src = tmp_path / "c.ndjson"
    src.write_text(json.dumps(CDR) + "\n")
    bad = tmp_path / "t.json"
    bad.write_text("not json {")
    assert main(["price", "--tariffs", str(bad), "--out", str(tmp_path / "o.ndjson"), str(src)]) == 2
    assert stopped == [True]


def test_a_stopped_hash_raises(tmp_path: Path) -> None:
    from pricing.files import sha256_file

    f = tmp_path / "x.bin"
    f.write_bytes(b"abc" * 1000)
    assert sha256_file(f) == hashlib.sha256(b"abc" * 1000).hexdigest()
    stop = threading.Event()
    stop.set()
    with pytest.raises(InterruptedError):
        sha256_file(f, stop)


def test_sigterm_stops_price_like_ctrl_c(tmp_path: Path) -> None:
    """SIGTERM (timeout, docker stop) mid-run: one sentence, exit 143, the earlier output kept and
    no hidden file left beside it (the rows gathered for the output included)."""
    cdrs = tmp_path / "m.ndjson"
    gen = [sys.executable, "-m", "api.cli", "generate", "--cdrs", "20000", "--seed", "4", "--quiet"]
    subprocess.run([*gen, "--out", str(cdrs), "--tariffs-out", str(tmp_path / "t")], check=True, cwd=ROOT)
    out = tmp_path / "out" / "o.ndjson"
    out.parent.mkdir()
    out.write_text("earlier\n")
    cmd = [sys.executable, "-m", "api.cli", "price", "--workers", "2", "--tariffs", str(tmp_path / "t")]
    proc = subprocess.Popen(
        [*cmd, "--out", str(out), str(cdrs)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    seen = False
    for _ in range(400):  # until the rows file exists (the spans are being priced), at most ~20 s
        seen = any(p.name.startswith(".o.ndjson.roamledger-rows-") for p in out.parent.iterdir())
        if seen or proc.poll() is not None:
            break
        threading.Event().wait(0.05)
    proc.send_signal(signal.SIGTERM)
    _stdout, stderr = proc.communicate(timeout=60)
    assert seen, f"the rows file beside the output never appeared (exit {proc.returncode}): {stderr}"
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == "roamledger: error: terminated, nothing written"
    assert "Traceback" not in stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["o.ndjson"]
    assert out.read_text() == "earlier\n"


def test_rows_rejects_and_findings_list_several_files_alike(tmp_path: Path) -> None:
    """Rows are in input order by file path, then line; the rejects follow the same order (they
    came in command-line order, the rows in path order)."""
    for name in ("b.ndjson", "a.ndjson"):
        lines = [json.dumps(dict(CDR, id=f"{name[0]}-{k}")) for k in range(2)]
        (tmp_path / name).write_text("\n".join([*lines, "{broken"]) + "\n")
    out = tmp_path / "o.ndjson"
    assert main(["price", "--out", str(out), str(tmp_path / "b.ndjson"), str(tmp_path / "a.ndjson")]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    rejects = [json.loads(x) for x in Path(f"{out}.rejects.ndjson").read_text().splitlines()]
    assert [(Path(r["source"]).name, r["line"]) for r in rows] == [
        ("a.ndjson", 1),
        ("a.ndjson", 2),
        ("b.ndjson", 1),
        ("b.ndjson", 2),
    ]
    assert [(Path(r["source"]).name, r["line"]) for r in rejects] == [("a.ndjson", 3), ("b.ndjson", 3)]


def test_rejects_of_lines_that_are_not_a_cdr_object_or_not_utf8_say_how_to_fix_them(tmp_path: Path) -> None:
    """A line holding an array, null or a number, and a line in Latin-1: each reject names what
    it found and how to fix it (an encoding hint for the bytes that are not UTF-8)."""
    src = tmp_path / "b.ndjson"
    latin = (
        json.dumps(dict(CDR, id="L1", remark="Mü"), ensure_ascii=False)
        .encode("utf-8")
        .replace("ü".encode(), b"\xfc")
    )
    src.write_bytes(b"[]\nnull\n42\n" + latin + b"\n")
    out = tmp_path / "o.ndjson"
    assert main(["price", "--out", str(out), str(src)]) == 2  # every record rejected
    rejects = [json.loads(x) for x in Path(f"{out}.rejects.ndjson").read_text().splitlines()]
    got = [(r["line"], r["code"], r["message"].split(". Hint: ")) for r in rejects]
    hint = "one CDR object per line of an .ndjson file, or one array of CDR objects in a .json file"
    assert got[:3] == [
        (1, "BAD_RECORD", ["expected a CDR (a JSON object), got an array", hint]),
        (2, "BAD_RECORD", ["expected a CDR (a JSON object), got null", hint]),
        (3, "BAD_RECORD", ["expected a CDR (a JSON object), got a number", hint]),
    ]
    assert got[3][:2] == (4, "BAD_JSON") and got[3][2][1].startswith(
        "OCPI JSON is UTF-8: save the file as UTF-8"
    )
