"""Parties (issue 10, item 4): a 2.1.1 CDR whose CPO or eMSP the contracts file does not map is left
out with a PARTY_UNKNOWN finding and one console line saying how to map it, never settled on an
"UNKNOWN" statement (both engines, byte-identical); an empty CDR id is rejected."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from test_settle import cdr, run_settle, write_month
from test_settle_columnar import assert_same_run, generate, run_both

from api.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample"


def unmap(src: Path, dst: Path, prefixes: list[str], locations: list[str]) -> Path:
    doc = json.loads(src.read_text())
    for p in prefixes:
        doc["parties_211"]["emsp_by_contract_prefix"].pop(p)
    for loc in locations:
        doc["parties_211"]["cpo_by_location"].pop(loc)
    dst.write_text(json.dumps(doc))
    return dst


def party_findings(out: Path) -> list[dict]:
    rows = [json.loads(x) for x in (out / "findings.ndjson").read_text().splitlines()]
    return [f for f in rows if f["code"] == "PARTY_UNKNOWN"]


def test_unmapped_211_cdrs_are_excluded_with_a_finding_and_a_hint(tmp_path: Path, capsys) -> None:
    full, part = tmp_path / "full", tmp_path / "part"
    argv = [
        "settle",
        "--cdrs",
        str(SAMPLE / "cdrs"),
        "--tariffs",
        str(SAMPLE / "tariffs"),
        "--month",
        "2026-10",
    ]
    assert main([*argv, "--contracts", str(SAMPLE / "contracts.json"), "--out", str(full)]) == 0
    contracts = unmap(SAMPLE / "contracts.json", tmp_path / "c.json", ["DEMSP"], ["LOC-ECO-0001"])
    capsys.readouterr()
    assert main([*argv, "--contracts", str(contracts), "--out", str(part)]) == 0
    printed = capsys.readouterr().out
    found = party_findings(part)
    assert found and not party_findings(full)
    assert not [p for p in part.iterdir() if "UNKNOWN" in p.name]
    m_full = json.loads((full / "manifest.json").read_text())["counts"]
    m_part = json.loads((part / "manifest.json").read_text())["counts"]
    assert m_part["settled"] + m_part["excluded"] == m_full["settled"] + m_full["excluded"]
    was_settled = {
        ln["cdr_id"] for st in full.glob("*/statement.json") for ln in json.loads(st.read_text())["lines"]
    }
    assert m_full["settled"] - m_part["settled"] == len({f["cdr_id"] for f in found} & was_settled) > 0
    assert f"excluded {len(found)} CDRs whose party is unknown" in printed
    assert "parties_211" in printed and "'DEMSP'" in printed and "'LOC-ECO-0001'" in printed
    excluded_ids = {f["cdr_id"] for f in found}
    for st in part.glob("*/statement.json"):
        assert not excluded_ids & {ln["cdr_id"] for ln in json.loads(st.read_text())["lines"]}


def test_without_a_contracts_file_no_statement_is_unknown(tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = [
        "settle",
        "--cdrs",
        str(SAMPLE / "cdrs"),
        "--tariffs",
        str(SAMPLE / "tariffs"),
        "--month",
        "2026-10",
    ]
    assert main([*argv, "--out", str(out)]) == 0
    assert not [p for p in out.iterdir() if "UNKNOWN" in p.name]
    assert party_findings(out)


def test_columnar_engine_excludes_the_same_cdrs(tmp_path: Path) -> None:
    cdrs, tariffs, contracts = generate(tmp_path, 3)
    doc = json.loads(contracts.read_text())
    prefix = sorted(doc["parties_211"]["emsp_by_contract_prefix"])[0]
    location = sorted(doc["parties_211"]["cpo_by_location"])[0]
    contracts = unmap(contracts, tmp_path / "c.json", [prefix], [location])
    local, columnar = run_both(tmp_path, cdrs, tariffs, contracts, 400)
    assert_same_run(local, columnar)
    assert party_findings(columnar)
    assert not [p for p in columnar.iterdir() if "UNKNOWN" in p.name]


def test_an_empty_cdr_id_is_rejected(tmp_path: Path) -> None:
    src, tariffs, contracts = write_month(tmp_path, [cdr(""), cdr(" ", day=6), cdr("OK", day=7)])
    out = tmp_path / "out"
    assert run_settle(tmp_path, src, tariffs, contracts, out) == 0
    rejects = [json.loads(x) for x in (out / "rejects.ndjson").read_text().splitlines()]
    assert [(r["line"], r["code"], r["path"]) for r in rejects] == [
        (1, "INVALID_VALUE", "$.id"),
        (2, "INVALID_VALUE", "$.id"),
    ]
    assert main(["price", "--tariffs", str(tariffs), "--out", str(tmp_path / "p.ndjson"), str(src)]) == 0
    assert len((tmp_path / "p.ndjson").read_text().splitlines()) == 1


def test_an_empty_cdr_id_is_rejected_in_flat_parquet_too(tmp_path: Path) -> None:
    month = tmp_path / "m.parquet"
    assert main(["generate", "--cdrs", "20", "--seed", "3", "--quiet", "--out", str(month)]) == 0
    table = pq.read_table(month)
    ids = table.column("cdr_id").to_pylist()
    first = ids[0]
    blanked = pa.array(["" if v == first else v for v in ids], table.schema.field("cdr_id").type)
    pq.write_table(table.set_column(table.schema.get_field_index("cdr_id"), "cdr_id", blanked), month)
    out = tmp_path / "p.ndjson"
    assert main(["price", "--tariffs", str(tmp_path / "tariffs"), "--out", str(out), str(month)]) == 0
    rejects = [json.loads(x) for x in (tmp_path / "p.ndjson.rejects.ndjson").read_text().splitlines()]
    assert [(r["code"], r["path"]) for r in rejects] == [("INVALID_VALUE", "$.id")]
    assert "non-empty id" in rejects[0]["message"]
