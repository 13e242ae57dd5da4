"""Settlement benchmark: ``python -m benchmarks.settle [--sizes N,...] [--record-sizes N,...]``.

Two workloads, both from ``roamledger generate`` (cached under ``benchmarks/.data``):

* **flat months** (the scale path): ``--sizes`` sessions in the flat Parquet layout, 2.2.1 / 2.1.1 /
  2.3.0, with malformed records, credits, duplicates, out-of-month sessions, and the generator's
  reported totals (computed by the pricing kernel at any size; 1 % of the CDRs overcharged).
  Settled with ``--engine columnar`` (and ``--engine dask`` for ``--dask-sizes``).
* **NDJSON months** (``--record-sizes``): nested OCPI CDRs with the generator's reported totals,
  settled record by record with ``--engine local`` and ``--engine dask``.

Each settle runs in a fresh process; wall time, CDRs/s and the peak RSS of that process (the
largest of its process tree for Dask) are recorded in ``benchmarks/results/settle.json``.
Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / ".data"
RESULTS = ROOT / "benchmarks" / "results"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "api.cli", *args]


def ndjson_month(n: int) -> tuple[list[str], Path, Path]:
    folder = DATA / f"month_{n}"
    cdrs, tariffs, contracts = folder / "cdrs.ndjson", folder / "tariffs", folder / "contracts.json"
    if not cdrs.exists():
        folder.mkdir(parents=True, exist_ok=True)
        args = ["--cdrs", str(n), "--seed", "11", "--versions", "2.2.1:70,2.3.0:30", "--malformed", "10"]
        args += [
            "--quiet",
            "--out",
            str(cdrs),
            "--tariffs-out",
            str(tariffs),
            "--contracts-out",
            str(contracts),
        ]
        subprocess.run(cli("generate", *args), check=True, cwd=ROOT)
    return sorted(str(p) for p in folder.glob("cdrs*.ndjson")), tariffs, contracts


def flat_month(n: int) -> tuple[list[str], Path, Path]:
    folder = DATA / f"flat_month_{n}"
    done = folder / "cdrs.parquet"
    tariffs, contracts = folder / "tariffs", folder / "contracts.json"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        args = ["--cdrs", str(n), "--seed", "11", "--versions", "2.2.1:60,2.1.1:10,2.3.0:30"]
        args += ["--malformed", "10", "--jobs", "2", "--quiet", "--out", str(done)]
        args += ["--tariffs-out", str(tariffs), "--contracts-out", str(contracts)]
        subprocess.run(cli("generate", *args), check=True, cwd=ROOT)
    return [str(done)], tariffs, contracts


def settle_once(n: int, engine: str, sources: list[str], tariffs: Path, contracts: Path) -> dict[str, object]:
    out = DATA / f"settled_{n}_{engine}"
    shutil.rmtree(out, ignore_errors=True)  # a rerun replaces the folder: not part of the measurement
    args = ["settle", "--cdrs", *sources, "--tariffs", str(tariffs), "--month", "2026-10"]
    args += ["--contracts", str(contracts), "--engine", engine, "--out", str(out)]
    t0 = time.perf_counter()
    timed = ["/usr/bin/time", "-f", "%M"] if Path("/usr/bin/time").exists() else []
    proc = subprocess.run([*timed, *cli(*args)], check=True, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    # GNU time's %M: the settle process's peak RSS (its waited-for children included); else the
    # running maximum over this benchmark's children
    rss_kb = (
        int(proc.stderr.strip().splitlines()[-1])
        if timed
        else resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    )
    printed = proc.stdout.strip()
    return {
        "n": n,
        "engine": engine,
        "wall_s": round(wall, 2),
        "cdrs_per_s": round(n / wall),
        "peak_rss_mb": round(rss_kb / 1024),
        "printed": printed,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000,10000000", help="flat months, columnar engine")
    ap.add_argument("--record-sizes", default="10000", help="NDJSON months, record engine local + dask")
    ap.add_argument("--dask-sizes", default="1000000", help="flat months also settled with --engine dask")
    args = ap.parse_args()
    rows = []
    for n in (int(s) for s in args.record_sizes.split(",") if s):
        sources, tariffs, contracts = ndjson_month(n)
        for engine in ("local", "dask"):
            rows.append({"input": "ndjson", **settle_once(n, engine, sources, tariffs, contracts)})
            print(json.dumps(rows[-1]), flush=True)
    for n in (int(s) for s in args.sizes.split(",") if s):
        sources, tariffs, contracts = flat_month(n)
        dask_sizes = {int(x) for x in args.dask_sizes.split(",") if x}
        for engine in ("columnar", "dask") if n in dask_sizes else ("columnar",):
            rows.append({"input": "flat parquet", **settle_once(n, engine, sources, tariffs, contracts)})
            print(json.dumps(rows[-1]), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    info = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    (RESULTS / "settle.json").write_text(
        json.dumps({"machine": info, "settle": rows}, indent=2) + "\n", encoding="utf-8"
    )
    print(f"wrote {RESULTS / 'settle.json'}")


if __name__ == "__main__":
    main()
