"""Reconciliation: what the CPO reported in each CDR against what the tariff says.

For every CDR we compare the reported totals (``total_cost`` and the ``total_*_cost``
breakdown, excl. and incl. VAT) with our recomputation and give one status:

``MATCH``           equal to the cent fraction we can see (exactly equal)
``ROUNDING``        different by at most the tolerance (default 0.01 per CDR)
``OVERCHARGED``     reported more than the tariff gives, beyond the tolerance
``UNDERCHARGED``    reported less, beyond the tolerance
``NOT_PRICED``      we could not recompute (tariff missing, time zone unknown, …)

plus any number of reason findings, each naming the dimension and, where it can, the period,
and saying in words what differs. Findings never stop the run.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import polars as pl

from pricing.model import Cdr, Money
from pricing.units import MS_PER_HOUR, MWH_PER_KWH
from settlement.rules import (
    NOT_COMPARABLE,
    NOT_COMPARABLE_MESSAGE,
    NOT_PRICED,
    OVERCHARGED,
    ROUNDING,
    STATUSES,
    UNDERCHARGED,
    charge_message,
    e4,
    line_status,
    reasons_text,
    rounding_message,
    straddle_message,
    use_excl,
    worst_difference,
)

# reported CDR field → our category column prefix
DIMENSIONS = {
    "energy": "total_energy_cost",
    "time": "total_time_cost",
    "parking": "total_parking_cost",
    "fixed": "total_fixed_cost",
    "reservation": "total_reservation_cost",
}
DIM_WORDS = {
    "energy": "energy",
    "time": "charging time",
    "parking": "parking",
    "fixed": "fixed fees",
    "reservation": "reservation",
    "total": "total",
}


@dataclass(frozen=True, slots=True)
class ReconFinding:
    cdr_id: str
    code: str
    message: str
    dimension: str | None = None
    period: int | None = None
    source: str = ""
    line: int | None = None
    amount: Decimal | None = None  # the difference in currency, where there is one

    def as_row(self) -> dict[str, Any]:
        return {
            "cdr_id": self.cdr_id,
            "code": self.code,
            "dimension": self.dimension,
            "period": self.period,
            "amount": e4(self.amount),
            "message": self.message,
            "source": self.source,
            "line": self.line,
        }


@dataclass
class ReconLine:
    """One reconciled CDR."""

    cdr: Cdr
    source: str
    line: int | None
    row: dict[str, Any] | None  # recomputed result row (None when not priced)
    status: str = NOT_PRICED
    findings: list[ReconFinding] = field(default_factory=list)
    diff_excl: Decimal | None = None
    diff_incl: Decimal | None = None

    @property
    def codes(self) -> list[str]:
        return sorted({f.code for f in self.findings})

    @property
    def conflicting_duplicate(self) -> bool:
        """A DUPLICATE_CDR finding says this copy differs from the first (an identical copy is
        no dispute)."""
        return any("CONFLICTING" in f.message for f in self.findings)

    def as_row(self) -> dict[str, Any]:
        """The ``reconciliation.ndjson`` row: the recomputed totals carry the CDR's sign (a credit's
        are negated, as its reported ones), so that ``diff = reported − recomputed`` reads true."""
        rep = self.cdr.total_cost or Money(None)
        r = self.row or {}

        def ours(key: str) -> str | None:
            v = r.get(key)
            if v is None or not self.cdr.credit or Decimal(v) == 0:
                return v
            return e4(-Decimal(v))

        return {
            "cdr_id": self.cdr.id,
            "status": self.status,
            "reasons": reasons_text(self.codes),
            "currency": self.cdr.currency,
            "credit": self.cdr.credit,
            "reported_total_excl_vat": e4(rep.excl),
            "recomputed_total_excl_vat": ours("total_cost_excl_vat"),
            "diff_excl_vat": e4(self.diff_excl),
            "reported_total_incl_vat": e4(rep.incl),
            "recomputed_total_incl_vat": ours("total_cost_incl_vat"),
            "diff_incl_vat": e4(self.diff_incl),
            "source": self.source,
            "line": self.line,
        }


RECON_COLUMNS = [
    "cdr_id",
    "status",
    "reasons",
    "currency",
    "credit",
    "reported_total_excl_vat",
    "recomputed_total_excl_vat",
    "diff_excl_vat",
    "reported_total_incl_vat",
    "recomputed_total_incl_vat",
    "diff_incl_vat",
    "source",
    "line",
]
FINDING_COLUMNS = ["cdr_id", "code", "dimension", "period", "amount", "message", "source", "line"]


def _dec(v: Any) -> Decimal | None:
    return None if v is None else Decimal(v)


def sign(cdr: Cdr) -> int:
    """Credit CDRs carry negated money; we compare against the negated recomputation."""
    return -1 if cdr.credit else 1


def reconcile_one(
    cdr: Cdr,
    row: dict[str, Any] | None,
    source: str = "",
    line: int | None = None,
    tolerance: Decimal = Decimal("0.01"),
    reject_code: str | None = None,
    reject_message: str | None = None,
    straddling: Iterable[int] = (),
) -> ReconLine:
    """Reconcile one CDR against its recomputed row (or the reason it could not be priced)."""
    out = ReconLine(cdr, source, line, row)

    def find(
        code: str, msg: str, dim: str | None = None, period: int | None = None, amt: Decimal | None = None
    ):
        out.findings.append(ReconFinding(cdr.id, code, msg, dim, period, source, line, amt))

    check_reported_consistency(cdr, find)
    check_quantities(cdr, find)
    for idx in straddling:
        find("PERIOD_STRADDLES_BOUNDARY", straddle_message(idx), period=idx)
    if row is None:
        out.status = NOT_PRICED
        find(reject_code or "NOT_PRICED", reject_message or "the CDR could not be recomputed")
        return out
    k = sign(cdr)
    reported = cdr.total_cost or Money(None)
    ours_excl = _dec(row.get("total_cost_excl_vat"))
    ours_incl = _dec(row.get("total_cost_incl_vat"))
    if reported.excl is not None and ours_excl is not None:
        out.diff_excl = reported.excl - k * ours_excl
    if reported.incl is not None and ours_incl is not None:
        out.diff_incl = reported.incl - k * ours_incl
    worst = worst_difference(out.diff_excl, out.diff_incl)
    out.status = line_status(True, worst, tolerance)
    if worst is None:
        find(NOT_COMPARABLE, NOT_COMPARABLE_MESSAGE)
        return out
    if out.status in (OVERCHARGED, UNDERCHARGED):
        excl = use_excl(out.diff_excl, tolerance)
        diff = out.diff_excl if excl else worst
        assert diff is not None
        excl = excl or diff is out.diff_excl
        rep_v = reported.excl if excl else reported.incl
        ours_v = ours_excl if excl else ours_incl
        assert rep_v is not None
        find(
            out.status, charge_message(diff, cdr.currency, excl, rep_v, k * (ours_v or 0)), "total", amt=diff
        )
        explain_dimensions(cdr, row, k, tolerance, find)
    elif out.status == ROUNDING:
        find("ROUNDING", rounding_message(worst, tolerance), "total", amt=worst)
    return out


def check_reported_consistency(cdr: Cdr, find: Any) -> None:
    """TOTALS_INCONSISTENT: the reported total is not the sum of the five reported dimension costs;
    where some are absent (optional in OCPI: unknown, not 0), only when the reported ones alone
    already exceed the total (in its sign: a credit's costs are negative). Column form:
    :func:`settlement.columnar.piece.reported_checks`."""
    parts = [getattr(cdr, f) for f in DIMENSIONS.values()]
    present = [p for p in parts if p is not None and p.excl is not None]
    if not present or cdr.total_cost is None or cdr.total_cost.excl is None:
        return
    total = sum((p.excl for p in present), Decimal(0))
    reported = cdr.total_cost.excl
    slack = Decimal("0.00005") * len(present)
    if len(present) == len(parts) and abs(total - reported) > slack:
        message = f"is not the sum of the reported dimension costs ({total})"
    elif len(present) < len(parts) and (total - reported) * (-1 if reported < 0 else 1) > slack:
        absent = ", ".join(
            f for f, p in zip(DIMENSIONS.values(), parts, strict=True) if p is None or p.excl is None
        )
        message = f"is less than the reported dimension costs alone ({total}; not reported: {absent})"
    else:
        return
    find(
        "TOTALS_INCONSISTENT",
        f"reported total_cost {reported} excl. VAT {message}",
        "total",
        amt=reported - total,
    )


def check_quantities(cdr: Cdr, find: Any) -> None:
    """QUANTITY_MISMATCH: CDR totals that do not add up from its charging periods."""
    if cdr.total_energy is not None and any(p.energy_mwh is not None for p in cdr.periods):
        energy = sum(p.energy_mwh or 0 for p in cdr.periods)
        if abs(cdr.total_energy * MWH_PER_KWH - energy) > 500:  # 0.0005 kWh: the 3rd decimal
            find(
                "QUANTITY_MISMATCH",
                f"total_energy {cdr.total_energy} kWh but the charging periods add up to "
                f"{Decimal(energy) / MWH_PER_KWH} kWh",
                "energy",
            )
    # total_time is the whole session, from the reservation's start when one precedes it
    # (PRICING-SEMANTICS §1.8): charging, parking and reservation time
    vols = [(p.time_ms or 0) + (p.parking_ms or 0) + (p.reservation_ms or 0) for p in cdr.periods]
    if cdr.total_time is not None and any(
        p.time_ms is not None or p.parking_ms is not None or p.reservation_ms is not None for p in cdr.periods
    ):
        total_ms = sum(vols)
        if abs(cdr.total_time * MS_PER_HOUR - total_ms) > 1_800:  # 0.0005 h
            find(
                "QUANTITY_MISMATCH",
                f"total_time {cdr.total_time} h but TIME + PARKING_TIME + RESERVATION_TIME volumes add up "
                f"to {(Decimal(total_ms) / MS_PER_HOUR).quantize(Decimal('0.0001'))} h",
                "time",
            )


def explain_dimensions(cdr: Cdr, row: dict[str, Any], k: int, tolerance: Decimal, find: Any) -> None:
    """Say per dimension where an over/under-charge comes from, in words a finance person reads."""
    for cat, field_name in DIMENSIONS.items():
        reported: Money | None = getattr(cdr, field_name)
        if reported is None or reported.excl is None:
            continue
        ours = _dec(row.get(f"{cat}_cost_excl_vat"))
        if ours is None:
            continue
        diff = reported.excl - k * ours
        if abs(diff) <= tolerance:
            continue
        msg = f"{DIM_WORDS[cat]}: reported {reported.excl:.2f}, the tariff gives {k * ours:.2f}"
        billed = _dec(
            row.get(
                {
                    "time": "billed_charging_time_h",
                    "parking": "billed_parking_time_h",
                    "reservation": "billed_reservation_time_h",
                    "energy": "billed_energy_kwh",
                }.get(cat)
            )
        )
        if billed is not None and billed != 0 and ours != 0:
            unit_price = ours / billed
            implied = abs(reported.excl) / unit_price
            if cat == "energy":
                msg = (
                    f"energy billed {implied:.3f} kWh at {unit_price:.2f}/kWh, the tariff's step_size "
                    f"gives {billed:.3f} kWh"
                )
            else:
                msg = (
                    f"{DIM_WORDS[cat]} billed {implied * 60:.0f} min at {unit_price:.2f}/h, the tariff's "
                    f"step_size gives {billed * 60:.0f} min"
                )
        find("OVERCHARGED" if diff > 0 else "UNDERCHARGED", msg, cat, amt=diff)


def check_duplicates_and_credits(
    lines: list[ReconLine],
    history_ids: dict[str, Money | None] | None = None,
    history_credits: Mapping[str, str] | None = None,
) -> None:
    """DUPLICATE_CDR, CREDIT_WITHOUT_ORIGINAL, CREDIT_AMOUNT_MISMATCH and CREDIT_DUPLICATE across
    a batch.

    ``history_ids`` maps ids of CDRs settled earlier to their reported total (credits may net an
    original from an earlier month); ``history_credits`` maps the originals that a credit settled
    earlier already netted to that credit's id (:func:`settlement.jobs.read_history_credits`).
    """
    check_duplicates(lines)
    check_credits(lines, history_ids or {}, history_credits or {})


def id_key(cdr_id: str) -> str:
    """A CDR id as OCPI compares it (CiString: case-insensitive). The one home of that rule: the
    columnar engines and the store pick the ids to judge record by record by this key too."""
    return cdr_id.upper()


def id_key_expr(column: str = "cdr_id") -> pl.Expr:
    """:func:`id_key` on a polars column (picks the ids on more than one record)."""
    return pl.col(column).str.to_uppercase()


def cdr_key(cdr: Cdr) -> tuple[str | None, str | None, str]:
    """Which CDR this is: its CPO's party codes and its id, as OCPI compares them."""
    cc, pid = cdr.country_code, cdr.party_id
    return (None if cc is None else cc.upper(), None if pid is None else pid.upper(), id_key(cdr.id))


def check_duplicates(lines: list[ReconLine]) -> None:
    """DUPLICATE_CDR on every later copy of a CDR (and on the first, for a conflicting copy).

    A CDR is its id under its CPO (OCPI: the id is unique per country_code and party_id): two CPOs
    may number their CDRs alike, and those are two CDRs, not a re-send. A CDR that names no CPO
    (OCPI 2.1.1) is compared by its id with the other CDRs that name none. Ids and party codes are
    OCPI CiStrings: ``abc-1`` is ``ABC-1`` (:func:`cdr_key`)."""
    by_key: dict[tuple[str | None, str | None, str], list[ReconLine]] = defaultdict(list)
    for ln in lines:
        by_key[cdr_key(ln.cdr)].append(ln)
    for group in by_key.values():
        if len(group) < 2:
            continue
        first = group[0]
        mine = first.cdr.id
        for dup in group[1:]:
            same = dup.cdr == first.cdr
            word = "an identical copy" if same else "a CONFLICTING copy (different content)"
            theirs = dup.cdr.id
            spelled = "" if theirs == mine else f" (as {theirs!r}: OCPI ids ignore case)"
            dup.findings.append(
                ReconFinding(
                    theirs,
                    "DUPLICATE_CDR",
                    f"CDR id {mine!r} appears again{spelled}: {word} of {first.source}:{first.line}",
                    None,
                    None,
                    dup.source,
                    dup.line,
                )
            )
            if not same:
                first.findings.append(
                    ReconFinding(
                        mine,
                        "DUPLICATE_CDR",
                        f"CDR id {mine!r} has a conflicting copy{spelled} at {dup.source}:{dup.line}",
                        None,
                        None,
                        first.source,
                        first.line,
                    )
                )


CREDIT_DUPLICATE = "CREDIT_DUPLICATE"


def credit_duplicate_message(ref: str, first: str, earlier: bool) -> str:
    """CREDIT_DUPLICATE: a second credit of an original that a credit already netted."""
    where = "a credit settled in an earlier run" if earlier else "an earlier credit of this run"
    return (
        f"credit of {ref!r} again: {ref!r} was already credited by {first!r} ({where}); an original "
        "is credited once, so this credit is disputed and not paid. Hint: if the CPO meant to "
        "correct the original again, it sends a new CDR, not a second credit"
    )


def check_credits(
    lines: list[ReconLine], history_ids: dict[str, Money | None], history_credits: Mapping[str, str]
) -> None:
    """CREDIT_WITHOUT_ORIGINAL, CREDIT_AMOUNT_MISMATCH and CREDIT_DUPLICATE: a credit nets its
    original once, in this run or in the settled history.

    *decision*: the first credit (history first, then input order) whose amount nets the original
    is the credit of it; every later credit of that original (another id) is CREDIT_DUPLICATE, a
    dispute that is never paid (:data:`settlement.rules.NEVER_PAID`). A credit that does not net
    its original (CREDIT_AMOUNT_MISMATCH: over- or under-crediting) is disputed and does not use
    the original up: a later credit that nets it is the credit of it."""
    originals = {ln.cdr.id: ln for ln in lines if not ln.cdr.credit}
    netted: dict[str, tuple[str, bool]] = {o: (c, True) for o, c in history_credits.items()}
    for ln in lines:
        if not ln.cdr.credit:
            continue
        ref = ln.cdr.credit_reference_id
        orig_total: Money | None
        if ref in originals:
            orig_total = originals[ref].cdr.total_cost
        elif ref in history_ids:
            orig_total = history_ids[ref]
        else:
            ln.findings.append(
                ReconFinding(
                    ln.cdr.id,
                    "CREDIT_WITHOUT_ORIGINAL",
                    f"credit CDR refers to {ref!r}, which is "
                    "neither in this run nor in the settled history. Hint: include the original "
                    "CDR or the earlier statement's history",
                    None,
                    None,
                    ln.source,
                    ln.line,
                )
            )
            continue
        assert ref is not None
        first = netted.get(ref)
        if first is not None and first[0] != ln.cdr.id:  # the same id again is a DUPLICATE_CDR
            ln.findings.append(
                ReconFinding(
                    ln.cdr.id,
                    CREDIT_DUPLICATE,
                    credit_duplicate_message(ref, first[0], first[1]),
                    "total",
                    None,
                    ln.source,
                    ln.line,
                    None if ln.cdr.total_cost is None else ln.cdr.total_cost.excl,
                )
            )
            continue
        mine = ln.cdr.total_cost
        if orig_total is None or mine is None or orig_total.excl is None or mine.excl is None:
            netted.setdefault(ref, (ln.cdr.id, False))
            continue
        if mine.excl == -orig_total.excl:
            netted.setdefault(ref, (ln.cdr.id, False))
        else:
            ln.findings.append(
                ReconFinding(
                    ln.cdr.id,
                    "CREDIT_AMOUNT_MISMATCH",
                    f"credit total {mine.excl} does not net the "
                    f"original {ref!r} ({orig_total.excl}): it should be {-orig_total.excl}",
                    "total",
                    None,
                    ln.source,
                    ln.line,
                    mine.excl + orig_total.excl,
                )
            )


def summarize(lines: list[ReconLine]) -> dict[str, Any]:
    by_status = Counter(ln.status for ln in lines)
    by_code = Counter(f.code for ln in lines for f in ln.findings)
    diff = sum((ln.diff_excl for ln in lines if ln.diff_excl is not None), Decimal(0))
    return {
        "cdrs": len(lines),
        "by_status": {s: by_status.get(s, 0) for s in STATUSES},
        "findings_by_code": dict(sorted(by_code.items())),
        "net_difference_excl_vat": e4(diff),
    }
