"""``roamledger close``: close a month in the store — its final run's statements become immutable;
a CDR that arrives later for the month is settled on the next open month as a late line."""

from __future__ import annotations

import argparse

from api.cli.options import command_parser
from api.cli.settle import check_locale
from pricing.errors import RoamledgerError
from settlement.contracts import contracts_document, load_contracts
from settlement.jobs import progress_printer
from settlement.runs import execute_run, queue_run
from settlement.store import Store
from settlement.store.months import check_month, close_month, get_run

EXAMPLE = """examples:
  roamledger close --store sqlite:///roamledger.db --month 2026-10 --settle
  roamledger close --store sqlite:///roamledger.db --month 2026-10 --run 3
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "close", "close a month in the store: its statements become final", EXAMPLE)
    p.add_argument("--store", required=True, metavar="URL", help="the store, e.g. sqlite:///roamledger.db")
    p.add_argument("--month", required=True, help="YYYY-MM")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--run", type=int, metavar="ID", help="the final run (default: the month's newest done run)"
    )
    which.add_argument(
        "--settle",
        action="store_true",
        help="settle the month into the store first (as POST /v1/settlements) and close with that run",
    )
    p.add_argument("--tz", metavar="ZONE", help="with --settle: statement time zone (default UTC)")
    p.add_argument(
        "--basis", choices=["reported", "recomputed"], help="with --settle: pay reported or recomputed"
    )
    p.add_argument("--locale", default="en_GB", help="with --settle: statement language, e.g. fr_FR")
    p.add_argument(
        "--contracts",
        metavar="FILE",
        help="with --settle: contract terms (JSON, see settlement/contracts.py), kept with the run",
    )


def run(args: argparse.Namespace) -> int:
    check_month(args.month)
    check_locale(args.locale)
    store = Store(args.store, create=False)  # a misspelled SQLite path is refused, not created
    try:
        run_id = args.run
        if args.settle:
            doc = None
            if args.contracts:
                load_contracts(args.contracts)  # a bad file is named in the error
                doc = contracts_document(args.contracts)
            run_id = queue_run(store, args.month, args.basis, args.tz, args.locale, contracts=doc)
            if execute_run(store, run_id, progress_printer()) != "done":
                settled = get_run(store, run_id)
                raise RoamledgerError(
                    f"settling {args.month} failed (run {run_id}): {settled and settled.message}"
                )
        final, _ = close_month(store, args.month, run_id)
    finally:
        store.close()
    print(
        f"closed {args.month} with run {final}: its statements are final; CDRs that arrive later for "
        f"{args.month} are settled on the next open month as late lines"
    )
    return 0
