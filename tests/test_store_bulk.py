"""Bulk import through the columnar reader and settlement of the store in flat pieces, on SQLite and
PostgreSQL (the per-test-schema fixture of test_store): the columnar import stores exactly the rows
the per-record path stores, and the columnar engine settles the store's month to the statements
the record engine makes of it."""

from __future__ import annotations

import argparse
import copy
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from test_price_cli import CDR
from test_store import SAMPLE, url  # noqa: F401  (the fixture)

from api.cli import main
from benchmarks.workload import cli as gen
from pricing.io import dumps, iter_sources, loads
from settlement.columnar.stored import store_pieces
from settlement.store import Store, alembic_config
from settlement.store.pushes import stage, write_pushes
from settlement.store.read import last_row, month_pieces, raw_records
from settlement.store.rows import sha256

CDR_COLS = (
    "country_code, party_id, cdr_id, ocpi_version, start_ms, end_ms, currency, credit, kernel, "
    "emsp_country_code, emsp_party_id, time_zone, location_country, location_id, contract_id, "
    "credit_reference_id, reported_total_excl_e6, reported_total_incl_e6, reported_fixed_cost_excl_e6, "
    "reported_energy_cost_excl_e6, reported_time_cost_excl_e6, reported_parking_cost_excl_e6, "
    "reported_reservation_cost_excl_e6, reported_total_energy_e6, reported_total_time_e6, reported_taxes"
)
PERIOD_COLS = (
    "c.country_code, c.party_id, c.cdr_id, p.period_idx, p.period_start_ms, p.tariff_id, p.energy_mwh, "
    "p.time_ms, p.parking_ms, p.reservation_ms, p.min_power_w, p.max_power_w, p.min_current_ma, "
    "p.max_current_ma"
)


def held(store: Store) -> tuple[list, list, list]:
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT {CDR_COLS} FROM cdrs ORDER BY 1, 2, 3").all()
        periods = conn.exec_driver_sql(
            f"SELECT {PERIOD_COLS} FROM cdrs c JOIN cdr_periods p ON p.cdr_pk = c.id ORDER BY 1, 2, 3, 4"
        ).all()
        raws = conn.exec_driver_sql("SELECT raw FROM cdrs ORDER BY country_code, party_id, cdr_id").all()
    return [tuple(r) for r in rows], [tuple(r) for r in periods], [r[0] for r in raws]


def test_columnar_import_stores_what_the_record_path_stores(url: str, tmp_path: Path) -> None:  # noqa: F811
    bulk = Store(url)
    counts, reasons = bulk.import_files([SAMPLE], "NL", "ECO", batch=700)
    one = Store(f"sqlite:///{tmp_path / 'records.db'}")
    assert one.import_records(iter_sources([SAMPLE]), "NL", "ECO") == counts
    assert counts["read"] == 4845 and sum(reasons.values()) < counts["read"] // 5, reasons
    a, b = held(bulk), held(one)
    assert a[0] == b[0] and a[1] == b[1]
    assert sum(r[8] for r in a[0]) > 2800, "2.2.1 CDRs hold their kernel columns"
    assert sum(r[-1] is not None for r in a[0]) > 100, "2.3.0 tax lines held (pushes and imports alike)"
    assert sum(r[19] is not None for r in a[0]) > 1000, "reported energy costs held"
    assert len(a[1]) > len(a[0]) // 2
    lines = {ln.strip().decode() for f in sorted(SAMPLE.iterdir()) for ln in f.read_bytes().splitlines()}
    assert sum(raw in lines for raw in a[2]) > 4000, "raw JSON kept byte for byte as received"
    again, _ = bulk.import_files([SAMPLE], "NL", "ECO")
    assert again["stored"] == 0 and again["duplicate"] == counts["stored"] + counts["duplicate"]
    assert held(bulk)[:2] == a[:2]
    bulk.close()
    one.close()


def test_the_columnar_engine_settles_the_store_as_the_record_engine(url: str, tmp_path: Path) -> None:  # noqa: F811
    month = tmp_path / "m"
    assert main(
        [
            "generate", "--cdrs", "300", "--seed", "11", "--versions", "2.1.1:20,2.2.1:50,2.3.0:30",
            "--credit-rate", "0.02", "--out-of-month-rate", "0", "--quiet",
            "--out", str(month / "m.ndjson"), "--contracts-out", str(month / "contracts.json"),
        ]
    ) == 0  # fmt: skip
    cdrs = [str(p) for p in sorted(month.glob("*.ndjson"))]
    assert (
        main(["import", "--store", url, "--party", "NL*ECO", "--tariffs", str(month / "tariffs"), *cdrs]) == 0
    )
    common = ["--store", url, "--month", "2026-10", "--contracts", str(month / "contracts.json")]
    assert main(["settle", *common, "--piece-rows", "97", "--out", str(tmp_path / "columnar")]) == 0
    assert main(["settle", *common, "--engine", "local", "--out", str(tmp_path / "local")]) == 0
    col, loc = tmp_path / "columnar", tmp_path / "local"
    names = sorted(str(p.relative_to(loc)) for p in loc.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(col)) for p in col.rglob("*") if p.is_file())
    same = [n for n in names if n != "manifest.json"]
    assert len(same) > 10 and "findings.ndjson" in same
    for name in same:
        assert (col / name).read_bytes() == (loc / name).read_bytes(), name
    # the manifests differ in the engine named and the columnar engine's record_path counts only
    manifests = [json.loads((d / "manifest.json").read_text()) for d in (col, loc)]
    assert manifests[0].pop("settings")["engine"] == "columnar"
    assert manifests[1].pop("settings")["engine"] == "local"
    assert "held without kernel columns" not in manifests[0].pop("record_path", {})
    assert manifests[0] == manifests[1]
    with Store(url).engine.connect() as conn:
        held = conn.execute(sa.text("SELECT ocpi_version, kernel, count(*) FROM cdrs GROUP BY 1, 2")).all()
    assert {(v, k) for v, k, _ in held} == {("2.1.1", True), ("2.2.1", True), ("2.3.0", True)}, (
        "every CDR, 2.3.0 tax lines included, is settled from columns"
    )


def test_cdrs_stored_before_the_kernel_columns_settle_from_their_raw_json(url: str) -> None:  # noqa: F811
    """A store at migration 0001 upgrades in place: its CDRs are held without kernel columns and
    read record by record (their raw JSON) by both engines."""
    old = Store(url, migrate=False)
    with old.engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
    with old.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO cdrs (country_code, party_id, cdr_id, ocpi_version, start_ms, end_ms, currency, "
                "credit, raw, raw_sha256, received_ms) VALUES ('NL', 'CPO', 'CDR-1', '2.2.1', 1, 2, 'EUR', "
                ":f, :raw, 'x', 3)"
            ),
            {"f": False, "raw": dumps(CDR)},
        )
    old.close()
    store = Store(url)
    assert store.migrations_current()
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT kernel FROM cdrs")).scalar() in (False, 0)
    assert [r.obj["id"] for r in raw_records(store.engine, 0, 10)] == ["CDR-1"]
    assert list(month_pieces(store.engine, 0, 10, 100)) == []
    assert store.add_cdr(copy.deepcopy(CDR), "NL", "CPO").outcome == "duplicate", "same JSON, other digest"
    store.close()


def test_ocpi_211_cdrs_settle_from_columns_with_their_connector_tariffs(url: str, tmp_path: Path) -> None:  # noqa: F811
    """2.1.1 CDRs name their tariff by their connectors: the store keeps those ids and the reader
    takes the first one held, so the month goes through the columns (nothing record by record) and
    gives the record engine's statements and reconciliation."""
    month = tmp_path / "m"
    assert main(
        [
            "generate", "--cdrs", "200", "--seed", "3", "--versions", "2.1.1:100", "--quiet",
            "--out", str(month / "m.ndjson"), "--contracts-out", str(month / "contracts.json"),
        ]
    ) == 0  # fmt: skip
    cdrs = [str(p) for p in sorted(month.glob("*.ndjson"))]
    assert (
        main(["import", "--store", url, "--party", "NL*ECO", "--tariffs", str(month / "tariffs"), *cdrs]) == 0
    )
    common = ["--store", url, "--month", "2026-10", "--contracts", str(month / "contracts.json")]
    assert main(["settle", *common, "--out", str(tmp_path / "columnar")]) == 0
    assert main(["settle", *common, "--engine", "local", "--out", str(tmp_path / "local")]) == 0
    col, loc = tmp_path / "columnar", tmp_path / "local"
    manifest = json.loads((col / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["settings"]["engine"] == "columnar" and manifest["record_path"] == {}
    names = sorted(str(p.relative_to(loc)) for p in loc.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(col)) for p in col.rglob("*") if p.is_file())
    for name in names:
        if name not in ("findings.ndjson", "manifest.json"):
            assert (col / name).read_bytes() == (loc / name).read_bytes(), name

    def codes(folder: Path) -> list[tuple[str, str]]:
        """Findings by CDR and code (the record engine spells a reported amount as received, the
        flat layout with 4 decimals)."""
        rows = (folder / "findings.ndjson").read_text(encoding="utf-8").splitlines()
        return [(f["cdr_id"], f["code"]) for f in map(json.loads, rows)]

    assert codes(col) == codes(loc) and len(codes(col)) > 10


def test_a_killed_bulk_import_leaves_nothing_half_stored_and_resumes(url: str) -> None:  # noqa: F811
    Store(url).close()  # migrated before the race
    code = (
        "import sys; from settlement.store import Store\n"
        "Store(sys.argv[1]).import_files([sys.argv[2]], 'NL', 'ECO', batch=200)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, url, str(SAMPLE)])
    store = Store(url)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        with store.engine.connect() as conn:
            if conn.execute(sa.text("SELECT count(*) FROM cdrs")).scalar():
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # the import we started, by its process id
    proc.wait()
    with store.engine.connect() as conn:
        partial = conn.execute(sa.text("SELECT count(*) FROM cdrs")).scalar()
        bare = conn.execute(
            sa.text(
                "SELECT count(*) FROM cdrs c WHERE c.kernel AND NOT EXISTS "
                "(SELECT 1 FROM cdr_periods p WHERE p.cdr_pk = c.id)"
            )
        ).scalar()
        orphans = conn.execute(
            sa.text(
                "SELECT count(*) FROM cdrs c LEFT JOIN ingest_log l ON l.id = c.ingest_id WHERE l.id IS NULL"
            )
        ).scalar()
    assert bare == 0 and orphans == 0
    assert partial < 4828, "killed before the end"
    resumed, _ = store.import_files([SAMPLE], "NL", "ECO")
    assert resumed["duplicate"] >= partial
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM cdrs")).scalar() == 4828
    store.close()


def test_a_run_reads_the_store_under_its_snapshot_bound(url: str) -> None:  # noqa: F811
    """Every piece of a store's month reads the rows up to the bound taken when the run began (a CDR
    stored meanwhile is left whole for the next run), and each of those rows once."""
    store = Store(url)
    store.import_files([SAMPLE], "NL", "ECO")
    everything = (-(1 << 62), 1 << 62)
    with store.engine.connect() as conn:
        ids = sorted(conn.execute(sa.text("SELECT id FROM cdrs")).scalars())
    assert len(ids) > 10

    def lines(bound: int) -> list[int]:
        out: list[int] = []
        for piece in store_pieces(store, everything, 50, frozenset(), bound):
            out += [rec.line or 0 for rec in piece.fallback]
            if piece.table is not None:
                out += sorted(set(piece.table.column("line").to_pylist()))
        return sorted(out)

    assert lines(last_row(store.engine)) == ids
    half = ids[len(ids) // 2]
    assert lines(half) == [i for i in ids if i <= half]
    store.close()


def test_pushed_cdrs_hold_what_imported_ones_hold(url: str, tmp_path: Path) -> None:  # noqa: F811
    """A CDR pushed to the receiver (group commit, ``settlement.store.pushes``) is stored with the
    same kernel and reported_* columns (2.3.0 tax lines included) and the same raw JSON as the
    same CDR bulk-imported, so a month settles the same whichever way its CDRs arrived."""
    month = tmp_path / "m"
    assert main(
        [
            "generate", "--cdrs", "120", "--seed", "12", "--versions", "2.2.1:50,2.3.0:50",
            "--credit-rate", "0.03", "--quiet", "--out", str(month / "m.ndjson"),
        ]
    ) == 0  # fmt: skip
    files = sorted(month.glob("*.ndjson"))
    lines = [ln for f in files for ln in f.read_bytes().decode("utf-8").splitlines() if ln.strip()]
    objs = [(ln, loads(ln)) for ln in lines]
    pushed = Store(url)
    parties = sorted({(o["country_code"], o["party_id"]) for _, o in objs if isinstance(o, dict)})
    for cc, pid in parties:
        pushed.add_party(cc, pid, "CPO", f"token-{cc}-{pid}")
    batch = []
    for ln, o in objs:
        cc, pid = o["country_code"], o["party_id"]
        batch.append(stage(o, (cc, pid, "CPO"), sha256(f"token-{cc}-{pid}"), "POST /ocpi/2.2.1/cdrs", raw=ln))
    with pushed.writer.begin() as conn:
        outcomes = write_pushes(conn, batch)
    assert sum(o.outcome == "stored" for o in outcomes) > 100
    imported = Store(f"sqlite:///{tmp_path / 'imported.db'}")
    for cc, pid in parties:
        imported.add_party(cc, pid, "CPO", f"token-{cc}-{pid}")
    imported.import_files(files)
    a, b = held(pushed), held(imported)
    assert a == b
    assert sum(r[-1] is not None for r in a[0]) > 10, "2.3.0 tax lines held"
    pushed.close()
    imported.close()


def test_imported_text_is_held_exactly_whatever_its_characters(url: str, tmp_path: Path) -> None:  # noqa: F811
    """Values with the characters COPY reads specially (backslash, tab, newline, carriage return,
    ``\\N``) and JSON escapes in the raw line are held exactly: the raw JSON byte for byte, the
    columns as the CDR's decoded values, an empty text as empty (not null)."""
    line = next(ln for ln in (SAMPLE / "cdrs.ndjson").read_text(encoding="utf-8").splitlines() if ln.strip())
    odd = ["a\tb", "x\\Ny", "new\nline", "cr\r", "\\", "é\u0001", "\\t"]
    lines = []
    for i, value in enumerate(odd):
        obj = json.loads(line)
        obj["id"] = f"ODD-{i}"
        obj["cdr_location"]["id"] = value
        obj["cdr_token"]["contract_id"] = value if i % 2 else ""
        lines.append(json.dumps(obj, ensure_ascii=i % 2 == 0))
    (tmp_path / "odd.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = Store(url)
    counts, _ = store.import_files([tmp_path / "odd.ndjson"], "NL", "ECO")
    assert counts["stored"] == len(odd)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT cdr_id, raw, location_id, contract_id FROM cdrs ORDER BY cdr_id")
        ).all()
    assert [r[1] for r in rows] == lines
    assert [(r[2], r[3]) for r in rows] == [(v, v if i % 2 else "") for i, v in enumerate(odd)]
    again, _ = store.import_files([tmp_path / "odd.ndjson"], "NL", "ECO")
    assert again["duplicate"] == len(odd)
    store.close()


def test_a_lone_carriage_return_is_a_byte_of_its_line(url: str, tmp_path: Path) -> None:  # noqa: F811
    """Lines end at \\n: a file holding a lone \\r (JSON whitespace inside one CDR, a broken line
    with one) is imported by the columnar importer, with the counts and rejects' lines of the
    record path."""
    good = [ln for ln in (SAMPLE / "cdrs.ndjson").read_text(encoding="utf-8").splitlines() if ln.strip()][:4]
    lines = [good[0], good[1].replace('",', '",\r', 1), good[2][:40] + "\r" + good[3][40:], good[3]]
    path = tmp_path / "cr.ndjson"
    path.write_bytes("\n".join(lines).encode() + b"\n")
    store = Store(url)
    counts, reasons = store.import_files([path], "NL", "ECO")
    one = Store(f"sqlite:///{tmp_path / 'records.db'}")
    assert one.import_records(iter_sources([path]), "NL", "ECO") == counts
    assert counts["read"] == 4 and counts["rejected"] == 1
    assert "not NDJSON" not in reasons
    assert held(store)[:2] == held(one)[:2]
    store.close()
    one.close()


def test_cdrs_that_all_embed_their_tariffs_are_imported(url: str, tmp_path: Path) -> None:  # noqa: F811
    """A batch whose CDRs all go without period rows (embedded tariffs: held as raw JSON) stores
    them; an empty table was once written as one row of defaults (exit 70)."""
    parser = argparse.ArgumentParser(prog="roamledger")
    gen.add_parser(parser.add_subparsers(dest="command", required=True))
    argv = ["--cdrs", "30", "--seed", "3", "--embed-tariffs", "--quiet", "--out", str(tmp_path / "m.ndjson")]
    args = parser.parse_args(["generate", *argv])
    assert args.func(args) == 0
    store = Store(url)
    counts, _ = store.import_files([tmp_path / "m.ndjson"], None, None)
    one = Store(f"sqlite:///{tmp_path / 'records.db'}")
    assert one.import_records(iter_sources([tmp_path / "m.ndjson"]), None, None) == counts
    assert counts["stored"] == counts["read"] > 0
    assert held(store)[:2] == held(one)[:2]
    store.close()
    one.close()
