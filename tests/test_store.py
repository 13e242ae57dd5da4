"""The store on SQLite and on PostgreSQL (when a server answers at 127.0.0.1:5432): migrations, tariff
versions, append-only CDRs (idempotent re-sends, refused conflicts), bulk import counts, and a
process killed mid-import leaving nothing half-stored."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from test_price_cli import CDR, TARIFF

from api.cli import main
from pricing.io import iter_sources
from settlement.store import Conflict, Store, StoreError
from settlement.store.schema import metadata
from settlement.store.schema import tariffs as tariffs_table

PG = os.environ.get("ROAMLEDGER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "cdrs"


def postgres_reason() -> str | None:
    """Why PostgreSQL cannot be used here (None when it can)."""
    try:
        engine = sa.create_engine(PG, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # any failure to connect means: no server for these tests
        return f"PostgreSQL not reachable at {PG} ({type(exc).__name__}); set ROAMLEDGER_TEST_POSTGRES"
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    reason = postgres_reason()
    if reason:
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    s = Store(url)
    yield s
    s.close()


def tariff(last_updated: str = "2026-10-01T00:00:00Z", price: float = 0.30) -> dict:
    t = copy.deepcopy(TARIFF)
    t["last_updated"] = last_updated
    t["elements"][0]["price_components"][0]["price"] = price
    return t


def test_migrations_create_exactly_the_schema_the_code_uses(store: Store) -> None:
    assert store.migrations_current()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_tariff_versions(store: Store) -> None:
    assert store.put_tariff(tariff(), "NL", "CPO").outcome == "stored"
    assert store.put_tariff(tariff(), "NL", "CPO").outcome == "unchanged"
    with pytest.raises(Conflict, match="same last_updated"):
        store.put_tariff(tariff(price=0.99), "NL", "CPO")
    assert store.put_tariff(tariff("2026-10-15T00:00:00Z", 0.40), "NL", "CPO").outcome == "stored"
    newest = store.tariff("NL", "CPO", TARIFF["id"])
    assert str(newest["elements"][0]["price_components"][0]["price"]) == "0.4"
    assert len(list(store.tariff_versions())) == 2
    assert store.delete_tariff("NL", "CPO", TARIFF["id"])
    assert store.tariff("NL", "CPO", TARIFF["id"]) is None
    assert len(list(store.tariff_versions())) == 2, "deleted versions still price earlier sessions"
    assert store.counts()["NL*CPO"]["refused"] == 1


def test_a_tariff_stored_with_numbers_as_text_is_unchanged_when_sent_again(store: Store) -> None:
    """Stores written before tariffs kept JSON numbers held prices as text ("0.3"): the same tariff
    sent again is the same version, not a conflict; what is stored now keeps numbers."""
    assert store.put_tariff(tariff(), "NL", "CPO").outcome == "stored"
    assert '"price":0.3' in store.tariff_json("NL", "CPO", TARIFF["id"])
    with store.engine.begin() as conn:
        raw = conn.execute(sa.select(tariffs_table.c.raw)).scalar()
        conn.execute(sa.update(tariffs_table).values(raw=raw.replace('"price":0.3', '"price":"0.3"')))
    assert '"price":"0.3"' in store.tariff_json("NL", "CPO", TARIFF["id"])
    assert store.put_tariff(tariff(), "NL", "CPO").outcome == "unchanged"


def test_cdrs_are_append_only_and_idempotent(store: Store) -> None:
    assert store.add_cdr(CDR, "NL", "CPO").outcome == "stored"
    assert store.add_cdr(copy.deepcopy(CDR), "NL", "CPO").outcome == "duplicate"
    changed = copy.deepcopy(CDR)
    changed["total_cost"] = {"excl_vat": 99, "incl_vat": 119.79}
    with pytest.raises(Conflict, match="a different CDR with this id is stored"):
        store.add_cdr(changed, "NL", "CPO")
    held = store.cdr("NL", "CPO", CDR["id"])
    assert str(held["total_cost"]["excl_vat"]) == str(CDR["total_cost"]["excl_vat"])
    with pytest.raises(StoreError, match="belongs to NL\\*CPO, not to the sending party DE\\*XYZ"):
        store.add_cdr(copy.deepcopy(CDR), "DE", "XYZ")
    counts = store.counts()["NL*CPO"]
    assert counts["cdrs"] == 1 and counts["refused"] == 1 and counts["last_ingest_ms"] > 0


def test_import_counts_every_record(store: Store) -> None:
    records = list(iter_sources([SAMPLE]))
    first = store.import_records(records, "NL", "ECO")
    assert first["read"] == len(records)
    assert first["read"] == first["stored"] + first["duplicate"] + first["conflict"] + first["rejected"]
    assert first["stored"] > 4000 and first["rejected"] > 0
    again = store.import_records(records, "NL", "ECO")
    assert again["stored"] == 0 and again["duplicate"] == first["stored"] + first["duplicate"]
    assert len(list(store.cdr_records())) == first["stored"]


def test_a_killed_import_leaves_nothing_half_stored_and_resumes(url: str, tmp_path: Path) -> None:
    Store(url).close()  # migrated before the race
    code = (
        "import sys; from pricing.io import iter_sources; from settlement.store import Store\n"
        "s = Store(sys.argv[1]); print('go', flush=True)\n"
        "s.import_records(iter_sources([sys.argv[2]]), 'NL', 'ECO', batch=500)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, url, str(SAMPLE)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "go"
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = Store(url)
    with store.engine.connect() as conn:
        orphans = conn.exec_driver_sql(
            "SELECT count(*) FROM cdrs c LEFT JOIN ingest_log l ON l.id = c.ingest_id WHERE l.id IS NULL"
        ).scalar()
    assert orphans == 0
    partial = len(list(store.cdr_records()))
    records = list(iter_sources([SAMPLE]))
    resumed = store.import_records(records, "NL", "ECO")
    assert resumed["duplicate"] >= partial
    full = len(list(store.cdr_records()))
    assert full == partial + resumed["stored"] and full > 4000
    store.close()


def test_import_command(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert main(["import", "--store", url, "--party", "nl*eco", str(SAMPLE)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("read 4845, stored 4828, duplicate 6, conflict 5, rejected 6")
    said = [x for x in err.splitlines() if x.startswith("roamledger: CDR ")]  # why, with file and line
    assert len(said) == 10 and all(".ndjson:" in x for x in said) and "… and 1 more" in err
    assert sum(" conflict (" in x and "send corrections as a credit CDR" in x for x in said) >= 4
    assert main(["import", "--store", url, "--fail-on", "rejects", str(SAMPLE)]) == 1
    out, err = capsys.readouterr()
    assert "rejected 530" in out, "2.1.1 CDRs name no CPO without --party"
    assert err.count("roamledger: CDR ") == 10 and "names no CPO" in err
    assert "… and 525 more in the store's ingest log" in err
    assert main(["import", "--store", url, "--party", "NLECO", str(SAMPLE)]) == 2
    assert "expected COUNTRY*PARTY" in capsys.readouterr().err


def test_settling_from_the_store_equals_settling_the_files(url: str, tmp_path: Path) -> None:
    """A month imported into the store settles to the same statements as the files it came from."""
    month = tmp_path / "m"
    assert main(
        [
            "generate", "--cdrs", "300", "--seed", "5", "--versions", "2.2.1:50,2.3.0:50",
            "--duplicate-rate", "0", "--out-of-month-rate", "0", "--credit-rate", "0.02", "--quiet",
            "--out", str(month / "m.ndjson"), "--contracts-out", str(month / "contracts.json"),
        ]
    ) == 0  # fmt: skip
    cdrs = [str(p) for p in sorted(month.glob("*.ndjson"))]
    common = ["--month", "2026-10", "--contracts", str(month / "contracts.json")]
    assert (
        main(
            [
                "settle",
                "--cdrs",
                *cdrs,
                "--tariffs",
                str(month / "tariffs"),
                *common,
                "--out",
                str(tmp_path / "files"),
            ]
        )
        == 0
    )
    assert main(["import", "--store", url, "--tariffs", str(month / "tariffs"), *cdrs]) == 0
    assert main(["settle", "--store", url, *common, "--out", str(tmp_path / "store")]) == 0
    folders = sorted(p.name for p in (tmp_path / "files").iterdir() if p.is_dir())
    assert folders == sorted(p.name for p in (tmp_path / "store").iterdir() if p.is_dir()) and folders
    for folder in folders:
        for name in ("lines.csv", "statement.json", "statement.html"):
            a = (tmp_path / "files" / folder / name).read_bytes()
            assert a == (tmp_path / "store" / folder / name).read_bytes(), f"{folder}/{name}"


def test_a_token_a_registers_once_and_a_token_c_is_replaced_or_unregistered(store: Store) -> None:
    """The credentials module's states (migration 0004, parties.registered_ms): token A → register
    once (a second, concurrent POST with it finds nothing to register); token C → replaced or
    unregistered; a new token A registers the party again."""
    store.add_party("NL", "CPO", "CPO", "token-a")
    assert not store.registered("token-a")
    assert store.register("token-a", "token-c") and not store.register("token-a", "token-x")
    assert store.registered("token-c") and store.party_of_token("token-a") is None
    assert not store.register("token-c", "token-y"), "a registered party does not register again"
    assert store.replace_token("token-c", "token-c2") and store.party_of_token("token-c") is None
    assert store.unregister("token-c2") and store.party_of_token("token-c2") is None
    assert not store.unregister("token-c2")
    assert store.new_token_a("NL", "CPO", "CPO", "token-a2") and not store.registered("token-a2")
    assert store.party_of_token("token-a2") == ("NL", "CPO", "CPO")
    assert not store.new_token_a("NL", "NOP", "CPO", "token-z")
