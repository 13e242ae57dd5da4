"""Quote benchmark: ``python -m benchmarks.quotes [--in-process N] [--requests N] [--concurrency C]``.

* **in process**: ``pricing.quote(...)`` called N times per case (inline OCPI tariff, planned
  session, display strings and per-period trace included); p50/p99 per quote.
* **over HTTP**: ``roamledger serve`` (uvicorn, uvloop, httptools) on 127.0.0.1 at a free port with
  1 and 2 workers, in its own process; the client is a minimal asyncio HTTP/1.1 keep-alive client
  in this process (cheaper than httpx, so it leaves more CPU to the server). Three runs per worker
  count, each bounded by a request count: one client, one request at a time (latency); C clients
  at once (quotes/s and p99 under that load); C clients sending batches of 10 quotes.

Everything talks to loopback only; every run is bounded and the server is stopped by its process id.
Nothing here asserts a time. The machine's load average is recorded beside the numbers: when other
jobs share the cores, the figures are lower bounds of what the service does on an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from api.http.schemas import EXAMPLE_TARIFF
from pricing.quote import quote

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
EXAMPLES = ROOT / "fixtures" / "spec" / "examples"
START = "2025-03-04T17:30:00+01:00"


def cases() -> dict[str, dict[str, Any]]:
    complex_tariff = json.loads((EXAMPLES / "2.2.1" / "tariff_4_complex.json").read_text(encoding="utf-8"))
    simple = json.loads((EXAMPLES / "2.2.1" / "tariff_8_simple_025kwh.json").read_text(encoding="utf-8"))
    return {
        "simple energy tariff (spec tariff 8), 20 kWh at 11 kW": {
            "tariff": simple,
            "start": START,
            "energy_kwh": "20",
            "power_kw": "11",
        },
        "flat + energy + parking window, 20 kWh at 11 kW, 30 min parked, nl_NL": {
            "tariff": EXAMPLE_TARIFF,
            "start": START,
            "energy_kwh": "20",
            "power_kw": "11",
            "parking_minutes": "30",
            "locale": "nl_NL",
        },
        "complex tariff (spec tariff 4: 6 elements, windows, weekdays, power), 20 kWh at 11 kW": {
            "tariff": complex_tariff,
            "start": START,
            "energy_kwh": "20",
            "power_kw": "11",
            "parking_minutes": "30",
        },
    }


def percentiles(seconds: list[float]) -> dict[str, float]:
    s = sorted(seconds)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))] * 1000  # noqa: E731
    return {"p50_ms": round(pick(0.50), 3), "p99_ms": round(pick(0.99), 3), "max_ms": round(s[-1] * 1000, 3)}


def in_process(n: int) -> list[dict[str, Any]]:
    out = []
    for name, body in cases().items():
        kwargs = {k: v for k, v in body.items() if k != "tariff"}
        for _ in range(50):  # warm caches (parsed tariff, zone data, babel formats)
            quote(body["tariff"], **kwargs)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            quote(body["tariff"], **kwargs)
            times.append(time.perf_counter() - t0)
        out.append({"case": name, "quotes": n, **percentiles(times)})
        print(f"in process  {out[-1]['p50_ms']:7.3f} ms p50  {out[-1]['p99_ms']:7.3f} ms p99  {name}")
    return out


# ---- the HTTP side ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return proc, port
        except httpx.TransportError:
            time.sleep(0.2)
    stop(proc)
    raise RuntimeError("the server did not start within 60 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def request_bytes(port: int, body: bytes) -> bytes:
    head = (
        f"POST /v1/quotes HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def one_connection(
    port: int, payload: bytes, count: int, times: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            times.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def drive(
    port: int, payload: bytes, requests: int, clients: int
) -> tuple[list[float], list[int], float]:
    times: list[float] = []
    errors: list[int] = []
    per = max(1, requests // clients)
    t0 = time.perf_counter()
    await asyncio.gather(*(one_connection(port, payload, per, times, errors) for _ in range(clients)))
    return times, errors, time.perf_counter() - t0


def over_http(workers: int, requests: int, clients: int) -> list[dict[str, Any]]:
    body = cases()["flat + energy + parking window, 20 kWh at 11 kW, 30 min parked, nl_NL"]
    proc, port = start_server(workers)
    runs = []
    try:
        single = request_bytes(port, json.dumps(body).encode())
        batch = request_bytes(port, json.dumps({"quotes": [body] * 10}).encode())
        asyncio.run(drive(port, single, 200, clients))  # warm every worker
        plan = (
            ("1 client, sequential", single, max(100, requests // 4), 1, 1),
            (f"{clients} clients", single, requests, clients, 1),
            (f"{clients} clients, batches of 10", batch, max(clients, requests // 10), clients, 10),
        )
        for name, payload, n, c, per_request in plan:
            times, errors, wall = asyncio.run(drive(port, payload, n, c))
            run = {
                "workers": workers,
                "load": name,
                "requests": len(times),
                "errors": len(errors),
                "quotes_per_s": round(len(times) * per_request / wall),
                **percentiles(times),
            }
            runs.append(run)
            print(
                f"HTTP {workers} worker(s)  {name:28s} {run['quotes_per_s']:6d} quotes/s  "
                f"p50 {run['p50_ms']:.2f} ms  p99 {run['p99_ms']:.2f} ms  errors {run['errors']}"
            )
    finally:
        stop(proc)
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--in-process", type=int, default=2000, metavar="N", help="quotes per in-process case")
    ap.add_argument(
        "--requests", type=int, default=2000, metavar="N", help="requests per concurrent HTTP run"
    )
    ap.add_argument("--concurrency", type=int, default=16, metavar="C", help="clients at once")
    ap.add_argument("--workers", default="1,2", help="server worker counts to run (default 1,2)")
    args = ap.parse_args()
    load_before = os.getloadavg()
    result: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in load_before],
            "note": (
                "2-core VM shared with other agents' jobs while this ran (see the load average): the "
                "client, the server workers and other work compete for the same two cores; runs kept short"
            ),
        },
        "in_process": in_process(args.in_process),
        "http": [
            run
            for w in (int(x) for x in args.workers.split(","))
            for run in over_http(w, args.requests, args.concurrency)
        ],
    }
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "quotes.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written: {RESULTS / 'quotes.json'}")


if __name__ == "__main__":
    main()
