"""Settlement benchmark: ``python -m benchmarks.settle [--sizes 10000,50000]``.

Generates a month of nested OCPI CDRs (NDJSON, with reported totals) per size, then runs
``roamledger settle`` on it with the local engine and with Dask (a 2-worker LocalCluster), each in
a fresh process, and records wall time, CDRs/s and the peak RSS of the process tree's largest
member. Writes ``benchmarks/results/settle.json``; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / ".data"
RESULTS = ROOT / "benchmarks" / "results"


def month(n: int) -> tuple[Path, Path, Path]:
    folder = DATA / f"month_{n}"
    cdrs, tariffs, contracts = folder / "cdrs.ndjson", folder / "tariffs", folder / "contracts.json"
    if not cdrs.exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pricing.cli",
                "generate",
                "--cdrs",
                str(n),
                "--seed",
                "11",
                "--month",
                "2026-10",
                "--cpos",
                "3",
                "--emsps",
                "4",
                "--versions",
                "2.2.1:70,2.3.0:30",
                "--malformed",
                "10",
                "--quiet",
                "--out",
                str(cdrs),
                "--tariffs-out",
                str(tariffs),
                "--contracts-out",
                str(contracts),
            ],
            check=True,
            cwd=ROOT,
        )
    return folder / "cdrs", tariffs, contracts  # the generator may write one file per version


def settle_once(n: int, engine: str) -> dict[str, object]:
    cdrs, tariffs, contracts = month(n)
    sources = sorted(str(p) for p in cdrs.parent.glob("cdrs*.ndjson"))
    out = DATA / f"settled_{n}_{engine}"
    t0 = time.perf_counter()
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pricing.cli",
            "settle",
            "--cdrs",
            *sources,
            "--tariffs",
            str(tariffs),
            "--month",
            "2026-10",
            "--contracts",
            str(contracts),
            "--engine",
            engine,
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.strip()
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "n": n,
        "engine": engine,
        "wall_s": round(wall, 2),
        "cdrs_per_s": round(n / wall),
        "peak_rss_mb": round(rss),
        "printed": printed,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,50000")
    args = ap.parse_args()
    rows = []
    for n in (int(s) for s in args.sizes.split(",") if s):
        for engine in ("local", "dask"):
            r = settle_once(n, engine)
            rows.append(r)
            print(json.dumps(r), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "settle.json").write_text(json.dumps({"settle": rows}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS / 'settle.json'}")


if __name__ == "__main__":
    main()
