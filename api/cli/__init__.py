"""The ``roamledger`` command line: one module per command, each with ``add_parser`` and ``run``.

The commands only read arguments, call :mod:`settlement` / :mod:`pricing` (or the workload generator
in :mod:`benchmarks`), and report. Every failure is one sentence on stderr and an exit status
(:data:`EXIT_STATUS`), never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import re
import signal
import sys
from collections.abc import Sequence
from types import ModuleType

from api.cli.status import EXIT_BUG, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_STATUS_HELP, EXIT_TERMINATED
from pricing import __version__
from pricing.errors import RoamledgerError

# command → its module, imported when the command is named: ``roamledger price`` (and each
# process it starts) does not pay ~1.5 s for the settlement store, the HTTP server and the
# workload generator it never uses. ``--help``, no command or an unknown one loads them all.
COMMANDS = {
    "price": "api.cli.price",
    "reconcile": "api.cli.reconcile",
    "settle": "api.cli.settle",
    "close": "api.cli.close",
    "import": "api.cli.ingest",
    "party": "api.cli.party",
    "generate": "api.cli.generate",
    "quote": "api.cli.quote",
    "price-sheet": "api.cli.pricesheet",
    "lint": "api.cli.lint",
    "serve": "api.cli.serve",
}

# polars' memory allocator (jemalloc, which reads this variable when polars loads) is built to give
# freed memory back to the system sooner than jemalloc's defaults; a batch command that prices a
# file span after span then takes fresh pages for every span, one page fault each (measured on
# `price`, 10^6 OCPI CDRs: ~500k faults, ~1.5 CPU-s of system time). jemalloc's defaults keep freed
# pages 10 s for reuse. Set before the command loads polars, unless the user set it; the
# command's worker processes inherit it.
BATCH_ALLOCATOR = ("_RJEM_MALLOC_CONF", "dirty_decay_ms:10000,muzzy_decay_ms:10000")
# numpy's OpenBLAS starts a thread per core when numpy loads, which then polls for work (seen in
# `price` profiles, ~0.5 % of its CPU); nothing here does linear algebra, and the cores run the
# command's own worker processes. Same rule: set before numpy loads, unless the user set it.
BATCH_BLAS = ("OPENBLAS_NUM_THREADS", "1")
BATCH_COMMANDS = frozenset({"price", "reconcile", "settle"})


def command_module(command: str) -> ModuleType:
    """The module of ``command`` (a key of :data:`COMMANDS`): ``add_parser`` and ``run``."""
    return importlib.import_module(COMMANDS[command])


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or only of ``only`` (the one the command line names)."""
    parser = argparse.ArgumentParser(
        prog="roamledger",
        description="OCPI tariff pricing and settlement",
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"roamledger {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        if only is None or command == only:
            command_module(command).add_parser(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``docker stop``, systemd) ends a command the way Ctrl-C does: the same
    clean-up (helper processes stopped, partial and hidden files removed), then exit 143."""


def _terminate(_signum: int, _frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Ctrl-C at any moment — also while the command's modules load, which takes
    seconds (this module itself loads only light ones) — is one sentence and exit 130; on the
    command line (``argv`` None) SIGTERM is one sentence and exit 143."""
    if argv is None:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return run_command(list(sys.argv[1:] if argv is None else argv))
    except Terminated:
        return fail("terminated, nothing written", EXIT_TERMINATED)
    except KeyboardInterrupt:
        return fail("interrupted, nothing written", EXIT_INTERRUPTED)


def run_command(words: list[str]) -> int:
    only = words[0] if words and words[0] in COMMANDS else None
    if only in BATCH_COMMANDS:
        os.environ.setdefault(*BATCH_ALLOCATOR)
        os.environ.setdefault(*BATCH_BLAS)
    args = build_parser(only).parse_args(words)
    try:
        return int(command_module(args.command).run(args))
    except RoamledgerError as exc:
        return fail(str(exc), EXIT_INPUT)
    except OSError as exc:
        return fail(os_error_message(exc), EXIT_INPUT)
    except Exception as exc:
        if os.environ.get("ROAMLEDGER_DEBUG"):
            raise
        return fail(
            f"internal error ({type(exc).__name__}: {exc}). This is a bug in roamledger: please report it "
            "with the command line (ROAMLEDGER_DEBUG=1 shows the traceback)",
            EXIT_BUG,
        )


WRITE_ERRORS = {errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on the device"}
# refused on a file the run stages its outputs in (a folder without write permission, or immutable)
DENIED = {errno.EACCES: "permission denied", errno.EPERM: "the folder does not allow writing"}
STAGING = re.compile(r"^\..+\.(roamledger-partial|roamledger-rows|partial)-")


def os_error_message(exc: OSError) -> str:
    """One sentence for an operating-system error; a file system that refuses writes names the
    folder (not a hidden staging file in it) and how to go on."""
    staging = bool(exc.filename) and STAGING.search(os.path.basename(str(exc.filename))) is not None
    if exc.filename and (exc.errno in WRITE_ERRORS or (staging and exc.errno in DENIED)):
        folder = os.path.dirname(os.path.abspath(exc.filename))
        why = WRITE_ERRORS.get(exc.errno) or DENIED[exc.errno]
        return f"cannot write to {folder}: {why}. Hint: choose another --out"
    where = f": {exc.filename}" if exc.filename else ""
    if exc.filename and exc.errno in DENIED:  # an input not readable, or a folder not writable
        return (
            f"{exc.strerror or exc}{where}. Hint: check its permissions (and its folder's, for an output); "
            "or choose another --out"
        )
    return f"{exc.strerror or exc}{where}"


def fail(message: str, code: int) -> int:
    print(f"roamledger: error: {message}", file=sys.stderr)
    return code
