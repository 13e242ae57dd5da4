"""End to end: ``roamledger serve`` (uvicorn, uvloop, httptools) on 127.0.0.1 at a free port, driven
with httpx; the server is stopped by its process id at the end."""

from __future__ import annotations

import sqlite3
import subprocess

import httpx
import pytest

from tests.api.client import EXAMPLE_TARIFF
from tests.api.servers import start_server


@pytest.fixture
def server():
    proc, base = start_server({"ROAMLEDGER_MAX_BODY_BYTES": "65536"})
    try:
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_answers_quotes_sheets_and_lint(server):
    with httpx.Client(base_url=server, timeout=10) as c:
        planned = {"tariff": EXAMPLE_TARIFF, "start": "2025-03-04T10:00:00Z", "power_kw": 50}
        q = c.post("/v1/quotes", json={**planned, "energy_kwh": 20, "parking_minutes": 30, "locale": "fr_FR"})
        assert q.status_code == 200
        assert q.json()["total"] == {"excl_vat": "9.0000", "incl_vat": "10.8900"}
        assert q.json()["display"]["total_incl_vat"] == "10,89\u00a0€"
        batch = c.post("/v1/quotes", json={"quotes": [{**planned, "energy_kwh": k} for k in (10, 20, 30)]})
        assert [i["quote"]["total"]["excl_vat"] for i in batch.json()["quotes"]] == [
            "4.0000",
            "7.5000",
            "11.0000",
        ]
        sheet = c.post("/v1/price-sheet", json={"tariff": EXAMPLE_TARIFF, "locale": "nl_NL"})
        assert sheet.status_code == 200 and sheet.json()["summary"][1] == "altijd: €\u00a00,4235 per kWh"
        lint = c.post("/v1/tariffs/lint", json={"tariff": EXAMPLE_TARIFF})
        assert [f["code"] for f in lint.json()["findings"]] == ["NO_FALLBACK"]
        big = c.post("/v1/quotes", content=b" " * 70_000, headers={"content-type": "application/json"})
        assert big.status_code == 413 and big.headers["content-type"] == "application/problem+json"
        bad = c.post("/v1/quotes", json={"tariff": EXAMPLE_TARIFF, "start": "2025-03-04T10:00:00Z"})
        assert bad.status_code == 422 and "Hint:" in bad.json()["detail"]


def test_a_stopped_server_leaves_its_sqlite_store_whole_in_one_file(tmp_path) -> None:
    """SIGTERM: the store's connections close, so SQLite folds its write-ahead log into the .db
    file (a run written just before the stop lived only in ``-wal``; copying the .db lost it)."""
    db = tmp_path / "r.db"
    proc, base = start_server({"ROAMLEDGER_STORE_URL": f"sqlite:///{db}"})
    try:
        r = httpx.post(f"{base}/v1/settlements", json={"month": "2026-11"}, timeout=30)
        assert r.status_code == 202
        assert (tmp_path / "r.db-wal").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert not (tmp_path / "r.db-wal").exists()
    copy = tmp_path / "copy.db"
    copy.write_bytes(db.read_bytes())
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT month FROM settlement_runs").fetchall() == [("2026-11",)]
