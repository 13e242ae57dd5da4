"""Statement files: ``statement.json``, ``lines.csv``, ``statement.html`` and the OCPI 2.3.0
``InvoiceReconciliationRecord`` (``invoice_reconciliation_record.json``).

Everything is deterministic: no clock, sorted keys and rows, fixed number formats. ``statement.json``
follows the schema in ``settlement/SCHEMA.md``.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

from settlement.output import line_frame, lines_json, write_document, write_lines_csv
from settlement.rules import month_bounds
from settlement.statement import Statement

SCHEMA_VERSION = "roamledger.statement/1"


def statement_document(st: Statement) -> dict[str, Any]:
    first, last = month_bounds(st.month)
    return {
        "schema": SCHEMA_VERSION,
        "statement_id": st.id,
        "month": st.month,
        "period": {"from": first.isoformat(), "to": last.isoformat()},
        "cpo": st.cpo,
        "emsp": st.emsp,
        "currency": st.currency,
        "terms": st.terms.as_dict(),
        "totals": st.totals,
        "fees": [f.as_dict() for f in st.fees],
        "lines": [ln.as_row() for ln in st.lines],
        "disputed": [ln.as_row() for ln in st.disputed],
    }


def invoice_reconciliation_record(st: Statement) -> dict[str, Any]:
    """OCPI 2.3.0 (ed2) InvoiceReconciliationRecord, direct billing: the CPO owns the record."""
    cc, _, pid = st.cpo.partition("*")
    _, last = month_bounds(st.month)
    return {
        "country_code": cc,
        "party_id": pid,
        "id": st.id[:36],
        "invoice_id": st.id,
        "cdrs": [ln.cdr_id for ln in st.lines],
        "last_updated": f"{last.isoformat()}T23:59:59Z",
    }


def render_statement(st: Statement, folder: Path, locale: str = "en_GB") -> None:
    """The files of one statement (record engine; the columnar engine writes the same files from
    its columns with the same writers, :mod:`settlement.output`)."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = statement_document(st)
    doc.pop("lines")
    doc.pop("disputed")
    lines, disputed = line_frame(st.lines), line_frame(st.disputed)
    with open(folder / "statement.json", "wb") as fh:
        write_document(doc, {"lines": lines_json(lines), "disputed": lines_json(disputed)}, fh)
    with open(folder / "lines.csv", "wb") as fh:
        write_lines_csv(fh, lines)
    (folder / "invoice_reconciliation_record.json").write_text(
        json.dumps(invoice_reconciliation_record(st), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    (folder / "statement.html").write_text(statement_html(st, locale), encoding="utf-8")


# ---- HTML ---------------------------------------------------------------------------------------


def _money(v: Any, cur: str, locale: Any) -> str:
    if v is None or v == "":
        return "—"
    return format_currency(Decimal(str(v)), cur, locale=locale, currency_digits=True)


def daily_sums(lines: Any) -> dict[int, tuple[Decimal, Decimal]]:
    """Per day of the month (0-based): energy (kWh) and amount excl. VAT of the lines."""
    out: dict[int, tuple[Decimal, Decimal]] = {}
    for ln in lines:
        d = int(ln.day[8:10]) - 1
        e, a = out.get(d, (Decimal(0), Decimal(0)))
        out[d] = (e + ln.energy_kwh, a + ln.excl)
    return out


def daily_chart(st: Statement, locale: str, daily: dict[int, tuple[Decimal, Decimal]] | None = None) -> str:
    """Inline SVG: bars = daily energy (kWh), line = daily amount excl. VAT."""
    loc = Locale.parse(locale) if isinstance(locale, str) else locale
    first, last = month_bounds(st.month)
    days = (last - first).days + 1
    sums = daily_sums(st.lines) if daily is None else daily
    energy: dict[int, Decimal] = defaultdict(Decimal, {d: v[0] for d, v in sums.items()})
    amount: dict[int, Decimal] = defaultdict(Decimal, {d: v[1] for d, v in sums.items()})
    w, h, pad = 720, 200, 36
    bw = (w - 2 * pad) / days
    emax = max(energy.values(), default=Decimal(0)) or Decimal(1)
    amax = max(amount.values(), default=Decimal(0)) or Decimal(1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" '
        f'aria-label="Daily energy and amount">',
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#999"/>',
    ]
    points = []
    for d in range(days):
        x = pad + d * bw
        eh = float(energy[d] / emax) * (h - 2 * pad)  # drawing only: no money is computed here
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{h - pad - eh:.1f}" width="{max(bw - 2, 1):.1f}" height="{eh:.1f}" '
            f'fill="#8fb8de"><title>{first.replace(day=d + 1).isoformat()}: '
            f"{format_decimal(energy[d], '#,##0.0', locale=loc)} kWh</title></rect>"
        )
        ay = h - pad - float(amount[d] / amax) * (h - 2 * pad)
        points.append(f"{x + bw / 2:.1f},{ay:.1f}")
        if d % 5 == 0:
            parts.append(
                f'<text x="{x + bw / 2:.1f}" y="{h - pad + 14}" font-size="10" text-anchor="middle">{d + 1}</text>'
            )
    parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="#c0392b" stroke-width="2"/>')
    parts.append(
        f'<text x="{pad}" y="14" font-size="11" fill="#2c6fad">■ energy (kWh, max '
        f"{format_decimal(emax, '#,##0.0', locale=loc)})</text>"
    )
    parts.append(
        f'<text x="{w - pad}" y="14" font-size="11" fill="#c0392b" text-anchor="end">— amount excl. VAT '
        f"(max {html.escape(_money(amax, st.currency, loc))})</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem;color:#222;max-width:60rem}
h1{font-size:1.4rem;margin-bottom:.2rem} h2{font-size:1.1rem;margin-top:1.6rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:.85rem} th,td{padding:.25rem .4rem;border-bottom:1px solid #eee}
th{text-align:left;background:#f4f6f8} td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.meta td{border:none;padding:.1rem .6rem .1rem 0} .due{font-size:1.2rem;font-weight:600}
.disputed td{background:#fff6e5} .small{color:#666;font-size:.8rem}
@media print{body{margin:1cm} h2{break-after:avoid} tr{break-inside:avoid} .noprint{display:none}}
"""


def line_note(ln: Any) -> str:
    notes = []
    if ln.credit:
        notes.append(f"credit of {ln.credit_reference_id or '?'}")
    if ln.status not in ("MATCH", "ROUNDING"):
        notes.append(ln.status.lower().replace("_", " "))
    if ln.disputed:
        notes.append(f"disputed: {ln.dispute_reason}")
    return "; ".join(notes)


HTML_MAX_LINES = 1_000  # the page lists the first lines; lines.csv / statement.json have them all


def statement_html(
    st: Statement,
    locale: str = "en_GB",
    daily: dict[int, tuple[Decimal, Decimal]] | None = None,
    n_lines: int | None = None,
    members: Any = None,
    n_disputed: int | None = None,
) -> str:
    """The printable statement. ``st.lines`` may hold only the first lines (``n_lines`` = all of
    them), with ``daily`` sums over all; ``members`` = the included lines a disputed line is
    looked up in (default ``st.lines``)."""
    cur, t = st.currency, st.totals
    loc = Locale.parse(locale)  # parsed once: babel would parse the name on every call
    dates: dict[str, str] = {}
    n_lines = len(st.lines) if n_lines is None else n_lines
    members = {id(ln) for ln in (st.lines if members is None else members)}
    n_disputed = len(st.disputed) if n_disputed is None else n_disputed
    first, last = month_bounds(st.month)
    esc = html.escape

    def m(v: Any) -> str:
        return esc(_money(v, cur, loc))

    def d(iso: str) -> str:
        from datetime import date

        if iso[:10] not in dates:
            dates[iso[:10]] = esc(format_date(date.fromisoformat(iso[:10]), "medium", locale=loc))
        return dates[iso[:10]]

    rows = []
    for ln in st.lines[:HTML_MAX_LINES]:
        rows.append(
            f"<tr><td>{esc(ln.cdr_id)}</td><td>{d(ln.session_end)} {esc(ln.session_end[11:16])}</td>"
            f"<td>{esc(ln.location_id)}</td><td class=n>{esc(format_decimal(ln.energy_kwh, '#,##0.000', locale=loc))}</td>"
            f"<td class=n>{m(ln.excl)}</td><td class=n>{m(ln.vat)}</td><td class=n>{m(ln.incl)}</td>"
            f"<td>{esc(ln.vat_bucket)}</td><td>{esc(line_note(ln))}</td></tr>"
        )
    if n_lines > HTML_MAX_LINES:
        rows.append(
            f"<tr><td colspan=9>… {n_lines - HTML_MAX_LINES} more lines: all {n_lines} are in lines.csv "
            "and statement.json</td></tr>"
        )
    disputed = (
        "".join(
            f"<tr class=disputed><td>{esc(ln.cdr_id)}</td><td>{d(ln.session_end)}</td><td class=n>{m(ln.excl)}</td>"
            f"<td>{esc(ln.dispute_reason)}</td><td>{'included' if id(ln) in members else 'excluded'}</td></tr>"
            for ln in st.disputed[:HTML_MAX_LINES]
        )
        or "<tr><td colspan=5>none</td></tr>"
    )
    if n_disputed > HTML_MAX_LINES:
        disputed += (
            f"<tr><td colspan=5>… {n_disputed - HTML_MAX_LINES} more disputed lines: all are in "
            "statement.json</td></tr>"
        )
    vat = (
        "".join(
            f"<tr><td>{esc(v['rate'])}{'' if v['rate'] in ('mixed', 'none', 'unknown') else ' %'}</td>"
            f"<td class=n>{m(v['base_excl_vat'])}</td><td class=n>{m(v['vat'])}</td></tr>"
            for v in t["vat_by_rate"]
        )
        or "<tr><td colspan=3>no VAT information</td></tr>"
    )
    taxes = "".join(
        f"<tr><td>{esc(x['name'])} {esc(x['percentage'] or '')}</td><td class=n>{m(x['amount'])}</td></tr>"
        for x in t["tax_lines"]
    )
    fees = (
        "".join(
            f"<tr><td>{esc(f.label)}</td><td>{esc(f.basis)}</td><td class=n>{m(f.amount)}</td></tr>"
            for f in st.fees
        )
        or "<tr><td colspan=3>none</td></tr>"
    )
    fx = ""
    if t["reporting_currency"] != cur and t["amount_due_reporting"] is not None:
        fx = (
            f"<tr><td>Amount due in {esc(t['reporting_currency'])} (rate {esc(t['fx_rate'])})</td>"
            f"<td class=n>{esc(_money(t['amount_due_reporting'], t['reporting_currency'], loc))}</td></tr>"
        )
    return f"""<!DOCTYPE html>
<html lang="{esc(locale.replace("_", "-"))}"><head><meta charset="utf-8">
<title>Statement {esc(st.id)}</title><style>{CSS}</style></head><body>
<h1>Settlement statement {esc(st.month)}</h1>
<table class=meta>
<tr><td>Statement</td><td>{esc(st.id)}</td></tr>
<tr><td>Charge point operator (CPO)</td><td>{esc(st.cpo)}</td></tr>
<tr><td>Service provider (eMSP)</td><td>{esc(st.emsp)}</td></tr>
<tr><td>Period</td><td>{d(first.isoformat())} – {d(last.isoformat())}</td></tr>
<tr><td>Basis</td><td>{esc(st.terms.basis)} amounts; disputed lines {esc(st.terms.disputed)}d</td></tr>
<tr><td>Due date</td><td>{d(t["due_date"])}</td></tr>
</table>
<h2>Summary</h2>
<table>
<tr><td>Sessions (lines)</td><td class=n>{t["lines"]}</td></tr>
<tr><td>Energy</td><td class=n>{esc(format_decimal(Decimal(t["energy_kwh"]), "#,##0.000", locale=loc))} kWh</td></tr>
<tr><td>Total excl. VAT</td><td class=n>{m(t["total_excl_vat"])}</td></tr>
<tr><td>VAT</td><td class=n>{m(t["vat_total"])}</td></tr>
<tr><td>Total incl. VAT</td><td class=n>{m(t["total_incl_vat"])}</td></tr>
<tr><td>Fees</td><td class=n>{m(t["fees_total"])}</td></tr>
<tr class=due><td>Amount due ({esc(t["amount_due_basis"])})</td><td class=n>{m(t["amount_due"])}</td></tr>
{fx}
<tr><td class=small colspan=2>Rounding: {esc(t["rounding_rule"])}; difference to the unrounded sum
{m(t["rounding_difference_excl_vat"])} excl. VAT. Lines with unknown VAT (OCPI 2.1.1): {t["vat_unknown_lines"]}.</td></tr>
</table>
<h2>Daily energy and amount</h2>
{daily_chart(st, loc, daily)}
<h2>VAT by rate</h2>
<table><tr><th>Rate</th><th class=n>Base excl. VAT</th><th class=n>VAT</th></tr>{vat}</table>
{"<h2>Tax lines (OCPI 2.3.0)</h2><table><tr><th>Tax</th><th class=n>Amount</th></tr>" + taxes + "</table>" if taxes else ""}
<h2>Contract fees</h2>
<table><tr><th>Fee</th><th>Basis</th><th class=n>Amount</th></tr>{fees}</table>
<h2>Disputed lines</h2>
<table><tr><th>CDR</th><th>Session end</th><th class=n>Amount</th><th>Reason</th><th>Treatment</th></tr>{disputed}</table>
<h2>Lines</h2>
<table><tr><th>CDR</th><th>Session end</th><th>Location</th><th class=n>kWh</th><th class=n>Excl. VAT</th>
<th class=n>VAT</th><th class=n>Incl. VAT</th><th>VAT rate</th><th>Note</th></tr>
{"".join(rows)}
</table>
<p class=small>Generated by roamledger from OCPI CDRs. Amounts in {esc(cur)}.</p>
</body></html>
"""
