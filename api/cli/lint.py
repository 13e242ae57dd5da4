"""``roamledger lint``: mistakes in OCPI tariffs, each with a JSON path and a fix."""

from __future__ import annotations

import argparse

from api.cli.options import add_fail_on_option, command_parser, fail_on_status
from api.cli.quote import add_format_option, emit
from pricing.errors import RoamledgerError
from pricing.io import iter_sources
from pricing.lint import lint_tariff

EXAMPLE = """example:
  roamledger lint fixtures/spec/examples/2.2.1/
  roamledger lint --fail-on findings --format json tariffs.json
with --fail-on findings: exit status 1 when some tariff has an error or a warning (info does not count)
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "lint", "lint OCPI tariffs: unreachable elements, gaps, VAT, caps, ...", EXAMPLE)
    p.add_argument("--ocpi-version", choices=["2.1.1", "2.2.1", "2.3.0"], help="force the OCPI version")
    add_fail_on_option(p)
    add_format_option(p)
    p.add_argument(
        "tariffs", nargs="+", metavar="TARIFFS", help="tariff files (object, array, envelope) or dirs"
    )


def run(args: argparse.Namespace) -> int:
    reports = []
    lines = []
    for rec in iter_sources(args.tariffs):
        if rec.error is not None:
            raise RoamledgerError(f"{rec.source}:{rec.line}: {rec.error.message}")
        report = lint_tariff(rec.obj, args.ocpi_version)
        reports.append({"source": rec.source, "index": rec.line, **report.as_dict()})
        what = "no tariff id" if report.tariff_id is None else f"tariff {report.tariff_id}"
        lines.append(f"{rec.source} [{rec.line}] {what}: {len(report.findings)} findings")
        lines += [f"  {f.severity} {f.code} {f.path}: {f.message}. Fix: {f.fix}" for f in report.findings]
    if not reports:
        raise RoamledgerError(f"no tariff found in {' '.join(args.tariffs)}")
    emit(args, {"reports": reports}, "\n".join(lines))
    counts = [r["counts"] for r in reports]
    errors = sum(c["error"] for c in counts)
    warnings = sum(c["warning"] for c in counts)
    return fail_on_status(args, 0, errors + warnings, "findings (errors and warnings)")
