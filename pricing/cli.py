"""The ``roamledger`` command line.

Exit status: 0 when the run completed (even with rejected records — they are in the rejects
file), 2 when the command line is wrong or no input could be read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pricing import __version__
from pricing.errors import RoamledgerError

PRICE_EXAMPLE = """example:
  roamledger price --out out/priced.csv fixtures/golden/T04-monday/cdr.json
  roamledger price --tariffs tariffs/ --tz Europe/Amsterdam --policy period_boundaries=flag \\
      --explain --out priced.parquet cdrs.ndjson
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
    price.add_argument("--explain", action="store_true", help="also write OUT.trace.ndjson (per-period trace)")
    price.add_argument("--engine", choices=["reference"], default="reference", help="pricer to use")
    price.add_argument("--out", required=True, metavar="OUT", help="output .ndjson, .csv or .parquet")
    price.add_argument("cdrs", nargs="+", metavar="CDRS", help="CDR files or directories")
    return parser


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def input_files(paths: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        out.extend(sorted(c for c in p.rglob("*") if c.is_file()) if p.is_dir() else [p])
    return out


def cmd_price(args: argparse.Namespace) -> int:
    from pricing.batch import load_tariffs, price_records
    from pricing.io import iter_sources, write_ndjson, write_table
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
    result = price_records(
        iter_sources(args.cdrs), tariffs, policy, args.tz, args.ocpi_version, explain=args.explain
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
        "inputs": {str(p): sha256_of(p) for p in input_files([*args.cdrs, *(args.tariffs or [])])},
        "counts": {"read": result.read, "priced": result.priced, "rejected": result.rejected},
        "rounding": "OCPI 4 decimals, half-up, from exact values",
    }
    Path(f"{out}.meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"read {result.read}, priced {result.priced}, rejected {result.rejected}")
    if result.rejected:
        print(f"rejects: {out}.rejects.ndjson", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "price":
            return cmd_price(args)
    except RoamledgerError as exc:
        print(f"roamledger: error: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
