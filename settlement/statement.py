"""Settlement statements: one per (CPO, eMSP, currency) and month, built from reconciled CDRs.

Rules (decisions where OCPI is silent are marked *decision*):

* One line per CDR; credit CDRs are negative lines that carry their original's id.
* Line amounts: the CDR's ``total_cost`` (basis ``reported``) or our recomputation (basis
  ``recomputed``), both OCPI 4-decimal amounts, rounded half-up to the currency's minor unit
  (babel). The statement total is the sum of the rounded lines; the difference to the sum of the
  unrounded amounts is shown as ``rounding_difference``.
* VAT per rate: a line's VAT is its rounded incl. minus its rounded excl. amount, grouped by the
  VAT rate of the CDR's tariff; a tariff with several rates goes to the bucket ``mixed`` (its rates
  are listed). 2.1.1 CDRs carry no VAT: their VAT is ``unknown`` and the statement says so.
* 2.3.0 tax lines are summed per (name, percentage).
* Disputed lines (over/under-charged beyond the tolerance with basis ``reported``, unverifiable,
  credit problems, conflicting duplicates) are listed apart and excluded or included per contract.
* Contract fees are separate, labelled lines (*decision*: fee amounts are VAT-exclusive and carry
  no VAT of their own; the percentage fee applies to the included CDR lines' excl. VAT total).
* Due date = last day of the month + payment terms. FX to a reporting currency is one labelled
  conversion of the amount due, rounded to the reporting currency's minor unit.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from settlement.contracts import Contracts, Terms
from settlement.reconcile import ReconLine
from settlement.rules import e4, month_bounds, reasons_text, round_money

ROUNDING_RULE = "half-up per line to the currency's minor unit"


@dataclass
class Line:
    cdr_id: str
    session_start: str  # local ISO date-time in the statement zone
    session_end: str
    day: str  # local date of the session end (month membership)
    location_id: str
    energy_kwh: Decimal
    amount_excl: Decimal  # unrounded (OCPI 4 decimals)
    amount_incl: Decimal | None
    excl: Decimal  # rounded to the minor unit
    incl: Decimal | None
    vat_bucket: str  # "21", "mixed", "none", "unknown"
    taxes: list[tuple[str, str | None, Decimal]]  # 2.3.0 (name, percentage, amount)
    credit: bool
    credit_reference_id: str | None
    status: str
    reasons: str
    disputed: bool = False
    dispute_reason: str = ""

    @property
    def vat(self) -> Decimal | None:
        return None if self.incl is None else self.incl - self.excl

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> Line:
        """The line of a ``lines.csv`` / ``statement.json`` row (``as_row``; 2.3.0 taxes are not in
        the row)."""

        def dec(v: str | None) -> Decimal | None:
            return None if v is None else Decimal(v)

        return cls(
            cdr_id=r["cdr_id"],
            session_start=r["session_start"],
            session_end=r["session_end"],
            day=r["session_end"][:10],
            location_id=r["location_id"],
            energy_kwh=Decimal(r["energy_kwh"]),
            amount_excl=Decimal(r["amount_excl_vat"]),
            amount_incl=dec(r["amount_incl_vat"]),
            excl=Decimal(r["line_excl_vat"]),
            incl=dec(r["line_incl_vat"]),
            vat_bucket=r["vat_rate"],
            taxes=[],
            credit=r["credit"],
            credit_reference_id=r["credit_reference_id"],
            status=r["status"],
            reasons=r["reasons"],
            disputed=r["disputed"],
            dispute_reason=r["dispute_reason"],
        )

    def as_row(self) -> dict[str, Any]:
        return {
            "cdr_id": self.cdr_id,
            "session_start": self.session_start,
            "session_end": self.session_end,
            "location_id": self.location_id,
            "energy_kwh": e4(self.energy_kwh),
            "amount_excl_vat": e4(self.amount_excl),
            "amount_incl_vat": e4(self.amount_incl),
            "line_excl_vat": str(self.excl),
            "line_vat": None if self.vat is None else str(self.vat),
            "line_incl_vat": None if self.incl is None else str(self.incl),
            "vat_rate": self.vat_bucket,
            "credit": self.credit,
            "credit_reference_id": self.credit_reference_id,
            "status": self.status,
            "reasons": self.reasons,
            "disputed": self.disputed,
            "dispute_reason": self.dispute_reason,
        }


LINE_COLUMNS = list(
    Line(
        "", "", "", "", "", Decimal(0), Decimal(0), None, Decimal(0), None, "", [], False, None, "", ""
    ).as_row()
)


@dataclass
class FeeLine:
    label: str
    basis: str
    amount: Decimal

    def as_dict(self) -> dict[str, str]:
        return {"label": self.label, "basis": self.basis, "amount": str(self.amount)}


@dataclass
class Statement:
    cpo: str
    emsp: str
    currency: str
    month: str
    terms: Terms
    lines: list[Line] = field(default_factory=list)  # included in the total
    disputed: list[Line] = field(default_factory=list)  # listed apart (included ones appear in both)
    fees: list[FeeLine] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        raw = f"RL-{self.month}-{self.cpo}-{self.emsp}-{self.currency}"
        return re.sub(r"[^A-Za-z0-9-]", "", raw.replace("*", ""))

    @property
    def folder(self) -> str:
        return f"{self.cpo.replace('*', '-')}__{self.emsp.replace('*', '-')}__{self.currency}"


def vat_bucket(ln: ReconLine) -> str:
    return tariffs_vat_bucket(_tariffs_of(ln))


def tariffs_vat_bucket(tariffs: Any) -> str:
    """The VAT bucket of a line priced with these tariffs: one rate, "mixed", "none", "unknown"."""
    rates = set()
    for t in tariffs:
        if not t.taxes_known:
            return "unknown"
        for e in t.elements:
            for c in e.components:
                rates.add(c.vat)
    known = {r for r in rates if r is not None}
    if not known:
        return "none"
    if len(known) == 1 and None not in rates:
        return f"{next(iter(known)).normalize():f}"
    return "mixed"


def _tariffs_of(ln: ReconLine) -> tuple[Any, ...]:
    return getattr(ln, "tariffs", ()) or ln.cdr.tariffs


def build_line(
    ln: ReconLine, basis: str, start_local: str, end_local: str, day: str, energy: Decimal
) -> Line | None:
    """The statement line of a reconciled CDR, or None when no amount exists on this basis."""
    cdr = ln.cdr
    if basis == "reported":
        rep = cdr.total_cost
        if rep is None or rep.excl is None:
            return None
        excl, incl = rep.excl, rep.incl
        taxes = [(n, None if p is None else f"{p.normalize():f}", a) for n, p, a in rep.taxes]
    else:
        if ln.row is None or ln.row.get("total_cost_excl_vat") is None:
            return None
        k = -1 if cdr.credit else 1
        excl = k * Decimal(ln.row["total_cost_excl_vat"])
        incl_s = ln.row.get("total_cost_incl_vat")
        incl = None if incl_s is None else k * Decimal(incl_s)
        taxes = [(t["name"], t["percentage"], k * Decimal(t["amount"])) for t in (ln.row.get("taxes") or [])]
    cur = cdr.currency.upper()
    return Line(
        cdr_id=cdr.id,
        session_start=start_local,
        session_end=end_local,
        day=day,
        location_id=cdr.location_id or "",
        energy_kwh=energy,
        amount_excl=excl,
        amount_incl=incl,
        excl=round_money(excl, cur),
        incl=None if incl is None else round_money(incl, cur),
        vat_bucket=vat_bucket(ln) if incl is not None else "unknown",
        taxes=taxes,
        credit=cdr.credit,
        credit_reference_id=cdr.credit_reference_id,
        status=ln.status,
        reasons=reasons_text(ln.codes),
    )


@dataclass
class Aggregates:
    """The sums a statement's totals are made of (from Line objects or from columns)."""

    lines: int = 0
    disputed: int = 0
    disputed_excluded: int = 0
    energy_kwh: Decimal = Decimal(0)
    unrounded_excl: Decimal = Decimal(0)
    total_excl: Decimal = Decimal(0)
    unknown_vat: int = 0
    unrounded_incl: Decimal = Decimal(0)  # over the lines with VAT information
    vat_by_rate: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    base_by_rate: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    taxes: dict[tuple[str, str | None], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    sessions: int = 0  # non-credit lines − credit lines


def aggregate(st: Statement) -> Aggregates:
    a = Aggregates(lines=len(st.lines), disputed=len(st.disputed))
    included = {id(ln) for ln in st.lines}  # a disputed line that is included is the same object
    a.disputed_excluded = sum(1 for d in st.disputed if id(d) not in included)
    a.energy_kwh = sum((ln.energy_kwh for ln in st.lines), Decimal(0))
    a.unrounded_excl = sum((ln.amount_excl for ln in st.lines), Decimal(0))
    a.total_excl = sum((ln.excl for ln in st.lines), Decimal(0))
    known = [ln for ln in st.lines if ln.incl is not None]
    a.unknown_vat = len(st.lines) - len(known)
    for ln in known:
        a.vat_by_rate[ln.vat_bucket] += ln.vat or Decimal(0)
        a.base_by_rate[ln.vat_bucket] += ln.excl
    for ln in st.lines:
        for name, pct, amt in ln.taxes:
            a.taxes[(name, pct)] += amt
    a.unrounded_incl = sum((ln.amount_incl or Decimal(0) for ln in known), Decimal(0))
    a.sessions = sum(1 for ln in st.lines if not ln.credit) - sum(1 for ln in st.lines if ln.credit)
    return a


def contract_fees(t: Terms, sessions: int, total_excl: Decimal, cur: str) -> list[FeeLine]:
    """The contract's fee lines: per session (roaming, hub) and a percentage of the CDR lines'
    excl. VAT total; each rounded to the currency's minor unit, a fee of zero is left out."""
    roaming, percent, hub = t.roaming_fee_per_session, t.roaming_fee_percent, t.hub_fee_per_session
    candidates = [
        ("Roaming fee per session", roaming, f"{sessions} sessions x {roaming}", roaming * sessions),
        ("Roaming fee (percentage)", percent, f"{percent} % of {total_excl}", total_excl * percent / 100),
        ("Hub fee per session", hub, f"{sessions} sessions x {hub}", hub * sessions),
    ]
    return [
        FeeLine(label, basis, round_money(amount, cur)) for label, rate, basis, amount in candidates if rate
    ]


def finish(st: Statement, contracts: Contracts, agg: Aggregates | None = None) -> None:
    """Totals, VAT and tax lines, fees, due date, FX — from the lines already assigned (or from
    their sums, ``agg``, computed elsewhere)."""
    a = agg or aggregate(st)
    cur = st.currency
    t = st.terms
    unrounded_excl, total_excl, unknown_vat = a.unrounded_excl, a.total_excl, a.unknown_vat
    vat_by_rate, base_by_rate, taxes = a.vat_by_rate, a.base_by_rate, a.taxes
    vat_total = sum(vat_by_rate.values(), Decimal(0))  # VAT of the lines that carry VAT information
    total_incl = None if unknown_vat else total_excl + vat_total
    unrounded_incl = None if unknown_vat else a.unrounded_incl
    st.fees = contract_fees(t, a.sessions, total_excl, cur)
    fees_total = sum((f.amount for f in st.fees), Decimal(0))
    # lines without VAT information (OCPI 2.1.1) are due at their excl. VAT amount; VAT on them is
    # settled outside OCPI (decision: the statement never invents a rate)
    due = total_excl + vat_total + fees_total
    _, last = month_bounds(st.month)
    reporting = t.reporting_currency or cur
    rate = contracts.fx(cur, reporting)
    st.totals = {
        "lines": a.lines,
        "disputed_lines": a.disputed,
        "disputed_excluded": a.disputed_excluded,
        "energy_kwh": e4(a.energy_kwh),
        "total_excl_vat": str(total_excl),
        "unrounded_total_excl_vat": e4(unrounded_excl),
        "rounding_difference_excl_vat": e4(total_excl - unrounded_excl),
        "vat_total": str(vat_total),
        "vat_unknown_lines": unknown_vat,
        "total_incl_vat": None if total_incl is None else str(total_incl),
        "unrounded_total_incl_vat": e4(unrounded_incl),
        "rounding_difference_incl_vat": None
        if total_incl is None or unrounded_incl is None
        else e4(total_incl - unrounded_incl),
        "vat_by_rate": [
            {"rate": r, "base_excl_vat": str(base_by_rate[r]), "vat": str(vat_by_rate[r])}
            for r in sorted(vat_by_rate)
        ],
        "tax_lines": [
            {"name": n, "percentage": p, "amount": str(round_money(a, cur))}
            for (n, p), a in sorted(taxes.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
        ],
        "fees_total": str(fees_total),
        "amount_due": str(due),
        "amount_due_basis": "incl. VAT"
        if total_incl is not None
        else "excl. VAT (VAT unknown for some lines)",
        "due_date": (last + timedelta(days=t.payment_terms_days)).isoformat(),
        "rounding_rule": ROUNDING_RULE,
        "reporting_currency": reporting,
        "fx_rate": None if rate is None else str(rate),
        "amount_due_reporting": None if rate is None else str(round_money(due * rate, reporting)),
    }
