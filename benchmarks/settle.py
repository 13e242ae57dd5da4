"""Settlement benchmark: ``python -m benchmarks.settle [--sizes N,...] [--record-sizes N,...]``.

Two workloads, both from ``roamledger generate`` (cached under ``benchmarks/.data``):

* **flat months** (the scale path): ``--sizes`` sessions in the flat Parquet layout, 2.2.1 / 2.1.1 /
  2.3.0, with malformed records, credits, duplicates, out-of-month sessions, and the generator's
  reported totals (computed by the pricing kernel at any size; 1 % of the CDRs overcharged).
  Settled with ``--engine columnar`` (and ``--engine dask`` for ``--dask-sizes``).
* **messy flat months** (``--messy-sizes``): the flat month made messy by
  :func:`benchmarks.workload.messy.make_messy` — 50 % of the CDRs without a reported total (not
  comparable: disputed, no amount on the ``reported`` basis), 20 % of all overcharged by a
  systematic +10 % — settled with ``--engine columnar`` right after its clean twin (the same
  month before the mess, same conditions); the rows also record how many CDRs the engine sent
  record by record (the manifest's ``record_path``) and the statuses.
* **NDJSON months** (``--record-sizes``): nested OCPI CDRs with the generator's reported totals,
  settled record by record with ``--engine local`` and ``--engine dask``.

Each settle runs in a fresh process; wall time, CDRs/s and the peak RSS of that process (the
largest of its process tree for Dask) are recorded in ``benchmarks/results/settle.json`` (rows of
an earlier run that this one does not measure are kept). Nothing here asserts a time. ``--note``
records the conditions (e.g. a machine shared with other work: the numbers are then low bounds).
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

from benchmarks.workload.messy import Mess, make_messy

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


def messy_month(n: int) -> tuple[list[str], Path, Path]:
    """The flat month of ``n`` sessions made messy (:data:`MESS`), with the same tariffs and contracts."""
    [src], tariffs, contracts = flat_month(n)
    folder = DATA / f"messy_month_{n}"
    done = folder / "cdrs.parquet"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "cdrs.parquet.partial"
        made = make_messy(Path(src), tmp, MESS)
        tmp.rename(done)
        (folder / "mess.json").write_text(json.dumps(made, indent=2) + "\n", encoding="utf-8")
    return [str(done)], tariffs, contracts


MESS = Mess(no_reported=0.5, overcharged=0.2, markup_percent=10)


def settle_once(
    n: int, engine: str, sources: list[str], tariffs: Path, contracts: Path, label: str = ""
) -> dict[str, object]:
    out = DATA / f"settled_{n}_{engine}{label}"
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
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    row: dict[str, object] = {
        "n": n,
        "engine": engine,
        "wall_s": round(wall, 2),
        "cdrs_per_s": round(n / wall),
        "peak_rss_mb": round(rss_kb / 1024),
        "printed": printed,
    }
    if "record_path" in manifest:  # the columnar engine: CDRs sent record by record, by reason
        row["record_path"] = manifest["record_path"]
        row["by_status"] = manifest["reconciliation"]["by_status"]
    shutil.rmtree(out, ignore_errors=True)  # a 10^7 run folder is several GB
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000,10000000", help="flat months, columnar engine")
    ap.add_argument("--record-sizes", default="10000", help="NDJSON months, record engine local + dask")
    ap.add_argument("--dask-sizes", default="1000000", help="flat months also settled with --engine dask")
    ap.add_argument("--messy-sizes", default="1000000,10000000", help="messy flat months, columnar engine")
    ap.add_argument("--note", default="", help="conditions of this run, recorded with its rows")
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
    for n in (int(s) for s in args.messy_sizes.split(",") if s):
        # the clean month right before its messy twin: the same conditions for the comparison
        for kind, month in (("clean twin", flat_month), ("messy", messy_month)):
            sources, tariffs, contracts = month(n)
            row = settle_once(n, "columnar", sources, tariffs, contracts, "_" + kind.replace(" ", "_"))
            rows.append({"input": f"flat parquet, {kind}", **row})
            print(json.dumps(rows[-1]), flush=True)
    if args.note:
        for row in rows:
            row["note"] = args.note
    RESULTS.mkdir(parents=True, exist_ok=True)
    info = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    target = RESULTS / "settle.json"
    kept = []
    if target.exists():  # rows this run did not measure stay
        measured = {(r["input"], r["n"], r["engine"]) for r in rows}
        old = json.loads(target.read_text(encoding="utf-8")).get("settle", [])
        kept = [r for r in old if (r["input"], r["n"], r["engine"]) not in measured]
    target.write_text(json.dumps({"machine": info, "settle": kept + rows}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS / 'settle.json'}")


if __name__ == "__main__":
    main()
