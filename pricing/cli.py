"""The ``roamledger`` command line.

Exit status: 0 when the run completed (even with rejected records — they are in the rejects
file), 2 when the command line is wrong or no input could be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pricing import __version__
from pricing.errors import RoamledgerError

PRICE_EXAMPLE = """example:
  roamledger price --out out/priced.csv fixtures/golden/T04-monday/cdr.json
  roamledger price --tariffs tariffs/ --tz Europe/Amsterdam --policy period_boundaries=flag \\
      --explain --out priced.parquet cdrs.ndjson
"""


RECONCILE_EXAMPLE = """example:
  roamledger reconcile --tariffs fixtures/sample/tariffs --out out/recon.csv fixtures/sample/cdrs
"""

SETTLE_EXAMPLE = """example:
  roamledger settle --cdrs fixtures/sample/cdrs --tariffs fixtures/sample/tariffs --month 2026-10 \\
      --contracts fixtures/sample/contracts.json --out out
"""


def _add_pricing_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tariffs", action="append", metavar="PATH", help="tariff file or directory (repeatable)")
    p.add_argument("--tz", metavar="ZONE", help="IANA time zone for every CDR (overrides location/country)")
    p.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="pricing policy, repeatable (see pricing.policy.PricingPolicy)",
    )
    p.add_argument("--ocpi-version", choices=["2.1.1", "2.2.1", "2.3.0"], help="force the OCPI version")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="roamledger", description="OCPI tariff pricing and settlement")
    parser.add_argument("--version", action="version", version=f"roamledger {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    price = sub.add_parser(
        "price",
        help="price OCPI CDRs (JSON, NDJSON, Parquet) → NDJSON/CSV/Parquet",
        epilog=PRICE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_pricing_options(price)
    price.add_argument(
        "--explain", action="store_true", help="also write OUT.trace.ndjson (per-period trace)"
    )
    price.add_argument(
        "--engine",
        choices=["kernel", "reference"],
        default="kernel",
        help="pricer: the vectorized kernel (default) or the reference (same output, slower)",
    )
    price.add_argument("--workers", type=int, default=1, metavar="N", help="kernel threads (default 1)")
    price.add_argument("--out", required=True, metavar="OUT", help="output .ndjson, .csv or .parquet")
    price.add_argument("cdrs", nargs="+", metavar="CDRS", help="CDR files or directories")

    rec = sub.add_parser(
        "reconcile",
        help="recompute CDRs and explain every difference from the CPO's reported totals",
        epilog=RECONCILE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_pricing_options(rec)
    rec.add_argument("--tolerance", default="0.01", help="per-CDR tolerance for ROUNDING (default 0.01)")
    rec.add_argument("--out", required=True, metavar="OUT", help="output .ndjson, .csv or .parquet")
    rec.add_argument("cdrs", nargs="+", metavar="CDRS", help="CDR files or directories")

    st = sub.add_parser(
        "settle",
        help="monthly CPO-eMSP settlement statements from a month of CDRs",
        epilog=SETTLE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    st.add_argument("--cdrs", nargs="+", required=True, metavar="PATH", help="CDR files or directories")
    st.add_argument("--tariffs", nargs="+", metavar="PATH", help="tariff files or directories")
    st.add_argument("--month", required=True, help="YYYY-MM; a CDR belongs to the month its session ended in")
    st.add_argument("--tz", metavar="ZONE", help="statement time zone (default: contracts file, else UTC)")
    st.add_argument("--basis", choices=["reported", "recomputed"], help="pay reported or recomputed amounts")
    st.add_argument("--contracts", metavar="FILE", help="contract terms (JSON, see settlement/contracts.py)")
    st.add_argument("--locale", default="en_GB", help="locale for the HTML statement (babel), e.g. fr_FR")
    st.add_argument(
        "--engine",
        choices=["auto", "local", "columnar", "dask"],
        default="auto",
        help="local: record by record; columnar: flat-layout Parquet at scale (same files); dask: "
        "the same on a Dask cluster (flat Parquet: columnar pieces; other inputs: record chunks); "
        "auto (default): columnar when every CDR input is flat Parquet, else local",
    )
    st.add_argument(
        "--scheduler", metavar="ADDRESS", help="existing Dask scheduler (default: a LocalCluster)"
    )
    st.add_argument(
        "--piece-rows",
        type=int,
        default=500_000,
        metavar="N",
        help="columnar engine: rows (charging periods) per piece; memory grows with it (default 500000)",
    )
    st.add_argument(
        "--pricer", choices=["kernel", "reference"], default="kernel", help="pricer (they agree exactly)"
    )
    st.add_argument(
        "--history", nargs="*", default=[], metavar="DIR", help="earlier settle outputs (for credits)"
    )
    st.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="pricing policy (default period_boundaries=flag for reconciliation)",
    )
    st.add_argument("--out", required=True, metavar="DIR", help="output directory (replaced as a whole)")

    from benchmarks.workload import cli as generate

    generate.add_parser(sub)
    return parser


def cmd_price(args: argparse.Namespace) -> int:
    from pricing.batch import load_tariffs, price_inputs
    from pricing.io import all_files, sha256_file, write_ndjson, write_table
    from pricing.policy import PricingPolicy
    from pricing.report import COLUMNS, DECIMAL_COLUMNS, EXTRA_COLUMNS, TRACE_COLUMNS

    policy = PricingPolicy.from_pairs(args.policy)
    if args.tz:
        from pricing.timezones import validate_zone

        validate_zone(args.tz)
    out = Path(args.out)
    if out.suffix.lower() not in (".ndjson", ".jsonl", ".csv", ".parquet"):
        raise RoamledgerError(f"--out {out}: unknown format. Hint: end the name in .ndjson, .csv or .parquet")
    missing = [p for p in [*args.cdrs, *(args.tariffs or [])] if not Path(p).exists()]
    if missing:
        raise RoamledgerError(f"no such file or directory: {', '.join(missing)}")
    out.parent.mkdir(parents=True, exist_ok=True)

    tariffs, tariff_findings = load_tariffs(args.tariffs)
    result = price_inputs(
        args.cdrs,
        tariffs,
        policy,
        args.tz,
        args.ocpi_version,
        explain=args.explain,
        engine=args.engine,
        workers=max(1, args.workers),
    )
    write_table(out, result.rows, COLUMNS + EXTRA_COLUMNS, DECIMAL_COLUMNS)
    write_ndjson(f"{out}.rejects.ndjson", (f.as_row() for f in result.rejects))
    findings = [*tariff_findings, *result.warnings]
    if findings:
        write_ndjson(f"{out}.findings.ndjson", (f.as_row() for f in findings))
    if args.explain:
        write_ndjson(f"{out}.trace.ndjson", ({c: r.get(c) for c in TRACE_COLUMNS} for r in result.traces))
    meta = {
        "roamledger": __version__,
        "engine": args.engine,
        "policy": policy.as_dict(),
        "tz": args.tz,
        "ocpi_version": args.ocpi_version,
        "inputs": {str(p): sha256_file(p) for p in all_files([*args.cdrs, *(args.tariffs or [])])},
        "counts": {"read": result.read, "priced": result.priced, "rejected": result.rejected},
        "rounding": "OCPI 4 decimals, half-up, from exact values",
    }
    Path(f"{out}.meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"read {result.read}, priced {result.priced}, rejected {result.rejected}")
    if result.rejected:
        print(f"rejects: {out}.rejects.ndjson", file=sys.stderr)
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from decimal import Decimal, InvalidOperation

    from pricing.batch import expand_inputs
    from pricing.io import iter_sources, write_ndjson, write_table
    from pricing.policy import PricingPolicy
    from settlement.flatcdrs import is_flat_file
    from settlement.jobs import DEFAULT_POLICY, RunResult, flat_lines, parse_all, reconcile_all
    from settlement.reconcile import RECON_COLUMNS, check_duplicates_and_credits, summarize

    policy = PricingPolicy.from_pairs(args.policy) if args.policy else DEFAULT_POLICY
    try:
        tolerance = Decimal(args.tolerance)
    except InvalidOperation as exc:
        raise RoamledgerError(f"--tolerance {args.tolerance!r} is not a number") from exc
    out = Path(args.out)
    missing = [p for p in [*args.cdrs, *(args.tariffs or [])] if not Path(p).exists()]
    if missing:
        raise RoamledgerError(f"no such file or directory: {', '.join(missing)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    from pricing.batch import load_tariffs

    tariffs, _ = load_tariffs(args.tariffs)
    result = RunResult()
    files = expand_inputs(args.cdrs)
    flat = [f for f in files if is_flat_file(f)]  # the flat Parquet layout: read as columns
    parsed = parse_all(iter_sources([f for f in files if f not in flat]), args.ocpi_version, result)
    lines = reconcile_all(parsed, tariffs, policy, args.tz, tolerance)
    lines += flat_lines(flat, tariffs, policy, args.tz, tolerance, result) if flat else []
    check_duplicates_and_credits(lines)
    lines.sort(key=lambda ln: (ln.cdr.id, ln.source, ln.line or 0))
    write_table(out, [ln.as_row() for ln in lines], RECON_COLUMNS, [])
    write_ndjson(f"{out}.findings.ndjson", (f.as_row() for ln in lines for f in ln.findings))
    write_ndjson(f"{out}.rejects.ndjson", (f.as_row() for f in result.rejects))
    summary = summarize(lines) | {
        "read": result.read,
        "rejected": len(result.rejects),
        "policy": policy.as_dict(),
    }
    Path(f"{out}.summary.json").write_text(
        json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    by = summary["by_status"]
    print(
        f"read {result.read}, reconciled {len(lines)}, rejected {len(result.rejects)}; "
        + ", ".join(f"{k} {v}" for k, v in by.items())
    )
    return 0


def cmd_settle(args: argparse.Namespace) -> int:
    from pricing.policy import PricingPolicy
    from settlement.jobs import DEFAULT_POLICY, progress_printer, settle, write_run

    policy = PricingPolicy.from_pairs(args.policy) if args.policy else DEFAULT_POLICY
    missing = [
        p
        for p in [*args.cdrs, *(args.tariffs or []), *([args.contracts] if args.contracts else [])]
        if not Path(p).exists()
    ]
    if missing:
        raise RoamledgerError(f"no such file or directory: {', '.join(missing)}")
    say = progress_printer()
    from pricing.batch import expand_inputs
    from settlement.flatcdrs import is_flat_file

    files = expand_inputs(args.cdrs)
    all_flat = bool(files) and all(is_flat_file(f) for f in files)
    engine = args.engine
    if engine == "auto":
        engine = "columnar" if all_flat else "local"
    settings = {
        "engine": engine,
        "pricer": args.pricer,
        "policy": policy.as_dict(),
        "basis": args.basis,
        "tz": args.tz,
        "locale": args.locale,
        "month": args.month,
    }
    inputs = [*args.cdrs, *(args.tariffs or []), *([args.contracts] if args.contracts else [])]
    common: dict[str, Any] = {
        "tz": args.tz,
        "basis": args.basis,
        "contracts_path": args.contracts,
        "policy": policy,
        "history": args.history,
        "progress": say,
        "pricer": args.pricer,
    }
    if engine == "columnar" or (engine == "dask" and all_flat):  # flat months: columnar, here or on Dask
        from settlement.scale import settle_columnar

        out, c, statements = settle_columnar(
            args.cdrs,
            args.tariffs,
            args.month,
            args.out,
            settings=settings,
            locale=args.locale,
            inputs=inputs,
            piece_rows=max(1, args.piece_rows),
            engine="dask" if engine == "dask" else "local",
            scheduler=args.scheduler,
            **common,
        )
        return settle_summary(c, len(statements), out)
    result, contracts = settle(
        args.cdrs, args.tariffs, args.month, engine=engine, scheduler=args.scheduler, **common
    )
    say("writing")
    out = write_run(result, contracts, args.out, args.month, inputs, settings, args.locale)
    return settle_summary(result.counts, len(result.statements), out)


def settle_summary(c: dict[str, int], n_statements: int, out: Path) -> int:
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(
        f"read {c['read']}, settled {c['settled']}, excluded {c['excluded']}, rejected {c['rejected']}, "
        f"out of month {c['out_of_month']}; {n_statements} statements in {out}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "price":
            return cmd_price(args)
        if args.command == "reconcile":
            return cmd_reconcile(args)
        if args.command == "settle":
            return cmd_settle(args)
        if args.command == "generate":
            return int(args.func(args))
    except RoamledgerError as exc:
        print(f"roamledger: error: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
