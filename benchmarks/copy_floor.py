"""What PostgreSQL alone costs to take a bulk import: ``python -m benchmarks.copy_floor [--size N]``.

The generated month of :mod:`benchmarks.ingest` is imported once into a scratch schema while the
``COPY`` payloads the importer sends (``cdrs`` and ``cdr_periods``, PostgreSQL text format) are
kept. They are then replayed, batch by batch with a commit each as the importer does, into fresh
schemas that differ only in their constraints:

* ``store``: the store's schema as migrated (unique key, index on the session end, primary keys,
  the foreign keys ``cdrs.ingest_id`` → ``ingest_log`` and ``cdr_periods.cdr_pk`` → ``cdrs``);
* ``no_fk_periods`` / ``no_fk_ingest``: without one of the two foreign keys;
* ``no_fk``: without both;
* ``no_index``: without foreign keys, unique key, secondary index and the periods' primary key;
* ``bare``: no constraint or index at all (the heap and the WAL only);
* ``compressed``: the store's schema with the raw JSON compressed in the row (lz4, and
  ``toast_tuple_target`` 256 so that rows under 2 KB are compressed too).

Printed and written to ``benchmarks/results/copy_floor.json``: CPU seconds of the PostgreSQL
backend per 10^5 CDRs (``/proc``, Linux) and the wall time of the replay. This is the floor under
any importer that stores the raw JSON and the kernel's columns: whatever the client does, the server
spends this much per CDR on the same two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import settlement.store.bulk as bulk
from benchmarks.ingest import PG, RESULTS, month, store_url
from pricing.io import iter_sources
from settlement.store import Store

VARIANTS = ("store", "no_fk_periods", "no_fk_ingest", "no_fk", "no_index", "bare", "compressed")


@contextmanager
def schema() -> Iterator[str]:
    """A fresh PostgreSQL schema (:func:`benchmarks.ingest.store_url`), dropped afterwards."""
    with store_url("postgresql", Path(".")) as url:
        if url is None:
            raise SystemExit(f"PostgreSQL does not answer at {PG}: nothing to measure")
        yield url


def capture(n: int) -> tuple[list[tuple[str, list[str], bytes]], int]:
    """The COPY payloads of importing the month of ``n`` sessions, and the CDRs it read."""
    files, tariffs, _ = month(n)
    kept: list[tuple[str, list[str], bytes]] = []
    write = bulk._write

    def keep(conn: Any, table: sa.Table, rows: Any) -> None:
        if conn.dialect.name == "postgresql" and table.name in ("cdrs", "cdr_periods"):
            kept.append((table.name, rows.column_names, bytes(memoryview(bulk.copy_text(rows)))))
        write(conn, table, rows)

    bulk._write = keep
    try:
        with schema() as url:
            store = Store(url)
            for rec in iter_sources([tariffs]):
                store.put_tariff(rec.obj, stand_in=True)
            counts, _ = store.import_files([str(f) for f in files])
            store.close()
    finally:
        bulk._write = write
    return kept, counts["read"]


def constraints(conn: sa.Connection, kind: str, table: str) -> list[str]:
    found = conn.exec_driver_sql(
        "SELECT conname FROM pg_constraint WHERE contype = %(k)s AND conrelid = %(t)s::regclass",
        {"k": kind, "t": table},
    )
    return [name for (name,) in found]


def strip(conn: sa.Connection, variant: str) -> None:
    """Drop what ``variant`` goes without."""
    drops: list[tuple[str, str]] = []
    if variant in ("no_fk_periods", "no_fk", "no_index", "bare"):
        drops += [("cdr_periods", c) for c in constraints(conn, "f", "cdr_periods")]
    if variant in ("no_fk_ingest", "no_fk", "no_index", "bare"):
        drops += [("cdrs", c) for c in constraints(conn, "f", "cdrs")]
    if variant in ("no_index", "bare"):
        drops += [("cdrs", c) for c in constraints(conn, "u", "cdrs")]
        drops += [("cdr_periods", c) for c in constraints(conn, "p", "cdr_periods")]
    if variant == "bare":
        drops += [("cdrs", c) for c in constraints(conn, "p", "cdrs")]
    for table, name in drops:
        conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}" CASCADE')
    if variant == "compressed":
        conn.exec_driver_sql("ALTER TABLE cdrs SET (toast_tuple_target = 256)")
        conn.exec_driver_sql("ALTER TABLE cdrs ALTER COLUMN raw SET COMPRESSION lz4")
    if variant in ("no_index", "bare"):
        found = conn.exec_driver_sql(
            "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'cdrs'::regclass AND NOT x.indisprimary"
        )
        for (name,) in found.all():
            conn.exec_driver_sql(f'DROP INDEX "{name}"')


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def replay(payloads: list[tuple[str, list[str], bytes]], variant: str) -> dict[str, float]:
    with schema() as url:
        Store(url).close()  # migrated: the store's tables
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            strip(conn, variant)
            # the ingest log lines the payloads' ingest_id point at
            conn.exec_driver_sql(
                "INSERT INTO ingest_log (id, at_ms, kind, outcome) "
                "SELECT g, 0, 'import', 'stored' FROM generate_series(1, 100000) g"
            )
        raw = engine.raw_connection()
        try:
            dbapi = raw.driver_connection
            assert dbapi is not None
            pid = dbapi.info.backend_pid
            cpu0, t0 = cpu_s(pid), time.perf_counter()
            with dbapi.cursor() as cur:
                for table, columns, payload in payloads:
                    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
                        cp.write(payload)
                    dbapi.commit()
            return {"cpu_s": cpu_s(pid) - cpu0, "wall_s": time.perf_counter() - t0}
        finally:
            raw.close()
            engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=100_000, help="sessions of the generated month")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", default="copy_floor.json", help="file name under benchmarks/results")
    args = ap.parse_args(argv)
    payloads, read = capture(args.size)
    per = 1e5 / read
    rows = []
    for variant in args.variants.split(","):
        got = replay(payloads, variant)
        row = {
            "variant": variant,
            "cpu_s_per_1e5": round(got["cpu_s"] * per, 2),
            "wall_s_per_1e5": round(got["wall_s"] * per, 2),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    doc = {
        "cdrs": read,
        "payload_mb": round(sum(len(p) for *_, p in payloads) / 1e6, 1),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
