"""Pushed CDRs by group commit (``settlement.store.pushes``), on SQLite and PostgreSQL: the POSTs
that wait together go in one transaction and each gets its own answer (new, identical re-send,
conflicting re-send, refused, token no longer valid); a batch the database fails stores and
acknowledges nothing; the receiver answers concurrent POSTs each correctly."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager

import httpx
import pytest
import sqlalchemy as sa
from test_price_cli import CDR
from test_store import url  # noqa: F401  (the fixture)

from api.http.app import create_app
from api.http.settings import Settings
from pricing.io import Record
from settlement.store import Store
from settlement.store.pushes import SEQUENCES, NotStored, Outcome, Push, stage
from settlement.store.rows import sha256

TOKEN = "token-pushes"
PARTY = ("NL", "CPO", "CPO")


def cdr(cdr_id: str, **changes: object) -> dict:
    c = copy.deepcopy(CDR)
    c.pop("tariffs")  # priced with the store's tariffs: the CDR keeps its kernel columns and periods
    c["id"] = cdr_id
    c.update(changes)
    return c


def push(obj: dict, token: str = TOKEN, party: tuple[str, str, str] = PARTY) -> Push:
    return stage(obj, party, sha256(token), "POST /ocpi/2.2.1/cdrs")


@pytest.fixture
def store(url: str) -> Iterator[Store]:  # noqa: F811
    s = Store(url)
    s.add_party("NL", "CPO", "CPO", TOKEN)
    s.add_party("DE", "XYZ", "CPO", "token-xyz")
    yield s
    s.close()


def held(store: Store) -> dict[str, int]:
    """cdr_id → number of its charging periods, of the CDRs stored."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT c.cdr_id, (SELECT count(*) FROM cdr_periods p WHERE p.cdr_pk = c.id) FROM cdrs c")
        ).all()
    return {cdr_id: n for cdr_id, n in rows}


def log(store: Store) -> list[tuple[str | None, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT object_id, outcome FROM ingest_log ORDER BY id")).all()
    return [(o, out) for o, out in rows]


@contextmanager
def writes_blocked(store: Store) -> Iterator[None]:
    """Another connection holds what the writer needs first (SQLite: the write lock; PostgreSQL:
    the parties table), so pushes queue until the block ends."""
    with store.writer.connect() as conn:
        tx = conn.begin()  # SQLite: BEGIN IMMEDIATE, the write lock
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE parties IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            tx.rollback()


def test_one_batch_answers_each_push(store: Store) -> None:
    pushes = store.pushes
    first = pushes.submit(push(cdr("A")))
    assert first.result(30) == Outcome("stored", "A")
    batch = [
        push(cdr("B")),  # new
        push(cdr("A")),  # the stored one again: duplicate
        push(cdr("A", currency="GBP")),  # a different CDR under a stored id: conflict
        push(cdr("B")),  # the new one of this very batch again: duplicate
        push(cdr("B", currency="GBP")),  # ... and changed: conflict
        push({k: v for k, v in cdr("D").items() if k != "currency"}),  # refused before the batch
        push(cdr("E", country_code="DE", party_id="XYZ")),  # another party's CDR
        push(cdr("F"), token="token-xyz", party=("NL", "CPO", "CPO")),  # token not of this party
        push(cdr("G")),  # new
    ]
    with writes_blocked(store):
        blocker = pushes.submit(push(cdr("C")))
        deadline = time.monotonic() + 10
        while not pushes._queue.empty() and time.monotonic() < deadline:  # the writer took it
            time.sleep(0.01)
        futures = [pushes.submit(p) for p in batch]
        time.sleep(0.2)
        assert not blocker.done() and not any(f.done() for f in futures), "nothing answered before commit"
    got = [f.result(30) for f in futures]
    assert blocker.result(30) == Outcome("stored", "C")
    assert pushes.batches == 3, "the pushes that waited went in one batch"
    assert [(o.outcome, o.object_id) for o in got] == [
        ("stored", "B"),
        ("duplicate", "A"),
        ("conflict", "A"),
        ("duplicate", "B"),
        ("conflict", "B"),
        ("rejected", None),
        ("rejected", None),
        ("token", None),
        ("stored", "G"),
    ]
    assert "credit CDR" in (got[2].message or "") and "currency" in (got[5].message or "")
    assert "not to the sending party NL*CPO" in (got[6].message or "")
    periods = len(CDR["charging_periods"])
    assert held(store) == {"A": periods, "B": periods, "C": periods, "G": periods}
    assert log(store)[2:] == [  # after A and C: one line per push but the refused token
        ("B", "stored"),
        ("A", "duplicate"),
        ("A", "conflict"),
        ("B", "duplicate"),
        ("B", "conflict"),
        (None, "rejected"),
        (None, "rejected"),
        ("G", "stored"),
    ]
    assert store.counts()["NL*CPO"]["refused"] == 4
    with store.engine.connect() as conn:  # each stored CDR points at its own "stored" log line
        rows = conn.execute(
            sa.text(
                "SELECT c.cdr_id, l.object_id, l.outcome FROM cdrs c JOIN ingest_log l ON l.id = c.ingest_id"
            )
        ).all()
    assert sorted(rows) == [(i, i, "stored") for i in "ABCG"]


def poison(store: Store) -> None:
    """The database refuses the CDR with id POISON (a trigger): a failure no validation sees."""
    with store.writer.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON cdrs WHEN NEW.cdr_id = 'POISON' "
                "BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
                "IF NEW.cdr_id = 'POISON' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON cdrs FOR EACH ROW EXECUTE FUNCTION poison()"
            )


def test_a_failing_batch_stores_and_acknowledges_nothing(store: Store) -> None:
    poison(store)
    pushes = store.pushes
    pushes.split = False
    batch = [push(cdr("OK-1")), push(cdr("POISON")), push(cdr("OK-2"))]
    futures: list[Future[Outcome]] = [Future() for _ in batch]
    pushes.write(batch, futures)
    for f in futures:
        with pytest.raises(NotStored, match="send it again"):
            f.result(0)
    assert held(store) == {} and log(store) == [], "nothing of the batch is stored, nothing logged"


def test_a_failing_batch_is_tried_cdr_by_cdr(store: Store) -> None:
    poison(store)
    pushes = store.pushes
    batch = [push(cdr("OK-1")), push(cdr("POISON")), push(cdr("OK-2"))]
    futures: list[Future[Outcome]] = [Future() for _ in batch]
    pushes.write(batch, futures)
    assert futures[0].result(0) == Outcome("stored", "OK-1")
    assert futures[2].result(0) == Outcome("stored", "OK-2")
    with pytest.raises(NotStored):
        futures[1].result(0)
    assert pushes.splits == 1, "the fallback is counted"
    assert set(held(store)) == {"OK-1", "OK-2"}
    assert log(store) == [("OK-1", "stored"), ("OK-2", "stored")]


def test_concurrent_posts_each_get_their_answer(store: Store, url: str) -> None:  # noqa: F811
    """Through the receiver: new CDRs, identical and conflicting re-sends posted at once."""
    app = create_app(Settings(store_url=url))
    bodies = [cdr(f"C-{i}") for i in range(12)]
    bodies += [cdr("C-0"), cdr("C-1"), cdr("C-2", currency="GBP"), cdr("C-3", currency="GBP")]

    async def post_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            headers = {"Authorization": f"Token {TOKEN}"}
            new = await asyncio.gather(
                *(c.post("/ocpi/2.2.1/cdrs", json=b, headers=headers) for b in bodies[:12])
            )
            again = await asyncio.gather(
                *(c.post("/ocpi/2.2.1/cdrs", json=b, headers=headers) for b in bodies)
            )
            return [*new, *again]

    answers = asyncio.run(post_all())
    codes = [r.status_code for r in answers]
    assert codes == [201] * 12 + [200] * 12 + [200, 200, 409, 409]
    sent = bodies[:12] + bodies
    assert all(
        r.headers["location"].endswith(f"/cdrs/NL/CPO/{b['id']}")
        for r, b in zip(answers, sent, strict=True)
        if r.status_code != 409
    )
    assert [r.json()["status_code"] for r in answers[-2:]] == [2000, 2000]
    assert sorted(held(store)) == sorted(f"C-{i}" for i in range(12))
    app.state.store.close()


def test_a_replaced_token_writes_nothing_whatever_the_cache(store: Store) -> None:
    """The token cache only names the party; the write checks the token in its transaction."""
    pushes = store.pushes
    assert pushes.remember(TOKEN, PARTY, TOKEN) == (PARTY, sha256(TOKEN))
    other = Store(store.url, migrate=False)  # another process's handshake: this cache is not told
    assert other.replace_token(TOKEN, "token-new")
    other.close()
    assert pushes.cached_party(TOKEN) == (PARTY, sha256(TOKEN)), "still cached here"
    assert pushes.submit(push(cdr("X"))).result(30) == Outcome("token", None, "the token is no longer valid")
    assert held(store) == {}
    store.replace_token("token-new", "token-newer")
    assert pushes.cached_party(TOKEN) is None, "a change made in this process clears the cache"


def test_the_writer_thread_stops_with_the_store(store: Store) -> None:
    assert store.pushes.submit(push(cdr("S"))).result(30).outcome == "stored"
    thread = store.pushes._thread
    assert thread is not None and thread.is_alive()
    store.close()
    assert not thread.is_alive()


def test_row_ids_come_from_the_id_columns_sequences(store: Store) -> None:
    """The writer draws row ids before it inserts (PostgreSQL: from the sequences it names, which
    must be the id columns' own, or an import's ids and the writer's would collide)."""
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as conn:
            for table, sequence in SEQUENCES.items():
                named = conn.exec_driver_sql(f"SELECT pg_get_serial_sequence('{table}', 'id')").scalar()
                assert named is not None and named.rpartition(".")[2] == sequence
    store.import_records([Record("f", 1, cdr("I-1"))], "NL", "CPO")  # ids from the import's own way
    assert store.pushes.submit(push(cdr("P-1"))).result(30) == Outcome("stored", "P-1")
    store.import_records([Record("f", 2, cdr("I-2"))], "NL", "CPO")
    assert store.pushes.submit(push(cdr("P-2"))).result(30) == Outcome("stored", "P-2")
    with store.engine.connect() as conn:
        ids = conn.exec_driver_sql("SELECT cdr_id, id FROM cdrs ORDER BY id").all()
    assert [i for i, _ in ids] == ["I-1", "P-1", "I-2", "P-2"], "each new row after the last"
    assert held(store) == {i: len(CDR["charging_periods"]) for i in ("I-1", "P-1", "I-2", "P-2")}


@pytest.mark.parametrize("url", ["postgresql"], indirect=True)  # a PostgreSQL backend is terminated
def test_the_writer_gets_a_new_connection_after_losing_its_own(store: Store) -> None:
    """The writer keeps its connection between batches; when the database drops it, that batch is
    not stored (send it again) and the next batch goes through a new connection."""
    assert store.pushes.submit(push(cdr("K-1"))).result(30) == Outcome("stored", "K-1")
    conn = store.pushes._conn
    assert conn is not None
    pid = conn.connection.driver_connection.info.backend_pid
    with store.engine.begin() as admin:
        admin.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
    with pytest.raises(NotStored, match="send it again"):
        store.pushes.submit(push(cdr("K-2"))).result(30)
    assert store.pushes.submit(push(cdr("K-2"))).result(30) == Outcome("stored", "K-2")
    assert store.pushes._conn is not conn
    assert held(store) == {i: len(CDR["charging_periods"]) for i in ("K-1", "K-2")}


def test_while_others_send_a_batch_waits_for_more(store: Store) -> None:
    """After a batch of more than one push the writer gathers the pushes that come within
    ``gather_s`` into the next batch (here until it is full: a long window, never waited out)."""
    pushes = store.pushes
    pushes.gather_s, pushes.max_batch = 60.0, 4
    for n in range(3):  # full batches: others are sending
        first = pushes.submit_all([push(cdr(f"F-{n}-{i}")) for i in range(4)])
        assert [f.result(30).outcome for f in first] == ["stored"] * 4
    assert pushes.batches == 3
    early = pushes.submit_all([push(cdr("G-3")), push(cdr("G-4"))])
    time.sleep(0.2)
    assert not any(f.done() for f in early), "the writer waits for more while others send"
    late = pushes.submit_all([push(cdr("G-5")), push(cdr("G-6"))])
    assert [f.result(30).outcome for f in early + late] == ["stored"] * 4
    assert pushes.batches == 4, "the two groups went in one batch"


def test_a_lone_sender_never_waits(store: Store) -> None:
    pushes = store.pushes
    pushes.gather_s = 60.0
    for i in range(3):  # batches of one: each is written at once (a wait would time the test out)
        assert pushes.submit(push(cdr(f"L-{i}"))).result(30) == Outcome("stored", f"L-{i}")
    assert pushes.batches == 3


def test_a_batch_stops_waiting_once_as_many_came_as_lately(store: Store) -> None:
    """The wait ends when the batch holds as many pushes as batches held lately (here never the
    60 s window: that would time the test out)."""
    pushes = store.pushes
    pushes.gather_s = 60.0
    for n in range(5):  # batches of three (the first ones before others count as sending)
        group = pushes.submit_all([push(cdr(f"T-{n}-{i}")) for i in range(3)])
        assert [f.result(30).outcome for f in group] == ["stored"] * 3
    assert pushes.batches == 5
