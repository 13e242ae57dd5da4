"""Pricing benchmark: ``python -m benchmarks.pricing [--sizes 10000,100000,1000000,10000000]``.

Measures on this machine, one process per measurement (so peak RSS is that measurement's own):

* kernel throughput from flat Parquet for each N, one thread and two threads — CDRs/s and
  periods/s of the pricing step alone, and of read + table building + pricing together;
* end-to-end: an NDJSON file of nested OCPI CDRs → ``roamledger price --engine kernel`` → Parquet;
* the reference pricer on a small N, for the ratio;
* peak RSS, and the cost per CDR against N (scaling).

Workloads come from ``roamledger generate`` (cached under ``benchmarks/.data``). Results go to
``benchmarks/results/pricing.json`` and a table on stdout. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars  # noqa: F401  (imported before any clock starts: a fixed cost per process, not per CDR)
import pyarrow.parquet  # noqa: F401

from pricing.batch import load_tariffs
from pricing.compile import compile_tariffs
from pricing.flat import iter_flat_tables, split_flat
from pricing.io import RowFrame, write_table
from pricing.kernel import price_table
from pricing.periods import from_flat
from pricing.policy import PricingPolicy
from pricing.report import COLUMNS, DECIMAL_COLUMNS, result_table

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / ".data"
RESULTS = ROOT / "benchmarks" / "results"
PIECE_ROWS = 500_000  # rows per flat Parquet piece: 10^7 CDRs in ~1.6 GB (1.1 GB without pre_buffer)


def run(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout


def run_measured(cmd: list[str]) -> tuple[str, float]:
    """(stdout, peak RSS in MB of that child alone: ``wait4``, not the max over all children)."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, cwd=ROOT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, cmd)
        out.seek(0)
        return out.read(), usage.ru_maxrss / 1024


def roamledger(*args: str) -> list[str]:
    return [sys.executable, "-m", "api.cli", *args]


def workload(n: int, kind: str) -> tuple[Path, Path]:
    """(CDR file, tariff dir) of n generated sessions; generated once and cached."""
    DATA.mkdir(parents=True, exist_ok=True)
    out = DATA / f"cdrs_{n}.{kind}"
    tariffs = DATA / f"tariffs_{n}_{kind}"
    if not out.exists():
        reported = ["--no-reported"] if kind == "parquet" else []  # NDJSON CDRs need total_cost
        args = ["--cdrs", str(n), "--seed", "7", "--versions", "2.2.1", *reported, "--quiet"]
        run(roamledger("generate", *args, "--out", str(out), "--tariffs-out", str(tariffs)))
    return out, tariffs


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_kernel(path: Path, tariffs: Path, workers: int, piece_rows: int = PIECE_ROWS) -> dict[str, float]:
    """In this process: flat Parquet in pieces → table → kernel → result rows written as Parquet
    (to a scratch file, as ``roamledger price`` writes them). Times per stage; imports are done
    before the clock starts (a fixed cost per process, not per CDR)."""
    store, _ = load_tariffs([tariffs])
    policy = PricingPolicy()
    # warm-up outside the clock: the first Parquet read and decode of a process costs ~0.3 s once
    # (Arrow thread pools, allocator, kernel registry) whatever N is
    split_flat(next(iter_flat_tables(str(path), 1_000)))
    t_read = t_build = t_price = t_out = 0.0
    sessions = periods = 0
    scratch = tempfile.mkdtemp(prefix="roamledger-bench-")
    t0 = time.perf_counter()
    pieces = iter_flat_tables(str(path), piece_rows)
    k = 0
    while True:
        a = time.perf_counter()
        table = next(pieces, None)
        if table is None:
            break
        fr = split_flat(table)
        b = time.perf_counter()
        pt, _rejects, _ok = from_flat(fr, store, policy, None)
        del fr, table, _rejects, _ok  # the decoded columns are not needed after the build
        ct = compile_tariffs(pt.tariffs, pt.zones, pt.group_ranges())
        c = time.perf_counter()
        res = price_table(pt, policy, ct, workers)
        d = time.perf_counter()
        out = os.path.join(scratch, f"piece{k}.parquet")
        write_table(out, RowFrame(result_table(res, pt, ct)), COLUMNS, DECIMAL_COLUMNS)
        os.remove(out)
        k += 1
        e = time.perf_counter()
        t_read, t_build, t_price, t_out = t_read + b - a, t_build + c - b, t_price + d - c, t_out + e - d
        sessions += pt.n_sessions
        periods += pt.n_periods
        del pt, ct, res
    total = time.perf_counter() - t0
    os.rmdir(scratch)
    kernel_total = t_read + t_build + t_price
    return {
        "sessions": sessions,
        "periods": periods,
        "piece_rows": piece_rows,
        "read_s": round(t_read, 3),
        "build_s": round(t_build, 3),
        "price_s": round(t_price, 3),
        "output_s": round(t_out, 3),
        "total_s": round(kernel_total, 3),
        "total_with_output_s": round(total, 3),
        "price_cdrs_per_s": round(sessions / t_price) if t_price else 0,
        "price_periods_per_s": round(periods / t_price) if t_price else 0,
        "total_cdrs_per_s": round(sessions / kernel_total) if kernel_total else 0,
        "total_with_output_cdrs_per_s": round(sessions / total) if total else 0,
        "price_ns_per_cdr": round(t_price / sessions * 1e9) if sessions else 0,
        "total_ns_per_cdr": round(kernel_total / sessions * 1e9) if sessions else 0,
        "peak_rss_mb": round(peak_rss_mb()),
    }


def child(args: argparse.Namespace) -> None:
    path, tariffs = Path(args.path), Path(args.tariffs)
    print(json.dumps(measure_kernel(path, tariffs, args.workers, args.piece_rows)))


def in_child(n: int, workers: int, piece_rows: int = PIECE_ROWS) -> dict[str, float]:
    path, tariffs = workload(n, "parquet")
    out = run(
        [
            sys.executable,
            "-m",
            "benchmarks.pricing",
            "--child",
            "--path",
            str(path),
            "--tariffs",
            str(tariffs),
            "--workers",
            str(workers),
            "--piece-rows",
            str(piece_rows),
        ]
    )
    return json.loads(out.strip().splitlines()[-1])


def end_to_end(n: int, engine: str, kind: str = "ndjson") -> dict[str, float]:
    path, tariffs = workload(n, kind)
    out = DATA / f"priced_{n}_{engine}_{kind}.parquet"
    t0 = time.perf_counter()
    printed, rss = run_measured(
        roamledger("price", "--engine", engine, "--tariffs", str(tariffs), "--out", str(out), str(path))
    )
    wall = time.perf_counter() - t0
    return {
        "n": n,
        "engine": engine,
        "input": kind,
        "wall_s": round(wall, 3),
        "cdrs_per_s": round(n / wall),
        "printed": printed.strip(),
        "peak_rss_mb": round(rss),
    }


def table(rows: list[dict[str, object]], cols: list[str]) -> str:
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols]
    line = " | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    sep = "-|-".join("-" * w for w in widths)
    body = [" | ".join(str(r.get(c, "")).ljust(w) for c, w in zip(cols, widths, strict=True)) for r in rows]
    return "\n".join([line, sep, *body])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000,10000000")
    ap.add_argument("--e2e", type=int, default=100_000, help="CDRs for the NDJSON end-to-end run")
    ap.add_argument(
        "--e2e-flat", type=int, default=1_000_000, help="CDRs for the flat Parquet end-to-end run"
    )
    ap.add_argument("--reference-n", type=int, default=2_000, help="CDRs for the reference pricer")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--tariffs", help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--piece-rows", type=int, default=PIECE_ROWS, help="rows per flat Parquet piece")
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    kernel_rows = []
    for n in sizes:
        for workers in (1, 2):
            r = {"n": n, "workers": workers, **in_child(n, workers, args.piece_rows)}
            kernel_rows.append(r)
            print(table([r], list(r)), flush=True)
    e2e = [
        end_to_end(args.e2e, "kernel"),
        end_to_end(args.e2e_flat, "kernel", "parquet"),
        end_to_end(args.reference_n, "reference"),
        end_to_end(args.reference_n, "kernel"),
    ]
    result = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "kernel_from_parquet": kernel_rows,
        "end_to_end_ndjson": e2e,
        "reference_vs_kernel_ratio": round(e2e[3]["cdrs_per_s"] / max(e2e[2]["cdrs_per_s"], 1), 1),
        "notes": "price_* = pricing step only; total_* = read + build table + price (pieces of "
        f"{args.piece_rows} rows); output_s = result rows → Parquet per piece; total_with_output_* = "
        "all of it; imports and a warm-up read of the first 1,000 rows before the clock; one fresh "
        "process per row; peak RSS of that process",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pricing.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print()
    print(
        table(
            kernel_rows,
            [
                "n",
                "workers",
                "sessions",
                "periods",
                "price_cdrs_per_s",
                "price_periods_per_s",
                "total_cdrs_per_s",
                "total_with_output_cdrs_per_s",
                "price_ns_per_cdr",
                "total_ns_per_cdr",
                "peak_rss_mb",
            ],
        )
    )
    print()
    print(table(e2e, ["n", "engine", "input", "wall_s", "cdrs_per_s", "peak_rss_mb"]))
    print(f"\nwrote {RESULTS / 'pricing.json'}")


if __name__ == "__main__":
    main()
