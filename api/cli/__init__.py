"""The ``roamledger`` command line: one module per command, each with ``add_parser`` and ``run``.

The commands only read arguments, call :mod:`settlement` / :mod:`pricing` (or the workload generator
in :mod:`benchmarks`), and report. Every failure is one sentence on stderr and an exit status
(:data:`EXIT_STATUS`), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from api.cli import (
    close,
    generate,
    ingest,
    lint,
    party,
    price,
    pricesheet,
    quote,
    reconcile,
    serve,
    settle,
)
from api.cli.options import EXIT_BUG, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_STATUS_HELP
from pricing import __version__
from pricing.errors import RoamledgerError

COMMANDS = {
    "price": price,
    "reconcile": reconcile,
    "settle": settle,
    "close": close,
    "import": ingest,
    "party": party,
    "generate": generate,
    "quote": quote,
    "price-sheet": pricesheet,
    "lint": lint,
    "serve": serve,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roamledger",
        description="OCPI tariff pricing and settlement",
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
        return fail(str(exc), EXIT_INPUT)
    except KeyboardInterrupt:
        return fail("interrupted, nothing written", EXIT_INTERRUPTED)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        return fail(f"{exc.strerror or exc}{where}", EXIT_INPUT)
    except Exception as exc:
        if os.environ.get("ROAMLEDGER_DEBUG"):
            raise
        return fail(
            f"internal error ({type(exc).__name__}: {exc}). This is a bug in roamledger: please report it "
            "with the command line (ROAMLEDGER_DEBUG=1 shows the traceback)",
            EXIT_BUG,
        )


def fail(message: str, code: int) -> int:
    print(f"roamledger: error: {message}", file=sys.stderr)
    return code
