"""``roamledger price``: one result row per CDR, rejects beside it, optional per-period trace."""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from api.cli.options import (
    add_fail_on_option,
    add_pricing_options,
    check_run,
    check_tariffs,
    command_parser,
    fail_on_status,
    policy_of,
    require_existing,
)
from api.cli.outputs import check_output_file, staged_files
from pricing import __version__
from pricing.errors import RoamledgerError
from pricing.files import all_files, columnar_ndjson, sha256_file, skipped_files
from pricing.policy import CDR_POLICY, PricingPolicy
from pricing.timezones import validate_zone
from pricing.workers import AUTO, processes, start_helpers, stop_helpers

EXAMPLE = """example:
  roamledger price --out out/priced.csv fixtures/golden/T04-monday/cdr.json
  roamledger price --tariffs tariffs/ --tz Europe/Amsterdam --policy period_boundaries=flag \\
      --explain --out priced.parquet cdrs.ndjson
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "price", "price OCPI CDRs (JSON, NDJSON, Parquet) → NDJSON/CSV/Parquet", EXAMPLE)
    add_pricing_options(p)
    p.add_argument("--explain", action="store_true", help="also write OUT.trace.ndjson (per-period trace)")
    p.add_argument(
        "--engine",
        choices=["kernel", "reference"],
        default="kernel",
        help="pricer: the vectorized kernel (default) or the reference (same output, slower)",
    )
    p.add_argument(
        "--workers",
        type=workers_count,
        default=AUTO,
        metavar="N",
        help="kernel threads; OCPI NDJSON: processes reading and pricing spans of "
        "the file (same output); default auto: one per core, one process for a file under 32 MB",
    )
    add_fail_on_option(p)
    p.add_argument("--out", required=True, metavar="OUT", help="output .ndjson, .csv or .parquet")
    p.add_argument("cdrs", nargs="+", metavar="CDRS", help="CDR files or directories")


def workers_count(text: str) -> int:
    """``--workers``: ``auto`` (0) or a count of at least 1."""
    if text == "auto":
        return AUTO
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not 'auto' or a whole number of at least 1")
    return n


def run(args: argparse.Namespace) -> int:
    """Checks, then the input hashes and the helper processes started, then the pricing's modules
    loaded (about a second: the hashes and the helpers' own loading run meanwhile on the other
    cores), then the pricing."""
    policy = policy_of(args.policy, CDR_POLICY)
    if args.tz:
        validate_zone(args.tz)
    out = Path(args.out)
    if out.suffix.lower() not in (".ndjson", ".jsonl", ".csv", ".parquet"):
        raise RoamledgerError(f"--out {out}: unknown format. Hint: end the name in .ndjson, .csv or .parquet")
    require_existing([*args.cdrs, *(args.tariffs or [])])
    check_output_file(out, [*args.cdrs, *(args.tariffs or [])])
    with ThreadPoolExecutor(1) as hasher:  # hashlib lets the pricing run meanwhile
        inputs = hasher.submit(input_hashes, [*args.cdrs, *(args.tariffs or [])])
        try:
            first = args.cdrs[0]  # one NDJSON file priced on several processes: start their helpers now
            one = len(args.cdrs) == 1 and Path(first).is_file()
            if one and columnar_ndjson(first, args.engine, args.explain, args.ocpi_version):
                start_helpers(processes(first, args.workers) - 1)
            check_tariffs(args.tariffs)
            out.parent.mkdir(parents=True, exist_ok=True)
            return priced(args, policy, out, inputs)
        finally:
            stop_helpers()


def input_hashes(paths: list[str]) -> dict[str, str]:
    """``meta.json`` ``inputs``: the SHA-256 of every input file."""
    return {str(p): sha256_file(p) for p in all_files(paths)}


def priced(args: argparse.Namespace, policy: PricingPolicy, out: Path, inputs: Future[dict[str, str]]) -> int:
    """The pricing and its files (``inputs``: the input hashes, computed meanwhile)."""
    from pricing.batch import load_tariffs, price_inputs
    from pricing.io import write_ndjson, write_table
    from pricing.ndjson_parallel import skip_pandas_probe
    from pricing.report import COLUMNS, DECIMAL_COLUMNS, EXTRA_COLUMNS, TRACE_COLUMNS

    skip_pandas_probe()  # this command never hands pandas objects to Arrow
    tariffs, tariff_findings = load_tariffs(args.tariffs)
    result = price_inputs(
        args.cdrs,
        tariffs,
        policy,
        args.tz,
        args.ocpi_version,
        explain=args.explain,
        engine=args.engine,
        workers=args.workers,
        render_ndjson=out.suffix.lower() in (".ndjson", ".jsonl") and not args.explain,
    )
    findings = [*tariff_findings, *result.warnings]
    with staged_files(out) as staging:
        staging.failed = result.read == 0 or result.rejected == result.read
        write_table(staging.path(out.name), result.rows, COLUMNS + EXTRA_COLUMNS, DECIMAL_COLUMNS)
        write_ndjson(staging.path(f"{out.name}.rejects.ndjson"), (f.as_row() for f in result.rejects))
        if findings:
            write_ndjson(staging.path(f"{out.name}.findings.ndjson"), (f.as_row() for f in findings))
        if args.explain:
            trace = ({c: r.get(c) for c in TRACE_COLUMNS} for r in result.traces)
            write_ndjson(staging.path(f"{out.name}.trace.ndjson"), trace)
        meta = {
            "roamledger": __version__,
            "engine": args.engine,
            "policy": policy.as_dict(),
            "tz": args.tz,
            "ocpi_version": args.ocpi_version,
            "inputs": inputs.result(),
            "counts": {"read": result.read, "priced": result.priced, "rejected": result.rejected},
            "fallbacks": result.fallback_counts(),
            "rounding": "OCPI 4 decimals, half-up, from exact values",
        }
        if skipped := skipped_files([*args.cdrs, *(args.tariffs or [])]):  # named, not silent
            meta["skipped_inputs"] = [str(p) for p in skipped]
        staging.path(f"{out.name}.meta.json").write_text(
            json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    print(f"read {result.read}, priced {result.priced}, rejected {result.rejected}")
    if result.rejected:
        print(f"rejects: {out}.rejects.ndjson", file=sys.stderr)
    check_run(result.read, result.rejected, " ".join(args.cdrs), f"{out}.rejects.ndjson")
    return fail_on_status(args, result.rejected, len(findings), "findings")
