"""``roamledger import``: load OCPI CDR files into the store (SQLite file or PostgreSQL)."""

from __future__ import annotations

import argparse

from api.cli.options import add_fail_on_option, check_run, command_parser, fail_on_status, require_existing
from pricing.errors import RoamledgerError
from pricing.io import iter_sources
from settlement.store import DEFAULT_URL, Store

EXAMPLE = """example:
  roamledger import --store sqlite:///roamledger.db fixtures/sample/cdrs --party NL*ECO
  roamledger import --store postgresql+psycopg://user@host/db cdrs-2026-10.ndjson
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "import", "load OCPI CDRs (JSON, NDJSON, Parquet) into the store", EXAMPLE)
    p.add_argument("--store", default=DEFAULT_URL, metavar="URL", help=f"store URL (default {DEFAULT_URL})")
    p.add_argument(
        "--party",
        metavar="CC*PID",
        help="the CPO of CDRs that name none (OCPI 2.1.1), e.g. NL*ECO; other CDRs name their own",
    )
    add_fail_on_option(p)
    p.add_argument("cdrs", nargs="+", metavar="CDRS", help="CDR files or directories")


def run(args: argparse.Namespace) -> int:
    require_existing(args.cdrs)
    cc, pid = party(args.party) if args.party else (None, None)
    store = Store(args.store)
    try:
        c = store.import_records(iter_sources(args.cdrs), cc, pid)
    finally:
        store.close()
    print(
        f"read {c['read']}, stored {c['stored']}, duplicate {c['duplicate']}, conflict {c['conflict']}, "
        f"rejected {c['rejected']} into {args.store}"
    )
    check_run(c["read"], c["rejected"], " ".join(args.cdrs), "the store's ingest log")
    return fail_on_status(args, c["rejected"] + c["conflict"], 0, "")


def party(text: str) -> tuple[str, str]:
    cc, sep, pid = text.partition("*")
    if not sep or len(cc) != 2 or not 1 <= len(pid) <= 3:
        raise RoamledgerError(f"--party {text}: expected COUNTRY*PARTY, e.g. NL*ECO")
    return cc.upper(), pid.upper()
