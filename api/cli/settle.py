"""``roamledger settle``: statements per (CPO, eMSP, currency) from a month of CDRs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError

from api.cli.options import (
    add_fail_on_option,
    add_policy_option,
    check_given_once,
    check_run,
    command_parser,
    fail_on_status,
    policy_of,
    positive_count,
    require_existing,
)
from api.cli.tariff_check import check_tariffs
from pricing.errors import RoamledgerError
from pricing.files import expand_inputs
from pricing.flat import is_flat_file
from pricing.policy import PricingPolicy
from settlement.columnar.settle import settle_columnar
from settlement.jobs import DEFAULT_POLICY, PARTY_HINT, progress_printer, settle, write_run
from settlement.output import check_output_folder, failed_folder, paid_run, run_failure
from settlement.rules import not_agreed, parse_month
from settlement.runs import redacted, settle_store_month
from settlement.store import Store

EXAMPLE = """example:
  roamledger settle --cdrs fixtures/sample/cdrs --tariffs fixtures/sample/tariffs --month 2026-10 \\
      --contracts fixtures/sample/contracts.json --out out
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    st = command_parser(sub, "settle", "monthly CPO-eMSP settlement statements from a month of CDRs", EXAMPLE)
    st.add_argument(
        "--cdrs",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH",
        help="CDR files or directories (repeatable)",
    )
    st.add_argument(
        "--store",
        metavar="URL",
        help="settle what parties sent to the store (roamledger import), e.g. sqlite:///roamledger.db",
    )
    st.add_argument(
        "--tariffs",
        nargs="+",
        action="extend",
        metavar="PATH",
        help="tariff files or directories (repeatable)",
    )
    st.add_argument("--month", required=True, help="YYYY-MM; a CDR belongs to the month its session ended in")
    st.add_argument("--tz", metavar="ZONE", help="statement time zone (default: contracts file, else UTC)")
    st.add_argument("--basis", choices=["reported", "recomputed"], help="pay reported or recomputed amounts")
    st.add_argument("--contracts", metavar="FILE", help="contract terms (JSON, see settlement/contracts.py)")
    st.add_argument("--locale", default="en_GB", help="locale for the HTML statement (babel), e.g. fr_FR")
    st.add_argument(
        "--engine",
        choices=["auto", "local", "columnar", "dask"],
        default="auto",
        help="local: record by record; columnar: at scale in pieces (flat Parquet and OCPI NDJSON as "
        "columns, other files record by record; same files); dask: on a Dask cluster (flat Parquet: "
        "columnar pieces; other inputs: record chunks); auto (default): columnar (files and --store)",
    )
    st.add_argument(
        "--scheduler", metavar="ADDRESS", help="existing Dask scheduler (default: a LocalCluster)"
    )
    st.add_argument(
        "--piece-rows",
        type=positive_count,
        default=500_000,
        metavar="N",
        help="columnar engine: rows (charging periods) per piece; memory grows with it (default 500000)",
    )
    st.add_argument(
        "--pricer", choices=["kernel", "reference"], default="kernel", help="pricer (they agree exactly)"
    )
    st.add_argument(
        "--history",
        nargs="+",
        action="extend",
        default=[],
        metavar="DIR",
        help="earlier settle outputs: credits net their originals; a CDR of their (paid) month "
        "that they did not read settles here as a late line (LATE_CDR)",
    )
    add_policy_option(st, "pricing policy (default period_boundaries=flag for reconciliation)")
    add_fail_on_option(st, "any CDR does not agree (a status other than MATCH or ROUNDING)")
    st.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output directory (what it holds is replaced; a failed run goes to DIR.failed)",
    )


def run(args: argparse.Namespace) -> int:
    policy = policy_of(args.policy, DEFAULT_POLICY)
    check_locale(args.locale)
    parse_month(args.month)
    if not args.cdrs and not args.store:
        raise RoamledgerError("nothing to settle. Hint: give --cdrs PATH... or --store URL")
    if args.store and (args.cdrs or args.tariffs):
        raise RoamledgerError(
            "--store settles what parties sent; it takes no --cdrs or --tariffs. "
            "Hint: import files first (roamledger import --store URL ...)"
        )
    # a URL that is not one, an SQLite file that is not there: refused before any work
    store = Store(args.store, create=False) if args.store else None
    try:
        return settle_run(args, policy, store)
    finally:
        if store is not None:
            store.close()


def settle_run(args: argparse.Namespace, policy: PricingPolicy, store: Store | None) -> int:
    inputs = [*args.cdrs, *(args.tariffs or []), *([args.contracts] if args.contracts else [])]
    require_existing(inputs)
    check_given_once(args.cdrs)
    check_given_once(args.tariffs)
    check_tariffs(args.tariffs)
    check_history(args.history)
    check_output_folder(args.out, [*inputs, *args.history])
    say = progress_printer()
    files = expand_inputs(args.cdrs)
    all_flat = bool(files) and all(is_flat_file(f) for f in files)
    engine = args.engine
    if engine == "auto":
        engine = "columnar"
    settings = (
        {
            "engine": engine,
            "pricer": args.pricer,
            "policy": policy.as_dict(),
            "basis": args.basis,
            "tz": args.tz,
            "locale": args.locale,
            "month": args.month,
        }
        | ({"store": redacted(args.store)} if args.store else {})
        | ({"history": args.history} if args.history else {})
    )
    common: dict[str, Any] = {
        "tz": args.tz,
        "basis": args.basis,
        "contracts_path": args.contracts,
        "policy": policy,
        "history": args.history,
        "progress": say,
        "pricer": args.pricer,
    }
    if store is not None:  # the month as parties sent it, with the late CDRs of closed months it takes
        return settle_store(args, store, engine, settings, common)
    if engine == "columnar" or (engine == "dask" and all_flat):  # flat months: columnar, here or on Dask
        out, c, statements = settle_columnar(
            args.cdrs,
            args.tariffs,
            args.month,
            args.out,
            settings=settings,
            locale=args.locale,
            inputs=inputs,
            piece_rows=args.piece_rows,
            engine="dask" if engine == "dask" else "local",
            scheduler=args.scheduler,
            **common,
        )
        return finished(args, c, len(statements), out)
    result, contracts = settle(
        args.cdrs, args.tariffs, args.month, engine=engine, scheduler=args.scheduler, **common
    )
    say("writing")
    out = write_run(result, contracts, args.out, args.month, inputs, settings, args.locale)
    return finished(args, result.counts, len(result.statements), out)


def settle_store(
    args: argparse.Namespace,
    store: Store,
    engine: str,
    settings: dict[str, Any],
    common: dict[str, Any],
) -> int:
    """``--store``: :func:`settlement.runs.settle_store_month` (what ``close --settle`` and the API run)."""
    out, counts, statements, _ = settle_store_month(
        store,
        args.month,
        args.out,
        settings,
        args.locale,
        engine=engine,
        scheduler=args.scheduler,
        piece_rows=args.piece_rows,
        **common,
    )
    return finished(args, counts, len(statements), out)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file, or {} where it is not one."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def check_history(paths: list[str]) -> None:
    """``--history``: each a folder holding at least one earlier settle run (its --out, or a folder
    of several); a typo would silently settle without the credits and late CDRs it decides."""
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            raise RoamledgerError(
                f"--history {given}: no such folder. Hint: give the --out folder of an earlier month's "
                "settle run, or a folder holding several"
            )
        if not any(paid_run(read_json(m)) for m in path.rglob("manifest.json")):
            raise RoamledgerError(
                f"--history {given}: holds no settle run (no manifest.json of a roamledger settle run "
                "that did not fail). "
                "Hint: give the --out folder of an earlier month's settle run, or a folder holding several"
            )


def check_locale(name: str) -> None:
    try:
        Locale.parse(name)
    except (ValueError, UnknownLocaleError) as exc:
        raise RoamledgerError(
            f"--locale {name}: unknown locale. Hint: use a code like en_GB, fr_FR, de_DE or nl_NL"
        ) from exc


def report_unknown_parties(n: int, out: Path) -> None:
    """One console line when CDRs were left out because their party is unknown (OCPI 2.1.1 without
    a mapping): how many, a few of the unmapped keys, and how to map them."""
    if not n:
        return
    keys: list[str] = []
    with open(out / "findings.ndjson", encoding="utf-8") as fh:
        for text in fh:
            if '"PARTY_UNKNOWN"' in text:
                f = json.loads(text)
                key = f["message"].split("maps no ", 1)[-1].split(". Hint", 1)[0]
                if key not in keys:
                    keys.append(key)
                if len(keys) == 3:
                    break
    print(
        f"excluded {n} CDRs whose party is unknown (PARTY_UNKNOWN in findings.ndjson; e.g. no "
        f"{'; no '.join(keys)}). {PARTY_HINT}"
    )


def finished(args: argparse.Namespace, c: dict[str, int], n_statements: int, out: Path) -> int:
    """Report a written run; judge it from its manifest (the same for every engine). A failed
    run that found an earlier run in --out was written beside it (``OUT.failed``), not over it."""
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(
        f"read {c['read']}, settled {c['settled']}, excluded {c['excluded']}, rejected {c['rejected']}, "
        f"out of month {c['out_of_month']}; {n_statements} statements in {out}"
    )
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    recon = manifest["reconciliation"]
    why = run_failure(manifest)
    kept = (
        f" (the earlier run in {args.out} is kept as it was)"
        if out == failed_folder(Path(args.out).resolve())
        else ""
    )
    source = " ".join([*args.cdrs, *([f"the store's month {args.month}"] if args.store else [])])
    check_run(c["read"], c["rejected"], source, str(out / "rejects.ndjson"), kept)
    if why == "no session in the month":
        raise RoamledgerError(
            f"no session of the {c['read']} records ended in {args.month} "
            f"({c['out_of_month']} out of month){kept}. Hint: check --month"
        )
    report_unknown_parties(recon["findings_by_code"].get("PARTY_UNKNOWN", 0), out)
    if why == "no statement":
        raise RoamledgerError(
            f"no statement for {args.month}: its {c['excluded']} CDRs are all excluded (the reasons are in "
            f"{out / 'findings.ndjson'}){kept}. Hint: check --contracts (the parties) and --tariffs"
        )
    if why == "no tariff matched":
        hint = (
            "give the CPO's tariffs with --tariffs"
            if not args.tariffs
            else "check the tariff ids in --tariffs"
        )
        raise RoamledgerError(f"no tariff matched any of the {recon['cdrs']} CDRs{kept}. Hint: {hint}")
    return fail_on_status(
        args, c["rejected"], not_agreed(recon["by_status"]), "CDRs not matching (see findings.ndjson)"
    )
