"""Settlement runs kept in the store, and closed months.

A run is a row of ``settlement_runs`` (status ``queued`` → ``running`` → ``done`` | ``failed``,
its options, a heartbeat while it works) with the files of its run folder in ``run_files`` and one
``statements`` row per statement. A run that stops beating (its server was stopped or killed) is
reported ``failed`` after :data:`STALE_MS`, never left ``running``.

Closing a month records its final run (``closed_months``) and the CDR rows that run read
(``closed_cdrs``): those are settled for good. A CDR stored later whose session ended in a closed
month is a *late CDR*: it goes on the statement of the next month that is not closed, once — when
that month is closed in turn, its final run has read it (closing refuses a run that has not).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from pricing.errors import InputError
from pricing.io import Record, loads
from settlement.output import run_failure
from settlement.rules import ALREADY_SETTLED, month_window_ms, parse_month
from settlement.store import Store, StoreError, batched, now_ms
from settlement.store.schema import cdrs, closed_cdrs, closed_months, run_files, settlement_runs, statements

STATUSES = ("queued", "running", "done", "failed")
STALE_MS = 120_000  # a queued or running run without a heartbeat for this long was interrupted
INTERRUPTED = (
    "interrupted: the server stopped while this run was {status} (no sign of life for {s} s). "
    "Hint: POST the settlement again"
)
STOPPED = "interrupted: the server stopped while this run was {status}. Hint: POST the settlement again"


class MonthClosed(StoreError):
    """The month is closed: its statements are final."""


class RunRefused(StoreError):
    """The run cannot be used as asked (not done, another month, stale)."""


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    month: str
    status: str
    message: str | None
    options: dict[str, Any]
    created_ms: int
    finished_ms: int | None
    manifest: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "month": self.month,
            "status": self.status,
            "message": self.message,
            "options": self.options,
            "created_ms": self.created_ms,
            "finished_ms": self.finished_ms,
        }


def check_month(month: str) -> str:
    """``YYYY-MM`` or an InputError that says so."""
    try:
        parse_month(month)
    except InputError as exc:
        raise StoreError(str(exc)) from None
    return month


def next_month(month: str) -> str:
    y, m = parse_month(month)
    return f"{y + m // 12:04d}-{m % 12 + 1:02d}"


# ---- the CDR rows a run read --------------------------------------------------------------------


def rows_text(rows: Iterable[int]) -> str:
    """Row ids as ranges: ``1-500,502,510-900`` (sorted, distinct)."""
    out: list[str] = []
    ids = sorted(set(rows))
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        out.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(out)


def ranges_of(text: str | None) -> list[tuple[int, int]]:
    out = []
    for part in (text or "").split(","):
        if part:
            a, _, b = part.partition("-")
            out.append((int(a), int(b or a)))
    return out


def cdr_records_of(store: Store, rows: Sequence[int]) -> Iterator[Record]:
    """The stored CDRs of the given row ids, by row id, as :meth:`Store.cdr_records` gives them."""
    for part in batched(sorted(rows), 500):
        c = cdrs.c
        query = (
            select(c.id, c.ocpi_version, c.raw, c.country_code, c.party_id)
            .where(c.id.in_(part))
            .order_by(c.id)
        )
        with store.engine.connect() as conn:
            for row_id, version, raw, cc, pid in conn.execute(query):
                yield Record(f"store:cdrs/{version}", row_id, loads(raw), party=(cc, pid))


# ---- runs ---------------------------------------------------------------------------------------


def _run(row: Any) -> Run:
    return Run(
        row.id,
        row.month,
        row.status or "done",
        row.message,
        json.loads(row.options or "{}"),
        row.created_ms,
        row.finished_ms,
        row.manifest,
    )


def create_run(store: Store, month: str, options: dict[str, Any]) -> int:
    """A queued run of ``month`` (refused when the month is closed)."""
    now = now_ms()
    with store.writer.begin() as conn:  # the write first: on SQLite a read-then-write transaction
        result = conn.execute(  # fails at once (no waiting) while another connection writes
            insert(settlement_runs).values(
                month=month,
                created_ms=now,
                manifest="",
                status="queued",
                options=json.dumps(options, sort_keys=True),
                heartbeat_ms=now,
            )
        )
        refuse_closed(conn, month)  # a closed month: the insert is rolled back
        return int(result.inserted_primary_key[0])


def refuse_closed(conn: Any, month: str) -> None:
    final = conn.execute(select(closed_months.c.run_id).where(closed_months.c.month == month)).scalar()
    if final is not None:
        raise MonthClosed(
            f"{month} is closed: its statements are final (run {final}). Hint: CDRs that arrive late "
            f"for {month} are settled on the next open month; GET /v1/settlements/{final} for the final run"
        )


def set_status(store: Store, run_id: int, status: str, message: str | None = None) -> None:
    values: dict[str, Any] = {"status": status, "message": message, "heartbeat_ms": now_ms()}
    if status in ("done", "failed"):
        values["finished_ms"] = now_ms()
    with store.writer.begin() as conn:
        conn.execute(update(settlement_runs).where(settlement_runs.c.id == run_id).values(**values))


def beat(store: Store, run_ids: Iterable[int]) -> None:
    """A sign of life of the runs this process holds (queued or running)."""
    ids = list(run_ids)
    if ids:
        with store.writer.begin() as conn:
            conn.execute(
                update(settlement_runs).where(settlement_runs.c.id.in_(ids)).values(heartbeat_ms=now_ms())
            )


def finish_run(
    store: Store,
    run_id: int,
    files: Iterable[tuple[str, str]],
    entries: Sequence[dict[str, Any]],
    manifest: str,
    rows: Iterable[int],
) -> None:
    """Store a run's files (``(path, content)``, taken one at a time: memory holds one file) and
    statements, and mark it done, in one transaction."""
    with store.writer.begin() as conn:
        for path, content in files:
            conn.execute(insert(run_files).values(run_id=run_id, path=path, content=content))
        if entries:
            conn.execute(
                insert(statements),
                [
                    {
                        "run_id": run_id,
                        "statement_id": e["id"],
                        "cpo": e["cpo"],
                        "emsp": e["emsp"],
                        "currency": e["currency"],
                        "document": e["folder"],
                    }
                    for e in entries
                ],
            )
        now = now_ms()
        conn.execute(
            update(settlement_runs)
            .where(settlement_runs.c.id == run_id)
            .values(
                status="done",
                message=None,
                manifest=manifest,
                cdr_rows=rows_text(rows),
                finished_ms=now,
                heartbeat_ms=now,
            )
        )


def mark_interrupted(store: Store, now: int | None = None, stale_ms: int = STALE_MS) -> int:
    """Queued or running runs without a heartbeat for ``stale_ms`` become ``failed``."""
    now = now_ms() if now is None else now
    silent = and_(
        settlement_runs.c.status.in_(("queued", "running")), settlement_runs.c.heartbeat_ms < now - stale_ms
    )
    with store.engine.connect() as conn:  # a read first: most of the time there is nothing to write
        if not conn.execute(select(settlement_runs.c.id).where(silent).limit(1)).first():
            return 0
    n = 0
    with store.writer.begin() as conn:
        for status in ("queued", "running"):
            n += conn.execute(
                update(settlement_runs)
                .where(
                    and_(settlement_runs.c.status == status, settlement_runs.c.heartbeat_ms < now - stale_ms)
                )
                .values(
                    status="failed",
                    message=INTERRUPTED.format(status=status, s=stale_ms // 1000),
                    finished_ms=now,
                )
            ).rowcount
    return n


def stop_runs(store: Store, run_ids: Iterable[int]) -> int:
    """The given runs, if still queued or running, become ``failed`` ("interrupted: the server
    stopped …"): their server is stopping (a run done meanwhile stays done)."""
    ids = sorted(run_ids)
    n = 0
    if ids:
        with store.writer.begin() as conn:
            for status in ("queued", "running"):
                n += conn.execute(
                    update(settlement_runs)
                    .where(and_(settlement_runs.c.id.in_(ids), settlement_runs.c.status == status))
                    .values(status="failed", message=STOPPED.format(status=status), finished_ms=now_ms())
                ).rowcount
    return n


def get_run(store: Store, run_id: int, stale_ms: int = STALE_MS) -> Run | None:
    mark_interrupted(store, stale_ms=stale_ms)
    with store.engine.connect() as conn:
        row = conn.execute(select(settlement_runs).where(settlement_runs.c.id == run_id)).first()
    return None if row is None else _run(row)


def list_runs(
    store: Store, month: str | None = None, limit: int = 100, stale_ms: int = STALE_MS
) -> list[Run]:
    mark_interrupted(store, stale_ms=stale_ms)
    query = select(settlement_runs).order_by(settlement_runs.c.id.desc()).limit(limit)
    if month is not None:
        query = query.where(settlement_runs.c.month == month)
    with store.engine.connect() as conn:
        return [_run(r) for r in conn.execute(query)]


def run_statements(store: Store, run_id: int) -> list[dict[str, str]]:
    query = (
        select(statements.c.cpo, statements.c.emsp, statements.c.currency, statements.c.document)
        .where(statements.c.run_id == run_id)
        .order_by(statements.c.id)
    )
    with store.engine.connect() as conn:
        return [{"cpo": c, "emsp": e, "currency": cur, "folder": f} for c, e, cur, f in conn.execute(query)]


def run_file(store: Store, run_id: int, path: str) -> str | None:
    query = select(run_files.c.content).where(and_(run_files.c.run_id == run_id, run_files.c.path == path))
    with store.engine.connect() as conn:
        return conn.execute(query).scalar()


def history_files(store: Store, run_id: int) -> Iterator[tuple[str, str]]:
    """What a run's credits are netted against later: its ``lines.csv`` files and its
    ``reconciliation.ndjson`` (:func:`settlement.jobs.read_history` reads a folder of them)."""
    query = select(run_files.c.path, run_files.c.content).where(
        and_(
            run_files.c.run_id == run_id,
            (run_files.c.path == "reconciliation.ndjson") | run_files.c.path.like("%/lines.csv"),
        )
    )
    with store.engine.connect() as conn:
        yield from ((str(path), str(content)) for path, content in conn.execute(query))


# ---- closed months ------------------------------------------------------------------------------


def closed(store: Store) -> dict[str, tuple[int, int]]:
    """Closed months: month → (final run id, closed at, epoch ms)."""
    with store.engine.connect() as conn:
        return {
            m: (r, t)
            for m, r, t in conn.execute(
                select(closed_months.c.month, closed_months.c.run_id, closed_months.c.closed_ms)
            )
        }


def run_zone(store: Store, run_id: int) -> ZoneInfo:
    with store.engine.connect() as conn:
        options = conn.execute(
            select(settlement_runs.c.options).where(settlement_runs.c.id == run_id)
        ).scalar()
    return ZoneInfo(json.loads(options or "{}").get("zone") or "UTC")


def late_cdrs(store: Store, month: str) -> tuple[dict[str, str], list[int]]:
    """The late CDRs ``month`` takes: stored CDRs whose session ended in a closed month (in the zone
    of its final run) that no final run read, for which ``month`` is the next month not closed.
    Returns (CDR id → its closed month, their row ids)."""
    done = closed(store)
    late: dict[str, str] = {}
    rows: list[int] = []
    for m in sorted(done):
        if m >= month:
            break
        landing = next_month(m)
        while landing in done:
            landing = next_month(landing)
        if landing != month:
            continue
        lo, hi = month_window_ms(m, run_zone(store, done[m][0]))
        query = (
            select(cdrs.c.id, cdrs.c.cdr_id)
            .outerjoin(closed_cdrs, closed_cdrs.c.cdr_row == cdrs.c.id)
            .where(and_(cdrs.c.end_ms >= lo, cdrs.c.end_ms < hi, closed_cdrs.c.cdr_row.is_(None)))
            .order_by(cdrs.c.id)
        )
        with store.engine.connect() as conn:
            for row_id, cdr_id in conn.execute(query):
                late.setdefault(cdr_id, m)
                rows.append(row_id)
    return late, rows


def settled_elsewhere(store: Store, lo: int, hi: int) -> dict[str, str]:
    """The stored CDRs whose session ended in [``lo``, ``hi``) (epoch ms: a month's window in a run's
    statement zone) that a closed month's final run already settled: CDR id → that closed month.
    A run of another month reads them (the windows of two zones overlap) and excludes them with
    an ALREADY_SETTLED finding (:func:`settlement.jobs.place_lines`): a CDR on a closed month's
    final statements is never settled again, whatever the zone."""
    query = (
        select(cdrs.c.cdr_id, closed_cdrs.c.month)
        .join(closed_cdrs, closed_cdrs.c.cdr_row == cdrs.c.id)
        .where(and_(cdrs.c.end_ms >= lo, cdrs.c.end_ms < hi))
        .order_by(cdrs.c.id)
    )
    with store.engine.connect() as conn:
        return {str(cdr_id): str(m) for cdr_id, m in conn.execute(query)}


def month_rows(store: Store, month: str, zone: ZoneInfo) -> set[int]:
    """The row ids a run of ``month`` must read now: its CDRs and the late CDRs it takes."""
    lo, hi = month_window_ms(month, zone)
    with store.engine.connect() as conn:
        own = set(
            conn.execute(select(cdrs.c.id).where(and_(cdrs.c.end_ms >= lo, cdrs.c.end_ms < hi))).scalars()
        )
    return own | set(late_cdrs(store, month)[1])


def close_month(store: Store, month: str, run_id: int | None = None) -> tuple[int, int]:
    """Close ``month`` with its final run (default: the newest done run of the month). Refused when
    the month is closed, the run is not a done run of the month, or CDRs arrived that it did not
    read (settle again first). Returns (run id, closed at, epoch ms)."""
    check_month(month)
    with store.engine.connect() as conn:
        refuse_closed(conn, month)
    if run_id is None:
        newest = [r for r in list_runs(store, month) if r.status == "done"]
        if not newest:
            raise RunRefused(
                f"no done settlement run of {month} in the store (settle --store writes files, "
                f"not runs). Hint: roamledger close --month {month} --settle (settles and closes), "
                f'or POST /v1/settlements {{"month": "{month}"}} and close when it is done'
            )
        run_id = newest[0].id
    run = get_run(store, run_id)
    if run is None:
        raise RunRefused(f"no settlement run {run_id}. Hint: GET /v1/settlements lists the runs")
    if run.month != month or run.status != "done":
        raise RunRefused(
            f"run {run_id} is a {run.status} run of {run.month}, not a done run of {month}. "
            "Hint: close a month with a done run of that month"
        )
    manifest = json.loads(run.manifest) if run.manifest else {}
    why = run_failure(manifest) if "counts" in manifest else None
    if why is not None:  # a typo in --month would close a month for good
        raise RunRefused(
            f"run {run_id} of {month} settled nothing ({why}): a month closes on a run that settled "
            "its CDRs. Hint: check the month, or import its CDRs first"
        )
    with store.engine.connect() as conn:
        text = conn.execute(select(settlement_runs.c.cdr_rows).where(settlement_runs.c.id == run_id)).scalar()
    ranges = ranges_of(text)
    read = {i for a, b in ranges for i in range(a, b + 1)}
    missed = sorted(month_rows(store, month, run_zone(store, run_id)) - read)
    if missed:
        raise RunRefused(
            f"{len(missed)} CDRs of {month} arrived after run {run_id} read the month. "
            f"Hint: settle {month} again and close it with the new run"
        )
    refuse_settled_twice(store, month, run_id, ranges)
    now = now_ms()
    try:
        with store.writer.begin() as conn:
            conn.execute(insert(closed_months).values(month=month, closed_ms=now, run_id=run_id))
            for a, b in ranges:  # the rows it read but another final run settled stay that run's
                conn.execute(
                    insert(closed_cdrs).from_select(
                        ["cdr_row", "month"],
                        select(cdrs.c.id, literal(month)).where(
                            and_(
                                cdrs.c.id >= a,
                                cdrs.c.id <= b,
                                cdrs.c.id.not_in(select(closed_cdrs.c.cdr_row)),
                            )
                        ),
                    )
                )
    except IntegrityError as exc:
        with store.engine.connect() as conn:
            refuse_closed(conn, month)  # closed by a concurrent request a moment ago
        raise RunRefused(  # another month closed meanwhile with CDRs this run read
            f"{month} was not closed: a month closed meanwhile holds CDRs that run {run_id} read. "
            f"Hint: settle {month} again and close it with the new run"
        ) from exc
    return run_id, now


def refuse_settled_twice(store: Store, month: str, run_id: int, ranges: Sequence[tuple[int, int]]) -> None:
    """Refuse to close ``month`` with a run that settled CDRs a closed month's final run settled
    (it ran before that month was closed, or under another statement zone): a run of now
    excludes them with an ALREADY_SETTLED finding."""
    c = cdrs.c
    held: dict[str, str] = {}
    with store.engine.connect() as conn:
        for a, b in ranges:
            query = (
                select(c.cdr_id, closed_cdrs.c.month)
                .join(closed_cdrs, closed_cdrs.c.cdr_row == c.id)
                .where(and_(c.id >= a, c.id <= b))
            )
            held.update((str(i), str(m)) for i, m in conn.execute(query))
    if not held:
        return
    excluded = set()
    for line in (run_file(store, run_id, "findings.ndjson") or "").splitlines():
        f = json.loads(line)
        if f.get("code") == ALREADY_SETTLED:
            excluded.add(f.get("cdr_id"))
    twice = sorted(set(held) - excluded)
    if twice:
        first = twice[0]
        raise RunRefused(
            f"run {run_id} settled {len(twice)} CDRs that are on the final statement of another closed "
            f"month (e.g. {first!r}, final in {held[first]}), so closing {month} with it would settle "
            f"them twice. Hint: settle {month} again (it excludes them) and close it with the new run"
        )
