"""Pushed CDRs written by group commit: one transaction for every POST that arrived meanwhile.

A POST is validated where it arrives (:func:`stage`: the wire models, the sending party, the
lengths the schema holds), then queued for the process's one writer thread (:class:`Pushes`).
The writer takes every push waiting (up to ``max_batch``) and writes them in **one** transaction:
the senders' tokens read again (a token replaced meanwhile writes nothing), the ids already held
read in one query and row ids drawn for the new rows, then one multi-row insert each into the
ingest log, ``cdrs`` and ``cdr_periods`` under those ids, and one commit — a handful of
statements and one disk flush for the whole batch instead of per CDR (on PostgreSQL two round
trips: the reads pipelined, then the inserts and the COMMIT pipelined). While it commits, the next
POSTs queue up. When batches lately held more than one push (others are sending: a moving average
over :data:`SENDING`), the writer waits up to :data:`GATHER_S` for more before it writes (no longer
once the batch holds as many as came together lately: the most per batch, slowly forgotten), as
PostgreSQL's ``commit_delay`` does with ``commit_siblings``: each batch costs about the same CPU
on both sides whatever its size, and without the wait the senders split into two alternating
halves (one half's batch commits while the other half's POSTs are read), so batches held half of
what was in flight. A lone sender (batches of one) never waits.

Each push gets its own answer, and only once its batch is committed: new (``stored``), the same CDR
again, in the store or earlier in the batch (``duplicate``, idempotent), a different CDR under a
held id (:class:`~settlement.store.Conflict`, logged as a finding), refused before the batch
(:class:`~settlement.store.StoreError`, logged as rejected) or a token no longer valid
(:class:`TokenRefused`). A batch that fails stores none of its CDRs and acknowledges none: it is
rolled back and tried again — as a whole when a concurrent writer (another server process) stored
one of its ids meanwhile (the next pass reads that id as held), then CDR by CDR, each in its own
transaction, so one CDR the database refuses does not fail the others (counted in ``splits`` and
logged as a warning).

Token → party is cached per process for :data:`TOKEN_TTL_S` (positive answers only): the cache
only saves the lookup of the POST's party; every write checks the token again inside its
transaction, so a replaced token never writes, whatever the cache holds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from queue import Empty, SimpleQueue
from typing import Any

import orjson
import psycopg
from sqlalchemy import Connection, String, Table, and_, func, insert, or_, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from pricing.errors import RoamledgerError
from settlement.store.bulk import RowError, conflict_message, record_rows, same_json
from settlement.store.rows import now_ms, period_row, sha256
from settlement.store.schema import cdr_periods, cdrs, ingest_log, parties

TOKEN_TTL_S = 30.0
MAX_BATCH = 256
# how long a batch waits for more pushes when the last batch held more than one (a lone sender
# never waits): about the time of one commit's disk flush here (~3 ms)
GATHER_S = 0.002
SENDING = 1.5  # the moving average of pushes per batch above which others are sending
LOG = logging.getLogger("roamledger.store.pushes")
# the text columns of a cdrs row with a length limit (PostgreSQL refuses a longer value)
LIMITS = {c.name: c.type.length for c in cdrs.columns if isinstance(c.type, String) and c.type.length}

Party = tuple[str, str, str]  # country_code, party_id, role


class NotStored(Exception):
    """The database failed the push's transaction: nothing of it is stored (send it again)."""


@dataclass(slots=True)
class Push:
    """One pushed CDR on its way: its staged rows, or the refusal met while validating it."""

    country_code: str  # the sending party
    party_id: str
    token_sha256: str  # the token it came with, checked again when written
    source: str  # the route, for the ingest log
    row: dict[str, Any] | None = None
    periods: list[dict[str, Any]] = field(default_factory=list)
    refusal: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        assert self.row is not None
        return self.row["country_code"], self.row["party_id"], self.row["cdr_id"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A push's answer: ``stored`` | ``duplicate`` | ``conflict`` | ``rejected`` | ``token``."""

    outcome: str
    object_id: str | None
    message: str | None = None


# pushes queued together, their futures, what to call once all are answered (Pushes.submit_all)
Group = tuple[list[Push], list[Future[Outcome]], Callable[[list[Future[Outcome]]], None] | None]


def stage(obj: Any, party: Party, token_sha256: str, source: str, raw: str | None = None) -> Push:
    """A pushed CDR validated and made into store rows (no database work)."""
    push = Push(party[0], party[1], token_sha256, source)
    try:
        row, periods = record_rows(obj, party[0], party[1], False, raw)
    except (RowError, RoamledgerError) as exc:
        push.refusal = str(exc)
        return push
    for col, n in LIMITS.items():
        value = row.get(col)
        if isinstance(value, str) and len(value) > n:
            push.refusal = f"CDR {row['cdr_id']!r}: {col} is longer than {n} characters. Hint: OCPI limits it"
            return push
    push.row, push.periods = row, periods
    return push


def write_pushes(conn: Connection, pushes: list[Push], commit: bool = False) -> list[Outcome]:
    """Every push of a batch in the caller's transaction; one outcome per push, in order. Two
    steps, whatever the batch size: what the store holds is read (:func:`_read`: the senders'
    tokens, the batch's keys already held, row ids for the new rows), then the new rows are written
    under those ids (:func:`_append`). ``commit``: PostgreSQL commits the transaction together with
    the inserts, in their round trip (the caller's commit then has nothing left to do)."""
    keys = [p.key for p in pushes if p.row is not None]
    found = _read(conn, sorted({p.token_sha256 for p in pushes}), keys, len(pushes))
    held = found.held
    log_ids, cdr_ids = iter(found.log_ids), iter(found.cdr_ids)
    outcomes: list[Outcome] = []
    logs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    periods: list[dict[str, Any]] = []
    at = now_ms()

    def log(p: Push, object_id: str | None, outcome: str, message: str | None) -> int:
        log_id = next(log_ids)
        logs.append(
            {
                "id": log_id,
                "at_ms": at,
                "country_code": p.country_code,
                "party_id": p.party_id,
                "kind": "cdr",
                "object_id": object_id,
                "outcome": outcome,
                "message": message,
                "source": p.source,
            }
        )
        return log_id

    for p in pushes:
        if found.holders.get(p.token_sha256) != (p.country_code, p.party_id):
            outcomes.append(Outcome("token", None, "the token is no longer valid"))  # not logged
        elif p.row is None:
            log(p, None, "rejected", p.refusal)
            outcomes.append(Outcome("rejected", None, p.refusal))
        else:
            cdr_id = p.row["cdr_id"]
            before = held.get(p.key)
            if before is None:
                held[p.key] = (p.row["raw_sha256"], p.row["raw"])  # a later push of the id meets it
                pk = next(cdr_ids)
                row = {k: v for k, v in p.row.items() if k != "seq"}
                row["id"], row["ingest_id"] = pk, log(p, cdr_id, "stored", None)
                rows.append(row)
                periods += [period_row(s, pk) for s in p.periods]
                outcomes.append(Outcome("stored", cdr_id))
            elif before[0] == p.row["raw_sha256"] or same_json(before[1], p.row["raw"]):
                log(p, cdr_id, "duplicate", None)
                outcomes.append(Outcome("duplicate", cdr_id))
            else:
                message = conflict_message(cdr_id)
                log(p, cdr_id, "conflict", message)
                outcomes.append(Outcome("conflict", cdr_id, message))
    _append(conn, [(ingest_log, logs), (cdrs, rows), (cdr_periods, periods)], commit)
    return outcomes


# ---- statements: the one place where PostgreSQL and SQLite differ --------------------------------
# PostgreSQL: each step is one round trip, its statements pipelined (psycopg pipeline mode); rows
# travel as one JSON text per table (``json_populate_recordset``: one parameter whatever the batch
# size, a few microseconds to make with orjson, where binary arrays cost tens of microseconds of
# Python each); row ids come from the tables' sequences. SQLite, in process, takes the rows as an
# executemany; its row ids follow the highest (the batch holds the write lock: BEGIN IMMEDIATE).


@dataclass(slots=True)
class Found:
    """What :func:`_read` found: the party of each token digest held now, (digest, raw JSON) of the
    batch's keys held, and row ids for the batch's new ingest log lines and CDRs (in order; more
    than are used when pushes are refused or held)."""

    holders: dict[str, tuple[str, str]]
    held: dict[tuple[str, str, str], tuple[str, str]]
    log_ids: list[int]
    cdr_ids: list[int]


_TOKENS_PG = (
    "SELECT token_sha256, country_code, party_id FROM parties "
    "WHERE token_sha256 = ANY(ARRAY(SELECT json_array_elements_text(%s::json)))"
)
# one index probe of the unique key per key (LATERAL … LIMIT 1 is never made a hash join over the
# table, whatever the plan's guess of the batch size)
_HELD_PG = (
    "SELECT c.country_code, c.party_id, c.cdr_id, c.raw_sha256, c.raw "
    "FROM json_to_recordset(%s::json) AS k(cc text, pid text, id text) CROSS JOIN LATERAL ("
    "SELECT * FROM cdrs WHERE country_code = k.cc AND party_id = k.pid AND cdr_id = k.id LIMIT 1) AS c"
)
# n ingest log ids, the first k rows also a CDR id (CASE draws from the cdrs sequence only there);
# the sequences of the SERIAL id columns (named by PostgreSQL: table_column_seq)
SEQUENCES = {"ingest_log": "ingest_log_id_seq", "cdrs": "cdrs_id_seq"}
_IDS_PG = (
    f"SELECT nextval('{SEQUENCES['ingest_log']}'), "
    f"CASE WHEN i <= %(k)s THEN nextval('{SEQUENCES['cdrs']}') END "
    "FROM generate_series(1, %(n)s) AS i"
)
_APPEND_PG: dict[tuple[str, tuple[str, ...]], str] = {}


def _pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


@contextmanager
def _pipeline(conn: Connection) -> Iterator[Any]:
    """The transaction's psycopg connection in pipeline mode (its statements sent together, their
    results read at the end); a database error comes out as SQLAlchemy's (an ``IntegrityError`` is
    one, a lost connection is invalidated), as from ``Connection.execute``."""
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    try:
        with dbapi.pipeline():
            yield dbapi
    except psycopg.Error as exc:
        lost = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            None, None, exc, psycopg.Error, connection_invalidated=lost, dialect=conn.dialect
        ) from exc


def _read(conn: Connection, digests: list[str], keys: list[tuple[str, str, str]], n: int) -> Found:
    """The batch's first step: token holders, held keys, ``n`` log ids and ``len(keys)`` CDR ids."""
    if _pg(conn):
        with _pipeline(conn) as db:
            tokens = db.cursor()
            tokens.execute(_TOKENS_PG, (orjson.dumps(digests).decode(),))
            known = db.cursor()
            if keys:
                wanted = [{"cc": cc, "pid": pid, "id": cdr_id} for cc, pid, cdr_id in keys]
                known.execute(_HELD_PG, (orjson.dumps(wanted).decode(),))
            ids = db.cursor()
            ids.execute(_IDS_PG, {"n": n, "k": len(keys)})
        drawn = ids.fetchall()
        return Found(
            {sha: (cc, pid) for sha, cc, pid in tokens.fetchall()},
            {(cc, pid, i): (sha, raw) for cc, pid, i, sha, raw in known.fetchall()} if keys else {},
            sorted(log_id for log_id, _ in drawn),  # ascending: rows in the order of the batch
            sorted(pk for _, pk in drawn if pk is not None),
        )
    p, c = parties.c, cdrs.c
    holders = conn.execute(
        select(p.token_sha256, p.country_code, p.party_id).where(p.token_sha256.in_(digests))
    )
    found = Found({sha: (cc, pid) for sha, cc, pid in holders}, {}, [], [])
    if keys:
        by_party: dict[tuple[str, str], set[str]] = {}
        for cc, pid, cdr_id in keys:
            by_party.setdefault((cc, pid), set()).add(cdr_id)
        where = or_(
            *(
                and_(c.country_code == cc, c.party_id == pid, c.cdr_id.in_(sorted(ids)))
                for (cc, pid), ids in sorted(by_party.items())
            )
        )
        rows = conn.execute(select(c.country_code, c.party_id, c.cdr_id, c.raw_sha256, c.raw).where(where))
        found.held = {(cc, pid, i): (sha, raw) for cc, pid, i, sha, raw in rows}
    for table, count, into in ((ingest_log, n, found.log_ids), (cdrs, len(keys), found.cdr_ids)):
        top = conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
        into.extend(range(top + 1, top + 1 + count))
    return found


def _append(conn: Connection, tables: list[tuple[Table, list[dict[str, Any]]]], commit: bool) -> None:
    """The batch's second step: each table's rows (all with the same keys) in one statement; on
    PostgreSQL with ``commit``, the COMMIT in the same pipeline (an insert that fails aborts the
    pipeline: the COMMIT is not run, the transaction is rolled back)."""
    tables = [(t, rows) for t, rows in tables if rows]
    if not _pg(conn):
        for table, rows in tables:
            conn.execute(insert(table), rows)
        return
    with _pipeline(conn) as db:
        cur = db.cursor()
        for table, rows in tables:
            key = (table.name, tuple(rows[0]))
            sql = _APPEND_PG.get(key)
            if sql is None:
                cols = ", ".join(key[1])
                sql = _APPEND_PG[key] = (
                    f"INSERT INTO {table.name} ({cols}) "
                    f"SELECT {cols} FROM json_populate_recordset(NULL::{table.name}, %s::json)"
                )
            cur.execute(sql, (orjson.dumps(rows).decode(),))
        if commit:
            cur.execute("COMMIT")


class Pushes:
    """The process's group-commit writer and token cache over one store (``store.writer``: the
    engine of write transactions). Thread-safe; the writer thread starts with the first push."""

    def __init__(
        self, store: Any, max_batch: int = MAX_BATCH, split: bool = True, gather_s: float = GATHER_S
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        self.gather_s = gather_s
        self._sending = 0.0  # pushes per batch lately (moving average)
        self._peak = 0.0  # the most pushes in a batch lately (slowly forgotten)
        self.split = split  # a failed batch tried again CDR by CDR (off only to test the failure)
        self.splits = 0  # batches that failed and went CDR by CDR
        self.batches = 0
        self._queue: SimpleQueue[Group | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[float, Party, str]] = {}
        self._conn: Connection | None = None  # the writer thread's

    # ---- tokens -------------------------------------------------------------------------------

    def cached_party(self, token: str) -> tuple[Party, str] | None:
        """(party, digest of the token that names it) of a request token seen within
        :data:`TOKEN_TTL_S`, else None (look it up, then :meth:`remember`)."""
        hit = self._tokens.get(token)
        if hit is not None and time.monotonic() - hit[0] < TOKEN_TTL_S:
            return hit[1], hit[2]
        return None

    def remember(self, token: str, party: Party, matched: str) -> tuple[Party, str]:
        """Cache a request token's party (``matched``: the token text the store knows, e.g. the
        request token base64-decoded)."""
        found = (party, sha256(matched))
        self._tokens[token] = (time.monotonic(), *found)
        return found

    def forget_tokens(self) -> None:
        """After a token changed in this process (the write-time check covers the others)."""
        self._tokens.clear()

    # ---- writing ------------------------------------------------------------------------------

    def submit(self, push: Push) -> Future[Outcome]:
        """Queue a push; its future completes once its batch is committed (or failed)."""
        (done,) = self.submit_all([push])
        return done

    def submit_all(
        self, pushes: list[Push], answered: Callable[[list[Future[Outcome]]], None] | None = None
    ) -> list[Future[Outcome]]:
        """Queue pushes together (they go in the same batch); each future completes once its batch
        is committed (or failed); then ``answered`` is called once with all of them, in the
        writer's thread (e.g. to wake an event loop once for the whole group)."""
        futures: list[Future[Outcome]] = [Future() for _ in pushes]
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="roamledger-pushes", daemon=True)
                self._thread.start()
        self._queue.put((pushes, futures, answered))
        return futures

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(10)

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            groups = [first]
            size = len(first[0])
            # others are sending (batches lately held more than one push): wait a moment for theirs
            deadline = time.monotonic() + self.gather_s if self._sending > SENDING else 0.0
            enough = max(2, int(self._peak))  # as many as came together lately: no more waiting
            while size < self.max_batch:  # whole groups: a batch may pass max_batch by less than one
                left = deadline - time.monotonic() if size < enough else 0.0
                try:
                    item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                except Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                groups.append(item)
                size += len(item[0])
            self._sending = 0.8 * self._sending + 0.2 * size
            self._peak = max(size, self._peak - 0.5)
            self.write([p for g in groups for p in g[0]], [f for g in groups for f in g[1]])
            for _, futures, answered in groups:
                if answered is not None:
                    try:
                        answered(futures)
                    except Exception:  # the caller's; the outcomes are in the futures anyway
                        LOG.exception("a group of pushed CDRs could not be answered")

    def write(self, pushes: list[Push], futures: list[Future[Outcome]]) -> None:
        """One batch: its futures get their outcomes once committed, or the batch's error."""
        self.batches += 1
        try:
            outcomes = self._commit(pushes)
        except DBAPIError as exc:
            if not self.split or len(pushes) == 1 or exc.connection_invalidated:  # a lost link: no split
                failed = NotStored(
                    f"the CDR was not stored: the database failed ({type(exc.orig).__name__}). "
                    "Hint: send it again"
                )
                for f in futures:
                    f.set_exception(failed)
                return
            self.splits += 1
            LOG.warning("a batch of %d pushed CDRs failed (%s); writing them one by one", len(pushes), exc)
            for p, f in zip(pushes, futures, strict=True):
                self.write([p], [f])
            return
        except Exception as exc:  # answered as a server error, nothing acknowledged
            LOG.exception("a batch of %d pushed CDRs failed", len(pushes))
            for f in futures:
                f.set_exception(exc)
            return
        for f, o in zip(futures, outcomes, strict=True):
            f.set_result(o)

    def _commit(self, pushes: list[Push]) -> list[Outcome]:
        for attempt in range(3):
            conn = self._connection()
            try:
                with conn.begin():
                    return write_pushes(conn, pushes, commit=True)
            except IntegrityError:  # another process stored one of the ids meanwhile: read as held
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _connection(self) -> Connection:
        """The writer thread's own connection, kept between batches (none checked out of the pool
        and returned per batch); a new one after the database invalidated it."""
        conn = self._conn
        if conn is None or conn.invalidated or conn.closed:
            if conn is not None:
                conn.close()
            conn = self._conn = self.store.writer.connect()
        return conn
