"""`roamledger generate`: deterministic, realistic CDR workloads whose defects are known exactly.

Every generated month is checked against the engine itself: the malformed records are rejected
with the codes the generator announced, clean CDRs reconcile to the cent, and the CPO opened a
charging period at every tariff boundary except where the labels say it did not. The reported totals
are checked exactly against the reference pricer (the executable specification), whatever engine the
generator used to compute them.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from collections import Counter
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from conftest import ROOT

from benchmarks.workload import cli as gen
from benchmarks.workload import run as run_module
from benchmarks.workload.jsontext import dumps, number_text
from benchmarks.workload.reported import Engine
from pricing.batch import load_tariffs, price_batch, price_records
from pricing.errors import InputError
from pricing.flat import arrow_schema
from pricing.io import iter_sources
from pricing.policy import PeriodBoundaries, PricingPolicy
from settlement.contracts import load_contracts

SMALL = [
    "--cdrs", "400", "--seed", "7", "--versions", "2.2.1:60,2.1.1:10,2.3.0:30", "--malformed", "6",
    "--credit-rate", "0.03", "--duplicate-rate", "0.02", "--overcharge-rate", "0.05",
    "--out-of-month-rate", "0.02", "--straddle-rate", "0.05",
]  # fmt: skip
SAMPLE = ROOT / "fixtures" / "sample"


def run_generate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="roamledger")
    gen.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["generate", *argv])
    return args.func(args)


def read_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def load(raw: bytes) -> dict[str, Any] | None:
    try:
        return json.loads(raw, parse_float=Decimal)
    except ValueError:
        return None


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small month with every kind of defect, in NDJSON (one file per version)."""
    d = tmp_path_factory.mktemp("month")
    argv = [*SMALL, "--out", str(d / "cdrs.ndjson"), "--tariffs-out", str(d / "tariffs")]
    argv += ["--summary", str(d / "summary.json"), "--labels", str(d / "labels.ndjson"), "--quiet"]
    assert run_generate(argv) == 0
    summary = json.loads((d / "summary.json").read_text())
    labels = [json.loads(x) for x in (d / "labels.ndjson").read_text().splitlines()]
    files = [d / "cdrs.ndjson", d / "cdrs.v211.ndjson", d / "cdrs.v230.ndjson"]
    return {"dir": d, "summary": summary, "labels": labels, "files": files}


def by_location(labels: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(x["file"], x["line"]): x for x in labels}


# ---- determinism --------------------------------------------------------------------------------


def tree_bytes(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_parquet_same_seed_same_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    outs = {}
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        argv = ["--cdrs", "3000", "--seed", seed, "--malformed", "4", "--no-reported", "--quiet"]
        argv += ["--versions", "2.2.1,2.1.1,2.3.0", "--out", str(tmp_path / name / "cdrs.parquet")]
        assert run_generate(argv) == 0
        outs[name] = tree_bytes(tmp_path / name)
    assert outs["a"] == outs["b"]
    assert outs["a"]["cdrs.parquet"] != outs["c"]["cdrs.parquet"]
    assert outs["a"]["tariffs/ECO-AC-221.json"] == outs["c"]["tariffs/ECO-AC-221.json"]


def test_ndjson_same_seed_same_bytes_and_another_seed_differs(tmp_path: Path, month: dict[str, Any]) -> None:
    again = tmp_path / "again"
    argv = [*SMALL, "--out", str(again / "cdrs.ndjson"), "--tariffs-out", str(again / "tariffs"), "--quiet"]
    assert run_generate(argv) == 0
    first = {k: v for k, v in tree_bytes(month["dir"]).items() if not k.startswith(("summary", "labels"))}
    assert tree_bytes(again) == first
    other = tmp_path / "other"
    argv = [*SMALL, "--seed", "8", "--out", str(other / "cdrs.ndjson"), "--quiet"]
    assert run_generate(argv) == 0
    assert (other / "cdrs.ndjson").read_bytes() != (month["dir"] / "cdrs.ndjson").read_bytes()


def test_decimals_are_written_as_the_floats_of_the_same_value_were() -> None:
    """Numbers come from exact decimal text, in the bytes the float encoders used to write."""
    floats = {"a": 1.5, "b": [0.0025, 12.345, 100.0, -3.21, 0.0, 21.0], "c": "Köln", "d": {"e": None, "f": 7}}
    decimals = {
        "a": Decimal("1.50"),
        "b": [
            Decimal("0.0025"),
            Decimal("12.345"),
            Decimal("100"),
            Decimal("-3.210"),
            Decimal("0.00"),
            Decimal(21),
        ],
        "c": "Köln",
        "d": {"e": None, "f": 7},
    }
    assert dumps(decimals) == orjson.dumps(floats)
    assert dumps(floats) == json.dumps(floats, ensure_ascii=False, separators=(",", ":")).encode()
    for text in ("0.0001", "0.00005", "123456789012345.5", "1e16", "-2.5e-7", "-0.00", "42"):
        assert number_text(Decimal(text)).encode() == orjson.dumps(float(text)), text


def test_decimal_text_keeps_digits_a_float_would_lose() -> None:
    assert number_text(Decimal("0.12345678901234567891")) == "0.12345678901234567891"
    assert orjson.dumps(float("0.12345678901234567891")) == b"0.12345678901234568"


# ---- counts and files ---------------------------------------------------------------------------


def test_files_counts_and_labels_agree(month: dict[str, Any]) -> None:
    s = month["summary"]
    files = month["files"]
    assert s["files"] == {str(f): len(read_lines(f)) for f in files}
    assert s["read"] == sum(s["files"].values())
    assert s["sessions"] == 400 and s["malformed"] == 6
    records = [load(raw) for f in files for raw in read_lines(f)]
    good = [r for r in records if r is not None]
    assert len(records) - len(good) == s["malformed_by_kind"]["truncated_json"]
    credits = [r for r in good if r.get("credit")]
    assert len(credits) == s["credits"] > 0
    assert all(r["id"] == r["credit_reference_id"] + "-C" for r in credits)
    assert sum(r["id"].endswith("-R") for r in good) == s["reissues"] > 0
    ids = Counter(r["id"] for r in good)
    assert sum(n - 1 for n in ids.values()) >= s["duplicates_identical"] + s["duplicates_conflicting"] > 0
    kinds = Counter(x["kind"] for x in month["labels"])
    assert kinds["credit"] == s["credits"] and kinds["malformed"] == s["malformed"]
    assert kinds["dup"] == s["duplicates_identical"] and kinds["conflict"] == s["duplicates_conflicting"]
    # every file starts with a well-formed record of its own version
    for f, version in zip(files, ("2.2.1", "2.1.1", "2.3.0"), strict=True):
        first = load(read_lines(f)[0])
        assert first is not None and ("stop_date_time" in first) == (version == "2.1.1")
    # one version per file, except the version-mismatch records
    for f in files:
        for raw in read_lines(f):
            assert raw.startswith(b"{")


def test_volumes_are_exact_and_match_the_timestamps(month: dict[str, Any]) -> None:
    def ts(text: str) -> int:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())

    for f in month["files"]:
        for raw in read_lines(f):
            r = load(raw)
            if r is None or "currency" not in r:
                continue
            starts = [ts(p["start_date_time"]) for p in r["charging_periods"]]
            end = ts(r.get("end_date_time") or r["stop_date_time"])
            assert ts(r["start_date_time"]) == starts[0] and all(t % 9 == 0 for t in [*starts, end])
            spans = [b - a for a, b in zip(starts, [*starts[1:], end], strict=True)]
            for p, span in zip(r["charging_periods"], spans, strict=True):
                dims = {d["type"]: d["volume"] for d in p["dimensions"]}
                hours = dims.get("TIME", dims.get("PARKING_TIME"))
                assert hours * 3600 == span, (r["id"], p)
                assert hours == hours.quantize(Decimal("0.0001"))
                if "ENERGY" in dims and dims["ENERGY"] >= 0:
                    assert dims["ENERGY"] == dims["ENERGY"].quantize(Decimal("0.001"))
                if "MAX_POWER" in dims:
                    assert 0 < dims["MIN_POWER"] <= dims["MAX_POWER"] <= 150


# ---- against the engine -------------------------------------------------------------------------


def test_malformed_records_are_rejected_with_the_announced_codes(month: dict[str, Any]) -> None:
    s = month["summary"]
    res = price_batch(month["files"], tariffs=[month["dir"] / "tariffs"])
    assert res.read == res.priced + res.rejected == s["read"]
    assert res.rejected == s["expected_rejected"]
    assert dict(Counter(f.code for f in res.rejects)) == s["expected_rejects_by_code"]
    assert set(s["expected_rejects_by_code"]) == {
        "BAD_JSON",
        "MISSING_FIELD",
        "NEGATIVE_VOLUME",
        "TARIFF_NOT_FOUND",
        "CURRENCY_MISMATCH",
        "VERSION_MISMATCH",
    }
    where = by_location(month["labels"])
    for f in res.rejects:
        assert where[(f.source, f.line)]["expected_code"] == f.code


def test_reported_totals_reconcile_with_the_engine(month: dict[str, Any]) -> None:
    """Clean CDRs within a cent (the CPO rounds to cents); overcharges above; credits negate."""
    res = price_batch(month["files"], tariffs=[month["dir"] / "tariffs"])
    rows = {(r["source"], r["line"]): r for r in res.rows}
    where = by_location(month["labels"])
    reported: dict[str, Decimal] = {}
    checked = over = 0
    for f in month["files"]:
        for n, raw in enumerate(read_lines(f), start=1):
            key = (str(f), n)
            if key not in rows:
                continue
            r = load(raw)
            assert r is not None
            tc = r["total_cost"]
            excl = tc if not isinstance(tc, dict) else tc.get("excl_vat", tc.get("before_taxes"))
            labels = set(where.get(key, {}).get("labels", []))
            kind = where.get(key, {}).get("kind", "orig")
            engine = Decimal(rows[key]["total_cost_excl_vat"])
            if kind == "orig":
                reported[r["id"]] = excl
            if kind == "credit":
                assert excl == -reported[r["credit_reference_id"]] and excl <= 0
            elif "overcharged" in labels and "straddling" not in labels:
                assert excl - engine > Decimal("0.01"), r["id"]
                over += 1
            elif not labels & {"overcharged", "straddling", "conflicting_duplicate"}:
                assert abs(excl - engine) <= Decimal("0.01"), (r["id"], excl, engine)
                if isinstance(tc, dict) and "incl_vat" in tc:
                    assert abs(tc["incl_vat"] - Decimal(rows[key]["total_cost_incl_vat"])) <= Decimal("0.01")
                checked += 1
    assert checked > 350 and over > 0


def cents(x: Any) -> Decimal:
    return Decimal(x).quantize(Decimal("0.01"), ROUND_HALF_UP)


def expected_total_cost(row: dict[str, Any], version: str) -> Any:
    """The total_cost a CPO reports for a priced row: each amount half-up to cents (a credit's row
    is negative already, as its reported total)."""
    excl = cents(row["total_cost_excl_vat"])
    if version == "2.1.1":
        return excl
    if version == "2.2.1":
        out = {"excl_vat": excl}
        if row["total_cost_incl_vat"] is not None:
            out["incl_vat"] = cents(row["total_cost_incl_vat"])
        return out
    taxes = [t for t in row["taxes"] or [] if t["amount"] is not None]
    return {
        "before_taxes": excl,
        "taxes": [
            {"name": t["name"], "percentage": Decimal(t["percentage"]), "amount": cents(t["amount"])}
            for t in taxes
        ],
    }


@pytest.mark.parametrize("version", ["2.1.1", "2.2.1", "2.3.0"])
def test_reported_totals_are_the_reference_pricers_rounded_to_cents(tmp_path: Path, version: str) -> None:
    """Not against the engine that produced them: every clean CDR's total_cost (and its quantities)
    equals the reference pricer's result rounded half-up to cents, exactly; straddling sessions were
    priced by the state at each period's start, as their CPO did."""
    argv = ["--cdrs", "200", "--seed", "13", "--versions", version, "--overcharge-rate", "0.05"]
    argv += ["--straddle-rate", "0.1", "--credit-rate", "0.05", "--duplicate-rate", "0.05", "--quiet"]
    argv += ["--out", str(tmp_path / "c.ndjson"), "--labels", str(tmp_path / "labels.ndjson")]
    assert run_generate(argv) == 0
    labels = by_location([json.loads(x) for x in read_lines(tmp_path / "labels.ndjson")])
    tariffs, _ = load_tariffs([tmp_path / "tariffs"])
    records = list(iter_sources([tmp_path / "c.ndjson"]))
    reference = {}
    start = PricingPolicy(period_boundaries=PeriodBoundaries.START)
    for straddling, policy in ((False, PricingPolicy()), (True, start)):
        res = price_records(records, tariffs, policy, engine="reference")
        assert res.engine == "reference" and not res.rejects
        reference[straddling] = {(r["source"], r["line"]): r for r in res.rows}
    checked = Counter()
    for n, raw in enumerate(read_lines(tmp_path / "c.ndjson"), start=1):
        key = (str(tmp_path / "c.ndjson"), n)
        label = labels.get(key, {"kind": "orig", "labels": []})
        if label["kind"] == "conflict" or "overcharged" in label["labels"]:
            continue  # a resend with another total / a CDR priced with the wrong tariff on purpose
        rec = json.loads(raw, parse_float=Decimal)
        row = reference["straddling" in label["labels"]][key]
        # a credit's row carries its sign already (price negates a credit's money, as its CPO does)
        assert rec["total_cost"] == expected_total_cost(row, version), rec["id"]
        assert rec["total_energy"] == Decimal(row["total_energy_kwh"]), rec["id"]
        assert rec["total_time"] == Decimal(row["total_time_h"]), rec["id"]
        checked[label["kind"]] += 1
    assert checked["orig"] > 150 and sum(checked.values()) > checked["orig"]


def test_periods_split_at_every_tariff_boundary_except_the_straddling_sessions(month: dict[str, Any]) -> None:
    policy = PricingPolicy.from_pairs(["period_boundaries=flag"])
    res = price_batch(month["files"], tariffs=[month["dir"] / "tariffs"], policy=policy)
    flagged = {(w.source, w.line) for w in res.warnings if w.code == "PERIOD_STRADDLES_BOUNDARY"}
    straddling = {k for k, x in by_location(month["labels"]).items() if "straddling" in x["labels"]}
    assert flagged and flagged <= straddling


# ---- flat Parquet -------------------------------------------------------------------------------


def test_flat_parquet_has_exactly_the_flat_schema(tmp_path: Path) -> None:
    out = tmp_path / "flat.parquet"
    argv = ["--cdrs", "2000", "--seed", "1", "--versions", "2.2.1,2.1.1,2.3.0", "--malformed", "8"]
    argv += ["--no-reported", "--out", str(out), "--summary", str(tmp_path / "s.json"), "--quiet"]
    assert run_generate(argv) == 0
    table = pq.read_table(out)
    assert table.schema.equals(arrow_schema(optional=True))
    s = json.loads((tmp_path / "s.json").read_text())
    records = sum(1 for i in table.column("period_idx").to_pylist() if i == 0)
    assert records == s["read"] == s["files"][str(out)]
    assert table.column("reported_total_excl").null_count == table.num_rows
    df = table.to_pydict()
    v211 = [i for i, v in enumerate(df["ocpi_version"]) if v == "2.1.1"]
    assert v211 and all(df["country_code"][i] is None and df["min_power_w"][i] is None for i in v211)
    parked = [i for i, p in enumerate(df["parking_ms"]) if p is not None]
    assert parked and all(df["energy_mwh"][i] is None and df["time_ms"][i] is None for i in parked)
    assert set(df["currency"]) >= {"EUR", "GBP"}


def test_flat_parquet_reported_totals_match_the_ndjson_ones(tmp_path: Path) -> None:
    argv = ["--cdrs", "300", "--seed", "5", "--quiet", "--credit-rate", "0", "--duplicate-rate", "0"]
    assert run_generate([*argv, "--out", str(tmp_path / "c.ndjson")]) == 0
    assert run_generate([*argv, "--out", str(tmp_path / "c.parquet")]) == 0
    nd = {}
    for raw in read_lines(tmp_path / "c.ndjson"):
        r = json.loads(raw, parse_float=Decimal)
        nd[r["id"]] = (r["total_cost"]["excl_vat"], r["total_cost"].get("incl_vat"))
    table = pq.read_table(tmp_path / "c.parquet").to_pydict()
    seen = 0
    for cid, idx, excl, incl in zip(
        table["cdr_id"],
        table["period_idx"],
        table["reported_total_excl"],
        table["reported_total_incl"],
        strict=True,
    ):
        if idx == 0:
            assert (excl, incl) == nd[cid]
            seen += 1
    assert seen >= 300


def reported_by_id(path: Path) -> dict[str, list[tuple[Decimal, Decimal | None]]]:
    """cdr_id → the reported (total excl, total incl) of its records, in file order."""
    out: dict[str, list[tuple[Decimal, Decimal | None]]] = {}
    for f in sorted(path.parent.glob(f"{path.stem}*.ndjson")):
        for raw in read_lines(f):
            r = json.loads(raw, parse_float=Decimal)
            tc = r["total_cost"]
            if not isinstance(tc, dict):  # 2.1.1: VAT unknown
                total: tuple[Decimal, Decimal | None] = (Decimal(tc), None)
            elif "before_taxes" in tc:
                total = (tc["before_taxes"], tc["before_taxes"] + sum(t["amount"] for t in tc["taxes"]))
            else:
                total = (tc["excl_vat"], tc.get("incl_vat"))
            out.setdefault(r["id"], []).append(total)
    return out


def test_flat_reported_totals_by_the_kernel_are_the_per_record_totals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flat layout's reported totals (the kernel, on columns) equal what the per-record
    reference engine reports for the same CDRs: credits, re-issues, resends (identical and
    conflicting), overcharges, straddling sessions, min/max clamps and all three OCPI versions."""
    argv = ["--cdrs", "2500", "--seed", "21", "--versions", "2.2.1:40,2.1.1:20,2.3.0:40", "--cpos", "5"]
    argv += ["--emsps", "6", "--credit-rate", "0.05", "--duplicate-rate", "0.05", "--overcharge-rate", "0.05"]
    argv += ["--straddle-rate", "0.05", "--out-of-month-rate", "0.02", "--quiet"]
    assert run_generate([*argv, "--out", str(tmp_path / "flat" / "c.parquet")]) == 0
    monkeypatch.setattr(run_module, "_WORKER", {})
    monkeypatch.setattr(run_module, "Engine", lambda world: Engine(world, pricer="reference"))
    summary = tmp_path / "records" / "summary.json"
    assert (
        run_generate([*argv, "--out", str(tmp_path / "records" / "c.ndjson"), "--summary", str(summary)]) == 0
    )
    records = reported_by_id(tmp_path / "records" / "c.ndjson")
    table = pq.read_table(tmp_path / "flat" / "c.parquet").to_pydict()
    flat: dict[str, list[tuple[Decimal, Decimal | None]]] = {}
    for cid, idx, excl, incl in zip(
        table["cdr_id"],
        table["period_idx"],
        table["reported_total_excl"],
        table["reported_total_incl"],
        strict=True,
    ):
        if idx == 0:
            flat.setdefault(cid, []).append((excl, incl))
    assert {k: sorted(v, key=str) for k, v in flat.items()} == {
        k: sorted(v, key=str) for k, v in records.items()
    }
    s = json.loads(summary.read_text())
    assert s["credits"] and s["duplicates_conflicting"] and s["overcharged"] and s["min_max_applied"]


# ---- command line -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--cdrs", "5", "--out", "x.csv"],
        ["--cdrs", "5", "--out", "x.ndjson", "--versions", "2.2.1,9.9.9"],
        ["--cdrs", "5", "--out", "x.ndjson", "--no-reported"],
        ["--cdrs", "5", "--out", "x.ndjson", "--month", "2026-13"],
    ],
)
def test_wrong_arguments_are_input_errors(argv: list[str]) -> None:
    with pytest.raises(InputError):
        run_generate(argv)


def test_help_has_an_example() -> None:
    parser = argparse.ArgumentParser(prog="roamledger")
    p = gen.add_parser(parser.add_subparsers())
    text = p.format_help()
    assert "example:" in text and "roamledger generate" in text and "--malformed" in text


# ---- the shipped sample month -------------------------------------------------------------------


def sample_command() -> list[str]:
    """The exact command in fixtures/sample/README.md (between the ``sh`` fences)."""
    text = (SAMPLE / "README.md").read_text()
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    argv = shlex.split(block.replace("\\\n", " "))
    assert argv[:2] == ["roamledger", "generate"]
    return argv[2:]


def test_sample_layout_size_and_parties() -> None:
    files = [p for p in SAMPLE.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 6.2e6
    assert sorted(p.name for p in (SAMPLE / "cdrs").iterdir()) == [
        "cdrs.ndjson",
        "cdrs.v211.ndjson",
        "cdrs.v230.ndjson",
    ]
    summary = json.loads((SAMPLE / "summary.json").read_text())
    for name, lines in summary["files"].items():
        assert len((ROOT / name).read_bytes().splitlines()) == lines
    contracts = load_contracts(SAMPLE / "contracts.json")
    assert contracts.statement_time_zone == "Europe/Amsterdam" and "GBP/EUR" in contracts.fx_rates
    pairs, currencies = set(), set()
    for f in sorted((SAMPLE / "cdrs").glob("*.ndjson")):
        for raw in read_lines(f):
            r = load(raw)
            if r is None or "currency" not in r:
                continue
            currencies.add(r["currency"])
            if "auth_id" in r:  # 2.1.1: parties only through the contracts file
                cpo = contracts.cpo_by_location[r["location"]["id"]]
                emsp = contracts.emsp_by_contract_prefix[r["auth_id"][:5]]
            else:
                cpo = f"{r['country_code']}*{r['party_id']}"
                emsp = f"{r['cdr_token']['country_code']}*{r['cdr_token']['party_id']}"
            pairs.add((cpo, emsp))
    assert len(pairs) == 12 and currencies == {"EUR", "GBP"}


def test_sample_readme_lists_the_summary_counts() -> None:
    summary = json.loads((SAMPLE / "summary.json").read_text())
    table = {}
    for line in (SAMPLE / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[1].isdigit():
            table[cells[0].strip("`")] = int(cells[1])
    assert len(table) >= 15
    for key, value in table.items():
        node: Any = summary
        for part in key.split("."):
            node = node[part]
        assert node == value, key


def test_sample_is_reproducible_from_its_readme_command(tmp_path: Path) -> None:
    argv = sample_command()
    prefix = "fixtures/sample"
    moved = [a.replace(prefix, str(tmp_path), 1) if a.startswith(prefix) else a for a in argv]
    assert run_generate([*moved, "--quiet"]) == 0
    for p in sorted(SAMPLE.rglob("*")):
        if p.is_file() and p.name != "README.md":
            made = (
                (tmp_path / p.relative_to(SAMPLE))
                .read_bytes()
                .replace(str(tmp_path).encode(), prefix.encode())
            )
            assert made == p.read_bytes(), p


def test_sample_counts_hold_when_priced() -> None:
    summary = json.loads((SAMPLE / "summary.json").read_text())
    res = price_batch([SAMPLE / "cdrs"], tariffs=[SAMPLE / "tariffs"])
    assert (res.read, res.priced, res.rejected) == (
        summary["read"],
        summary["expected_priced"],
        summary["expected_rejected"],
    )
    assert dict(Counter(f.code for f in res.rejects)) == summary["expected_rejects_by_code"]


def test_console_generate_help_runs() -> None:
    code = "from benchmarks.workload import cli as g; import argparse; "
    code += "p = argparse.ArgumentParser(prog='roamledger'); "
    code += "g.add_parser(p.add_subparsers()); p.parse_args(['generate', '--help'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT).stdout
    assert "example:" in out


def test_worker_processes_do_not_change_the_output(tmp_path: Path) -> None:
    for jobs in ("1", "2"):
        argv = ["--cdrs", "110000", "--seed", "2", "--no-reported", "--quiet", "--jobs", jobs]
        assert run_generate([*argv, "--out", str(tmp_path / jobs / "c.parquet")]) == 0
    assert (tmp_path / "1" / "c.parquet").read_bytes() == (tmp_path / "2" / "c.parquet").read_bytes()
