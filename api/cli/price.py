"""``roamledger price``: one result row per CDR, rejects beside it, optional per-period trace."""

from __future__ import annotations

import argparse
import importlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from api.cli.options import (
    add_fail_on_option,
    add_pricing_options,
    check_given_once,
    command_parser,
    policy_of,
    positive_count,
    require_existing,
)
from api.cli.outputs import check_output_file
from pricing.errors import RoamledgerError
from pricing.files import all_files, columnar_ndjson, sha256_file
from pricing.policy import CDR_POLICY
from pricing.timezones import validate_zone
from pricing.workers import AUTO, processes, start_helpers, stop_helpers

# the pricing and its files, loaded once the hashes and the helpers are started (:func:`run`)
PRICING = "api.cli.price_run"

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
    return positive_count(text, "'auto' or ")


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
    check_given_once(args.cdrs)
    check_given_once(args.tariffs)
    check_output_file(out, [*args.cdrs, *(args.tariffs or [])])
    stop = threading.Event()  # set when the run fails: it does not wait for the input hashes
    with ThreadPoolExecutor(1) as hasher:  # hashlib lets the pricing run meanwhile
        inputs = hasher.submit(input_hashes, [*args.cdrs, *(args.tariffs or [])], stop)
        try:
            first = args.cdrs[0]  # one NDJSON file priced on several processes: start their helpers now
            one = len(args.cdrs) == 1 and Path(first).is_file()
            if one and columnar_ndjson(first, args.engine, args.explain, args.ocpi_version):
                start_helpers(processes(first, args.workers) - 1)
            return int(importlib.import_module(PRICING).priced(args, policy, out, inputs))
        except BaseException:
            stop.set()
            raise
        finally:
            stop_helpers()


def input_hashes(paths: list[str], stop: threading.Event | None = None) -> dict[str, str]:
    """``meta.json`` ``inputs``: the SHA-256 of every input file (until ``stop`` is set)."""
    return {str(p): sha256_file(p, stop) for p in all_files(paths)}
