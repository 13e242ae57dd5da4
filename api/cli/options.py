"""Options and checks shared by several commands."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

from pricing.errors import RoamledgerError
from pricing.policy import PricingPolicy


def command_parser(
    sub: argparse._SubParsersAction, name: str, help: str, example: str
) -> argparse.ArgumentParser:
    return sub.add_parser(
        name, help=help, epilog=example, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def add_policy_option(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--policy", action="append", default=[], metavar="NAME=VALUE", help=help)


def add_pricing_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tariffs", action="append", metavar="PATH", help="tariff file or directory (repeatable)")
    p.add_argument("--tz", metavar="ZONE", help="IANA time zone for every CDR (overrides location/country)")
    add_policy_option(p, "pricing policy, repeatable (see pricing.policy.PricingPolicy)")
    p.add_argument("--ocpi-version", choices=["2.1.1", "2.2.1", "2.3.0"], help="force the OCPI version")


def policy_of(pairs: list[str], default: PricingPolicy | None = None) -> PricingPolicy:
    """The ``--policy NAME=VALUE`` pairs; ``default`` (else the pricing defaults) when none is given."""
    if not pairs and default is not None:
        return default
    return PricingPolicy.from_pairs(pairs)


def require_existing(paths: Iterable[str | None]) -> None:
    missing = [p for p in paths if p is not None and not Path(p).exists()]
    if missing:
        raise RoamledgerError(f"no such file or directory: {', '.join(missing)}")
