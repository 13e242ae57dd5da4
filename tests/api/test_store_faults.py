"""Faults: a real ``roamledger serve`` (uvicorn) killed with SIGKILL in the middle of CDR POSTs
leaves no half-stored CDR, and once restarted accepts every re-post (idempotent), on SQLite and
PostgreSQL (the per-test-schema fixture of test_store)."""

from __future__ import annotations

import copy
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from test_price_cli import CDR
from test_store import url  # noqa: F401  (the fixture)

from settlement.store import Store
from tests.api.servers import start_server

N = 400
TOKEN = "token-cpo-faults"


def cdr(i: int) -> dict:
    c = copy.deepcopy(CDR)
    c["id"] = f"FAULT-{i:05d}"
    c.pop("tariffs")  # priced with the store's tariffs: the CDR holds its kernel columns
    return c


def start(store_url: str) -> tuple[subprocess.Popen, str]:
    return start_server({"ROAMLEDGER_STORE_URL": store_url})


def post_all(base: str, answers: list[int], stop: threading.Event | None = None) -> None:
    headers = {"Authorization": f"Token {TOKEN}"}
    with httpx.Client(base_url=base, timeout=10, headers=headers) as c:
        for i in range(N):
            if stop is not None and stop.is_set():
                return
            try:
                answers.append(c.post("/ocpi/2.2.1/cdrs", json=cdr(i)).status_code)
            except httpx.TransportError:
                return


def half_stored(store: Store) -> int:
    """CDRs without their ingest log line, kernel CDRs without their periods, periods without a CDR."""
    with store.engine.connect() as conn:
        return sum(
            conn.execute(sa.text(q)).scalar() or 0
            for q in (
                "SELECT count(*) FROM cdrs c LEFT JOIN ingest_log l ON l.id = c.ingest_id WHERE l.id IS NULL",
                "SELECT count(*) FROM cdrs c WHERE c.kernel AND NOT EXISTS "
                "(SELECT 1 FROM cdr_periods p WHERE p.cdr_pk = c.id)",
                "SELECT count(*) FROM cdr_periods p LEFT JOIN cdrs c ON c.id = p.cdr_pk WHERE c.id IS NULL",
            )
        )


def test_a_server_killed_mid_posts_leaves_nothing_half_stored(url: str, tmp_path: Path) -> None:  # noqa: F811
    store = Store(url)
    store.add_party("NL", "CPO", "CPO", TOKEN)
    proc, base = start(url)
    answers: list[int] = []
    stop = threading.Event()
    poster = threading.Thread(target=post_all, args=(base, answers, stop))
    poster.start()
    deadline = time.monotonic() + 60
    while len(answers) < 50 and poster.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # the server we started, by its process id
    proc.wait()
    stop.set()
    poster.join()
    assert 50 <= len(answers) < N, "killed mid-stream"
    assert set(answers) == {201}
    assert half_stored(store) == 0
    with store.engine.connect() as conn:
        held = conn.execute(sa.text("SELECT count(*) FROM cdrs")).scalar()
    assert len(answers) <= held <= len(answers) + 1  # the request in flight: whole or not at all

    proc, base = start(url)
    try:
        again: list[int] = []
        post_all(base, again)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert len(again) == N and set(again) <= {200, 201}
    assert again.count(200) == held, "what was stored before the kill is a duplicate now"
    assert half_stored(store) == 0
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM cdrs WHERE kernel")).scalar() == N
    store.close()
