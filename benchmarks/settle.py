"""Settlement benchmark: ``python -m benchmarks.settle [--sizes N,...] [--record-sizes N,...]``.

Two workloads, both from ``roamledger generate`` (cached under ``benchmarks/.data``):

* **flat months** (the scale path): ``--sizes`` sessions in the flat Parquet layout, 2.2.1 / 2.1.1 /
  2.3.0, with malformed records, credits, duplicates, out-of-month sessions. The generator's own
  reported totals run the pricing engine record by record (~1.4 k CDRs/s), too slow for 10^7, so
  the benchmark fills ``reported_total_excl/incl`` itself: the kernel's recomputed totals rounded
  half-up to cents (credits negated), and every 97th session billed 0.50 more (an overcharge).
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
OVERCHARGE_EVERY = 97
OVERCHARGE_E6 = 500_000  # 0.50


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
    raw, done = folder / "raw.parquet", folder / "cdrs.parquet"
    tariffs, contracts = folder / "tariffs", folder / "contracts.json"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        args = ["--cdrs", str(n), "--seed", "11", "--versions", "2.2.1:60,2.1.1:10,2.3.0:30"]
        args += ["--malformed", "10", "--no-reported", "--jobs", "2", "--quiet", "--out", str(raw)]
        args += ["--tariffs-out", str(tariffs), "--contracts-out", str(contracts)]
        subprocess.run(cli("generate", *args), check=True, cwd=ROOT)
        fill_reported(raw, tariffs, done)
        raw.unlink()
    return [str(done)], tariffs, contracts


def fill_reported(src: Path, tariffs: Path, dst: Path) -> None:
    """Reported totals = the kernel's totals rounded half-up to cents (exact integers throughout)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pricing.batch import load_tariffs
    from pricing.compile import compile_tariffs
    from pricing.flat import arrow_schema, iter_flat_tables
    from pricing.kernel import price_table
    from pricing.periods import from_flat, split_flat
    from settlement.jobs import DEFAULT_POLICY

    store, _ = load_tariffs([tariffs])
    dec = pa.decimal128(38, 6)

    def decimals(e6: np.ndarray, valid: np.ndarray) -> pa.Array:
        words = np.stack([e6, e6 >> 63], axis=1).astype(np.int64)
        mask = pa.array(valid, pa.bool_())
        return pa.Array.from_buffers(dec, len(e6), [mask.buffers()[1], pa.py_buffer(words.tobytes())])

    def cents_e6(e4: np.ndarray) -> np.ndarray:
        q = (np.abs(e4) + 50) // 100
        return np.where(e4 < 0, -q, q) * 10_000

    writer = pq.ParquetWriter(f"{dst}.tmp", arrow_schema(optional=True), compression="zstd")
    seen = 0
    for table in iter_flat_tables(str(src), 500_000):
        fr = split_flat(table)
        pt, _rejects, rec_ok = from_flat(fr, store, DEFAULT_POLICY)
        res = price_table(pt, DEFAULT_POLICY, compile_tariffs(pt.tariffs, pt.zones, pt.group_ranges()))
        n_rec = fr.n_records
        excl, incl = np.zeros(n_rec, np.int64), np.zeros(n_rec, np.int64)
        has_x, has_i = np.zeros(n_rec, bool), np.zeros(n_rec, bool)
        excl[rec_ok], has_x[rec_ok] = cents_e6(res["total_excl_e4"]), ~res["total_excl_null"]
        incl[rec_ok], has_i[rec_ok] = cents_e6(res["total_incl_e4"]), ~res["total_incl_null"]
        over = (np.arange(n_rec) + seen) % OVERCHARGE_EVERY == 0
        excl += np.where(over, OVERCHARGE_E6, 0)
        incl += np.where(over, OVERCHARGE_E6 * 6 // 5, 0)
        credit = table.column("credit").to_numpy(zero_copy_only=False)[fr.first_row].astype(bool)
        excl, incl = np.where(credit, -excl, excl), np.where(credit, -incl, incl)
        seen += n_rec
        rows = fr.rec
        table = table.set_column(
            table.schema.get_field_index("reported_total_excl"),
            "reported_total_excl",
            decimals(excl[rows], has_x[rows]),
        )
        table = table.set_column(
            table.schema.get_field_index("reported_total_incl"),
            "reported_total_incl",
            decimals(incl[rows], has_i[rows]),
        )
        writer.write_table(table)
    writer.close()
    os.replace(f"{dst}.tmp", dst)


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
