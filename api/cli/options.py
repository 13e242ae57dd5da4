"""Options and checks shared by several commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

# the exit statuses live in api.cli.status (loaded before any heavy module); re-exported here
from api.cli.status import (  # noqa: F401
    EXIT_BUG,
    EXIT_FAIL_ON,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STATUS_HELP,
)
from pricing.errors import RoamledgerError
from pricing.files import READABLE, expand_inputs, skipped_files
from pricing.policy import PricingPolicy


def command_parser(
    sub: argparse._SubParsersAction, name: str, help: str, example: str
) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=help,
        epilog=f"{example}\n{EXIT_STATUS_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_fail_on_option(p: argparse.ArgumentParser, findings: str = "has a finding") -> None:
    """``--fail-on``; ``findings``: what counts as a finding for this command, in the help."""
    p.add_argument(
        "--fail-on",
        choices=["rejects", "findings"],
        action="append",
        default=[],
        help=f"exit 1 (after writing every file) when any record was rejected / {findings} (repeatable)",
    )


def fail_on_status(args: argparse.Namespace, rejected: int, findings: int, findings_label: str) -> int:
    """The exit status of a completed run under ``--fail-on``: 1 when it found what it was asked to
    (``findings_label`` says what the command counts as findings, e.g. "disputed CDRs")."""
    hit = []
    if "rejects" in args.fail_on and rejected:
        hit.append(f"{rejected} records rejected")
    if "findings" in args.fail_on and findings:
        hit.append(f"{findings} {findings_label}")
    if hit:
        print(f"roamledger: --fail-on: {' and '.join(hit)}", file=sys.stderr)
        return EXIT_FAIL_ON
    return EXIT_OK


def add_policy_option(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--policy", action="append", default=[], metavar="NAME=VALUE", help=help)


def add_pricing_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tariffs", action="append", metavar="PATH", help="tariff file or directory (repeatable)")
    p.add_argument("--tz", metavar="ZONE", help="IANA time zone for every CDR (overrides location/country)")
    add_policy_option(p, "pricing policy, repeatable (see pricing.policy.PricingPolicy)")
    p.add_argument("--ocpi-version", choices=["2.1.1", "2.2.1", "2.3.0"], help="force the OCPI version")


def policy_of(pairs: list[str], default: PricingPolicy | None = None) -> PricingPolicy:
    """``default`` (else the pricing defaults) with the ``--policy NAME=VALUE`` pairs over it (a pair
    changes its field only: `reconcile --policy flat_fee=...` keeps period_boundaries=flag)."""
    return PricingPolicy.from_pairs(pairs, default)


def require_existing(paths: Iterable[str | None]) -> None:
    """Every given path exists (else an input error); what the given folders hold but is not read
    is named in one warning line (nothing is skipped without a word)."""
    given = [p for p in paths if p is not None]
    missing = [p for p in given if not Path(p).exists()]
    if missing:
        raise RoamledgerError(f"no such file or directory: {', '.join(missing)}")
    warn_skipped(skipped_files(given))


def check_given_once(paths: Iterable[str] | None) -> None:
    """The files of one option (``--cdrs``, ``--tariffs``) each named once: a file named itself and
    through its folder, or by two spellings, would be read twice."""
    seen: dict[tuple[int, int], str] = {}
    for p in paths or ():
        for f in expand_inputs([p]) if Path(p).is_dir() else [Path(p)]:
            st = f.stat()
            key = (st.st_dev, st.st_ino)  # the same file by any name: symlink, hard link, ../
            if key in seen:
                also = "" if seen[key] == p else f" (also through {seen[key]})"
                raise RoamledgerError(
                    f"{f} is given twice{also}: its records would be read twice. Hint: name each file once"
                )
            seen[key] = p


def warn_skipped(skipped: list[Path]) -> None:
    if not skipped:
        return
    names = [f"{p}{'/' if p.is_dir() else ''}" for p in skipped]
    print(
        f"roamledger: warning: {len(skipped)} entries of the given folders are not read: {', '.join(names)} "
        f"(only {', '.join(READABLE)} files directly in a folder are read; decompress compressed ones first)",
        file=sys.stderr,
    )


def positive_count(text: str, other: str = "") -> int:
    """An option's whole number of at least 1 (``type=`` of argparse); ``other``: the words of
    another value it takes, for the error."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not {other}a whole number of at least 1")
    return n


def check_run(read: int, rejected: int, source: str, rejects_file: str, kept: str = "") -> None:
    """Input errors only a finished run can tell: nothing read, or every record rejected
    (``kept``: what the sentence adds about an earlier output kept)."""
    if read == 0:
        raise RoamledgerError(f"nothing read: {source} holds no CDR records{kept}")
    if rejected == read:
        raise RoamledgerError(f"every record was rejected ({read}); the reasons are in {rejects_file}{kept}")
