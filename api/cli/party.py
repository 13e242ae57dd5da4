"""``roamledger party add``: register a party of the OCPI receiver and print its registration token
(token A): the party calls ``POST /ocpi/{version}/credentials`` with it and gets its own token.
``roamledger party token``: a new token A for a stored party (after it unregistered with ``DELETE
/ocpi/{version}/credentials``, or lost its token A); its current token stops working."""

from __future__ import annotations

import argparse
import secrets

from api.cli.ingest import party as party_code
from api.cli.options import command_parser
from pricing.errors import RoamledgerError
from settlement.store import DEFAULT_URL, Store

EXAMPLE = """example:
  roamledger party add --store sqlite:///roamledger.db NL*ECO --role CPO --name "Eco Charging B.V."
  roamledger party token --store sqlite:///roamledger.db NL*ECO   # a new token A, to register again
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "party", "register a party of the OCPI receiver (prints its token A)", EXAMPLE)
    p.add_argument(
        "action",
        choices=["add", "token"],
        help="add: register a party; token: a new token A for a stored one",
    )
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
        if args.action == "add":
            store.add_party(cc, pid, args.role, token, args.name)
        elif not store.new_token_a(cc, pid, args.role, token):
            raise RoamledgerError(
                f"{cc}*{pid} ({args.role}) is not a party of this store. "
                f"Hint: roamledger party add {cc}*{pid}"
            )
    finally:
        store.close()
    done = "registered" if args.action == "add" else "has a new token (its old token stopped working)"
    print(f"{cc}*{pid} ({args.role}) {done}; registration token (token A): {token}")
    return 0
