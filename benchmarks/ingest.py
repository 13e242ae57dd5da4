"""Store benchmark: ``python -m benchmarks.ingest [--sizes N,...] [--posts N] [--stores sqlite,postgresql]``.

Three measurements per store (an SQLite file, and a fresh schema of the PostgreSQL at
``ROAMLEDGER_TEST_POSTGRES`` or ``postgresql+psycopg://postgres@127.0.0.1:5432/test`` when it
answers), on months from ``roamledger generate`` (OCPI 2.2.1 and 2.3.0, cached under
``benchmarks/.data``):

* **CDR POSTs** over HTTP on loopback: ``roamledger serve --workers 2`` (uvicorn) with the store,
  ``--posts`` CDRs sent by a plain asyncio HTTP/1.1 client over ``--concurrency`` keep-alive
  connections, each with its CPO's token: throughput and latency percentiles (p50, p99), the
  answers by status, and the group commits' batches (from the ingest log);
* **bulk import** (``Store.import_files``: the columnar NDJSON reader, COPY on PostgreSQL) of the
  month into an empty store: CDRs/s;
* **settle from the store** (``roamledger settle --store … --month``, a fresh process, the columnar
  engine): wall time and CDRs/s, per size of ``--sizes``.

Results go to ``benchmarks/results/ingest.json`` (``--out``) with the machine's load (``os.getloadavg``).
Nothing here asserts a time; on a shared machine the figures are low bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvloop

from pricing.io import iter_sources
from settlement.store import Store

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / ".data"
RESULTS = ROOT / "benchmarks" / "results"
PG = os.environ.get("ROAMLEDGER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "api.cli", *args]


def month(n: int) -> tuple[list[Path], Path, Path]:
    """A generated month of ``n`` sessions: (NDJSON files, tariffs folder, contracts) (cached)."""
    folder = DATA / f"ingest_{n}"
    tariffs, contracts = folder / "tariffs", folder / "contracts.json"
    if not contracts.exists():
        folder.mkdir(parents=True, exist_ok=True)
        args = ["--cdrs", str(n), "--seed", "5", "--versions", "2.2.1:70,2.3.0:30", "--credit-rate", "0.01"]
        args += ["--out-of-month-rate", "0", "--jobs", "2", "--quiet", "--out", str(folder / "cdrs.ndjson")]
        args += ["--tariffs-out", str(tariffs), "--contracts-out", str(contracts)]
        subprocess.run(cli("generate", *args), check=True, stdout=subprocess.DEVNULL)
    return sorted(folder.glob("*.ndjson")), tariffs, contracts


@contextmanager
def store_url(kind: str, tmp: Path) -> Iterator[str | None]:
    """A fresh, empty store of the kind (None when PostgreSQL does not answer)."""
    if kind == "sqlite":
        path = tmp / f"bench_{uuid.uuid4().hex[:8]}.db"
        yield f"sqlite:///{path}"
        path.unlink(missing_ok=True)
        return
    try:
        admin = sa.create_engine(PG, connect_args={"connect_timeout": 2})
        with admin.begin() as conn:
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except sa.exc.OperationalError:
        yield None
        return
    try:
        yield f"{PG}?options=-csearch_path%3D{schema}&application_name={schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def _procs() -> list[tuple[int, int, str, int]]:
    """(pid, parent pid, command name, CPU ticks: user + system) of every process now."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out.append((int(entry.name), int(fields[1]), name, int(fields[11]) + int(fields[12])))
    return out


def backends(url: str) -> set[int]:
    """The PostgreSQL backend processes of the benchmark's schema (its ``application_name``)."""
    if not url.startswith("postgresql"):
        return set()
    name = url.rpartition("application_name=")[2]
    engine = sa.create_engine(PG)
    with engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %(n)s", {"n": name}
        )
        pids = {pid for (pid,) in found}
    engine.dispose()
    return pids


def cpu_s(server: int, url: str) -> dict[str, float]:
    """CPU seconds so far of the server process tree and of its PostgreSQL backends (Linux)."""
    ours = backends(url)
    procs = _procs()
    children: dict[int, list[int]] = {}
    for pid, ppid, _, _ in procs:
        children.setdefault(ppid, []).append(pid)
    tree, todo = set(), [server]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo.extend(children.get(pid, ()))
    tick = os.sysconf("SC_CLK_TCK")
    return {
        "server": sum(t for pid, _, _, t in procs if pid in tree) / tick,
        "postgres": sum(t for pid, _, _, t in procs if pid in ours) / tick,
        "client": time.process_time(),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cdr_lines(files: list[Path], limit: int) -> list[tuple[str, bytes]]:
    """Up to ``limit`` CDR lines of the month with their CPO (``CC*PID``): from each file a share
    by its size (2.2.1 and 2.3.0), read from its start only as far as needed."""
    sizes = [f.stat().st_size for f in files]
    shares = [limit * s // sum(sizes) for s in sizes]
    shares[0] += limit - sum(shares)
    out: list[tuple[str, bytes]] = []
    for f, share in zip(files, shares, strict=True):
        taken = 0
        with f.open("rb") as lines:
            for line in lines:
                if taken == share:
                    break
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict) and obj.get("country_code") and obj.get("party_id"):
                    out.append((f"{obj['country_code']}*{obj['party_id']}", line.rstrip(b"\r\n")))
                    taken += 1
    return out


async def _post_all(
    base: str, lines: list[tuple[str, bytes]], concurrency: int
) -> tuple[list[float], Counter]:
    """POST every line, ``concurrency`` keep-alive connections each with one request in flight.

    A plain HTTP/1.1 client on asyncio streams (requests built as bytes beforehand, answers read
    by their Content-Length): httpx's client costs ~4 ms of CPU per request here, which on two
    shared cores would measure the client, not the server."""
    latencies: list[float] = []
    status: Counter[Any] = Counter()
    host, _, port = base.removeprefix("http://").partition(":")
    queue = iter(
        (
            f"POST /ocpi/2.2.1/cdrs HTTP/1.1\r\nHost: {host}\r\nAuthorization: Token bench-{party}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for party, body in lines
    )

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for request in queue:
                t0 = time.perf_counter()
                try:
                    writer.write(request)
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    await reader.readexactly(length)
                except (OSError, asyncio.IncompleteReadError) as exc:  # counted, not hidden
                    status[type(exc).__name__] += 1
                    return
                latencies.append(time.perf_counter() - t0)
                status[int(head.split(b" ", 2)[1])] += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, status


def bench_posts(
    url: str, files: list[Path], posts: int, concurrency: int, workers: int, scratch: Path
) -> dict[str, Any]:
    lines = cdr_lines(files, posts)
    store = Store(url)
    for party in sorted({p for p, _ in lines}):
        cc, pid = party.split("*")
        store.add_party(cc, pid, "CPO", f"bench-{party}")
    store.close()
    port = free_port()
    env = {**os.environ, "ROAMLEDGER_STORE_URL": url}
    cmd = cli("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers))
    log = open(scratch / "ingest_server.log", "wb")  # closed below
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_post_all(base, lines[: min(200, len(lines))], concurrency))  # warm-up (stored)
            rest = lines[min(200, len(lines)) :]
            cpu0, load0 = cpu_s(proc.pid, url), os.getloadavg()[0]
            t0 = time.perf_counter()
            latencies, status = runner.run(_post_all(base, rest, concurrency))
            wall = time.perf_counter() - t0
            cpu1, load1 = cpu_s(proc.pid, url), os.getloadavg()[0]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    latencies.sort()

    def pct(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)

    return {
        "posts": len(latencies),
        "workers": workers,
        "concurrency": concurrency,
        "wall_s": round(wall, 3),
        "posts_per_s": round(len(latencies) / wall, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "status": {str(k): v for k, v in sorted(status.items(), key=lambda kv: str(kv[0]))},
        # CPU milliseconds per POST of the timed run (PostgreSQL: the server's backends, by their
        # application_name; their WAL writer and checkpointer not counted), the 1-minute load
        "cpu_ms_per_post": {k: round(1000 * (cpu1[k] - cpu0[k]) / max(len(latencies), 1), 3) for k in cpu0},
        "load": [round(load0, 2), round(load1, 2)],
        "batches": batches(url),
    }


def batches(url: str) -> dict[str, Any]:
    """The group commits as the ingest log saw them: CDRs logged per distinct ``at_ms`` (one batch
    writes its rows with one time; two batches in the same millisecond count as one)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        sizes = [
            n
            for (n,) in conn.exec_driver_sql(
                "SELECT count(*) FROM ingest_log WHERE kind = 'cdr' GROUP BY at_ms ORDER BY 1"
            )
        ]
    engine.dispose()
    if not sizes:
        return {}
    return {
        "count": len(sizes),
        "mean": round(sum(sizes) / len(sizes), 2),
        "p50": sizes[len(sizes) // 2],
        "max": sizes[-1],
    }


def bench_import(url: str, files: list[Path], tariffs: Path) -> dict[str, Any]:
    store = Store(url)
    for rec in iter_sources([tariffs]):  # the tariffs the month is settled with (not timed)
        store.put_tariff(rec.obj, stand_in=True)
    before = {pid: t for pid, _, _, t in _procs()}
    t0 = time.perf_counter()
    counts, reasons = store.import_files([str(f) for f in files])
    wall = time.perf_counter() - t0
    ours, tick = backends(url) | {os.getpid()}, os.sysconf("SC_CLK_TCK")
    cpu = {pid: (t - before.get(pid, 0)) / tick for pid, _, _, t in _procs() if pid in ours}
    store.close()
    per = 1e5 / max(counts["read"], 1)
    return {
        "wall_s": round(wall, 3),
        "cdrs_per_s": round(counts["read"] / wall, 1),
        "cpu_s_per_1e5": {  # this process (reader, writer) and its PostgreSQL backends
            "importer": round(cpu.pop(os.getpid()) * per, 2),
            "postgres": round(sum(cpu.values()) * per, 2),
        },
        "counts": counts,
        "record_by_record": dict(reasons),
    }


def bench_settle(url: str, contracts: Path, tmp: Path) -> dict[str, Any]:
    out = tmp / f"settle_{uuid.uuid4().hex[:8]}"
    args = ["settle", "--store", url, "--month", "2026-10", "--contracts", str(contracts), "--out", str(out)]
    t0 = time.perf_counter()
    done = subprocess.run(cli(*args), cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode not in (0, 1):
        raise RuntimeError(f"settle failed: {done.stderr.strip()[-500:]}")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    subprocess.run(["rm", "-rf", str(out)], check=True)
    read = manifest["counts"]["read"] if "counts" in manifest else None
    return {
        "wall_s": round(wall, 3),
        "cdrs": read,
        "cdrs_per_s": round(read / wall, 1) if read else None,
        "record_path": manifest.get("record_path", {}),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000", help="CDRs per month for import and settle")
    ap.add_argument("--posts", type=int, default=3000, help="CDR POSTs per store (bounded)")
    ap.add_argument("--concurrency", type=int, default=16, help="POSTs in flight")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--stores", default="sqlite,postgresql")
    ap.add_argument("--note", default="", help="conditions of the run (e.g. a shared machine)")
    ap.add_argument("--out", default="ingest.json", help="file name under benchmarks/results (or a path)")
    ap.add_argument("--what", default="posts,import,settle", help="the measurements to take")
    ap.add_argument(
        "--scratch", type=Path, default=DATA / "ingest_tmp", help="folder of the SQLite stores and server log"
    )
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    what = set(args.what.split(","))
    tmp = args.scratch
    tmp.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for kind in args.stores.split(","):
        # the posted CDRs: from the first month of --sizes that holds enough of them
        files, _, _ = month(next((n for n in sizes if n >= args.posts), max(args.posts, 1000)))
        with store_url(kind, tmp) as url:
            if url is None:
                print(f"{kind}: not reachable, skipped")
                continue
            if "posts" in what:
                row = {
                    "what": "posts",
                    "store": kind,
                    **bench_posts(url, files, args.posts, args.concurrency, args.workers, tmp),
                }
                print(json.dumps(row))
                rows.append(row)
        for n in sizes if what & {"import", "settle"} else ():
            files, tariffs, contracts = month(n)
            with store_url(kind, tmp) as url:
                if url is None:
                    continue
                row = {"what": "import", "store": kind, "size": n, **bench_import(url, files, tariffs)}
                print(json.dumps(row))
                rows.append(row)
                if "settle" not in what:
                    continue
                row = {"what": "settle", "store": kind, "size": n, **bench_settle(url, contracts, tmp)}
                print(json.dumps(row))
                rows.append(row)
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "note": args.note,
        "rows": rows,
    }
    (RESULTS / args.out).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
