"""``roamledger quote``: what a planned session will cost (or an OCPI Session so far / projected)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from api.cli.options import EXIT_OK, add_policy_option, command_parser, policy_of, require_existing
from pricing.errors import InputError
from pricing.io import atomic_write_text, read_records
from pricing.quote import Quote, quote

EXAMPLE = """example:
  roamledger quote --tariff fixtures/spec/examples/2.2.1/tariff_4_complex.json \\
      --start 2025-03-04T18:30 --tz Europe/Amsterdam --energy-kwh 20 --power-kw 11 --parking-minutes 30
  roamledger quote --tariff tariff.json --session session.json --project-to 2025-03-04T21:00Z --format json
"""


def one_object(path: str, what: str) -> Any:
    """The single JSON object in a file (an OCPI response envelope is unwrapped)."""
    require_existing([path])
    if Path(path).is_dir():
        raise InputError(f"{path} is a folder: give one file holding one {what}")
    records = list(read_records(path))
    if records and records[0].error is not None:  # not JSON: where and why
        line = f" line {records[0].line}" if records[0].line is not None else ""
        raise InputError(f"{path}{line}: {records[0].error.message}")
    if len(records) != 1 or not isinstance(records[0].obj, dict):
        raise InputError(f"{path}: expected one JSON object ({what}). Hint: put one {what} in the file")
    return records[0].obj


def add_format_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=["text", "json"], default="text", help="output (default text)")
    p.add_argument("--out", metavar="FILE", help="write the output here instead of stdout")


def emit(args: argparse.Namespace, body: dict[str, Any], text: str) -> None:
    out = json.dumps(body, indent=2, ensure_ascii=False, default=str) if args.format == "json" else text
    if args.out:
        atomic_write_text(args.out, out + "\n")
    else:
        sys.stdout.write(out + "\n")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "quote", "price a planned session (or an OCPI Session so far/projected)", EXAMPLE)
    p.add_argument("--tariff", required=True, metavar="FILE", help="OCPI tariff (any version), JSON")
    p.add_argument(
        "--session", metavar="FILE", help="an OCPI Session object: price it so far (and projected)"
    )
    p.add_argument("--start", help="planned start, ISO 8601 (without offset: local time in --tz)")
    p.add_argument("--tz", metavar="ZONE", help="IANA time zone (default: from --country or the tariff)")
    p.add_argument("--country", help="country of the charge point (ISO 3166), for its time zone")
    p.add_argument("--energy-kwh", help="energy to charge, kWh")
    p.add_argument("--power-kw", help="charging power, kW (duration = energy / power)")
    p.add_argument("--duration", help="charging duration, minutes")
    p.add_argument(
        "--profile", metavar="FILE", help='JSON list of steps: [{"minutes": 30, "power_kw": 50}, ...]'
    )
    p.add_argument("--parking-minutes", default="0", help="minutes parked after charging")
    p.add_argument("--reservation-minutes", default="0", help="minutes reserved before charging")
    p.add_argument("--now", help="with --session: price up to this instant (default: its end or last update)")
    p.add_argument("--project-to", help="with --session: also project the session to this end")
    p.add_argument("--locale", default="en", help="locale of the display strings (babel), e.g. nl_NL")
    p.add_argument("--ocpi-version", choices=["2.1.1", "2.2.1", "2.3.0"], help="force the OCPI version")
    add_policy_option(p, "pricing policy, repeatable (see pricing.policy.PricingPolicy)")
    add_format_option(p)


def run(args: argparse.Namespace) -> int:
    tariff = one_object(args.tariff, "OCPI tariff")
    session = one_object(args.session, "OCPI session") if args.session else None
    profile = None
    if args.profile:
        require_existing([args.profile])
        profile = json.loads(Path(args.profile).read_text(encoding="utf-8"))
        if not isinstance(profile, list):
            raise InputError(f"{args.profile}: the profile must be a JSON list of steps")
    q = quote(
        tariff,
        start=args.start,
        time_zone=args.tz,
        location={"country": args.country} if args.country else None,
        energy_kwh=args.energy_kwh,
        power_kw=args.power_kw,
        duration=args.duration,
        profile=profile,
        parking_minutes=args.parking_minutes,
        reservation_minutes=args.reservation_minutes,
        session=session,
        now=args.now,
        project_to=args.project_to,
        locale=args.locale,
        policy=policy_of(args.policy),
        ocpi_version=args.ocpi_version,
    )
    emit(args, q.as_dict(), quote_text(q))
    return EXIT_OK


def quote_text(q: Quote) -> str:
    body = q.as_dict()
    lines = [f"{q.kind.replace('_', ' ')}: tariff {body['tariff_id']}, {body['start']} – {body['end']}"]
    lines += [f"  {ln['label']}: {ln['incl_vat'] or ln['excl_vat']}" for ln in q.display["lines"]]
    lines.append(f"  {q.display['summary']}")
    if "note" in q.display:
        lines.append(f"  ({q.display['note']})")
    lines.append(f"  exact: excl. VAT {body['total']['excl_vat']}, incl. VAT {body['total']['incl_vat']}")
    lines.append(f"  ({q.display['rounding_note']})")
    if q.projected is not None:
        lines.append(quote_text(q.projected))
    return "\n".join(lines)
