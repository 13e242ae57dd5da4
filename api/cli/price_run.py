"""``roamledger price``'s pricing and its files: what :mod:`api.cli.price` loads (numpy, polars,
pyarrow and the pricing: about a second) once it has started the input hashes and the helper
processes, which then run meanwhile."""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import Future
from pathlib import Path

from api.cli.options import check_run, fail_on_status
from api.cli.outputs import kept_note, staged_files
from api.cli.tariff_check import check_tariffs
from pricing import __version__
from pricing.batch import load_tariffs, price_inputs
from pricing.files import skipped_files
from pricing.io import write_ndjson, write_table
from pricing.ndjson_parallel import skip_pandas_probe
from pricing.policy import PricingPolicy
from pricing.report import COLUMNS, DECIMAL_COLUMNS, EXTRA_COLUMNS, TRACE_COLUMNS


def priced(args: argparse.Namespace, policy: PricingPolicy, out: Path, inputs: Future[dict[str, str]]) -> int:
    """The pricing and its files (``inputs``: the input hashes, computed meanwhile)."""
    check_tariffs(args.tariffs)
    out.parent.mkdir(parents=True, exist_ok=True)
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
        render_ndjson=out if out.suffix.lower() in (".ndjson", ".jsonl") and not args.explain else None,
    )
    findings = [*tariff_findings, *result.warnings]
    with staged_files(out) as staging:
        staging.failed = result.read == 0 or result.rejected == result.read
        write_table(staging.path(out.name), result.rows, COLUMNS + EXTRA_COLUMNS, DECIMAL_COLUMNS)
        write_ndjson(staging.path(f"{out.name}.rejects.ndjson"), (f.as_row() for f in result.rejects))
        # written even when empty (as reconcile does): an earlier run's findings never stay beside
        # this run's output as if they were its own
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
            # the files of this run (an OUT.trace.ndjson of an earlier --explain run is not one)
            "outputs": sorted(filter(None, map(staging.placed, [*staging.names, f"{out.name}.meta.json"]))),
        }
        if skipped := skipped_files([*args.cdrs, *(args.tariffs or [])]):  # named, not silent
            meta["skipped_inputs"] = [str(p) for p in skipped]
        staging.path(f"{out.name}.meta.json").write_text(
            json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    print(f"read {result.read}, priced {result.priced}, rejected {result.rejected}")
    rejects = out.parent / (staging.placed(f"{out.name}.rejects.ndjson") or "")
    if result.rejected:
        print(f"rejects: {rejects}", file=sys.stderr)
    check_run(result.read, result.rejected, " ".join(args.cdrs), str(rejects), kept_note(staging))
    return fail_on_status(args, result.rejected, len(findings), "findings")
