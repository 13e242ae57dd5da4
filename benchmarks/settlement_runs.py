"""Settlement runs kept in the store: ``python -m benchmarks.settlement_runs [--sizes N,...]``.

For each size, a generated NDJSON month (``roamledger generate``, cached under
``benchmarks/.data``) is imported into a fresh store (SQLite file; PostgreSQL schema when a server
answers at ``$ROAMLEDGER_TEST_POSTGRES``), then settled twice, each in a fresh process:

* ``settle --store``: the CLI writing a run folder (the baseline);
* ``run``: what ``POST /v1/settlements``' worker does (:func:`settlement.runs.execute_run`): the
  same settlement, its run folder written and every file of it stored with the run;
* ``close``: closing the month with that run (the CDR rows of the final run recorded).

Wall times, the bytes the run keeps in the store and the host load are written to
``benchmarks/results/settlement_runs.json``. Nothing here asserts a time; on a shared machine the
numbers are low bounds (``--note``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / ".data"
RESULTS = ROOT / "benchmarks" / "results"
PG = os.environ.get("ROAMLEDGER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MONTH = "2026-10"
RUN = """
import sys, time
from sqlalchemy import func, select
from settlement.runs import execute_run, queue_run
from settlement.store import Store
from settlement.store.months import close_month
from settlement.store.schema import run_files
store = Store(sys.argv[1])
t = time.perf_counter()
run_id = queue_run(store, sys.argv[2])
status = execute_run(store, run_id)
run_s = time.perf_counter() - t
t = time.perf_counter()
close_month(store, sys.argv[2], run_id)
close_s = time.perf_counter() - t
with store.engine.connect() as conn:
    size = conn.execute(select(func.sum(func.length(run_files.c.content)))).scalar()
print(status, run_s, close_s, size)
"""


def roamledger(*args: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "api.cli", *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def month_file(n: int) -> Path:
    out = DATA / f"runs-{n}" / "month.ndjson"
    if not out.exists():
        roamledger(
            "generate", "--cdrs", str(n), "--seed", "12", "--versions", "2.2.1:60,2.3.0:40",
            "--out", str(out), "--quiet",
        )  # fmt: skip
    return out


def postgres_url() -> tuple[str, str] | None:
    try:
        engine = sa.create_engine(PG, connect_args={"connect_timeout": 2})
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        engine.dispose()
    except Exception:  # no server: the PostgreSQL rows are left out, and say so
        return None
    return f"{PG}?options=-csearch_path%3D{schema}", schema


def drop_schema(schema: str) -> None:
    engine = sa.create_engine(PG)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    engine.dispose()


def measure(n: int, db: str, url: str, tmp: Path) -> dict[str, object]:
    month = month_file(n)
    import_s = roamledger("import", "--store", url, "--tariffs", str(month.parent / "tariffs"), str(month))
    cli_s = roamledger("settle", "--store", url, "--month", MONTH, "--out", str(tmp / f"out-{db}-{n}"))
    done = subprocess.run(
        [sys.executable, "-c", RUN, url, MONTH], check=True, cwd=ROOT, capture_output=True, text=True
    )
    status, run_s, close_s, size = done.stdout.split()
    return {
        "cdrs": n,
        "db": db,
        "import_s": round(import_s, 2),
        "settle_store_cli_s": round(cli_s, 2),
        "api_run_s": round(float(run_s), 2),
        "run_status": status,
        "close_s": round(float(close_s), 2),
        "run_files_bytes": int(size),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="roamledger-bench-") as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            rows.append(measure(n, "sqlite", f"sqlite:///{Path(tmp) / f'store-{n}.db'}", Path(tmp)))
            print(json.dumps(rows[-1]))
            pg = postgres_url()
            if pg is None:
                print(f"PostgreSQL not reachable at {PG}: no PostgreSQL row for {n}")
                continue
            try:
                rows.append(measure(n, "postgresql", pg[0], Path(tmp)))
                print(json.dumps(rows[-1]))
            finally:
                drop_schema(pg[1])
            shutil.rmtree(Path(tmp) / f"out-sqlite-{n}", ignore_errors=True)
    load = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "settlement_runs.json").write_text(
        json.dumps({"note": args.note, "loadavg": [round(x, 2) for x in load], "rows": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
