"""The store: what parties actually sent, kept between runs (SQLAlchemy 2 Core, Alembic migrations).

An SQLite file by default (``sqlite:///roamledger.db``: nothing to start), PostgreSQL from a URL
(``postgresql+psycopg://…``) through the same code. Tariffs are kept per version (a new
``last_updated`` is a new row; a CDR is priced with the version valid at its session start); CDRs
are append-only: re-sending the same CDR is idempotent, a different CDR under the same id is a
conflict that is refused and logged. Every write is one transaction together with its line in the
ingest log, so a process killed mid-write leaves nothing half-stored.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, and_, case, create_engine, event, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError, NoSuchModuleError, OperationalError

from pricing.errors import InputError, RoamledgerError
from pricing.io import Record, loads
from pricing.ocpi import parse_tariff
from settlement.store.bulk import (
    RowError,
    conflict_message,
    import_paths,
    record_batches,
    record_rows,
    run_batches,
    same_json,
)
from settlement.store.pushes import Pushes
from settlement.store.rows import now_ms, period_row, sha256
from settlement.store.schema import cdr_periods, cdrs, ingest_log, parties, tariffs

WRITE = "roamledger_write"  # execution option of write transactions
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEFAULT_URL = "sqlite:///roamledger.db"
URL_FORMS = "sqlite:///PATH (an SQLite file) or postgresql+psycopg://USER@HOST/DATABASE"


class StoreError(InputError):
    """The store refuses a write (the message says why and how to fix it)."""


class StoredMeanwhile(Exception):
    """A concurrent writer stored the same id between our check and our insert."""


def dialect_insert(conn: Connection, table: Any) -> Any:
    """``INSERT`` with ``ON CONFLICT`` (PostgreSQL and SQLite have the same clause)."""
    return pg_insert(table) if conn.dialect.name == "postgresql" else sqlite_insert(table)


class Conflict(StoreError):
    """A different object under an id the store already holds."""

    def __init__(self, message: str, object_id: str) -> None:
        super().__init__(message)
        self.object_id = object_id


@dataclass(frozen=True, slots=True)
class Stored:
    outcome: str  # stored | unchanged | duplicate
    object_id: str


def batched(items: Iterable[Any], n: int) -> Iterator[tuple[Any, ...]]:
    """``itertools.batched`` of Python 3.12."""
    it = iter(items)
    while chunk := tuple(itertools.islice(it, n)):
        yield chunk


def raw_text(obj: Any) -> str:
    """The JSON text kept for an object: compact, keys in the order received, exact numbers written
    as JSON numbers (a decoded Decimal as its digits, not as text: GET gives OCPI numbers back)."""
    return orjson.dumps(obj, default=_json_number).decode()


def _json_number(value: Any) -> Any:
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot store {type(value).__name__} {value!r} in JSON")


def sqlite_transactions(engine: Engine) -> None:
    """Let SQLAlchemy, not the sqlite3 module, open transactions (SAVEPOINTs work, and every write
    is one transaction); foreign keys enforced. Write transactions (``Store.writer``) take the write
    lock when they begin (``BEGIN IMMEDIATE``): several server processes then queue for it (busy
    timeout) instead of failing with "database is locked" when a transaction that has read would
    upgrade to a write; the write-ahead log lets readers go on while one writes."""

    @event.listens_for(engine, "connect")
    def connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys = ON")
        dbapi_connection.execute("PRAGMA busy_timeout = 30000")
        # readers never block a writer (a settlement reading a month, heartbeats of runs, pushes)
        dbapi_connection.execute("PRAGMA journal_mode = WAL")

    @event.listens_for(engine, "begin")
    def begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")


def cdr_conflict(cdr_id: str) -> Conflict:
    return Conflict(conflict_message(cdr_id), cdr_id)


def alembic_config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def store_engine(url: str) -> Engine:
    """The engine of a store URL; a text that is not a supported URL is the user's input error
    (one sentence naming the supported forms), not a SQLAlchemy traceback."""
    example = f"sqlite:///{url}" if "://" not in url else "sqlite:///roamledger.db"
    hint = f"Hint: a store URL is {URL_FORMS}, e.g. {example}"
    try:
        parsed: URL = make_url(url)
    except ArgumentError:
        raise InputError(f"the store {url!r} is not a URL. {hint}") from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InputError(f"the store {shown} is not supported. {hint}")
    try:
        return create_engine(parsed)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:  # e.g. sqlite://x.db, an absent driver
        reason = str(exc).strip().splitlines()[0]
        raise InputError(f"the store {shown} cannot be used ({reason}). {hint}") from None


def check_exists(engine: Engine) -> None:
    """An SQLite store must be there already (``Store(url, create=False)``): a misspelled path would
    otherwise be a new, empty store, read and settled as if it were the user's."""
    path = engine.url.database
    if engine.dialect.name == "sqlite" and path and path != ":memory:" and not Path(path).is_file():
        raise InputError(
            f"the store {engine.url.render_as_string(hide_password=True)} does not exist (no file {path}). "
            "Hint: check the path; roamledger import, party add or serve create a new store"
        )


class Store:
    """One store, one URL. ``Store(url)`` brings its schema to the newest migration; with
    ``create=False`` an SQLite file that is not there is refused instead of created."""

    def __init__(self, url: str = DEFAULT_URL, *, migrate: bool = True, create: bool = True) -> None:
        self.url = url
        self._head: str | None = None
        self.engine: Engine = store_engine(url)
        if not create:
            check_exists(self.engine)
        self.writer: Engine = self.engine.execution_options(**{WRITE: True})  # write transactions
        if self.engine.dialect.name == "sqlite":
            sqlite_transactions(self.engine)
        self._pushes: Pushes | None = None
        if migrate:
            self.upgrade()

    @property
    def pushes(self) -> Pushes:
        """The process's group-commit writer of pushed CDRs (:mod:`settlement.store.pushes`)."""
        if self._pushes is None:
            self._pushes = Pushes(self)
        return self._pushes

    def close(self) -> None:
        if self._pushes is not None:
            self._pushes.close()
        self.engine.dispose()

    # ---- schema -------------------------------------------------------------------------------

    def upgrade(self) -> None:
        try:
            with self.writer.begin() as conn:
                command.upgrade(alembic_config(conn), "head")
        except (OperationalError, DatabaseError) as exc:  # a path, server or database not there: input
            url = self.engine.url.render_as_string(hide_password=True)
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
            raise InputError(f"the store {url} cannot be opened: {reason}. Hint: {self.open_hint()}") from exc

    def open_hint(self) -> str:
        """What to check when the store cannot be opened, for the case at hand."""
        path = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not path:
            return "check the URL (the PostgreSQL server must answer and the database exist)"
        p = Path(path)
        if p.is_dir():
            return f"{p} is a folder; give a file in it, e.g. sqlite:///{p / 'roamledger.db'}"
        if not p.parent.is_dir():
            return f"the folder {p.parent} does not exist; create it or give another path"
        if p.exists():
            return f"{p} must be an SQLite database roamledger may write (or a new path)"
        return f"roamledger must be allowed to create files in {p.parent}"

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head(self) -> str | None:
        """The newest migration this code knows (read from the migration scripts once per store)."""
        if self._head is None:
            with self.engine.connect() as conn:
                self._head = ScriptDirectory.from_config(alembic_config(conn)).get_current_head()
        return self._head

    def migrations_current(self) -> bool:
        return self.revision() == self.head()

    # ---- parties ------------------------------------------------------------------------------

    def add_party(
        self, country_code: str, party_id: str, role: str, token: str, name: str | None = None
    ) -> None:
        try:
            with self.writer.begin() as conn:
                conn.execute(
                    insert(parties).values(
                        country_code=country_code,
                        party_id=party_id,
                        role=role,
                        name=name,
                        token_sha256=sha256(token),
                        created_ms=now_ms(),
                    )
                )
        except IntegrityError as exc:
            raise StoreError(f"{country_code}*{party_id} ({role}) is already registered") from exc

    def register(self, token_a: str, token_c: str) -> bool:
        """The credentials POST: the party of registration token ``token_a`` registers with token
        ``token_c`` (``token_a`` stops working). False: no unregistered party holds ``token_a``."""
        held = and_(parties.c.token_sha256 == sha256(token_a), parties.c.registered_ms.is_(None))
        return self._set_token(held, token_sha256=sha256(token_c), registered_ms=now_ms())

    def replace_token(self, old: str, new: str) -> bool:
        """The party of token ``old`` gets token ``new`` (``old`` stops working; the credentials PUT
        of a registered party). False: no party holds ``old`` (any more)."""
        return self._set_token(parties.c.token_sha256 == sha256(old), token_sha256=sha256(new))

    def unregister(self, token: str) -> bool:
        """The credentials DELETE: a registered party's token stops working and the party is no
        longer registered (what it sent stays; a new token A lets it register again)."""
        held = and_(parties.c.token_sha256 == sha256(token), parties.c.registered_ms.is_not(None))
        return self._set_token(held, token_sha256=None, registered_ms=None)

    def new_token_a(self, country_code: str, party_id: str, role: str, token: str) -> bool:
        """A new registration token A for a stored party (after it unregistered, or lost its token
        A): its current token stops working and it registers again with ``token``. False: no such
        party."""
        held = and_(
            parties.c.country_code == country_code, parties.c.party_id == party_id, parties.c.role == role
        )
        return self._set_token(held, token_sha256=sha256(token), registered_ms=None)

    def _set_token(self, held: Any, **values: Any) -> bool:
        with self.writer.begin() as conn:
            n = conn.execute(update(parties).where(held).values(**values)).rowcount
        if self._pushes is not None:
            self._pushes.forget_tokens()  # a cached token of this process must not outlive it
        return bool(n)

    def registered(self, token: str) -> bool:
        """Whether the party of ``token`` registered (its token is a token C, not a token A)."""
        with self.engine.connect() as conn:
            ms = conn.execute(
                select(parties.c.registered_ms).where(parties.c.token_sha256 == sha256(token))
            ).scalar()
        return ms is not None

    def party_of_token(self, token: str) -> tuple[str, str, str] | None:
        """(country_code, party_id, role) of the party this token belongs to (tokens are stored hashed)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(parties.c.country_code, parties.c.party_id, parties.c.role).where(
                    parties.c.token_sha256 == sha256(token)
                )
            ).first()
        return tuple(row) if row else None  # type: ignore[return-value]

    # ---- tariffs ------------------------------------------------------------------------------

    def put_tariff(
        self,
        obj: Any,
        country_code: str | None = None,
        party_id: str | None = None,
        source: str = "",
        stand_in: bool = False,
    ) -> Stored:
        """Store a tariff version. The same ``last_updated`` with the same content is ``unchanged``;
        with other content it is a :class:`Conflict` (OCPI changes ``last_updated`` on every change).
        The given party is the sender (``stand_in``: only the CPO of tariffs that name none, 2.1.1)."""
        tariff, _ = parse_tariff(obj)  # RecordRejected: the caller answers with its message
        if tariff.last_updated_ms is None:
            raise StoreError(f"tariff {tariff.id}: no last_updated. Hint: OCPI requires it on every tariff")
        cc, pid = tariff.country_code or country_code, tariff.party_id or party_id
        if not stand_in and country_code is not None and (cc, pid) != (country_code, party_id):
            raise StoreError(
                f"tariff {tariff.id} belongs to {cc}*{pid}, "
                f"not to the sending party {country_code}*{party_id}"
            )
        country_code, party_id = cc, pid
        if country_code is None or party_id is None:
            raise StoreError(
                f"tariff {tariff.id} (OCPI {tariff.version}) names no CPO. "
                "Hint: say which party sent it (--party CC*PID)"
            )
        text = raw_text(obj)
        key = (country_code, party_id, tariff.id, tariff.last_updated_ms)
        with self.writer.begin() as conn:
            held = conn.execute(
                select(tariffs.c.raw).where(
                    and_(
                        tariffs.c.country_code == key[0],
                        tariffs.c.party_id == key[1],
                        tariffs.c.tariff_id == key[2],
                        tariffs.c.last_updated_ms == key[3],
                    )
                )
            ).scalar()
            if held is None:
                conn.execute(
                    insert(tariffs).values(
                        country_code=country_code,
                        party_id=party_id,
                        tariff_id=tariff.id,
                        last_updated_ms=tariff.last_updated_ms,
                        ocpi_version=tariff.version,
                        currency=tariff.currency,
                        start_ms=tariff.start_ms,
                        end_ms=tariff.end_ms,
                        deleted=False,
                        raw=text,
                        received_ms=now_ms(),
                    )
                )
                self._log(conn, country_code, party_id, "tariff", tariff.id, "stored", None, source)
                return Stored("stored", tariff.id)
            if held == text or same_json(held, text):  # (a store of older code kept numbers as text)
                self._log(conn, country_code, party_id, "tariff", tariff.id, "unchanged", None, source)
                return Stored("unchanged", tariff.id)
        conflict = Conflict(
            f"tariff {tariff.id}: a different tariff with the same last_updated is stored. "
            "Hint: send a new last_updated with every change",
            tariff.id,
        )
        self.log_refusal(country_code, party_id, "tariff", conflict, source)
        raise conflict

    def tariff(self, country_code: str, party_id: str, tariff_id: str) -> Any | None:
        """The newest version of a tariff that is not deleted, as the party sent it (decoded)."""
        raw = self.tariff_json(country_code, party_id, tariff_id)
        return None if raw is None else loads(raw)

    def tariff_json(self, country_code: str, party_id: str, tariff_id: str) -> str | None:
        """The JSON text of :meth:`tariff` (numbers as the party wrote them)."""
        with self.engine.connect() as conn:
            raw = conn.execute(
                select(tariffs.c.raw)
                .where(
                    and_(
                        tariffs.c.country_code == country_code,
                        tariffs.c.party_id == party_id,
                        tariffs.c.tariff_id == tariff_id,
                        tariffs.c.deleted.is_(False),
                    )
                )
                .order_by(tariffs.c.last_updated_ms.desc())
                .limit(1)
            ).scalar()
        return raw

    def delete_tariff(self, country_code: str, party_id: str, tariff_id: str) -> bool:
        """Mark every version deleted (kept: CDRs of sessions before the deletion still price with them)."""
        with self.writer.begin() as conn:
            n = conn.execute(
                update(tariffs)
                .where(
                    and_(
                        tariffs.c.country_code == country_code,
                        tariffs.c.party_id == party_id,
                        tariffs.c.tariff_id == tariff_id,
                    )
                )
                .values(deleted=True)
            ).rowcount
            self._log(
                conn, country_code, party_id, "tariff", tariff_id, "deleted" if n else "unknown", None, ""
            )
        return bool(n)

    def tariff_versions(self) -> Iterator[Any]:
        """Every stored tariff version (deleted ones too), oldest first, as sent."""
        with self.engine.connect() as conn:
            for (raw,) in conn.execute(
                select(tariffs.c.raw).order_by(tariffs.c.last_updated_ms, tariffs.c.id)
            ):
                yield loads(raw)

    # ---- CDRs ---------------------------------------------------------------------------------

    def add_cdr(
        self,
        obj: Any,
        country_code: str | None,
        party_id: str | None,
        source: str = "",
        raw: str | None = None,
    ) -> Stored:
        """Store a CDR once. Re-sending the same CDR is ``duplicate`` (idempotent, whatever its
        whitespace); a different CDR under a stored id is a :class:`Conflict`, logged as such.
        ``raw``: the JSON text as received, kept byte for byte (else its compact form)."""
        try:
            for _ in range(3):
                try:
                    with self.writer.begin() as conn:
                        return self._add_cdr(conn, obj, country_code, party_id, source, raw)
                except StoredMeanwhile:  # rolled back; the second pass finds it held
                    continue
            raise StoreError(f"{source}: the CDR could not be stored. Hint: send it again")
        except Conflict as exc:
            self.log_refusal(country_code, party_id, "cdr", exc, source)
            raise

    def _add_cdr(
        self,
        conn: Connection,
        obj: Any,
        country_code: str | None,
        party_id: str | None,
        source: str,
        raw: str | None = None,
    ) -> Stored:
        """One CDR in the caller's transaction: held (duplicate or conflict) or inserted with its
        periods; :class:`StoredMeanwhile` when a concurrent writer got there first."""
        try:
            row, periods = record_rows(obj, country_code, party_id, False, raw)
        except RowError as exc:
            raise StoreError(str(exc)) from None
        cc, pid, cdr_id = row.pop("country_code"), row.pop("party_id"), row["cdr_id"]
        row.pop("seq")
        held = conn.execute(
            select(cdrs.c.raw_sha256, cdrs.c.raw).where(
                and_(cdrs.c.country_code == cc, cdrs.c.party_id == pid, cdrs.c.cdr_id == cdr_id)
            )
        ).first()
        if held is not None:
            if held[0] == row["raw_sha256"] or same_json(held[1], row["raw"]):
                self._log(conn, cc, pid, "cdr", cdr_id, "duplicate", None, source)
                return Stored("duplicate", cdr_id)
            raise cdr_conflict(cdr_id)
        log_id = self._log(conn, cc, pid, "cdr", cdr_id, "stored", None, source)
        new = dialect_insert(conn, cdrs).on_conflict_do_nothing()
        pk = conn.execute(
            new.values(**row, country_code=cc, party_id=pid, ingest_id=log_id).returning(cdrs.c.id)
        ).scalar()
        if pk is None:  # the same id stored by a concurrent request a moment ago
            raise StoredMeanwhile(cdr_id)
        if periods:
            conn.execute(insert(cdr_periods), [period_row(p, pk) for p in periods])
        return Stored("stored", cdr_id)

    def cdr(self, country_code: str, party_id: str, cdr_id: str) -> Any | None:
        """A stored CDR as the party sent it (decoded)."""
        raw = self.cdr_json(country_code, party_id, cdr_id)
        return None if raw is None else loads(raw)

    def cdr_json(self, country_code: str, party_id: str, cdr_id: str) -> str | None:
        """The JSON text of :meth:`cdr` (numbers as the party wrote them)."""
        with self.engine.connect() as conn:
            raw = conn.execute(
                select(cdrs.c.raw).where(
                    and_(
                        cdrs.c.country_code == country_code,
                        cdrs.c.party_id == party_id,
                        cdrs.c.cdr_id == cdr_id,
                    )
                )
            ).scalar()
        return raw

    def cdr_records(self, lo_ms: int | None = None, hi_ms: int | None = None) -> Iterator[Record]:
        """The stored CDRs whose session ended in [lo_ms, hi_ms), in the order they were stored, as
        records for the settlement engines (``source`` names the table and OCPI version, ``line`` the
        row id), in the order the columnar store reader settles them: the CDRs held without kernel
        columns first, then by OCPI version and row id."""
        c = cdrs.c
        query = select(c.id, c.ocpi_version, c.raw, c.country_code, c.party_id).order_by(
            c.kernel, c.ocpi_version, c.id
        )
        if lo_ms is not None:
            query = query.where(cdrs.c.end_ms >= lo_ms)
        if hi_ms is not None:
            query = query.where(cdrs.c.end_ms < hi_ms)
        with self.engine.connect() as conn:
            for row_id, version, raw, cc, pid in conn.execution_options(stream_results=True).execute(query):
                # one OCPI version per source; the key it is held under is the CPO (2.1.1 names none)
                yield Record(f"store:cdrs/{version}", row_id, loads(raw), party=(cc, pid))

    def import_records(
        self,
        records: Iterable[Record],
        country_code: str | None = None,
        party_id: str | None = None,
        batch: int = 5_000,
    ) -> dict[str, int]:
        """Bulk load of records (any reader), one transaction per ``batch`` records (a killed
        import keeps whole batches and resumes: what is stored is a duplicate the second time).
        Every record is counted as stored, duplicate, conflict or rejected (``read`` is their sum),
        refusals logged with file and line. A CDR's own ``country_code`` / ``party_id`` name its
        CPO; the given party stands in for 2.1.1 CDRs, which carry none."""
        counts = {"read": 0, "stored": 0, "duplicate": 0, "conflict": 0, "rejected": 0}
        run_batches(self, record_batches(records, country_code, party_id, batch), counts)
        return counts

    def import_files(
        self,
        paths: Iterable[str | os.PathLike[str]],
        country_code: str | None = None,
        party_id: str | None = None,
        batch: int = 5_000,
    ) -> tuple[dict[str, int], Counter[str]]:
        """Files and folders, OCPI NDJSON through the columnar reader (:mod:`settlement.store.bulk`):
        the counts of :meth:`import_records` and the records that went record by record, by reason."""
        return import_paths(self, paths, country_code, party_id, batch)

    # ---- monitoring ---------------------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, Any]]:
        """Per party (``CC*PID``): tariffs and CDRs held, last ingest time, rejects and conflicts."""
        out: dict[str, dict[str, Any]] = {}

        def party(cc: str | None, pid: str | None) -> dict[str, Any]:
            return out.setdefault(
                f"{cc}*{pid}", {"tariffs": 0, "cdrs": 0, "last_ingest_ms": None, "refused": 0}
            )

        with self.engine.connect() as conn:
            for cc, pid, n in conn.execute(
                select(
                    tariffs.c.country_code, tariffs.c.party_id, func.count(func.distinct(tariffs.c.tariff_id))
                )
                .where(tariffs.c.deleted.is_(False))
                .group_by(tariffs.c.country_code, tariffs.c.party_id)
            ):
                party(cc, pid)["tariffs"] = n
            for cc, pid, n in conn.execute(
                select(cdrs.c.country_code, cdrs.c.party_id, func.count()).group_by(
                    cdrs.c.country_code, cdrs.c.party_id
                )
            ):
                party(cc, pid)["cdrs"] = n
            for cc, pid, last, refused in conn.execute(
                select(
                    ingest_log.c.country_code,
                    ingest_log.c.party_id,
                    func.max(ingest_log.c.at_ms),
                    func.sum(case((ingest_log.c.outcome.in_(("rejected", "conflict")), 1), else_=0)),
                ).group_by(ingest_log.c.country_code, ingest_log.c.party_id)
            ):
                p = party(cc, pid)
                p["last_ingest_ms"], p["refused"] = last, int(refused or 0)
        return dict(sorted(out.items()))

    def log_refusal(
        self, cc: str | None, pid: str | None, kind: str, exc: RoamledgerError, source: str
    ) -> None:
        """A refused write, logged in its own transaction (the refused one was rolled back)."""
        object_id = exc.object_id if isinstance(exc, Conflict) else None
        outcome = "conflict" if isinstance(exc, Conflict) else "rejected"
        with self.writer.begin() as conn:
            self._log(conn, cc, pid, kind, object_id, outcome, str(exc), source)

    def _log(
        self,
        conn: Connection,
        cc: str | None,
        pid: str | None,
        kind: str,
        object_id: str | None,
        outcome: str,
        message: str | None,
        source: str,
    ) -> int:
        result = conn.execute(
            insert(ingest_log).values(
                at_ms=now_ms(),
                country_code=cc,
                party_id=pid,
                kind=kind,
                object_id=object_id,
                outcome=outcome,
                message=message,
                source=source,
            )
        )
        return int(result.inserted_primary_key[0])
