"""Settlement statements: one per (CPO, eMSP, currency) and month, built from reconciled CDRs.

Rules (decisions where OCPI is silent are marked *decision*):

* One line per CDR; credit CDRs are negative lines that carry their original's id (their energy is
  negative too: the totals and the chart net a credit against its original).
* Line amounts: the CDR's ``total_cost`` (basis ``reported``) or our recomputation (basis
  ``recomputed``), both OCPI 4-decimal amounts, rounded half-up to the currency's minor unit
  (babel). The statement total is the sum of the rounded lines; the difference to the sum of the
  unrounded amounts is shown as ``rounding_difference``.
* VAT per rate: a line's VAT is its rounded incl. minus its rounded excl. amount, grouped by the
  VAT rate of the CDR's tariff; a tariff with several rates goes to the bucket ``mixed``. The base
  of a rate is the net (excl. VAT) of exactly those lines, so the bases add up to the net total.
* Lines whose CDR carries no VAT (OCPI 2.1.1) take the contract's VAT rate for the pair or the CPO's
  country (:mod:`settlement.contracts`), per line (:func:`contract_line_vat`, the one rule for the
  VAT of such a line): the line's VAT is the rate times its rounded net, rounded half-up; its
  ``vat_rate`` is the contract's rate, its ``amount_incl_vat`` (what the CDR said) stays empty.
  The VAT table has one row ``source: contract`` whose base and VAT are the sums of those lines
  (*decision*: per line, so ``lines.csv`` adds up to the statement; before, the VAT was rounded
  once on their net total and the lines kept it unknown), and a finding per statement. With no
  such rate the lines' VAT stays unknown and the statement states net amounts only (no VAT total,
  no gross, amount due excl. VAT) and says why.
* 2.3.0 tax lines are summed per (name, percentage) and labelled by where they come from: reported
  by the CPO in the CDRs (basis ``reported``) or computed by us (basis ``recomputed``); they cover
  the 2.3.0 lines only and are information: the VAT table is what the totals are made of.
* Disputed lines (over/under-charged beyond the tolerance with basis ``reported``, unverifiable,
  credit problems, conflicting duplicates) are listed apart and excluded or included per contract.
* Contract fees are separate, labelled net lines carrying the contract's VAT rate (none known: the
  fees are net, as the rest of the statement); the percentage fee applies to the included CDR
  lines' net total.
* Amount due = gross (net + VAT) + fees incl. their VAT; net only: net + net fees. A negative
  amount due is a credit balance: the CPO owes the eMSP (the page says so).
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

    @property
    def vat_from_contract(self) -> bool:
        """The CDR carries no VAT and the line's VAT is the contract's (:func:`contract_line_vat`)."""
        return self.amount_incl is None and self.incl is not None

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
    amount: Decimal  # net
    vat_rate: Decimal | None = None  # the contract's; None: net only
    vat: Decimal | None = None
    # what ``basis`` says, as numbers (the HTML writes them for its locale): quantity x unit price,
    # or percent of the base
    quantity: int | None = None
    unit: Decimal = Decimal(0)
    percent_of: Decimal | None = None
    credited: int = 0  # a fee per session: the credited sessions netted from ``quantity`` sessions

    @property
    def amount_incl(self) -> Decimal | None:
        return None if self.vat is None else self.amount + self.vat

    def as_dict(self) -> dict[str, str | None]:
        return {
            "label": self.label,
            "basis": self.basis,
            "amount": str(self.amount),
            "vat_rate": None if self.vat_rate is None else f"{self.vat_rate.normalize():f}",
            "vat": None if self.vat is None else str(self.vat),
            "amount_incl_vat": None if self.amount_incl is None else str(self.amount_incl),
        }


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
    time_zone: str = "UTC"  # the statement's zone: session times, days and the month are local to it
    parties: dict[str, Any] = field(default_factory=dict)  # "cpo", "emsp": Contracts.party

    @property
    def id(self) -> str:
        raw = f"RL-{self.month}-{self.cpo}-{self.emsp}-{self.currency}"
        return re.sub(r"[^A-Za-z0-9-]", "", raw.replace("*", ""))

    @property
    def folder(self) -> str:
        """``CPO__EMSP__CURRENCY`` (``*`` written ``-``); any other character than an ASCII letter,
        digit or ``-`` is percent-encoded, so that no party code can name a path elsewhere."""
        parts = (self.cpo.replace("*", "-"), self.emsp.replace("*", "-"), self.currency)
        return "__".join(_UNSAFE.sub(_percent, part) for part in parts)


_UNSAFE = re.compile(r"[^A-Za-z0-9-]")


def _percent(m: re.Match[str]) -> str:
    return "".join(f"%{b:02X}" for b in m.group().encode("utf-8"))


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


def contract_line_vat(excl: Decimal, rate: Decimal, currency: str) -> Decimal:
    """The VAT of a line whose CDR carries none, at the contract's ``rate`` (percent): the rate
    times the line's rounded net ``excl``, rounded half-up to the currency's minor unit. Both
    engines use this function (the columnar one on the distinct nets of such lines)."""
    return round_money(excl * rate / 100, currency)


def with_contract_vat(line: Line, rate: Decimal | None, currency: str) -> Line:
    """``line`` with the contract's VAT when its CDR carries none and the contract sets a rate."""
    if line.amount_incl is not None or rate is None:
        return line
    line.incl = line.excl + contract_line_vat(line.excl, rate, currency)
    line.vat_bucket = rate_text(rate)
    return line


@dataclass
class Aggregates:
    """The sums a statement's totals are made of (from Line objects or from columns)."""

    lines: int = 0
    disputed: int = 0
    disputed_excluded: int = 0
    energy_kwh: Decimal = Decimal(0)
    unrounded_excl: Decimal = Decimal(0)
    total_excl: Decimal = Decimal(0)
    unknown_vat: int = 0  # lines whose CDR carries no VAT (at the contract's rate, or unknown)
    unknown_excl: Decimal = Decimal(0)  # rounded net of the lines without VAT information
    unknown_unrounded_excl: Decimal = Decimal(0)
    contract_vat: Decimal = Decimal(0)  # the sum of their line VAT at the contract's rate
    unrounded_incl: Decimal = Decimal(0)  # over the lines with VAT information from the CDR
    vat_by_rate: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    base_by_rate: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    taxes: dict[tuple[str, str | None], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    sessions: int = 0  # non-credit lines − credit lines
    credited: int = 0  # credit lines


def aggregate(st: Statement) -> Aggregates:
    a = Aggregates(lines=len(st.lines), disputed=len(st.disputed))
    included = {id(ln) for ln in st.lines}  # a disputed line that is included is the same object
    a.disputed_excluded = sum(1 for d in st.disputed if id(d) not in included)
    a.energy_kwh = sum((ln.energy_kwh for ln in st.lines), Decimal(0))
    a.unrounded_excl = sum((ln.amount_excl for ln in st.lines), Decimal(0))
    a.total_excl = sum((ln.excl for ln in st.lines), Decimal(0))
    known = [ln for ln in st.lines if ln.amount_incl is not None]
    unknown = [ln for ln in st.lines if ln.amount_incl is None]
    a.unknown_vat = len(unknown)
    a.unknown_excl = sum((ln.excl for ln in unknown), Decimal(0))
    a.unknown_unrounded_excl = sum((ln.amount_excl for ln in unknown), Decimal(0))
    a.contract_vat = sum((ln.vat or Decimal(0) for ln in unknown), Decimal(0))
    for ln in known:
        a.vat_by_rate[ln.vat_bucket] += ln.vat or Decimal(0)
        a.base_by_rate[ln.vat_bucket] += ln.excl
    for ln in st.lines:
        for name, pct, amt in ln.taxes:
            a.taxes[(name, pct)] += amt
    a.unrounded_incl = sum((ln.amount_incl or Decimal(0) for ln in known), Decimal(0))
    a.credited = sum(1 for ln in st.lines if ln.credit)
    a.sessions = sum(1 for ln in st.lines if not ln.credit) - a.credited
    return a


def sessions_text(sessions: int, credited: int) -> str:
    """The count of a fee per session in words: "3 sessions", or with credits "4 sessions - 1
    credited" (never a negative count)."""
    if not credited:
        return f"{sessions} sessions"
    return f"{sessions + credited} sessions - {credited} credited"


def contract_fees(t: Terms, sessions: int, total_excl: Decimal, cur: str, credited: int = 0) -> list[FeeLine]:
    """The contract's fee lines: per session (roaming, hub) and a percentage of the CDR lines'
    net total; each rounded to the currency's minor unit, with the contract's VAT rate (VAT rounded
    per fee line); a fee of zero is left out.

    ``sessions``: the net count, non-credit lines − ``credited`` (the credit lines). *decision*: a
    credit nets its session's fee as it nets its money: a session and its credit on one statement
    pay no fee; a credit of a session of an earlier statement refunds the fee paid there (a re-sent,
    corrected CDR then pays it once). The basis says both counts ("4 sessions - 1 credited"), never
    a negative count; the fee is negative when the credits outnumber the sessions."""
    roaming, percent, hub = t.roaming_fee_per_session, t.roaming_fee_percent, t.hub_fee_per_session
    count = sessions_text(sessions, credited)
    candidates = [
        ("Roaming fee per session", roaming, f"{count} x {roaming}", roaming * sessions, False),
        (
            "Roaming fee (percentage)",
            percent,
            f"{percent} % of {total_excl}",
            total_excl * percent / 100,
            True,
        ),
        ("Hub fee per session", hub, f"{count} x {hub}", hub * sessions, False),
    ]
    out = []
    for label, rate, basis, amount, is_percent in candidates:
        if rate:
            net = round_money(amount, cur)
            vat = None if t.vat_rate is None else round_money(net * t.vat_rate / 100, cur)
            fee = FeeLine(label, basis, net, t.vat_rate, vat, None if is_percent else sessions, rate)
            fee.percent_of = total_excl if is_percent else None
            fee.credited = 0 if is_percent else credited
            out.append(fee)
    return out


def rate_text(rate: Decimal) -> str:
    return f"{rate.normalize():f}"


def vat_rows(a: Aggregates, t: Terms, cur: str) -> list[dict[str, Any]]:
    """The VAT table: one row per rate the CDRs carry (``source: cdr``), then the lines without
    VAT information at the contract's rate (``source: contract``: the sums of their lines) or, with
    no rate, as a row whose VAT is unknown (``source: none``). The bases add up to the statement's
    net total, the VAT to the sum of the lines' VAT."""
    rows: list[dict[str, Any]] = [
        {
            "rate": r,
            "source": "cdr",
            "base_excl_vat": str(round_money(a.base_by_rate[r], cur)),
            "vat": str(round_money(a.vat_by_rate[r], cur)),
        }
        for r in sorted(a.vat_by_rate)
    ]
    if a.unknown_vat:
        if t.vat_rate is not None:
            rows.append(
                {
                    "rate": rate_text(t.vat_rate),
                    "source": "contract",
                    "base_excl_vat": str(round_money(a.unknown_excl, cur)),
                    "vat": str(round_money(a.contract_vat, cur)),
                }
            )
        else:
            rows.append(
                {
                    "rate": "unknown",
                    "source": "none",
                    "base_excl_vat": str(round_money(a.unknown_excl, cur)),
                    "vat": None,
                }
            )
    return rows


def vat_note(a: Aggregates, t: Terms, has_fees: bool) -> str | None:
    """The one sentence that says where VAT comes from when the CDRs do not carry it all, or why
    the statement states net amounts only."""
    n = a.unknown_vat
    lines = "1 line is an OCPI 2.1.1 CDR" if n == 1 else f"{n} lines are OCPI 2.1.1 CDRs"
    if t.vat_rate is not None:
        if not n:
            return None
        rate = rate_text(t.vat_rate)
        return f"{lines} without VAT: VAT at the contract's rate of {rate} % on each line's net amount."
    if n:
        return (
            f"{lines} without VAT and the contract sets no VAT rate for this pair or country: "
            "this statement states net amounts only (VAT is settled outside it)."
        )
    if has_fees:
        return (
            "The contract sets no VAT rate for its fees (pair or country): "
            "this statement states net amounts only (VAT is settled outside it)."
        )
    return None


def finish(st: Statement, contracts: Contracts, agg: Aggregates | None = None) -> None:
    """Totals, VAT and tax lines, fees, due date, FX — from the lines already assigned (or from
    their sums, ``agg``, computed elsewhere)."""
    a = agg or aggregate(st)
    cur = st.currency
    t = st.terms
    total_excl = a.total_excl
    rows = vat_rows(a, t, cur)
    st.fees = contract_fees(t, a.sessions, total_excl, cur, a.credited)
    net_only = any(r["vat"] is None for r in rows) or any(f.vat is None for f in st.fees)
    vat_total = None if net_only else sum((Decimal(r["vat"]) for r in rows), Decimal(0))
    gross = None if vat_total is None else total_excl + vat_total
    unrounded_incl = None
    if not net_only:
        unrounded_incl = a.unrounded_incl
        if a.unknown_vat and t.vat_rate is not None:
            unrounded_incl += a.unknown_unrounded_excl * (100 + t.vat_rate) / 100
    fees_total = sum((f.amount for f in st.fees), Decimal(0))
    fees_vat = None if net_only else sum((f.vat or Decimal(0) for f in st.fees), Decimal(0))
    if gross is not None and fees_vat is not None:
        due, basis = gross + fees_total + fees_vat, "incl. VAT"
    else:  # net only: every figure of the statement excl. VAT
        due, basis = total_excl + fees_total, "excl. VAT (net amounts only)"
    _, last = month_bounds(st.month)
    st.parties = {"cpo": contracts.party(st.cpo), "emsp": contracts.party(st.emsp)}
    reporting = t.reporting_currency or cur
    rate = contracts.fx(cur, reporting)
    tax_source = "reported" if t.basis == "reported" else "computed"

    def money(amount: Decimal) -> str:
        """A total at the edge: the currency's decimals, also for zero ("0.00", not "0"); the
        amounts are sums of amounts already rounded to the minor unit, so nothing is re-rounded."""
        return str(round_money(amount, cur))

    def tax_line(name: str, pct: str | None, amount: Decimal) -> dict[str, Any]:
        return {
            "name": name,
            "percentage": pct,
            "amount": str(round_money(amount, cur)),
            "source": tax_source,
        }

    st.totals = {
        "lines": a.lines,
        "disputed_lines": a.disputed,
        "disputed_excluded": a.disputed_excluded,
        "energy_kwh": e4(a.energy_kwh),
        "total_excl_vat": money(total_excl),
        "unrounded_total_excl_vat": e4(a.unrounded_excl),
        "rounding_difference_excl_vat": e4(total_excl - a.unrounded_excl),
        "vat_total": None if vat_total is None else money(vat_total),
        "vat_unknown_lines": 0 if t.vat_rate is not None else a.unknown_vat,
        "vat_from_contract_lines": a.unknown_vat if t.vat_rate is not None else 0,
        "vat_note": vat_note(a, t, bool(st.fees)),
        "total_incl_vat": None if gross is None else money(gross),
        "unrounded_total_incl_vat": e4(unrounded_incl),
        "rounding_difference_incl_vat": None
        if gross is None or unrounded_incl is None
        else e4(gross - unrounded_incl),
        "vat_by_rate": rows,
        "tax_lines": [
            tax_line(n, p, amt)
            for (n, p), amt in sorted(a.taxes.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
        ],
        "fees_total": money(fees_total),
        "fees_vat": None if fees_vat is None else money(fees_vat),
        "fees_total_incl_vat": None if fees_vat is None else money(fees_total + fees_vat),
        "amount_due": money(due),
        "amount_due_basis": basis,
        # decision: issued the day after the month (no clock: the same run gives the same bytes)
        "issue_date": (last + timedelta(days=1)).isoformat(),
        "due_date": (last + timedelta(days=t.payment_terms_days)).isoformat(),
        "payment_terms_days": t.payment_terms_days,
        "payment_reference": st.id,
        "rounding_rule": ROUNDING_RULE,
        "reporting_currency": reporting,
        "fx_rate": None if rate is None else str(rate),
        "amount_due_reporting": None if rate is None else str(round_money(due * rate, reporting)),
    }


def vat_findings(statements: Any) -> list[dict[str, Any]]:
    """One finding per statement whose VAT the CDRs do not carry in full (statement order)."""
    out = []
    for st in statements:
        note = st.totals.get("vat_note")
        if note:
            code = "VAT_UNKNOWN" if st.totals["vat_total"] is None else "VAT_FROM_CONTRACT"
            out.append(
                {
                    "cdr_id": None,
                    "code": code,
                    "dimension": None,
                    "period": None,
                    "amount": next(
                        (r["vat"] for r in st.totals["vat_by_rate"] if r["source"] != "cdr"), None
                    ),
                    "message": f"statement {st.id}: {note}",
                    "source": "",
                    "line": None,
                }
            )
    return out
