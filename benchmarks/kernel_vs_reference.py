"""Kernel vs reference on a big generated month: ``python -m benchmarks.kernel_vs_reference``.

``--kind flat`` (default): N generated CDRs in the flat Parquet layout (the three OCPI versions,
malformed records included); ``--kind ndjson``: N nested OCPI CDRs (NDJSON, one file per version;
the generator computes their reported totals, ~1.4 k CDRs/s). All of them are priced with
``roamledger price --engine kernel``, every K-th record with ``--engine reference`` (the
reference is ~1,000× slower), and the rows of the sampled CDRs are compared column by column.
Writes ``benchmarks/results/kernel_vs_reference_<kind>.json``; exits 1 on any difference.
This is the issue's "identical output on 10^6 generated CDRs (a sample for the reference)"
check, run before resolving; the differential tests cover random tariffs in CI.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / ".data"
RESULTS = ROOT / "benchmarks" / "results"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "api.cli", *args]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--kind", choices=["flat", "ndjson"], default="flat")
    args = ap.parse_args()
    folder = DATA / f"kvr_{args.kind}_{args.n}"
    folder.mkdir(parents=True, exist_ok=True)
    tariffs = folder / "tariffs"
    sample = folder / "sample.parquet"
    gen = [
        "--cdrs",
        str(args.n),
        "--seed",
        "5",
        "--versions",
        "2.2.1:60,2.1.1:10,2.3.0:30",
        "--malformed",
        "20",
    ]
    gen += ["--jobs", "2", "--quiet", "--tariffs-out", str(tariffs)]
    if args.kind == "flat":
        cdrs = folder / "cdrs.parquet"
        if not cdrs.exists():
            subprocess.run(cli("generate", *gen, "--no-reported", "--out", str(cdrs)), check=True)
        files = [str(cdrs)]
        flat = pl.read_parquet(cdrs)
        record = (
            pl.col("cdr_id").ne_missing(pl.col("cdr_id").shift(1)) | (pl.int_range(pl.len()) == 0)
        ).cum_sum()
        flat.filter(record % args.every == 1).write_parquet(sample)
        samples = [str(sample)]
    else:
        cdrs = folder / "cdrs.ndjson"
        if not cdrs.exists():
            subprocess.run(cli("generate", *gen, "--out", str(cdrs)), check=True)
        files = sorted(str(p) for p in folder.glob("cdrs*.ndjson"))
        samples = []
        for f in files:  # one sample file per input file: one OCPI version per file
            samples.append(str(folder / f"sample_{Path(f).name}"))
            with open(f, encoding="utf-8") as fh, open(samples[-1], "w", encoding="utf-8") as out:
                out.writelines(line for i, line in enumerate(fh) if i % args.every == 0)

    def price(engine: str, inputs: list[str]) -> tuple[Path, float]:
        out = folder / f"{engine}.parquet"
        t0 = time.perf_counter()
        cmd = cli("price", "--engine", engine, "--tariffs", str(tariffs), "--out", str(out), *inputs)
        subprocess.run(cmd, check=True)
        return out, time.perf_counter() - t0

    kernel_out, t_kernel = price("kernel", files)
    ref_out, t_ref = price("reference", samples)
    kernel = pl.read_parquet(kernel_out)
    ref = pl.read_parquet(ref_out)
    cols = [c for c in ref.columns if c not in ("source", "line")]
    key = ["cdr_id"]
    joined = ref.select(cols).join(kernel.select(cols), on=key, how="left", suffix="__k", nulls_equal=True)
    diffs = {}
    for c in cols:
        if c in key:
            continue
        bad = joined.filter(pl.col(c).ne_missing(pl.col(f"{c}__k")))
        if bad.height:
            diffs[c] = bad.select(key).head(5)["cdr_id"].to_list()
    missing = joined.filter(pl.col(cols[1] + "__k").is_null() & pl.col(cols[1]).is_not_null()).height
    result = {
        "kind": args.kind,
        "n": args.n,
        "kernel_rows": kernel.height,
        "reference_sample_rows": ref.height,
        "every": args.every,
        "columns_compared": len(cols) - 1,
        "differences": diffs,
        "kernel_s": round(t_kernel, 1),
        "reference_sample_s": round(t_ref, 1),
        "identical": not diffs and not missing,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"kernel_vs_reference_{args.kind}.json").write_text(
        json.dumps(result, indent=2) + "\n", encoding="utf-8"
    )
    print(json.dumps(result))
    return 0 if result["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
