"""``roamledger party add``: register a party of the OCPI receiver and print its registration token
(token A): the party calls ``POST /ocpi/{version}/credentials`` with it and gets its own token."""

from __future__ import annotations

import argparse
import secrets

from api.cli.ingest import party as party_code
from api.cli.options import command_parser
from settlement.store import DEFAULT_URL, Store

EXAMPLE = """example:
  roamledger party add --store sqlite:///roamledger.db NL*ECO --role CPO --name "Eco Charging B.V."
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "party", "register a party of the OCPI receiver (prints its token A)", EXAMPLE)
    p.add_argument("action", choices=["add"], help="add: register a party")
    p.add_argument("party", metavar="CC*PID", help="country code and party id, e.g. NL*ECO")
    p.add_argument(
        "--role", default="CPO", choices=["CPO", "EMSP", "HUB", "OTHER"], help="OCPI role (default CPO)"
    )
    p.add_argument("--name", help="the party's name")
    p.add_argument("--store", default=DEFAULT_URL, metavar="URL", help=f"store URL (default {DEFAULT_URL})")


def run(args: argparse.Namespace) -> int:
    cc, pid = party_code(args.party)
    token = secrets.token_urlsafe(32)
    store = Store(args.store)
    try:
        store.add_party(cc, pid, args.role, token, args.name)
    finally:
        store.close()
    print(f"{cc}*{pid} ({args.role}) registered; registration token (token A): {token}")
    return 0
