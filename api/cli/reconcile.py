"""``roamledger reconcile``: reported vs recomputed totals per CDR, with a status and findings in words."""

from __future__ import annotations

import argparse
import json
from decimal import Decimal, InvalidOperation
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
from api.cli.outputs import staged_files
from pricing.batch import expand_inputs, load_tariffs
from pricing.errors import RoamledgerError
from pricing.flat import is_flat_file
from pricing.io import iter_sources, write_ndjson, write_table
from settlement.jobs import DEFAULT_POLICY, RunResult, flat_lines, parse_all, reconcile_all
from settlement.reconcile import RECON_COLUMNS, check_duplicates_and_credits, summarize
from settlement.rules import not_agreed

EXAMPLE = """example:
  roamledger reconcile --tariffs fixtures/sample/tariffs --out out/recon.csv fixtures/sample/cdrs
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command_parser(
        sub,
        "reconcile",
        "recompute CDRs and explain every difference from the CPO's reported totals",
        EXAMPLE,
    )
    add_pricing_options(p)
    p.add_argument("--tolerance", default="0.01", help="per-CDR tolerance for ROUNDING (default 0.01)")
    add_fail_on_option(p)
    p.add_argument("--out", required=True, metavar="OUT", help="output .ndjson, .csv or .parquet")
    p.add_argument("cdrs", nargs="+", metavar="CDRS", help="CDR files or directories")


def run(args: argparse.Namespace) -> int:
    policy = policy_of(args.policy, DEFAULT_POLICY)
    try:
        tolerance = Decimal(args.tolerance)
    except InvalidOperation as exc:
        raise RoamledgerError(f"--tolerance {args.tolerance!r} is not a number") from exc
    out = Path(args.out)
    require_existing([*args.cdrs, *(args.tariffs or [])])
    check_tariffs(args.tariffs)
    out.parent.mkdir(parents=True, exist_ok=True)

    tariffs, _ = load_tariffs(args.tariffs)
    result = RunResult()
    files = expand_inputs(args.cdrs)
    flat = [f for f in files if is_flat_file(f)]  # the flat Parquet layout: read as columns
    parsed = parse_all(iter_sources([f for f in files if f not in flat]), args.ocpi_version, result)
    lines = reconcile_all(parsed, tariffs, policy, args.tz, tolerance)
    lines += flat_lines(flat, tariffs, policy, args.tz, tolerance, result) if flat else []
    check_duplicates_and_credits(lines)
    lines.sort(key=lambda ln: (ln.cdr.id, ln.source, ln.line or 0))
    summary = summarize(lines) | {
        "read": result.read,
        "rejected": len(result.rejects),
        "policy": policy.as_dict(),
    }
    with staged_files(out) as staging:
        write_table(staging.path(out.name), [ln.as_row() for ln in lines], RECON_COLUMNS, [])
        findings = (f.as_row() for ln in lines for f in ln.findings)
        write_ndjson(staging.path(f"{out.name}.findings.ndjson"), findings)
        write_ndjson(staging.path(f"{out.name}.rejects.ndjson"), (f.as_row() for f in result.rejects))
        staging.path(f"{out.name}.summary.json").write_text(
            json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    by = summary["by_status"]
    print(
        f"read {result.read}, reconciled {len(lines)}, rejected {len(result.rejects)}; "
        + ", ".join(f"{k} {v}" for k, v in by.items())
    )
    check_run(result.read, len(result.rejects), " ".join(args.cdrs), f"{out}.rejects.ndjson")
    return fail_on_status(args, len(result.rejects), not_agreed(by), "CDRs not matching (see the findings)")
