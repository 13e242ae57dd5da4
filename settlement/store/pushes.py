"""Pushed CDRs written by group commit: one transaction for every POST that arrived meanwhile.

A POST is validated where it arrives (:func:`stage`: the wire models, the sending party, the
lengths the schema holds), then queued for the process's one writer thread (:class:`Pushes`).
The writer takes every push waiting (up to ``max_batch``) and writes them in **one** transaction:
the senders' tokens read again (a token replaced meanwhile writes nothing), the ids already held
read in one query, then one multi-row insert each into the ingest log, ``cdrs`` and
``cdr_periods``, and one commit — a handful of statements and one disk flush for the whole batch
instead of per CDR. While it commits, the next POSTs queue up: no push waits for a timer.

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
from concurrent.futures import Future
from dataclasses import dataclass, field
from queue import Empty, SimpleQueue
from typing import Any

from sqlalchemy import Connection, String, Table, and_, insert, or_, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from pricing.errors import RoamledgerError
from settlement.store.bulk import RowError, conflict_message, record_rows, same_json
from settlement.store.rows import now_ms, period_row, sha256
from settlement.store.schema import cdr_periods, cdrs, ingest_log, parties

TOKEN_TTL_S = 30.0
MAX_BATCH = 256
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


def write_pushes(conn: Connection, pushes: list[Push]) -> list[Outcome]:
    """Every push of a batch in the caller's transaction; one outcome per push, in order."""
    holder = _token_holders(conn, sorted({p.token_sha256 for p in pushes}))
    held = _held(conn, [p.key for p in pushes if p.row is not None])
    outcomes: list[Outcome] = []
    logs: list[dict[str, Any]] = []
    new: list[Push] = []
    at = now_ms()

    def log(p: Push, object_id: str | None, outcome: str, message: str | None) -> None:
        logs.append(
            {
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

    for p in pushes:
        if holder.get(p.token_sha256) != (p.country_code, p.party_id):
            outcomes.append(Outcome("token", None, "the token is no longer valid"))  # not logged
        elif p.row is None:
            log(p, None, "rejected", p.refusal)
            outcomes.append(Outcome("rejected", None, p.refusal))
        else:
            cdr_id = p.row["cdr_id"]
            before = held.get(p.key)
            if before is None:
                held[p.key] = (p.row["raw_sha256"], p.row["raw"])  # a later push of the id meets it
                log(p, cdr_id, "stored", None)
                new.append(p)
                outcomes.append(Outcome("stored", cdr_id))
            elif before[0] == p.row["raw_sha256"] or same_json(before[1], p.row["raw"]):
                log(p, cdr_id, "duplicate", None)
                outcomes.append(Outcome("duplicate", cdr_id))
            else:
                message = conflict_message(cdr_id)
                log(p, cdr_id, "conflict", message)
                outcomes.append(Outcome("conflict", cdr_id, message))
    if not logs:
        return outcomes
    # the ids the inserts gave, found by key (a new CDR's key is unique in the batch)
    out = ("id", "country_code", "party_id", "object_id", "outcome")
    log_ids = {
        (cc, pid, i): pk for pk, cc, pid, i, o in _insert(conn, ingest_log, logs, out) if o == "stored"
    }
    if not new:
        return outcomes
    rows = [{**p.row, "ingest_id": log_ids[p.key]} for p in new]  # type: ignore[dict-item]
    for r in rows:
        r.pop("seq", None)
    out = ("id", "country_code", "party_id", "cdr_id")
    pks = {(cc, pid, i): pk for pk, cc, pid, i in _insert(conn, cdrs, rows, out)}
    periods = [period_row(s, pks[p.key]) for p in new for s in p.periods]
    _insert(conn, cdr_periods, periods, ())
    return outcomes


# ---- statements: PostgreSQL takes columns as arrays (one SQL text, prepared once, whatever the
# batch size); SQLite, in process, takes the rows as an executemany ------------------------------


def _pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _array_type(conn: Connection, table: Table, column: str) -> str:
    return f"{table.c[column].type.compile(dialect=conn.dialect)}[]"


def _insert(
    conn: Connection, table: Table, rows: list[dict[str, Any]], returning: tuple[str, ...]
) -> list[Any]:
    """Insert ``rows`` (all with the same keys) in one statement; the ``returning`` columns of
    the inserted rows, in no particular order."""
    if not rows:
        return []
    if not _pg(conn):
        stmt = insert(table)
        if returning:
            return list(conn.execute(stmt.returning(*(table.c[c] for c in returning)), rows).all())
        conn.execute(stmt, rows)
        return []
    cols = list(rows[0])
    arrays = ", ".join(f"%({c})b::{_array_type(conn, table, c)}" for c in cols)
    sql = f"INSERT INTO {table.name} ({', '.join(cols)}) SELECT * FROM unnest({arrays})"
    if returning:
        sql += f" RETURNING {', '.join(returning)}"
    result = conn.exec_driver_sql(sql, {c: [r[c] for r in rows] for c in cols})
    return list(result.all()) if returning else []


def _token_holders(conn: Connection, digests: list[str]) -> dict[str, tuple[str, str]]:
    """Party (country code, party id) of each token digest the store holds now."""
    p = parties.c
    if _pg(conn):
        found = conn.exec_driver_sql(
            "SELECT token_sha256, country_code, party_id FROM parties "
            "WHERE token_sha256 = ANY(%(t)b::text[])",
            {"t": digests},
        )
    else:
        found = conn.execute(
            select(p.token_sha256, p.country_code, p.party_id).where(p.token_sha256.in_(digests))
        )
    return {sha: (cc, pid) for sha, cc, pid in found}


def _held(conn: Connection, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(digest, raw JSON) of the CDR keys the store holds, in one query on the unique index."""
    if not keys:
        return {}
    c = cdrs.c
    if _pg(conn):
        found = conn.exec_driver_sql(
            "SELECT c.country_code, c.party_id, c.cdr_id, c.raw_sha256, c.raw FROM cdrs c "
            "JOIN unnest(%(cc)b::text[], %(pid)b::text[], %(id)b::text[]) AS k(cc, pid, id) "
            "ON c.country_code = k.cc AND c.party_id = k.pid AND c.cdr_id = k.id",
            {"cc": [k[0] for k in keys], "pid": [k[1] for k in keys], "id": [k[2] for k in keys]},
        )
    else:
        by_party: dict[tuple[str, str], set[str]] = {}
        for cc, pid, cdr_id in keys:
            by_party.setdefault((cc, pid), set()).add(cdr_id)
        where = or_(
            *(
                and_(c.country_code == cc, c.party_id == pid, c.cdr_id.in_(sorted(ids)))
                for (cc, pid), ids in sorted(by_party.items())
            )
        )
        found = conn.execute(select(c.country_code, c.party_id, c.cdr_id, c.raw_sha256, c.raw).where(where))
    return {(cc, pid, i): (sha, raw) for cc, pid, i, sha, raw in found}


class Pushes:
    """The process's group-commit writer and token cache over one store (``store.writer``: the
    engine of write transactions). Thread-safe; the writer thread starts with the first push."""

    def __init__(self, store: Any, max_batch: int = MAX_BATCH, split: bool = True) -> None:
        self.store = store
        self.max_batch = max_batch
        self.split = split  # a failed batch tried again CDR by CDR (off only to test the failure)
        self.splits = 0  # batches that failed and went CDR by CDR
        self.batches = 0
        self._queue: SimpleQueue[tuple[Push, Future[Outcome]] | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[float, Party, str]] = {}

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
        done: Future[Outcome] = Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="roamledger-pushes", daemon=True)
                self._thread.start()
        self._queue.put((push, done))
        return done

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            self.write([p for p, _ in batch], [f for _, f in batch])

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
            try:
                with self.store.writer.begin() as conn:
                    return write_pushes(conn, pushes)
            except IntegrityError:  # another process stored one of the ids meanwhile: read as held
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")
