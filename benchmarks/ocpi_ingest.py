"""OCPI NDJSON ingest benchmark: ``python -m benchmarks.ocpi_ingest [--sizes N,...] [--workers W,...]``.

Real input is nested OCPI JSON, not the flat Parquet layout. For each size, ``roamledger
generate`` (cached under ``benchmarks/.data``) writes a month of OCPI 2.2.1 CDRs with credits,
duplicates, malformed lines and out-of-month sessions; every line then gets the shapes CPOs send
and the columnar reader used to refuse: ``"tariffs": []``, an explicit ``null`` (``remark``)
and an unknown field. ``roamledger price`` runs on it in a fresh process, NDJSON → NDJSON and →
Parquet, with 1, 2 and ``auto`` worker processes: wall time (process start included), CDRs/s, CPU
seconds of the whole process tree, the 1-minute load and a CPU probe (:func:`cpu_probe`: how
fast the VM runs at the moment) before the run, peak RSS of the largest
process of the tree, and the share of records off the columnar path (``meta.json`` "fallbacks").
The input is read once, untimed, before each run (page cache warm, as for the Rust library's
figure in PERF-NOTES). Results go to ``benchmarks/results/ocpi_ingest.json``. Nothing here asserts
a time; on a shared machine the figures are low bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from settlement.columnar.piece import RECORD_PATH_REASONS

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / ".data"
RESULTS = ROOT / "benchmarks" / "results"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "api.cli", *args]


def month(n: int) -> tuple[Path, Path]:
    """A generated 2.2.1 month of ``n`` sessions, reshaped as CPOs send it (cached)."""
    folder = DATA / f"ocpi_ingest_{n}"
    raw, real, tariffs = folder / "gen.ndjson", folder / "cdrs.ndjson", folder / "tariffs"
    if not real.exists():
        folder.mkdir(parents=True, exist_ok=True)
        args = ["--cdrs", str(n), "--seed", "5", "--malformed", "10", "--credit-rate", "0.01"]
        args += ["--duplicate-rate", "0.01", "--out-of-month-rate", "0.01", "--jobs", "2", "--quiet"]
        subprocess.run(cli("generate", *args, "--out", str(raw), "--tariffs-out", str(tariffs)), check=True)
        with open(raw, "rb") as src, open(real, "wb") as out:
            for line in src:
                body = line.rstrip(b"\r\n")
                if body.startswith(b"{") and body.endswith(b"}") and len(body) > 2:
                    body = body[:-1] + b',"tariffs":[],"remark":null,"x_cpo_extension":{"v":1}}'
                out.write(body + b"\n")
        raw.unlink()
    return real, tariffs


# a fresh process that runs the command and prints the peak RSS of the largest process of its tree
# (the command and the worker processes it spawned), in KB, and the CPU seconds of the whole tree
_PEAK = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "u = resource.getrusage(resource.RUSAGE_CHILDREN); print(u.ru_maxrss, u.ru_utime + u.ru_stime)"
)


def cpu_probe() -> float:
    """Seconds a pure-Python loop of 10^7 additions takes now (best of three): how fast this VM
    runs at the moment. Its host's load changes it, and the runs' times with it (the same loop at
    module level took 0.89 s and then 1.6–1.75 s in one afternoon, and the command 16–18 s and
    then 23–27 s), so figures taken at different probe values do not compare."""
    best = float("inf")
    for _ in range(3):
        t0, total = time.perf_counter(), 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - t0)
    return round(best, 3)


def warm(path: Path) -> None:
    """Read the input (a file, or a folder's files) once, untimed, so that the run reads it from
    the page cache: this VM pages out cold file pages (DAMON), and a 1.3 GB file read from its
    disk adds ~2.6 s at random."""
    for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if file.is_file():
            with open(file, "rb", buffering=0) as fh:
                while fh.read(16 << 20):
                    pass


def run(n: int, cdrs: Path, tariffs: Path, fmt: str, workers: str) -> dict[str, object]:
    out = DATA / f"ocpi_ingest_out_{n}.{fmt}"
    for old in out.parent.glob(out.name + "*"):
        old.unlink()
    args = ["price", "--tariffs", str(tariffs), "--workers", str(workers), "--out", str(out), str(cdrs)]
    warm(cdrs)
    probe = cpu_probe()
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK, *cli(*args)], check=True, capture_output=True, text=True, cwd=ROOT
    )
    wall = time.perf_counter() - t0
    printed, _, usage = proc.stdout.strip().rpartition("\n")
    rss, cpu = usage.split()
    rss_kb = int(rss)
    meta = json.loads(Path(f"{out}.meta.json").read_text())
    read = meta["counts"]["read"]
    off = sum(meta.get("fallbacks", {}).values())
    return {
        "n_cdrs": read,
        "output": fmt,
        "workers": int(workers) if workers.isdigit() else workers,
        "wall_s": round(wall, 2),
        "cpu_s": round(float(cpu), 2),
        "load_1m_before": round(load, 2),
        "cpu_probe_s": probe,
        "cdrs_per_s": round(read / wall),
        "peak_rss_mb": round(rss_kb / 1024),
        "off_columnar": off,
        "off_columnar_share": round(off / read, 5),
        "printed": printed,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100000", help="sessions per month, comma separated")
    ap.add_argument("--workers", default="1,2,auto", help="worker processes (or auto), comma separated")
    ap.add_argument("--formats", default="ndjson,parquet")
    ap.add_argument("--rounds", type=int, default=1, help="runs of each size, format and worker count")
    args = ap.parse_args(argv)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        cdrs, tariffs = month(n)
        size_mb = cdrs.stat().st_size / 2**20
        configs = [(f, w) for f in args.formats.split(",") for w in args.workers.split(",")]
        for fmt, w in configs * args.rounds:  # rounds interleaved: the VM's speed drifts
            r = run(n, cdrs, tariffs, fmt, w)
            r["input_mb"] = round(size_mb)
            rows.append(r)
            print(
                f"{r['n_cdrs']:>9} CDRs → {fmt:<7} workers {w}: {r['wall_s']:>6} s "
                f"{r['cdrs_per_s']:>7} CDRs/s  CPU {r['cpu_s']} s  peak RSS {r['peak_rss_mb']} MB  "
                f"(load {r['load_1m_before']}, CPU probe {r['cpu_probe_s']} s)  "
                f"off the columnar path {r['off_columnar']} ({r['off_columnar_share']:.3%})"
            )
    RESULTS.mkdir(parents=True, exist_ok=True)
    note = "2-core VM shared with other jobs while measured: figures are low bounds"
    (RESULTS / "ocpi_ingest.json").write_text(json.dumps({"note": note, "runs": rows}, indent=2) + "\n")


# ---- roamledger settle on OCPI NDJSON months ------------------------------------------------------
# ``python -m benchmarks.ocpi_ingest --settle [--sizes N,...]``: a month of the three OCPI versions
# mixed (one NDJSON file per version) with credits, duplicates, malformed lines and out-of-month
# sessions, every line reshaped as above (``"tariffs": []``, an explicit null, an unknown field),
# settled by ``roamledger settle`` (``--engine auto``: the columnar engine) in a fresh process: wall
# time, CDRs/s, peak RSS, the share of records off the columnar path (``manifest.json``
# "record_path"). Results go to ``benchmarks/results/ocpi_settle.json``.


def settle_month(n: int) -> tuple[Path, Path, Path]:
    """A generated month of ``n`` sessions, three versions mixed, reshaped (cached)."""
    folder = DATA / f"ocpi_settle_{n}"
    cdrs, tariffs, contracts = folder / "cdrs", folder / "tariffs", folder / "contracts.json"
    if not contracts.exists():
        raw = folder / "gen"
        raw.mkdir(parents=True, exist_ok=True)
        cdrs.mkdir(exist_ok=True)
        args = ["--cdrs", str(n), "--seed", "7", "--versions", "2.2.1:60,2.1.1:10,2.3.0:30"]
        args += ["--malformed", "10", "--credit-rate", "0.01", "--duplicate-rate", "0.01"]
        args += ["--out-of-month-rate", "0.01", "--jobs", "2", "--quiet", "--tariffs-out", str(tariffs)]
        args += ["--out", str(raw / "month.ndjson"), "--contracts-out", str(folder / "contracts.tmp")]
        subprocess.run(cli("generate", *args), check=True)
        for f in sorted(raw.glob("*.ndjson")):
            with open(f, "rb") as src, open(cdrs / f.name, "wb") as out:
                for line in src:
                    body = line.rstrip(b"\r\n")
                    if body.startswith(b"{") and body.endswith(b"}") and len(body) > 2:
                        body = body[:-1] + b',"tariffs":[],"remark":null,"x_cpo_extension":{"v":1}}'
                    out.write(body + b"\n")
            f.unlink()
        raw.rmdir()
        (folder / "contracts.tmp").rename(contracts)
    return cdrs, tariffs, contracts


def run_settle(n: int, cdrs: Path, tariffs: Path, contracts: Path) -> dict[str, object]:
    out = DATA / f"ocpi_settle_out_{n}"
    args = ["settle", "--cdrs", str(cdrs), "--tariffs", str(tariffs), "--contracts", str(contracts)]
    args += ["--month", "2026-10", "--out", str(out)]
    warm(cdrs)
    probe = cpu_probe()
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK, *cli(*args)], check=True, capture_output=True, text=True, cwd=ROOT
    )
    wall = time.perf_counter() - t0
    printed, _, usage = proc.stdout.strip().rpartition("\n")
    rss, cpu = usage.split()
    manifest = json.loads((out / "manifest.json").read_text())
    read = manifest["counts"]["read"]
    path = manifest.get("record_path", {})
    off = sum(path.values())
    # the settlement rules that judge a CDR against other records (credits, duplicate ids, …) take
    # the record path by design (settlement.columnar.piece); the rest left the columnar reader
    by_rule = sum(v for k, v in path.items() if k in RECORD_PATH_REASONS)
    return {
        "n_cdrs": read,
        "engine": manifest["settings"]["engine"],
        "wall_s": round(wall, 2),
        "cpu_s": round(float(cpu), 2),
        "load_1m_before": round(load, 2),
        "cpu_probe_s": probe,
        "cdrs_per_s": round(read / wall),
        "peak_rss_mb": round(int(rss) / 1024),
        "off_columnar": off,
        "off_columnar_share": round(off / read, 5),
        "off_reader": off - by_rule,
        "off_reader_share": round((off - by_rule) / read, 5),
        "record_path_by_settlement_rule": by_rule,
        "record_path": path,
        "input_mb": round(sum(f.stat().st_size for f in cdrs.iterdir()) / 2**20),
        "printed": printed,
    }


def settle_main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="roamledger settle on OCPI NDJSON months")
    ap.add_argument("--sizes", default="100000", help="sessions per month, comma separated")
    args = ap.parse_args(argv)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        r = run_settle(n, *settle_month(n))
        rows.append(r)
        print(
            f"settle {r['n_cdrs']:>9} CDRs ({r['engine']}): {r['wall_s']:>6} s {r['cdrs_per_s']:>7} CDRs/s  "
            f"peak RSS {r['peak_rss_mb']} MB  (CPU probe {r['cpu_probe_s']} s)  "
            f"off the columnar path {r['off_columnar']} "
            f"({r['off_columnar_share']:.3%}; left the reader {r['off_reader']} "
            f"= {r['off_reader_share']:.3%}, settlement rules {r['record_path_by_settlement_rule']}): "
            f"{r['record_path']}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    note = "2-core VM shared with other jobs while measured: figures are low bounds"
    doc = {"note": note, "uptime_at_end": uptime, "runs": rows}
    (RESULTS / "ocpi_settle.json").write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    if "--settle" in sys.argv[1:]:
        settle_main([a for a in sys.argv[1:] if a != "--settle"])
    else:
        main()
