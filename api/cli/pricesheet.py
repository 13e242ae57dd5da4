"""``roamledger price-sheet``: a tariff in human terms (AFIR price display), localized."""

from __future__ import annotations

import argparse

from api.cli.options import EXIT_OK, command_parser
from api.cli.quote import add_format_option, emit, one_object
from pricing.pricesheet import price_sheet

EXAMPLE = """example:
  roamledger price-sheet --tariff fixtures/spec/examples/2.2.1/tariff_4_complex.json --locale nl_NL
  roamledger price-sheet --tariff tariff.json --locale de --format json --out sheet.json
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "price-sheet", "a tariff in human terms, localized (AFIR price display)", EXAMPLE)
    p.add_argument("--tariff", required=True, metavar="FILE", help="OCPI tariff (any version), JSON")
    p.add_argument("--locale", default="en", help="locale (babel), e.g. fr_FR")
    p.add_argument("--ocpi-version", choices=["2.1.1", "2.2.1", "2.3.0"], help="force the OCPI version")
    add_format_option(p)


def run(args: argparse.Namespace) -> int:
    sheet = price_sheet(one_object(args.tariff, "OCPI tariff"), args.locale, ocpi_version=args.ocpi_version)
    body = sheet.as_dict()
    lines = [
        f"tariff {body['tariff_id']} ({body['currency']}, OCPI {body['ocpi_version']}): {body['vat_text']}"
    ]
    lines += [f"  {line}" for line in body["summary"]]  # reservation prices too, named as such
    emit(args, body, "\n".join(lines))
    return EXIT_OK
