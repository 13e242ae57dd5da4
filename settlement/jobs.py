"""The monthly settlement batch: CDR files → reconciled lines → statements → files.

Every input record ends in exactly one bucket, and the manifest proves it:

    read == settled + excluded + rejected + out_of_month

``settled``: a line of some statement. ``excluded``: a finding kept it out (disputed and the
contract excludes disputes, or an identical duplicate). ``rejected``: unreadable or invalid
(``rejects.ndjson``). ``out_of_month``: the session ended outside the month (a finding).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pricing import __version__
from pricing.batch import expand_inputs, load_tariffs, parse_record
from pricing.errors import Finding, InputError, RecordRejected, RoamledgerError
from pricing.io import Record, all_files, iter_sources, sha256_file
from pricing.model import Cdr
from pricing.policy import PeriodBoundaries, PricingPolicy
from pricing.sessions import TariffSet, build_session
from pricing.timezones import validate_zone
from settlement.contracts import Contracts, load_contracts
from settlement.reconcile import ReconLine, check_duplicates_and_credits, reconcile_one, summarize
from settlement.statement import Line, Statement, build_line, dispute_reason, finish, month_bounds

# Reconciliation checks foreign CDRs: a period that straddles a price change is priced by its
# start state and reported, not silently split (digest §2.4 (b)).
DEFAULT_POLICY = PricingPolicy(period_boundaries=PeriodBoundaries.FLAG)


@dataclass
class Parsed:
    rec: Record
    cdr: Cdr


@dataclass
class RunResult:
    read: int = 0
    rejects: list[Finding] = field(default_factory=list)
    lines: list[ReconLine] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    out_of_month: list[ReconLine] = field(default_factory=list)
    excluded: list[ReconLine] = field(default_factory=list)
    settled_ids: list[str] = field(default_factory=list)
    extra_findings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "read": self.read,
            "settled": len(self.settled_ids),
            "excluded": len(self.excluded),
            "rejected": len(self.rejects),
            "out_of_month": len(self.out_of_month),
        }


def parse_all(
    records: Iterable[Record],
    version: str | None,
    result: RunResult,
    file_version: dict[str, str] | None = None,
) -> list[Parsed]:
    parsed: list[Parsed] = []
    file_version = {} if file_version is None else dict(file_version)
    for rec in records:
        result.read += 1
        if rec.error is not None:
            result.rejects.append(rec.error)
            continue
        rid = rec.obj.get("id") if isinstance(rec.obj, dict) else None
        try:
            cdr, _warnings = parse_record(rec, version, file_version)
        except RecordRejected as exc:
            result.rejects.append(Finding(exc.code, exc.message, rec.source, rec.line, rid, exc.path))
            continue
        parsed.append(Parsed(rec, cdr))
    return parsed


def file_versions(records: Sequence[Record]) -> dict[str, str]:
    """The OCPI version of each file = that of its first readable CDR (decided before partitioning,
    so every partition applies the same rule as one sequential pass)."""
    from pricing.ocpi import detect_version

    out: dict[str, str] = {}
    for rec in records:
        if rec.source not in out and rec.error is None and isinstance(rec.obj, dict):
            try:
                out[rec.source] = detect_version(rec.obj, "cdr")
            except RoamledgerError:
                continue
    return out


def process_chunk(
    records: Sequence[Record],
    tariffs: TariffSet | None,
    policy: PricingPolicy,
    tz: str | None,
    tolerance: Decimal,
    versions: dict[str, str],
    pricer: str = "kernel",
) -> tuple[int, list[Finding], list[ReconLine]]:
    """Parse, price and reconcile one partition (a pure function: the unit of work on Dask)."""
    part = RunResult()
    parsed = parse_all(records, None, part, versions)
    return part.read, part.rejects, reconcile_all(parsed, tariffs, policy, tz, tolerance, pricer)


CHUNK = 2_000


def compute_lines(
    records: list[Record],
    tariffs: TariffSet | None,
    policy: PricingPolicy,
    tz: str | None,
    tolerance: Decimal,
    result: RunResult,
    engine: str = "local",
    scheduler: str | None = None,
    pricer: str = "kernel",
) -> list[ReconLine]:
    versions = file_versions(records)
    chunks = [records[i : i + CHUNK] for i in range(0, len(records), CHUNK)] or [[]]
    if engine == "dask":
        parts = _run_dask(chunks, tariffs, policy, tz, tolerance, versions, scheduler, pricer)
    else:
        parts = [process_chunk(c, tariffs, policy, tz, tolerance, versions, pricer) for c in chunks]
    lines: list[ReconLine] = []
    for read, rejects, part_lines in parts:  # in input order: results do not depend on the engine
        result.read += read
        result.rejects.extend(rejects)
        lines.extend(part_lines)
    return lines


def flat_lines(
    files: Sequence[Path],
    tariffs: TariffSet | None,
    policy: PricingPolicy,
    tz: str | None,
    tolerance: Decimal,
    result: RunResult,
    pricer: str = "kernel",
) -> list[ReconLine]:
    """Flat-layout files reconciled one CDR object at a time (the oracle of the columnar engine)."""
    from pricing.flat import iter_pieces, piece_cdrs, record_id, split_piece

    lines: list[ReconLine] = []
    for piece in iter_pieces(files):
        fr, rejects = split_piece(piece)
        result.read += fr.n_records
        for k, (code, message, path) in sorted(rejects.items()):
            line = piece.row0 + int(fr.first_row[k]) + 1
            result.rejects.append(Finding(code, message, piece.source, line, record_id(fr, k), path))
        ks = [k for k in range(fr.n_records) if k not in rejects]
        parsed = [
            Parsed(Record(piece.source, piece.row0 + int(fr.first_row[k]) + 1), cdr)
            for k, cdr in zip(ks, piece_cdrs(piece, fr, ks), strict=True)
        ]
        lines += reconcile_all(parsed, tariffs, policy, tz, tolerance, pricer)
    return lines


def _run_dask(chunks, tariffs, policy, tz, tolerance, versions, scheduler, pricer):  # type: ignore[no-untyped-def]
    from dask.distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        cluster = None
    else:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        shared = client.scatter([tariffs, versions], broadcast=True)
        futures = [
            client.submit(process_chunk, c, shared[0], policy, tz, tolerance, shared[1], pricer, pure=False)
            for c in chunks
        ]
        return client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def reconcile_all(
    parsed: Sequence[Parsed],
    tariffs: TariffSet | None,
    policy: PricingPolicy,
    tz: str | None,
    tolerance: Decimal,
    pricer: str = "kernel",
) -> list[ReconLine]:
    """Price every parsed CDR (the kernel by default, the reference on request — they agree to
    the last digit) and reconcile it against what the CPO reported."""
    from pricing.batch import kernel_outcomes
    from pricing.reference import price_session
    from pricing.report import result_row

    sessions: list[Any] = []
    for p in parsed:
        try:
            sessions.append(build_session(p.cdr, tariffs, policy, tz))
        except RecordRejected as exc:
            sessions.append(exc)
    ok = [s for s in sessions if not isinstance(s, RecordRejected)]
    if pricer == "kernel":
        outcomes = iter(kernel_outcomes(ok, policy))
    else:
        outcomes = iter([(result_row(pr), pr.straddling) for pr in (price_session(s, policy) for s in ok)])
    out: list[ReconLine] = []
    for p, session in zip(parsed, sessions, strict=True):
        if isinstance(session, RecordRejected):
            out.append(
                reconcile_one(p.cdr, None, p.rec.source, p.rec.line, tolerance, session.code, session.message)
            )
            continue
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            out.append(
                reconcile_one(p.cdr, None, p.rec.source, p.rec.line, tolerance, "NOT_PRICED", str(outcome))
            )
            continue
        row, straddling = outcome
        ln = reconcile_one(p.cdr, row, p.rec.source, p.rec.line, tolerance, straddling=straddling)
        ln.tariffs = session.tariffs  # type: ignore[attr-defined]
        out.append(ln)
    return out


def party_ids(cdr: Cdr, contracts: Contracts) -> tuple[str, str]:
    """(CPO, eMSP) as ``country*party``. 2.1.1 CDRs carry neither: the contracts file maps them."""
    return parties(
        cdr.country_code,
        cdr.party_id,
        cdr.emsp_country_code,
        cdr.emsp_party_id,
        cdr.location_id,
        cdr.contract_id,
        contracts,
    )


def parties(
    country_code: str | None,
    party_id: str | None,
    emsp_country_code: str | None,
    emsp_party_id: str | None,
    location_id: str | None,
    contract_id: str | None,
    contracts: Contracts,
) -> tuple[str, str]:
    """(CPO, eMSP) from the CDR's party fields; the location (CPO) and the contract id prefix
    (eMSP) through the contracts file where the CDR lacks them."""
    if country_code and party_id:
        cpo = f"{country_code.upper()}*{party_id.upper()}"
    else:
        cpo = contracts.cpo_by_location.get(location_id or "", "UNKNOWN")
    if emsp_country_code and emsp_party_id:
        emsp = f"{emsp_country_code.upper()}*{emsp_party_id.upper()}"
    else:
        emsp = "UNKNOWN"
        cid = (contract_id or "").upper().replace("-", "").replace("*", "")
        for prefix in sorted(contracts.emsp_by_contract_prefix, key=len, reverse=True):
            if cid.startswith(prefix.upper().replace("-", "").replace("*", "")):
                emsp = contracts.emsp_by_contract_prefix[prefix]
                break
    return cpo, emsp


def local_iso(ms: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ms // 1000, zone).replace(tzinfo=None).isoformat(timespec="seconds")


def settle(
    cdrs: Sequence[str | os.PathLike[str]],
    tariffs: Sequence[str | os.PathLike[str]] | None,
    month: str,
    tz: str | None = None,
    basis: str | None = None,
    contracts_path: str | os.PathLike[str] | None = None,
    policy: PricingPolicy | None = None,
    history: Sequence[str | os.PathLike[str]] = (),
    progress: Callable[[str], None] | None = None,
    engine: str = "local",
    scheduler: str | None = None,
    pricer: str = "kernel",
) -> tuple[RunResult, Contracts]:
    """Run the monthly settlement in memory (no files written). See :func:`write_run` for files."""
    try:
        month_bounds(month)
    except ValueError as exc:
        raise InputError(f"--month {month!r}: {exc}. Hint: use YYYY-MM, e.g. 2026-10") from exc
    contracts = load_contracts(contracts_path, basis)
    zone_name = validate_zone(tz or contracts.statement_time_zone or "UTC")
    zone = ZoneInfo(zone_name)
    policy = policy or DEFAULT_POLICY
    result = RunResult()
    say = progress or (lambda _msg: None)

    say("reading tariffs")
    store, tariff_findings = load_tariffs(tariffs) if tariffs else (None, [])
    result.extra_findings += [dict(f.as_row(), cdr_id=None) for f in tariff_findings]
    say("reading CDRs")
    from pricing.flat import is_flat_file

    files = expand_inputs(cdrs)
    flat_files = [f for f in files if is_flat_file(f)]
    records = list(iter_sources([f for f in files if f not in flat_files]))
    say(f"pricing and reconciling {len(records)} records ({engine})")
    lines = compute_lines(
        records, store, policy, tz, contracts.default.tolerance, result, engine, scheduler, pricer
    )
    if flat_files:  # flat Parquet (pricing.flat) after the other inputs, record by record
        lines += flat_lines(flat_files, store, policy, tz, contracts.default.tolerance, result, pricer)
    check_duplicates_and_credits(lines, read_history(history))
    result.lines = lines

    say("building statements")
    groups: dict[tuple[str, str, str], Statement] = {}
    pair_currencies: dict[tuple[str, str], set[str]] = defaultdict(set)
    place_lines(lines, zone, month, contracts, result, groups, pair_currencies)
    result.extra_findings += mixed_currency_findings(pair_currencies)
    for key in sorted(groups):
        st = groups[key]
        st.lines.sort(key=lambda ln: (ln.session_end, ln.cdr_id))
        st.disputed.sort(key=lambda ln: (ln.session_end, ln.cdr_id))
        finish(st, contracts)
        result.statements.append(st)
    return result, contracts


def place_lines(
    lines: Sequence[ReconLine],
    zone: ZoneInfo,
    month: str,
    contracts: Contracts,
    result: RunResult,
    groups: dict[tuple[str, str, str], Statement],
    pair_currencies: dict[tuple[str, str], set[str]],
    origin: dict[int, ReconLine] | None = None,
) -> None:
    """Put every reconciled CDR in exactly one bucket: a statement line (settled, or disputed and
    excluded), an identical duplicate (excluded) or out of month. ``lines`` in input order."""
    start, end = month_bounds(month)
    seen_identical: set[int] = set()
    first_by_id: dict[str, ReconLine] = {}
    for i, ln in enumerate(lines):
        prior = first_by_id.setdefault(ln.cdr.id, ln)
        if prior is not ln and prior.cdr == ln.cdr:
            seen_identical.add(i)
    for i, ln in enumerate(lines):
        cdr = ln.cdr
        end_local = datetime.fromtimestamp(cdr.end_ms // 1000, zone)
        if not (start <= end_local.date() <= end):
            result.out_of_month.append(ln)
            continue
        if i in seen_identical:
            result.excluded.append(ln)
            continue
        cpo, emsp = party_ids(cdr, contracts)
        terms = contracts.terms(cpo, emsp)
        cur = cdr.currency.upper()
        pair_currencies[(cpo, emsp)].add(cur)
        energy = (
            cdr.total_energy
            if cdr.total_energy is not None
            else Decimal((ln.row or {}).get("total_energy_kwh") or 0)
        )
        line = build_line(
            ln,
            terms.basis,
            local_iso(cdr.start_ms, zone),
            local_iso(cdr.end_ms, zone),
            end_local.date().isoformat(),
            Decimal(energy),
        )
        st = groups.setdefault((cpo, emsp, cur), Statement(cpo, emsp, cur, month, terms))
        reason = dispute_reason(ln, terms.basis)
        if origin is not None and line is not None:
            origin[id(line)] = ln
        if line is None:
            # nothing to pay from on this basis: a disputed line with zero amount, excluded
            line = Line(
                cdr.id,
                local_iso(cdr.start_ms, zone),
                local_iso(cdr.end_ms, zone),
                end_local.date().isoformat(),
                cdr.location_id or "",
                Decimal(energy),
                Decimal(0),
                None,
                Decimal(0),
                None,
                "unknown",
                [],
                cdr.credit,
                cdr.credit_reference_id,
                ln.status,
                ",".join(ln.codes),
            )
            reason = reason or "no amount on this basis"
            line.disputed, line.dispute_reason = True, reason
            if origin is not None:
                origin[id(line)] = ln
            st.disputed.append(line)
            result.excluded.append(ln)
            continue
        if reason:
            line.disputed, line.dispute_reason = True, reason
            st.disputed.append(line)
            if terms.disputed == "exclude":
                result.excluded.append(ln)
                continue
        st.lines.append(line)
        result.settled_ids.append(cdr.id)


def mixed_currency_findings(pair_currencies: dict[tuple[str, str], set[str]]) -> list[dict[str, Any]]:
    out = []
    for (cpo, emsp), curs in sorted(pair_currencies.items()):
        if len(curs) > 1:
            out.append(
                {
                    "cdr_id": None,
                    "code": "MIXED_CURRENCIES",
                    "dimension": None,
                    "period": None,
                    "amount": None,
                    "message": f"{cpo} and {emsp} settle in {len(curs)} currencies "
                    f"({', '.join(sorted(curs))}): "
                    "one statement per currency",
                    "source": "",
                    "line": None,
                }
            )
    return out


def read_history(paths: Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """CDR ids settled in earlier runs (their statements' ``lines.csv``) with the totals their CPO
    reported (the run's ``reconciliation.ndjson``), so credits can net them.

    A credit nets what the CPO reported for the original, whatever the statement paid (a
    ``recomputed`` contract pays our amount): the line amount is the fallback only for a run
    folder without its reconciliation file."""
    import csv

    from pricing.model import Money

    def dec(v: Any) -> Decimal | None:
        return None if v in (None, "") else Decimal(v)

    out: dict[str, Any] = {}
    reported: dict[Path, dict[str, Money]] = {}
    for root in paths:
        for f in sorted(Path(root).rglob("lines.csv")):
            run = f.parent.parent
            if run not in reported:
                rec = run / "reconciliation.ndjson"
                rows = (
                    [json.loads(x) for x in rec.read_text(encoding="utf-8").splitlines()]
                    if rec.is_file()
                    else []
                )
                reported[run] = {
                    r["cdr_id"]: Money(dec(r["reported_total_excl_vat"]), dec(r["reported_total_incl_vat"]))
                    for r in rows
                    if r.get("reported_total_excl_vat") is not None
                }
            with open(f, encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    cid = row["cdr_id"]
                    out[cid] = reported[run].get(cid) or Money(
                        dec(row["amount_excl_vat"]), dec(row["amount_incl_vat"])
                    )
    return out


# ---- files --------------------------------------------------------------------------------------


def write_run(
    result: RunResult,
    contracts: Contracts,
    out_dir: str | os.PathLike[str],
    month: str,
    inputs: Sequence[str | os.PathLike[str]],
    settings: dict[str, Any],
    locale: str = "en_GB",
) -> Path:
    """Write every output into a fresh temporary folder, then move it into place in one rename.

    A run that dies half-way leaves only a ``.partial`` folder (removed by the next run), never a
    half-written ``out_dir`` that looks complete; a rerun replaces the folder as a whole.
    """
    from pricing.io import dumps
    from settlement.render import render_statement

    def fill(tmp: Path) -> None:
        for st in result.statements:
            render_statement(st, tmp / st.folder, locale)
        lines = result.lines  # input order (files as given, then line)
        (tmp / "reconciliation.ndjson").write_text(
            "".join(dumps(ln.as_row()) + "\n" for ln in lines), encoding="utf-8"
        )
        findings = [f.as_row() for ln in lines for f in ln.findings]
        findings += [
            out_of_month_finding(ln.cdr.id, ln.cdr.end_ms, month, ln.source, ln.line)
            for ln in result.out_of_month
        ]
        findings += result.extra_findings
        (tmp / "findings.ndjson").write_text("".join(dumps(r) + "\n" for r in findings), encoding="utf-8")
        write_rejects(tmp, result.rejects)
        statements = [statement_entry(st, len(st.lines)) for st in result.statements]
        write_manifest(
            tmp, month, inputs, settings, contracts, result.counts, summarize(result.lines), statements
        )

    return atomic_output(out_dir, fill)


def atomic_output(out_dir: str | os.PathLike[str], fill: Callable[[Path], None]) -> Path:
    """Call ``fill`` on a fresh temporary folder, then move it into place in one rename.

    A run that dies half-way leaves only a ``.partial`` folder (removed by the next run), never a
    half-written ``out_dir`` that looks complete; a rerun replaces the folder as a whole.
    """
    out = Path(out_dir).resolve()
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for stale in parent.glob(f".{out.name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=parent))
    except OSError as exc:
        raise RoamledgerError(
            f"cannot write to {out}: {exc}. Hint: choose a writable --out directory"
        ) from exc
    try:
        fill(tmp)
        if out.exists():
            old = parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def out_of_month_finding(
    cdr_id: str, end_ms: int, month: str, source: str, line: int | None
) -> dict[str, Any]:
    return {
        "cdr_id": cdr_id,
        "code": "OUT_OF_MONTH",
        "dimension": None,
        "period": None,
        "amount": None,
        "message": f"session ended {datetime.fromtimestamp(end_ms // 1000, UTC).date()} (UTC date), "
        f"outside {month} in the statement zone; settle it in its own month",
        "source": source,
        "line": line,
    }


def write_rejects(tmp: Path, rejects: Sequence[Finding]) -> None:
    from pricing.io import dumps

    rows = sorted((f.as_row() for f in rejects), key=lambda r: (r["source"], r["line"] or 0))
    (tmp / "rejects.ndjson").write_text("".join(dumps(r) + "\n" for r in rows), encoding="utf-8")


def statement_entry(st: Statement, n_lines: int) -> dict[str, Any]:
    return {
        "id": st.id,
        "folder": st.folder,
        "cpo": st.cpo,
        "emsp": st.emsp,
        "currency": st.currency,
        "lines": n_lines,
        "amount_due": st.totals["amount_due"],
    }


def write_manifest(
    tmp: Path,
    month: str,
    inputs: Sequence[str | os.PathLike[str]],
    settings: dict[str, Any],
    contracts: Contracts,
    counts: dict[str, int],
    reconciliation: dict[str, Any],
    statements: list[dict[str, Any]],
) -> None:
    manifest = {
        "roamledger": __version__,
        "month": month,
        "inputs": {str(p): sha256_file(p) for p in all_files(inputs)},
        "settings": settings,
        "contracts": contracts.as_dict(),
        "counts": counts,
        "counts_check": "read == settled + excluded + rejected + out_of_month",
        "reconciliation": reconciliation,
        "statements": statements,
    }
    (tmp / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def progress_printer(enabled: bool | None = None) -> Callable[[str], None]:
    """Progress on a terminal (stderr), silent when not a TTY."""
    on = sys.stderr.isatty() if enabled is None else enabled

    def say(msg: str) -> None:
        if on:
            print(f"\r\x1b[2K[roamledger] {msg} …", end="", file=sys.stderr, flush=True)

    return say
