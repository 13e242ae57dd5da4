"""The record engine of the monthly settlement: CDR files → reconciled lines → statements → files,
one CDR object at a time (OCPI JSON/NDJSON, and flat Parquet as the columnar engine's oracle). The
columnar engine (:mod:`settlement.columnar`) sends the CDRs that need judgement through the same
functions here.

Every input record ends in exactly one bucket, and the manifest proves it:

    read == settled + excluded + rejected + out_of_month

``settled``: a line of some statement. ``excluded``: a finding kept it out (disputed and the
contract excludes disputes, or an identical duplicate). ``rejected``: unreadable or invalid
(``rejects.ndjson``). ``out_of_month``: the session ended outside the month (a finding).
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pricing.batch import kernel_outcomes, load_tariffs, parse_record
from pricing.errors import Finding, RecordRejected, RoamledgerError
from pricing.files import expand_inputs
from pricing.flat import is_flat_file, iter_pieces, piece_cdrs, record_id, split_piece
from pricing.io import Record, csv_unsafe, iter_sources
from pricing.model import Cdr, Money
from pricing.ocpi import file_version_of, parse_tariff
from pricing.policy import CDR_POLICY, PricingPolicy
from pricing.reference import price_session
from pricing.report import result_row
from pricing.sessions import TariffSet, build_session
from pricing.timezones import validate_zone
from settlement.cluster import dask_client
from settlement.contracts import Contracts, load_contracts
from settlement.output import (
    atomic_output,
    out_of_month_finding,
    paid_run,
    statement_entry,
    write_manifest,
    write_ndjson_rows,
    write_rejects,
)
from settlement.reconcile import (
    ReconFinding,
    ReconLine,
    check_duplicates_and_credits,
    reconcile_one,
    summarize,
)
from settlement.render import render_statement
from settlement.rules import (
    ALREADY_SETTLED,
    LATE_CDR,
    PaidMonths,
    already_settled_message,
    dispute_reason,
    late_message,
    local_end_date,
    local_iso,
    month_window_ms,
    never_paid,
    parse_month,
    reasons_text,
    settles_in,
)
from settlement.statement import Line, Statement, build_line, finish, vat_findings, with_contract_vat
from settlement.store import Store
from settlement.store.months import cdr_records_of, settled_elsewhere

# Reconciliation checks foreign CDRs: a period that straddles a price change is priced by its
# start state and reported, not silently split (digest §2.4 (b)); as ``price`` does (one truth).
DEFAULT_POLICY = CDR_POLICY


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
    time_zone: str = "UTC"  # the statement zone of a settlement run (out-of-month findings)

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
        if rec.party is not None and not (cdr.country_code and cdr.party_id):
            cdr = replace(cdr, country_code=rec.party[0], party_id=rec.party[1])  # held under its CPO
        parsed.append(Parsed(rec, cdr))
    return parsed


def file_versions(records: Sequence[Record]) -> dict[str, str]:
    """The OCPI version of each file = that of its first CDR (:func:`pricing.ocpi.file_version_of`;
    decided before partitioning, so every partition applies the same rule as one sequential pass)."""
    out: dict[str, str] = {}
    for rec in records:
        if rec.source not in out and rec.error is None:
            version = file_version_of(rec.obj)
            if version is not None:
                out[rec.source] = version
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
    with dask_client(scheduler) as client:
        shared = client.scatter([tariffs, versions], broadcast=True)
        futures = [
            client.submit(process_chunk, c, shared[0], policy, tz, tolerance, shared[1], pricer, pure=False)
            for c in chunks
        ]
        return client.gather(futures)


def reconcile_all(
    parsed: Sequence[Parsed],
    tariffs: TariffSet | None,
    policy: PricingPolicy,
    tz: str | None,
    tolerance: Decimal,
    pricer: str = "kernel",
) -> list[ReconLine]:
    """Price every parsed CDR (the kernel by default, the reference on request — they agree to
    the last digit) and reconcile it against what the CPO reported.

    A session the pricing refuses with a declared error (:class:`pricing.errors.RoamledgerError`:
    no tariff, overflow, …) becomes a NOT_PRICED line with that error's words; any other exception
    is a bug and propagates — it never becomes a business status."""
    sessions: list[Any] = []
    for p in parsed:
        try:
            sessions.append(build_session(p.cdr, tariffs, policy, tz))
        except RecordRejected as exc:
            sessions.append(exc)
    ok = [s for s in sessions if not isinstance(s, RecordRejected)]
    outcomes = iter(
        kernel_outcomes(ok, policy) if pricer == "kernel" else [reference_outcome(s, policy) for s in ok]
    )
    out: list[ReconLine] = []
    for p, session in zip(parsed, sessions, strict=True):
        if isinstance(session, RecordRejected):
            out.append(
                reconcile_one(p.cdr, None, p.rec.source, p.rec.line, tolerance, session.code, session.message)
            )
            continue
        outcome = next(outcomes)
        if isinstance(outcome, RoamledgerError):  # a declared refusal: the business status NOT_PRICED
            out.append(
                reconcile_one(p.cdr, None, p.rec.source, p.rec.line, tolerance, "NOT_PRICED", str(outcome))
            )
            continue
        row, straddling = outcome
        ln = reconcile_one(p.cdr, row, p.rec.source, p.rec.line, tolerance, straddling=straddling)
        ln.tariffs = session.tariffs  # type: ignore[attr-defined]
        out.append(ln)
    return out


def reference_outcome(session: Any, policy: PricingPolicy) -> Any:
    """(row, straddling) from the reference pricer, or its declared refusal (as the kernel's
    :func:`pricing.batch.kernel_outcomes` gives them)."""
    try:
        priced = price_session(session, policy)
    except RoamledgerError as exc:
        return exc
    return result_row(priced), priced.straddling


UNKNOWN_PARTY = "UNKNOWN"  # never a statement's party: such a CDR is excluded (PARTY_UNKNOWN)
PARTY_HINT = (
    "Hint: add the mapping to the contracts file's parties_211: cpo_by_location "
    '{"<location id>": "NL*ABC"} for the CPO, emsp_by_contract_prefix {"<first 5 characters of the '
    'contract id>": "NL*XYZ"} for the eMSP'
)


def party_unknown_finding(ln: ReconLine, cpo: str, emsp: str) -> ReconFinding:
    """Why a CDR whose party cannot be resolved (OCPI 2.1.1 without a mapping) is excluded."""
    cdr = ln.cdr
    missing = []
    if cpo == UNKNOWN_PARTY:
        missing.append(f"CPO of location {cdr.location_id or ''!r}")
    if emsp == UNKNOWN_PARTY:
        head = (cdr.contract_id or "").upper().replace("-", "").replace("*", "")[:5]
        missing.append(f"eMSP of contract id prefix {head!r}")
    return ReconFinding(
        cdr.id,
        "PARTY_UNKNOWN",
        f"excluded: the CDR names no party and the contracts file maps no {' and no '.join(missing)}. "
        + PARTY_HINT,
        source=ln.source,
        line=ln.line,
    )


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
        cpo = contracts.cpo_by_location.get(location_id or "", UNKNOWN_PARTY)
    if emsp_country_code and emsp_party_id:
        emsp = f"{emsp_country_code.upper()}*{emsp_party_id.upper()}"
    else:
        emsp = UNKNOWN_PARTY
        cid = (contract_id or "").upper().replace("-", "").replace("*", "")
        for prefix in sorted(contracts.emsp_by_contract_prefix, key=len, reverse=True):
            if cid.startswith(prefix.upper().replace("-", "").replace("*", "")):
                emsp = contracts.emsp_by_contract_prefix[prefix]
                break
    return cpo, emsp


def settle(
    cdrs: Sequence[str | os.PathLike[str]],
    tariffs: Sequence[str | os.PathLike[str]] | None,
    month: str,
    tz: str | None = None,
    basis: str | None = None,
    contracts_path: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    policy: PricingPolicy | None = None,
    history: Sequence[str | os.PathLike[str]] = (),
    progress: Callable[[str], None] | None = None,
    engine: str = "local",
    scheduler: str | None = None,
    pricer: str = "kernel",
    store: Store | None = None,
    late: Mapping[str, str] | None = None,
    late_rows: Sequence[int] = (),
) -> tuple[RunResult, Contracts]:
    """Run the monthly settlement in memory (no files written). See :func:`write_run` for files.

    With a ``store`` (and no ``cdrs`` / ``tariffs``), the month is what parties sent: the CDRs whose
    session ended in the month (in the statement zone) and every tariff version they may need.

    ``late``: the late CDRs this month takes (CDR id → the closed month its session ended in,
    :func:`settlement.rules.settles_in`): they settle in ``month`` as late lines with a LATE_CDR
    finding. They must be among the input: in ``cdrs``, or, with a store, ``late_rows`` (their
    row ids in the store, read after the month's own CDRs)."""
    parse_month(month)
    contracts = load_contracts(contracts_path, basis)
    zone_name = validate_zone(tz or contracts.statement_time_zone or "UTC")
    zone = ZoneInfo(zone_name)
    policy = policy or DEFAULT_POLICY
    result = RunResult(time_zone=zone_name)
    say = progress or (lambda _msg: None)

    say("reading tariffs")
    if store is not None:
        given, tariff_findings = store_tariffs(store)
    else:
        given, tariff_findings = load_tariffs(tariffs) if tariffs else (None, [])
    result.extra_findings += [dict(f.as_row(), cdr_id=None) for f in tariff_findings]
    say("reading CDRs")
    files = expand_inputs(cdrs)
    flat_files = [f for f in files if is_flat_file(f)]
    records = list(iter_sources([f for f in files if f not in flat_files]))
    settled: dict[str, str] = {}
    if store is not None:
        records += store.cdr_records(*month_window_ms(month, zone))
        records += cdr_records_of(store, late_rows)
        settled = settled_elsewhere(store, *month_window_ms(month, zone))
    say(f"pricing and reconciling {len(records)} records ({engine})")
    lines = compute_lines(
        records, given, policy, tz, contracts.default.tolerance, result, engine, scheduler, pricer
    )
    if flat_files:  # flat Parquet (pricing.flat) after the other inputs, record by record
        lines += flat_lines(flat_files, given, policy, tz, contracts.default.tolerance, result, pricer)
    check_duplicates_and_credits(lines, read_history(history), read_history_credits(history))
    result.lines = lines
    if store is None and history:  # file mode: CDRs of months the history paid are late CDRs
        paid = paid_months(history, month, zone)
        found = {ln.cdr.id: paid.late_of(ln.cdr.id, ln.cdr.end_ms) for ln in lines}
        late = {**{k: v for k, v in found.items() if v is not None}, **(late or {})}

    say("building statements")
    groups: dict[tuple[str, str, str], Statement] = {}
    pair_currencies: dict[tuple[str, str], set[str]] = defaultdict(set)
    place_lines(lines, zone, month, contracts, result, groups, pair_currencies, late=late, settled=settled)
    result.extra_findings += mixed_currency_findings(pair_currencies)
    for key in sorted(groups):
        st = groups[key]
        st.lines.sort(key=lambda ln: (ln.session_end, ln.cdr_id))
        st.disputed.sort(key=lambda ln: (ln.session_end, ln.cdr_id))
        finish(st, contracts)
        result.statements.append(st)
    result.extra_findings += vat_findings(result.statements)
    return result, contracts


def store_tariffs(store: Store) -> tuple[TariffSet, list[Finding]]:
    """Every tariff version the store holds (a CDR takes the one published by its session start)."""
    parsed, findings = [], []
    for obj in store.tariff_versions():
        tariff, warnings = parse_tariff(obj)
        parsed.append(tariff)
        findings += warnings
    return TariffSet.of(parsed), findings


def identical_copies(lines: Sequence[ReconLine]) -> set[int]:
    """Positions of the lines that repeat an earlier CDR with the same id exactly (excluded)."""
    seen: set[int] = set()
    first_by_id: dict[str, ReconLine] = {}
    for i, ln in enumerate(lines):
        prior = first_by_id.setdefault(ln.cdr.id, ln)
        if prior is not ln and prior.cdr == ln.cdr:
            seen.add(i)
    return seen


def place_lines(
    lines: Sequence[ReconLine],
    zone: ZoneInfo,
    month: str,
    contracts: Contracts,
    result: RunResult,
    groups: dict[tuple[str, str, str], Statement],
    pair_currencies: dict[tuple[str, str], set[str]],
    origin: dict[int, ReconLine] | None = None,
    late: Mapping[str, str] | None = None,
    settled: Mapping[str, str] | None = None,
) -> None:
    """Put every reconciled CDR in exactly one bucket: a statement line (settled, or disputed and
    excluded), an identical duplicate (excluded), already settled (excluded) or out of month.
    ``lines`` in input order; ``late``: the late CDRs this month takes (see :func:`settle`);
    ``settled``: the stored CDRs a closed month's final run settled (CDR id → that month,
    :func:`settlement.store.months.settled_elsewhere`): excluded with an ALREADY_SETTLED finding."""
    seen_identical = identical_copies(lines)
    late = late or {}
    settled = settled or {}
    for i, ln in enumerate(lines):
        cdr = ln.cdr
        late_of = late.get(cdr.id)
        if not settles_in(cdr.end_ms, month, zone, late_of):
            result.out_of_month.append(ln)
            continue
        if late_of is None and cdr.id in settled:
            message = already_settled_message(settled[cdr.id], month)
            ln.findings.append(ReconFinding(cdr.id, ALREADY_SETTLED, message, source=ln.source, line=ln.line))
            result.excluded.append(ln)
            continue
        if late_of is not None:
            message = late_message(late_of, month)
            ln.findings.append(ReconFinding(cdr.id, LATE_CDR, message, source=ln.source, line=ln.line))
        if i in seen_identical:
            result.excluded.append(ln)
            continue
        cpo, emsp = party_ids(cdr, contracts)
        if UNKNOWN_PARTY in (cpo, emsp):
            ln.findings.append(party_unknown_finding(ln, cpo, emsp))
            result.excluded.append(ln)
            continue
        terms = contracts.terms(cpo, emsp)
        cur = cdr.currency.upper()
        pair_currencies[(cpo, emsp)].add(cur)
        st = groups.setdefault((cpo, emsp, cur), Statement(cpo, emsp, cur, month, terms, time_zone=zone.key))
        line, reason, payable = statement_line(ln, terms.basis, zone)
        if payable:
            with_contract_vat(line, terms.vat_rate, cur)
        if origin is not None:
            origin[id(line)] = ln
        if reason:
            line.disputed, line.dispute_reason = True, reason
            st.disputed.append(line)
            if terms.disputed == "exclude" or not payable or never_paid(ln.codes):
                result.excluded.append(ln)
                continue
        st.lines.append(line)
        result.settled_ids.append(cdr.id)


NO_AMOUNT = "no amount on this basis"


def statement_line(ln: ReconLine, basis: str, zone: ZoneInfo) -> tuple[Line, str, bool]:
    """The statement line of a reconciled CDR on the contract's basis, why it is disputed ("" if
    it is not) and whether it has an amount: without one on this basis it is a disputed line with
    zero amount (always excluded)."""
    cdr = ln.cdr
    energy = Decimal(
        cdr.total_energy
        if cdr.total_energy is not None
        else Decimal((ln.row or {}).get("total_energy_kwh") or 0)
    )
    if cdr.credit:  # a credit's energy nets its original's, as its money does (PRICING-SEMANTICS §4.2)
        energy = -energy
    start, end = local_iso(cdr.start_ms, zone), local_iso(cdr.end_ms, zone)
    day = local_end_date(cdr.end_ms, zone).isoformat()
    reason = dispute_reason(ln.status, ln.codes, basis, ln.conflicting_duplicate)
    line = build_line(ln, basis, start, end, day, energy)
    if line is not None:
        return line, reason, True
    line = Line(
        cdr.id,
        start,
        end,
        day,
        cdr.location_id or "",
        energy,
        Decimal(0),
        None,
        Decimal(0),
        None,
        "unknown",
        [],
        cdr.credit,
        cdr.credit_reference_id,
        ln.status,
        reasons_text(ln.codes),
    )
    return line, reason or NO_AMOUNT, False


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
                    cid = csv_unsafe(row["cdr_id"])
                    out[cid] = reported[run].get(cid) or Money(
                        dec(row["amount_excl_vat"]), dec(row["amount_incl_vat"])
                    )
    return out


def read_history_credits(paths: Sequence[str | os.PathLike[str]]) -> dict[str, str]:
    """The originals that credits settled in earlier runs already netted (their statements'
    ``lines.csv``: a credit line that was paid, the credit of its original): original id → credit
    id (the first such credit in file order). A paid credit that did not net its original
    (CREDIT_AMOUNT_MISMATCH, paid under a contract that includes disputed lines) does not count,
    as in a run (:func:`settlement.reconcile.check_credits`)."""
    out: dict[str, str] = {}
    for root in paths:
        for f in sorted(Path(root).rglob("lines.csv")):
            with open(f, encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    ref = csv_unsafe(row.get("credit_reference_id") or "")
                    if row.get("credit") != "true" or not ref:
                        continue
                    if "CREDIT_AMOUNT_MISMATCH" in (row.get("reasons") or "").split(","):
                        continue
                    out.setdefault(ref, csv_unsafe(row["cdr_id"]))
    return out


def paid_months(paths: Sequence[str | os.PathLike[str]], month: str, zone: ZoneInfo) -> PaidMonths:
    """The months before ``month`` that the history runs settled (their ``manifest.json``), with the
    CDR ids each read (``reconciliation.ndjson``, and the ids of its ``lines.csv``)."""
    months: dict[str, set[str]] = {}
    for root in paths:
        for manifest in sorted(Path(root).rglob("manifest.json")):
            run = manifest.parent
            doc = json.loads(manifest.read_text(encoding="utf-8"))
            paid = doc.get("month") if paid_run(doc) else None  # a failed run paid nothing
            if not isinstance(paid, str) or paid >= month:
                continue
            read = months.setdefault(paid, set())
            rec = run / "reconciliation.ndjson"
            if rec.is_file():
                read.update(json.loads(x)["cdr_id"] for x in rec.read_text(encoding="utf-8").splitlines())
            for f in run.glob("*/lines.csv"):
                with open(f, encoding="utf-8") as fh:
                    read.update(csv_unsafe(row["cdr_id"]) for row in csv.DictReader(fh))
    return PaidMonths({m: (month_window_ms(m, zone), frozenset(ids)) for m, ids in months.items()})


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

    zone = ZoneInfo(result.time_zone)

    def fill(tmp: Path) -> None:
        for st in result.statements:
            render_statement(st, tmp / st.folder, locale)
        lines = result.lines  # input order (files as given, then line)
        with open(tmp / "reconciliation.ndjson", "wb") as fh:
            write_ndjson_rows(fh, (ln.as_row() for ln in lines))
        findings = [f.as_row() for ln in lines for f in ln.findings]
        findings += [
            out_of_month_finding(ln.cdr.id, ln.cdr.end_ms, month, ln.source, ln.line, zone)
            for ln in result.out_of_month
        ]
        findings += result.extra_findings
        with open(tmp / "findings.ndjson", "wb") as fh:
            write_ndjson_rows(fh, findings)
        write_rejects(tmp, result.rejects)
        statements = [statement_entry(st, len(st.lines)) for st in result.statements]
        write_manifest(
            tmp, month, inputs, settings, contracts, result.counts, summarize(result.lines), statements
        )

    return atomic_output(out_dir, fill)


def progress_printer(
    enabled: bool | None = None, every_s: float = 5.0, clock: Callable[[], float] = time.monotonic
) -> Callable[[str], None]:
    """Progress on stderr: on a terminal one line rewritten in place; otherwise (cron, CI logs) a
    plain line for the first step and then at most one every ``every_s`` seconds, so a long run
    shows it is alive without flooding the log. ``enabled``: True/False force the terminal form."""
    tty = sys.stderr.isatty() if enabled is None else enabled
    last = [float("-inf")]

    def say(msg: str) -> None:
        if tty:
            print(f"\r\x1b[2K[roamledger] {msg} …", end="", file=sys.stderr, flush=True)
            return
        now = clock()
        if now - last[0] >= every_s:
            last[0] = now
            print(f"[roamledger] {msg}", file=sys.stderr, flush=True)

    return say
