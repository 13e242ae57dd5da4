"""What the service tells about its store (``GET /v1/health``, ``GET /v1/store``): reachable, the
schema at the newest migration (Alembic head == the database's revision), and per party the tariffs
and CDRs held, the last ingest and the most recent refused pushes and imports with their reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from settlement.store import Store
from settlement.store.schema import ingest_log

RECENT = 5  # refusals shown per party


def iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def recent_refusals(
    store: Store, per_party: int = RECENT, scan: int = 1000
) -> dict[str, list[dict[str, Any]]]:
    """The newest refusals (rejected, conflict) per party, newest first, from the last ``scan``."""
    query = (
        select(ingest_log)
        .where(ingest_log.c.outcome.in_(("rejected", "conflict")))
        .order_by(ingest_log.c.id.desc())
        .limit(scan)
    )
    out: dict[str, list[dict[str, Any]]] = {}
    with store.engine.connect() as conn:
        for r in conn.execute(query):
            rows = out.setdefault(f"{r.country_code}*{r.party_id}", [])
            if len(rows) < per_party:
                rows.append(
                    {
                        "at": iso(r.at_ms),
                        "kind": r.kind,
                        "object_id": r.object_id,
                        "outcome": r.outcome,
                        "message": r.message,
                        "source": r.source,
                    }
                )
    return out


def last_log_id(store: Store) -> int:
    """The newest ingest log entry's id (0 for none): what a run logs comes after it."""
    with store.engine.connect() as conn:
        return conn.execute(select(func.coalesce(func.max(ingest_log.c.id), 0))).scalar_one()


def refusals_since(store: Store, after: int, limit: int) -> list[tuple[str, str, str]]:
    """(outcome, source, message) of the first ``limit`` refusals (rejected, conflict) logged after
    the entry ``after``, in the order they were logged."""
    query = (
        select(ingest_log.c.outcome, ingest_log.c.source, ingest_log.c.message)
        .where(ingest_log.c.id > after, ingest_log.c.outcome.in_(("rejected", "conflict")))
        .order_by(ingest_log.c.id)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return [(r.outcome, r.source or "", r.message or "") for r in conn.execute(query)]


def schema_state(store: Store) -> dict[str, Any]:
    """Reachable and migrations current (raises SQLAlchemyError when the database does not answer)."""
    revision, head = store.revision(), store.head()
    return {"reachable": True, "revision": revision, "head": head, "migrations_current": revision == head}


def report(store: Store, parties: bool = True) -> tuple[bool, dict[str, Any]]:
    """(healthy, body): healthy when the store answers and its schema is at the newest migration."""
    try:
        body = schema_state(store)
        if parties:
            counts = store.counts()
            refused = recent_refusals(store)
            for key, p in counts.items():
                p["last_ingest"] = iso(p["last_ingest_ms"])
                p["recent_refusals"] = refused.get(key, [])
            body["parties"] = counts
    except SQLAlchemyError as exc:
        return False, {"reachable": False, "error": f"{type(exc).__name__}: the store does not answer"}
    return bool(body["migrations_current"]), body
