"""``roamledger import``: load OCPI CDR files into the store (SQLite file or PostgreSQL)."""

from __future__ import annotations

import argparse
import sys

from api.cli.options import (
    add_fail_on_option,
    check_given_once,
    check_run,
    command_parser,
    fail_on_status,
    require_existing,
)
from pricing.errors import RecordRejected, RoamledgerError
from pricing.io import iter_sources
from pricing.ocpi import COUNTRY_CODE, PARTY_ID
from settlement.store import DEFAULT_URL, Store, StoreError
from settlement.store.monitor import last_log_id, refusals_since

SHOWN = 10  # refusals printed by an import (all are in the ingest log)
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
    p.add_argument(
        "--tariffs", action="append", default=[], metavar="PATH", help="tariff files or directories"
    )
    add_fail_on_option(p)
    p.add_argument("cdrs", nargs="*", metavar="CDRS", help="CDR files or directories")


def run(args: argparse.Namespace) -> int:
    if not args.cdrs and not args.tariffs:
        raise RoamledgerError("nothing to import. Hint: give CDR files and/or --tariffs PATH")
    require_existing([*args.cdrs, *args.tariffs])
    check_given_once(args.cdrs)
    check_given_once(args.tariffs)
    cc, pid = party(args.party) if args.party else (None, None)
    store = Store(args.store)
    try:
        if args.tariffs:
            t = import_tariffs(store, args.tariffs, cc, pid)
            print(", ".join(f"{k} {v}" for k, v in t.items()).replace("read", "tariffs: read", 1))
            if t["read"] == 0:
                raise RoamledgerError(f"--tariffs {' '.join(args.tariffs)}: no tariff found")
        if not args.cdrs:
            return 0
        before = last_log_id(store)
        c, reasons = store.import_files(args.cdrs, cc, pid)
        refused = refusals_since(store, before, SHOWN) if c["rejected"] or c["conflict"] else []
    finally:
        store.close()
    print(
        f"read {c['read']}, stored {c['stored']}, duplicate {c['duplicate']}, conflict {c['conflict']}, "
        f"rejected {c['rejected']} into {args.store}"
    )
    for outcome, where, message in refused:  # why, in words: the first few of the ingest log
        print(f"roamledger: CDR {outcome} ({where}): {message}", file=sys.stderr)
    if c["rejected"] + c["conflict"] > len(refused):
        more = c["rejected"] + c["conflict"] - len(refused)
        print(f"roamledger: … and {more} more in the store's ingest log (GET /v1/store)", file=sys.stderr)
    if reasons:  # a fallback is counted, never silent
        why = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
        print(
            f"columnar {c['read'] - sum(reasons.values())}, record by record {sum(reasons.values())} ({why})"
        )
    check_run(c["read"], c["rejected"], " ".join(args.cdrs), "the store's ingest log")
    return fail_on_status(args, c["rejected"] + c["conflict"], 0, "")


def import_tariffs(store: Store, paths: list[str], cc: str | None, pid: str | None) -> dict[str, int]:
    counts = {"read": 0, "stored": 0, "unchanged": 0, "refused": 0}
    for rec in iter_sources(paths):
        counts["read"] += 1
        where = f"{rec.source}:{rec.line}"
        try:
            if rec.error is not None:
                raise StoreError(rec.error.message)
            counts[store.put_tariff(rec.obj, cc, pid, where, stand_in=True).outcome] += 1
        except (RecordRejected, StoreError) as exc:
            counts["refused"] += 1
            print(f"roamledger: tariff refused ({where}): {exc}", file=sys.stderr)
    return counts


def party(text: str) -> tuple[str, str]:
    """``CC*PID`` (OCPI's 2-letter country code and 3-character party id, any case) as upper case."""
    cc, sep, pid = text.partition("*")
    if not sep or not COUNTRY_CODE.fullmatch(cc) or not PARTY_ID.fullmatch(pid):
        raise RoamledgerError(
            f"party {text}: expected COUNTRY*PARTY, a 2-letter country code and a party id of 3 "
            "letters or digits, e.g. NL*ECO"
        )
    return cc.upper(), pid.upper()
