"""``roamledger reconcile``: reported vs recomputed totals per CDR, with a status and findings in words."""

from __future__ import annotations

import argparse
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from api.cli.options import (
    add_fail_on_option,
    add_pricing_options,
    check_given_once,
    check_run,
    command_parser,
    fail_on_status,
    policy_of,
    require_existing,
)
from api.cli.outputs import check_output_file, kept_note, staged_files
from api.cli.tariff_check import check_tariffs
from pricing.batch import load_tariffs
from pricing.errors import Finding, RoamledgerError
from pricing.files import expand_inputs
from pricing.flat import is_flat_file
from pricing.io import dumps, iter_sources, write_ndjson, write_table
from settlement.columnar.reconcile import reconcile_columnar
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
    p.add_argument(
        "--engine",
        choices=["auto", "local", "columnar"],
        default="auto",
        help="local: record by record; columnar: in pieces, flat Parquet and OCPI NDJSON as columns "
        "(same files); auto (default): columnar, or local with --ocpi-version",
    )
    add_fail_on_option(p, "any CDR does not agree (a status other than MATCH or ROUNDING)")
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
    check_given_once(args.cdrs)
    check_given_once(args.tariffs)
    check_output_file(out, [*args.cdrs, *(args.tariffs or [])])
    check_tariffs(args.tariffs)
    out.parent.mkdir(parents=True, exist_ok=True)

    tariffs, _ = load_tariffs(args.tariffs)
    engine = args.engine
    if engine == "auto":
        engine = "local" if args.ocpi_version else "columnar"
    if engine == "columnar":
        if args.ocpi_version:
            raise RoamledgerError(
                "--ocpi-version is read by the local engine. Hint: leave out --engine columnar"
            )
        done = reconcile_columnar(args.cdrs, tariffs, policy, args.tz, tolerance)
        summary = done.summary | {
            "read": done.read,
            "rejected": len(done.rejects),
            "policy": policy.as_dict(),
            "record_path": dict(sorted(done.record_path.items())),  # what went record by record
        }
        return write_outputs(args, out, done.rows, done.findings, done.rejects, summary, done.read)
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
    findings = [dumps(f.as_row()) for ln in lines for f in ln.findings]
    return write_outputs(
        args, out, [ln.as_row() for ln in lines], findings, result.rejects, summary, result.read
    )


def write_outputs(
    args: argparse.Namespace,
    out: Path,
    rows: list[dict[str, Any]],
    findings: list[str],
    rejects: list[Finding],
    summary: dict[str, Any],
    read: int,
) -> int:
    """The reconciliation files of either engine, and the command's verdict."""
    with staged_files(out) as staging:
        staging.failed = read == 0 or len(rejects) == read
        write_table(staging.path(out.name), rows, RECON_COLUMNS, [])
        staging.path(f"{out.name}.findings.ndjson").write_text(
            "".join(t + "\n" for t in findings), encoding="utf-8"
        )
        write_ndjson(staging.path(f"{out.name}.rejects.ndjson"), (f.as_row() for f in rejects))
        staging.path(f"{out.name}.summary.json").write_text(
            json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    by = summary["by_status"]
    print(
        f"read {read}, reconciled {len(rows)}, rejected {len(rejects)}; "
        + ", ".join(f"{k} {v}" for k, v in by.items())
    )
    placed = out.parent / (staging.placed(f"{out.name}.rejects.ndjson") or "")
    check_run(read, len(rejects), " ".join(args.cdrs), str(placed), kept_note(staging))
    return fail_on_status(args, len(rejects), not_agreed(by), "CDRs not matching (see the findings)")
