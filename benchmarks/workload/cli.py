"""``roamledger generate``: the command line (``add_parser(subparsers)``, ``run(args)``)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.workload.config import Config, parse_versions
from benchmarks.workload.run import generate
from benchmarks.workload.specs import BLOCK, CPOS, EMSPS
from pricing.errors import InputError

EXAMPLE = """example:
  roamledger generate --cdrs 4800 --seed 2026 --month 2026-10 --cpos 3 --emsps 4 \\
      --versions 2.2.1:60,2.1.1:10,2.3.0:30 --malformed 10 --tariffs-out fixtures/sample/tariffs \\
      --contracts-out fixtures/sample/contracts.json --out fixtures/sample/cdrs/cdrs.ndjson
  roamledger generate --cdrs 4000000 --seed 1 --no-reported --out big.parquet
"""


# ---- command line -------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return v


def _rate(text: str) -> float:
    v = float(text)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError("must be a fraction between 0 and 1")
    return v


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``roamledger generate`` to the CLI's subparsers."""
    p = subparsers.add_parser(
        "generate",
        help="write a realistic, deterministic month of OCPI CDRs (+ tariffs) for tests and benchmarks",
        description=(
            "Generate OCPI CDRs (NDJSON, one file per version) or the flat Parquet layout, and the "
            "tariffs they use. Same arguments give byte-identical files. Reported totals are computed "
            "by the pricing engine and rounded to cents."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--cdrs",
        type=_positive_int,
        required=True,
        metavar="N",
        help="well-formed sessions (CDRs) to generate",
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help=".ndjson/.jsonl: nested OCPI CDRs, first version in FILE, others in <stem>.v<digits>.ndjson; "
        ".parquet: the flat layout of pricing.flat",
    )
    p.add_argument(
        "--month", default="2026-10", metavar="YYYY-MM", help="month of the session starts (default 2026-10)"
    )
    p.add_argument(
        "--versions",
        default="2.2.1",
        metavar="V[:W],...",
        help="OCPI versions with optional weights, e.g. 2.2.1:60,2.1.1:10,2.3.0:30 (default 2.2.1)",
    )
    p.add_argument(
        "--cpos",
        type=int,
        default=3,
        choices=range(1, len(CPOS) + 1),
        metavar="K",
        help="CPOs (1-5, default 3)",
    )
    p.add_argument(
        "--emsps",
        type=int,
        default=4,
        choices=range(1, len(EMSPS) + 1),
        metavar="M",
        help="eMSPs (1-6, default 4)",
    )
    p.add_argument(
        "--malformed", type=_positive_int, default=0, metavar="K", help="broken records to add (default 0)"
    )
    _add_rate_arguments(p)
    _add_output_arguments(p)
    p.set_defaults(func=run)
    return p


def _add_rate_arguments(p: argparse.ArgumentParser) -> None:
    """How often each defect and kind of session occurs."""
    p.add_argument(
        "--overcharge-rate",
        type=_rate,
        default=0.01,
        metavar="R",
        help="CDRs priced with a wrong tariff (default 0.01)",
    )
    p.add_argument(
        "--credit-rate", type=_rate, default=0.003, metavar="R", help="2.2+ CDRs credited (default 0.003)"
    )
    p.add_argument(
        "--duplicate-rate", type=_rate, default=0.002, metavar="R", help="CDRs sent twice (default 0.002)"
    )
    p.add_argument(
        "--out-of-month-rate",
        type=_rate,
        default=0.002,
        metavar="R",
        help="sessions in the previous/next month (default 0.002)",
    )
    p.add_argument(
        "--straddle-rate",
        type=_rate,
        default=0.01,
        metavar="R",
        help="sessions with a period straddling a price change (0.01)",
    )
    p.add_argument(
        "--dc-share", type=_rate, default=0.3, metavar="R", help="share of DC locations (default 0.3)"
    )


def _add_output_arguments(p: argparse.ArgumentParser) -> None:
    """Reported totals, side outputs and the run itself."""
    p.add_argument(
        "--tariffs-out",
        metavar="DIR",
        help="where to write the tariff JSON files (default: <FILE's dir>/tariffs)",
    )
    p.add_argument(
        "--embed-tariffs", action="store_true", help="also embed the tariff in every CDR ('tariffs')"
    )
    p.add_argument(
        "--reported",
        choices=["yes", "no"],
        default="yes",
        help="reported totals computed by the pricing kernel (default yes; no = null columns, Parquet only)",
    )
    p.add_argument(
        "--no-reported", dest="reported", action="store_const", const="no", help="same as --reported no"
    )
    p.add_argument("--summary", metavar="FILE", help="also write the counts as JSON")
    p.add_argument(
        "--contracts-out",
        metavar="FILE",
        help="also write a contracts file for `roamledger settle` (party mapping for 2.1.1, sample terms)",
    )
    p.add_argument(
        "--labels",
        metavar="FILE",
        help="also write the ground truth of every special record (NDJSON: file, line, cdr_id, labels)",
    )
    p.add_argument(
        "--jobs", type=int, default=1, metavar="J", help="worker processes (the output does not depend on it)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def config_from_args(args: argparse.Namespace) -> Config:
    try:
        year, month = (int(x) for x in args.month.split("-"))
        date(year, month, 1)
    except ValueError as exc:
        raise InputError(f"--month {args.month!r}: use YYYY-MM, e.g. 2026-10") from exc
    versions, weights = parse_versions(args.versions)
    cfg = Config(
        cdrs=args.cdrs,
        seed=args.seed,
        out=Path(args.out),
        month=f"{year:04d}-{month:02d}",
        versions=versions,
        version_weights=weights,
        cpos=args.cpos,
        emsps=args.emsps,
        malformed=args.malformed,
        overcharge_rate=args.overcharge_rate,
        credit_rate=args.credit_rate,
        duplicate_rate=args.duplicate_rate,
        out_of_month_rate=args.out_of_month_rate,
        straddle_rate=args.straddle_rate,
        dc_share=args.dc_share,
        tariffs_out=Path(args.tariffs_out) if args.tariffs_out else None,
        embed_tariffs=args.embed_tariffs,
        reported=args.reported,
        summary=Path(args.summary) if args.summary else None,
        labels=Path(args.labels) if args.labels else None,
        contracts_out=Path(args.contracts_out) if args.contracts_out else None,
    )
    _ = cfg.fmt  # validates the suffix
    if cfg.reported == "no" and cfg.fmt == "ndjson":
        raise InputError("--no-reported needs a .parquet output. Hint: OCPI CDRs require total_cost")
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if not args.quiet and total > BLOCK:
            print(
                f"generated {done:,}/{total:,} sessions ({time.perf_counter() - t0:.1f} s)", file=sys.stderr
            )

    summary = generate(cfg, progress, jobs=max(1, args.jobs))
    elapsed = time.perf_counter() - t0
    for path, lines in summary["files"].items():
        print(f"wrote {path}: {lines} records")
    print(
        f"sessions {summary['sessions']}, malformed {summary['malformed']}, credits {summary['credits']}, "
        f"re-issues {summary['reissues']}, duplicates {summary['duplicates_identical']} identical + "
        f"{summary['duplicates_conflicting']} conflicting, overcharged {summary['overcharged']}, "
        f"straddling {summary['straddling_sessions']}; tariffs in {summary['tariffs']}; {elapsed:.1f} s"
    )
    return 0
