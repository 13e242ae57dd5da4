"""The ``roamledger`` command line: one module per command, each with ``add_parser`` and ``run``.

The commands only read arguments, call :mod:`settlement` / :mod:`pricing` (or the workload generator
in :mod:`benchmarks`), and report. Exit status: 0 when the run completed (even with rejected
records — they are in the rejects file), 2 when the command line is wrong or no input could be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from api.cli import generate, price, reconcile, settle
from pricing import __version__
from pricing.errors import RoamledgerError

COMMANDS = {"price": price, "reconcile": reconcile, "settle": settle, "generate": generate}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="roamledger", description="OCPI tariff pricing and settlement")
    parser.add_argument("--version", action="version", version=f"roamledger {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(COMMANDS[args.command].run(args))
    except RoamledgerError as exc:
        print(f"roamledger: error: {exc}", file=sys.stderr)
        return 2
