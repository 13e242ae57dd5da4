"""The columnar settlement engine on OCPI NDJSON / JSON months against the record engine.

The record engine (``--engine local``) is the oracle: every file of the run byte-identical, the
manifest too except the engine's name and the ``record_path`` counts the columnar engine adds.
Spans are made small so that pieces cut the files at many line ends."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from api.cli import main
from pricing.batch import parse_record
from pricing.flat import FlatPiece, piece_cdrs, split_flat
from pricing.io import iter_sources
from pricing.ndjson_parallel import first_version
from pricing.ocpi.columnar import read_ndjson_flat
from settlement.columnar.settle import settle_columnar
from settlement.contracts import Terms
from settlement.jobs import settle, write_run
from settlement.statement import Statement

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample"
MONTH = "2026-10"


def generate(tmp: Path, seed: int, extra: tuple[str, ...] = ()) -> tuple[list[Path], Path, Path]:
    out = tmp / "cdrs" / "month.ndjson"
    args = ["generate", "--cdrs", "1200", "--seed", str(seed), "--out", str(out), "--quiet"]
    args += ["--versions", "2.2.1:50,2.1.1:20,2.3.0:30", "--malformed", "6", "--credit-rate", "0.03"]
    args += ["--duplicate-rate", "0.02", "--overcharge-rate", "0.05", "--out-of-month-rate", "0.02"]
    args += ["--tariffs-out", str(tmp / "tariffs"), "--contracts-out", str(tmp / "contracts.json"), *extra]
    assert main(args) == 0
    return sorted((tmp / "cdrs").glob("*.ndjson")), tmp / "tariffs", tmp / "contracts.json"


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_same_run(local: Path, columnar: Path) -> dict[str, int]:
    """The two runs' files are the same bytes; returns the columnar run's ``record_path``."""
    fa, fb = files_of(local), files_of(columnar)
    assert sorted(fa) == sorted(fb)
    path: dict[str, int] = {}
    for name in fa:
        if name == "manifest.json":
            ma, mb = json.loads(fa[name]), json.loads(fb[name])
            ma["settings"].pop("engine", None)
            mb["settings"].pop("engine", None)
            assert "record_path" not in ma
            path = mb.pop("record_path", {})
            assert all(n > 0 for n in path.values())
            assert sum(path.values()) <= mb["counts"]["read"]
            assert ma == mb
        else:
            assert fa[name] == fb[name], name
    return path


def run_both(
    tmp: Path, cdrs: list[Path], tariffs: Path | None, contracts: Path, span_bytes: int, **kw
) -> tuple[Path, Path, dict[str, int]]:
    given = [tariffs] if tariffs else None
    result, c = settle(cdrs, given, MONTH, contracts_path=contracts, **kw)
    local = write_run(result, c, tmp / "local", MONTH, cdrs, {})
    out, counts, _ = settle_columnar(
        cdrs, given, MONTH, tmp / "columnar", contracts_path=contracts, span_bytes=span_bytes, **kw
    )
    assert counts == result.counts
    assert sum(counts[k] for k in ("settled", "excluded", "rejected", "out_of_month")) == counts["read"]
    return local, out, counts


def findings(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "findings.ndjson").read_text().splitlines()]


@pytest.mark.parametrize(
    ("seed", "span_bytes", "basis"), [(5, 40_000, "reported"), (6, 1 << 20, "recomputed")]
)
def test_three_versions_byte_identical(tmp_path: Path, seed: int, span_bytes: int, basis: str) -> None:
    """Credits, duplicates (identical and conflicting), malformed lines, out-of-month sessions,
    over-charges explained per dimension, 2.3.0 tax lines on either basis."""
    cdrs, tariffs, contracts = generate(tmp_path, seed)
    assert len(cdrs) == 3
    local, columnar, counts = run_both(tmp_path, cdrs, tariffs, contracts, span_bytes, basis=basis)
    path = assert_same_run(local, columnar)
    assert counts["rejected"] > 0 and counts["out_of_month"] > 0
    found = findings(columnar)
    dims = {f["dimension"] for f in found if f["code"] in ("OVERCHARGED", "UNDERCHARGED")}
    assert dims & {"energy", "time", "parking", "fixed"}, dims
    assert {"DUPLICATE_CDR", "CREDIT_WITHOUT_ORIGINAL"} & {f["code"] for f in found}
    # most CDRs stay on columns: the record path takes credits, duplicates, broken lines, and the
    # CDRs whose findings quote their own decimals
    assert path["credit"] > 0 and path["duplicate id"] > 0
    assert sum(path.values()) < 0.25 * counts["read"], path
    if basis == "reported":
        docs = [json.loads(p.read_text()) for p in columnar.rglob("statement.json")]
        assert any(d["totals"]["tax_lines"] for d in docs)


def reshape(path: Path, every: int) -> None:
    """Every ``every``-th CDR of the file: explicit nulls, an empty tariffs list, unknown fields; a
    QUANTITY_MISMATCH (total_energy off by 1 kWh); then CRLF line ends and a UTF-8 BOM."""
    out = []
    for i, text in enumerate(path.read_bytes().splitlines()):
        try:
            obj = json.loads(text)
        except ValueError:
            out.append(text)
            continue
        if isinstance(obj, dict) and i % every == 1:
            obj.update(
                {"remark": None, "tariffs": [], "x_vendor": {"a": [1, None]}, "invoice_reference_id": None}
            )
        if isinstance(obj, dict) and i % every == 2 and "total_energy" in obj:
            obj["total_energy"] = float(obj["total_energy"]) + 1.0
        if isinstance(obj, dict) and obj.get("credit") and i % 2 and isinstance(obj.get("total_cost"), dict):
            price = obj["total_cost"]
            key = "excl_vat" if "excl_vat" in price else "before_taxes"
            price[key] = float(price[key]) - 1.0  # does not net its original: CREDIT_AMOUNT_MISMATCH
        elif isinstance(obj, dict) and i % every == 3 and isinstance(obj.get("total_cost"), dict):
            price = obj["total_cost"]
            key = "excl_vat" if "excl_vat" in price else "before_taxes"
            price[key] = float(price[key]) + 0.00001  # 5 decimals: the parser keeps it exact
        out.append(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(out) + b"\r\n")


def test_nulls_empty_tariffs_crlf_bom_json_and_flat_inputs(tmp_path: Path) -> None:
    """Explicit nulls, ``"tariffs": []``, unknown fields, CRLF, a BOM; a JSON array document and a
    flat Parquet month in the same run (read in the record engine's order)."""
    cdrs, tariffs, contracts = generate(tmp_path, 7)
    for f in cdrs:
        reshape(f, 5)
    doc = tmp_path / "cdrs" / "extra.json"
    lines = [json.loads(x) for x in cdrs[0].read_text(encoding="utf-8-sig").splitlines()[:40] if x.strip()]
    doc.write_text(
        json.dumps([{**o, "id": f"DOC-{i}"} if isinstance(o, dict) else o for i, o in enumerate(lines)])
    )
    flat = tmp_path / "flat.parquet"
    args = ["generate", "--cdrs", "300", "--seed", "8", "--out", str(flat), "--quiet"]
    args += ["--tariffs-out", str(tmp_path / "flat_tariffs")]
    assert main(args) == 0
    inputs = [flat, *cdrs, doc]
    local, columnar, _ = run_both(tmp_path, inputs, tariffs, contracts, 30_000)
    path = assert_same_run(local, columnar)
    assert path["not NDJSON (read record by record)"] == len(lines)
    assert path["reported quantities inconsistent"] > 0
    assert path["more than 4 decimals"] > 0
    codes = {f["code"] for f in findings(columnar)}
    assert {"QUANTITY_MISMATCH", "CREDIT_AMOUNT_MISMATCH"} <= codes


def test_embedded_tariffs_without_given_tariffs(tmp_path: Path) -> None:
    """CDRs that carry their tariffs, none given: priced with their own, the same files."""
    cdrs, _, contracts = generate(tmp_path, 9, ("--embed-tariffs",))
    local, columnar, _ = run_both(tmp_path, cdrs, None, contracts, 50_000)
    assert_same_run(local, columnar)


def test_embedded_tariffs_with_given_tariffs_stay_columnar(tmp_path: Path) -> None:
    cdrs, tariffs, contracts = generate(tmp_path, 10, ("--embed-tariffs",))
    local, columnar, counts = run_both(tmp_path, cdrs, tariffs, contracts, 50_000)
    path = assert_same_run(local, columnar)
    assert sum(path.values()) < 0.25 * counts["read"], path


def test_sample_month_cli_both_engines(tmp_path: Path) -> None:
    """README command 1 (the shipped sample month) through both engines: the same files."""
    base = ["settle", "--cdrs", str(SAMPLE / "cdrs"), "--tariffs", str(SAMPLE / "tariffs")]
    base += ["--month", MONTH, "--contracts", str(SAMPLE / "contracts.json")]
    assert main([*base, "--out", str(tmp_path / "auto")]) == 0
    assert main([*base, "--engine", "local", "--out", str(tmp_path / "local")]) == 0
    manifest = json.loads((tmp_path / "auto" / "manifest.json").read_text())
    assert manifest["settings"]["engine"] == "columnar"
    assert_same_run(tmp_path / "local", tmp_path / "auto")


def test_history_credits_and_tiny_spans(tmp_path: Path) -> None:
    """Pieces of a few lines each (many boundaries), and credits netting originals of an earlier
    run (the history) in both engines."""
    cdrs, tariffs, contracts = generate(tmp_path, 12)
    first = tmp_path / "first"
    assert (
        main(
            [
                "settle",
                "--cdrs",
                *map(str, cdrs),
                "--tariffs",
                str(tariffs),
                "--month",
                MONTH,
                "--contracts",
                str(contracts),
                "--out",
                str(first),
            ]
        )
        == 0
    )
    local, columnar, _ = run_both(tmp_path, cdrs, tariffs, contracts, 3_000, history=[first])
    assert_same_run(local, columnar)


@pytest.mark.parametrize("suffix", ["ndjson", "csv", "parquet"])
def test_reconcile_columnar_equals_local(tmp_path: Path, suffix: str) -> None:
    """``roamledger reconcile`` (auto: columnar) on NDJSON of three versions and a flat month gives
    the local engine's four files, byte for byte."""
    cdrs, tariffs, _ = generate(tmp_path, 13)
    flat = tmp_path / "flat.parquet"
    args = ["generate", "--cdrs", "300", "--seed", "14", "--out", str(flat), "--quiet"]
    assert main([*args, "--tariffs-out", str(tmp_path / "flat_tariffs")]) == 0
    base = ["reconcile", "--tariffs", str(tariffs), *map(str, cdrs), str(flat)]
    outs = {}
    for engine in ("auto", "local"):
        out = tmp_path / engine / f"recon.{suffix}"
        assert main([*base[:3], "--engine", engine, "--out", str(out), *base[3:]]) in (0, 1)
        outs[engine] = {p.name: p.read_bytes() for p in sorted(out.parent.iterdir())}
    assert sorted(outs["auto"]) == sorted(outs["local"]) and len(outs["auto"]) == 4
    for name, data in outs["local"].items():
        if name.endswith(".summary.json"):  # the columnar engine counts what went record by record
            auto, local = json.loads(outs["auto"][name]), json.loads(data)
            path = auto.pop("record_path")
            assert path["credit"] > 0 and "party unknown" not in path
            assert auto == local
            continue
        assert outs["auto"][name] == data, name
    found = outs["auto"][f"recon.{suffix}.findings.ndjson"].decode().splitlines()
    assert any('"dimension":"energy"' in f or '"dimension":"time"' in f for f in found)


def test_reader_reported_columns_are_the_parsers_values(tmp_path: Path) -> None:
    """The NDJSON reader's ``reported_*`` columns, read back as CDRs, hold what the per-record parser
    gives (dimension costs, total energy and time, 2.3.0 tax lines); a value with more than 6
    decimals leaves the columnar path, counted."""

    cdrs, _, _ = generate(tmp_path, 15)
    odd = cdrs[0].read_text().splitlines()
    at = next(i for i, t in enumerate(odd) if '"total_energy":' in t and t.startswith("{"))
    obj = json.loads(odd[at])
    obj["total_energy"] = 12.1234567
    odd[at] = json.dumps(obj)
    cdrs[0].write_text("\n".join(odd) + "\n")
    fields = (
        "total_energy",
        "total_time",
        *(f"total_{d}_cost" for d in ("fixed", "energy", "time", "parking")),
    )
    compared = 0
    for f in cdrs:
        reasons: Counter[str] = Counter()
        table, _ = read_ndjson_flat(f, reasons=reasons, known_tariffs=frozenset({"any"}))
        fr = split_flat(table)
        built = piece_cdrs(FlatPiece(str(f), 0, table), fr, list(range(fr.n_records)))
        lines = table.column("line").to_numpy()[fr.first_row]
        recs = {r.line: r for r in iter_sources([f])}
        for cdr, line in zip(built, lines.tolist(), strict=True):
            exact, _ = parse_record(recs[line], None, {str(f): first_version(str(f))})
            for name in fields:
                a, b = getattr(cdr, name), getattr(exact, name)
                assert (a.excl if name.endswith("cost") and a else a) == (
                    b.excl if name.endswith("cost") and b else b
                ), name
            assert cdr.total_cost.taxes == tuple(
                (n, p if p is None else p.normalize(), a) for n, p, a in exact.total_cost.taxes
            )
            compared += 1
        if f == cdrs[0]:
            assert reasons["reported value with more than 6 decimals"] == 1
    assert compared > 1000


def test_ids_beyond_ascii_and_json_escapes(tmp_path: Path) -> None:
    """CDR ids with letters beyond ASCII and characters JSON escapes (a quote, a backslash): every
    file the same bytes in both engines, the ``InvoiceReconciliationRecord`` included (it was
    written ASCII-escaped by one engine and as UTF-8 by the other)."""
    cdrs, tariffs, contracts = generate(tmp_path, 11)
    marks = ["Ü", "é東", '"q"', "b\\s"]
    for f in cdrs:
        out = []
        for i, text in enumerate(f.read_text(encoding="utf-8").splitlines()):
            try:
                obj = json.loads(text)
            except ValueError:
                out.append(text)
                continue
            if isinstance(obj, dict) and isinstance(obj.get("id"), str) and i % 7 == 0:
                obj["id"] += marks[i % len(marks)]
                text = json.dumps(obj, ensure_ascii=i % 2 == 0)
            out.append(text)
        f.write_text("\n".join(out) + "\n", encoding="utf-8")
    local, columnar, _ = run_both(tmp_path, cdrs, tariffs, contracts, 40_000)
    assert_same_run(local, columnar)
    irr = [p.read_text(encoding="utf-8") for p in columnar.rglob("invoice_reconciliation_record.json")]
    assert any("Ü" in t for t in irr) and not any("\\u00dc" in t for t in irr)


def test_party_codes_of_another_form_are_rejected_and_name_no_path(tmp_path: Path) -> None:
    """A CDR's party codes name its statement and folder: a country code that is not 2 letters or
    a party id that is not 3 letters or digits (a path, a slash) is rejected with the field's path,
    in both engines; lower case is taken (OCPI's CiString). Nothing is written outside the run."""
    cdrs, tariffs, contracts = generate(tmp_path, 12)
    bad = [("cdr_token", "party_id", "../../../../../PWN"), (None, "party_id", "AB/")]
    bad.append((None, "country_code", "N1"))
    wanted: dict[str, str] = {}
    out, k = [], 0
    for text in cdrs[0].read_text(encoding="utf-8").splitlines():
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and "cdr_token" in obj and obj.get("id") not in wanted and k < 60:
            holder, key, value = bad[k % 3] if k < 30 else (None, "party_id", obj["party_id"].lower())
            (obj[holder] if holder else obj)[key] = value
            if k < 30:
                wanted[obj["id"]] = f"$.{holder}.{key}" if holder else f"$.{key}"
            k += 1
            text = json.dumps(obj)
        out.append(text)
    cdrs[0].write_text("\n".join(out) + "\n", encoding="utf-8")
    local, columnar, _ = run_both(tmp_path, cdrs, tariffs, contracts, 40_000)
    assert_same_run(local, columnar)
    rejects = [json.loads(x) for x in (columnar / "rejects.ndjson").read_text().splitlines()]
    got = {r["record_id"]: (r["code"], r["path"]) for r in rejects if r.get("record_id") in wanted}
    assert got == {i: ("INVALID_VALUE", path) for i, path in wanted.items()}
    assert not list(tmp_path.parent.rglob("*PWN*"))
    folders = [p.name for p in columnar.iterdir() if p.is_dir()]
    assert folders and all(set(name) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") for name in folders)


def test_statement_folder_names_no_path() -> None:
    """Whatever a party code holds (contracts map 2.1.1 parties), the folder is one plain name."""
    st = Statement("NL*A/.", "../x*Ü", "EUR", "2026-10", Terms())
    assert st.folder == "NL-A%2F%2E__%2E%2E%2Fx-%C3%9C__EUR"
    assert Statement("NL*ABC", "DE*MSP", "EUR", "2026-10", Terms()).folder == "NL-ABC__DE-MSP__EUR"
