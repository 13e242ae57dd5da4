"""Statement files: ``statement.json``, ``lines.csv``, ``statement.html`` and the OCPI 2.3.0
``InvoiceReconciliationRecord`` (``invoice_reconciliation_record.json``).

Everything is deterministic: no clock, sorted keys and rows, fixed number formats. ``statement.json``
follows the schema in ``settlement/SCHEMA.md``.
"""

from __future__ import annotations

import functools
import html
import io
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from babel import Locale, support
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from settlement.output import line_frame, lines_json, write_document, write_lines_csv
from settlement.rules import CONFLICTING_DUPLICATE, DISPUTE_WORDS, LATE_CDR, NOT_RECOMPUTED, month_bounds
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
        "time_zone": st.time_zone,
        "parties": st.parties,
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
    with open(folder / "invoice_reconciliation_record.json", "wb") as fh:
        write_document(invoice_reconciliation_record(st), {}, fh)
    html_page = statement_html(st, locale, daily_sums(lines))
    (folder / "statement.html").write_text(html_page, encoding="utf-8")


# ---- HTML ---------------------------------------------------------------------------------------


def _money(v: Any, cur: str, locale: Any) -> str:
    if v is None or v == "":
        return "—"
    return format_currency(Decimal(str(v)), cur, locale=locale, currency_digits=True)


VAT_SOURCE = {"cdr": "the CDRs", "contract": "contract rate (CDRs without VAT)", "none": "unknown"}


def _rate(r: Any, loc: Locale) -> str:
    """A VAT rate ("21", Decimal) as a localized percentage; the buckets ("mixed", …) as they are."""
    try:
        value = Decimal(str(r))
    except ArithmeticError:
        return str(r)
    return format_percent(value / 100, locale=loc, decimal_quantization=False)


def _fee_basis(f: Any, cur: str, loc: Locale, gettext: Any = None) -> str:
    """How a fee was computed, in the locale's numbers: "424 × 0,05 €", "1,5 % × 5 198,82 €", or
    with credited sessions "(425 − 1 credited) × 0,05 €" (``gettext``: the page's language)."""
    if f.percent_of is not None:
        return f"{_rate(f.unit, loc)} × {_money(f.percent_of, cur, loc)}"
    if f.credited:
        said = (gettext or (lambda m, **v: m % v))(
            "%(sessions)s − %(credited)s credited",
            sessions=format_decimal(f.quantity + f.credited, locale=loc),
            credited=format_decimal(f.credited, locale=loc),
        )
        return f"({said}) × {_money(f.unit, cur, loc)}"
    return f"{format_decimal(f.quantity, locale=loc)} × {_money(f.unit, cur, loc)}"


def daily_sums(lines: pl.DataFrame) -> dict[int, tuple[Decimal, Decimal]]:
    """Per day of the month (0-based, the local date of the session end): energy (kWh) and amount
    excl. VAT of a statement's line table (both engines' lines go through here)."""
    if not lines.height:
        return {}
    by = (
        lines.select(
            pl.col("session_end").str.slice(8, 2).cast(pl.Int64).alias("d"),
            pl.col("energy_kwh").str.to_decimal(scale=4).alias("e"),
            pl.col("line_excl_vat").str.to_decimal(scale=4).alias("a"),
        )
        .group_by("d")
        .agg(pl.col("e").sum(), pl.col("a").sum())
    )
    return {int(d) - 1: (Decimal(e), Decimal(a)) for d, e, a in by.iter_rows()}


def chart_data(
    st: Statement, loc: Locale, daily: dict[int, tuple[Decimal, Decimal]] | None = None
) -> dict[str, Any]:
    """What ``daily_chart.html.j2`` draws: bars = daily energy (kWh), line = daily amount excl. VAT,
    positions as text."""
    first, last = month_bounds(st.month)
    days = (last - first).days + 1
    sums = daily_sums(line_frame(st.lines)) if daily is None else daily
    energy: dict[int, Decimal] = defaultdict(Decimal, {d: v[0] for d, v in sums.items()})
    amount: dict[int, Decimal] = defaultdict(Decimal, {d: v[1] for d, v in sums.items()})
    w, h, pad = 720, 200, 36
    bw = (w - 2 * pad) / days
    emax = max([*energy.values(), Decimal(0)]) or Decimal(1)  # the axes start at 0 (net days may be < 0)
    amax = max([*amount.values(), Decimal(0)]) or Decimal(1)
    bars, points = [], []
    for d in range(days):
        x = pad + d * bw
        # drawing only: no money is computed here. A day whose credits outweigh its sessions (a
        # credit of an earlier month) nets to negative energy: no bar (its title says the number)
        eh = max(float(energy[d] / emax), 0.0) * (h - 2 * pad)
        bars.append(
            {
                "x": f"{x + 1:.1f}",
                "y": f"{h - pad - eh:.1f}",
                "width": f"{max(bw - 2, 1):.1f}",
                "height": f"{eh:.1f}",
                "day": first.replace(day=d + 1).isoformat(),
                "energy": format_decimal(energy[d], "#,##0.0", locale=loc),
                "mid": f"{x + bw / 2:.1f}",
                "label": str(d + 1) if d % 5 == 0 else "",
            }
        )
        ay = min(h - pad - float(amount[d] / amax) * (h - 2 * pad), float(h))  # below zero: to the edge
        points.append(f"{x + bw / 2:.1f},{ay:.1f}")
    return {
        "w": w,
        "h": h,
        "pad": pad,
        "right": w - pad,
        "mid_y": h // 2,
        "base": h - pad,
        "label_y": h - pad + 14,
        "bars": bars,
        "points": " ".join(points),
        "emax": format_decimal(emax, "#,##0.0", locale=loc),
        "amax": _money(amax, st.currency, loc),
    }


# The words a line's note and a disputed line's reason are built from (translated by the catalogs).
STATUS_WORDS = ("overcharged", "undercharged", "not priced", "not comparable")


def reason_text(reason: str, gettext: Any) -> str:
    """A dispute reason in the page's language: credit and re-send codes in words
    (:data:`settlement.rules.DISPUTE_WORDS`); "could not be recomputed: CODES" keeps its codes."""
    if reason.startswith(NOT_RECOMPUTED):
        return gettext("could not be recomputed: %(codes)s", codes=reason[len(NOT_RECOMPUTED) :])
    codes = reason.replace(CONFLICTING_DUPLICATE, "DUPLICATE_CDR").split(",")
    if all(c in DISPUTE_WORDS for c in codes):
        return "; ".join(gettext(DISPUTE_WORDS[c]) for c in codes)
    return gettext(reason)


LATE_NOTE = "late CDR: the session ended in %(month)s, a closed month"


def line_note(ln: Any, gettext: Any) -> str:
    notes = []
    if LATE_CDR in ln.reasons.split(","):  # a late line keeps its session end: in the closed month
        notes.append(gettext(LATE_NOTE, month=ln.session_end[:7]))
    if ln.credit:
        notes.append(gettext("credit of %(id)s", id=ln.credit_reference_id or "?"))
    if ln.status not in ("MATCH", "ROUNDING"):
        notes.append(gettext(ln.status.lower().replace("_", " ")))
    if ln.disputed:
        notes.append(gettext("disputed: %(reason)s", reason=reason_text(ln.dispute_reason, gettext)))
    return "; ".join(notes)


HTML_MAX_LINES = 1_000  # the page lists the first lines; lines.csv / statement.json have them all


def _escape(value: Any) -> Markup:
    """Every ``{{ value }}`` of the templates is escaped here, with the standard library's
    ``html.escape`` (``&quot;``, ``&#x27;``: the bytes the statement pages have always had)."""
    return value if isinstance(value, Markup) else Markup(html.escape(str(value)))


LOCALE_DIR = Path(__file__).resolve().parent / "locale"


@functools.cache
def translations(language: str) -> support.NullTranslations:
    """The statement texts of a language (``settlement/locale/<lang>/LC_MESSAGES/messages.po``,
    compiled in memory on first use: the .po files are the only form shipped, so a catalog cannot
    be stale); English, or a language without a catalog, is the text as written."""
    po = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if not po.is_file():
        return support.NullTranslations()
    with open(po, "rb") as fh:
        catalog = read_po(fh, locale=language)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return support.Translations(buf)


@functools.cache
def _env(language: str = "en") -> Environment:
    """The template environment of one language (templates shipped in the package:
    ``settlement/templates``; one per language, so statements written in parallel never share a
    catalog). ``autoescape`` marks output as HTML; ``finalize`` does the escaping (see
    :func:`_escape`); ``_()`` is gettext (jinja2.ext.i18n, new style: ``%(name)s`` arguments)."""
    env = Environment(
        loader=PackageLoader("settlement", "templates"),
        autoescape=True,
        finalize=_escape,
        keep_trailing_newline=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


def vat_note_text(t: dict[str, Any], rate: Any, gettext: Any, ngettext: Any) -> str:
    """The statement's VAT sentence (``totals.vat_note``) in the page's language (plural forms of
    the catalog for the number of lines)."""
    n = t["vat_unknown_lines"]
    if t["vat_total"] is not None:
        row = next((r for r in t["vat_by_rate"] if r["source"] == "contract"), None)
        if row is None:
            return ""
        return str(
            ngettext(
                "%(n)s line is an OCPI 2.1.1 CDR without VAT: VAT at the contract's rate of %(rate)s "
                "on its net amount.",
                "%(n)s lines are OCPI 2.1.1 CDRs without VAT: VAT at the contract's rate of %(rate)s "
                "on each line's net amount.",
                t["vat_from_contract_lines"],
                n=t["vat_from_contract_lines"],
                rate=rate(row["rate"]),
            )
        )
    why = (
        ngettext(
            "%(n)s line is an OCPI 2.1.1 CDR without VAT and the contract sets no VAT rate for this "
            "pair or country.",
            "%(n)s lines are OCPI 2.1.1 CDRs without VAT and the contract sets no VAT rate for this "
            "pair or country.",
            n,
            n=n,
        )
        if n
        else gettext("the contract sets no VAT rate for its fees (pair or country).")
    )
    return str(
        gettext("This statement states net amounts only (VAT is settled outside it): %(why)s", why=why)
    )


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
    loc = Locale.parse(locale)  # parsed once: babel would parse the name on every call
    dates: dict[str, str] = {}
    n_lines = len(st.lines) if n_lines is None else n_lines
    member = {id(ln) for ln in (st.lines if members is None else members)}
    n_disputed = len(st.disputed) if n_disputed is None else n_disputed
    first, last = month_bounds(st.month)
    t = st.totals

    def date_text(iso: str) -> str:
        if iso[:10] not in dates:
            dates[iso[:10]] = format_date(date.fromisoformat(iso[:10]), "medium", locale=loc)
        return dates[iso[:10]]

    env = _env(loc.language)
    rate = functools.partial(_rate, loc=loc)
    tr = translations(loc.language)

    def gettext(msgid: str, **values: Any) -> str:
        return tr.gettext(msgid) % values

    def ngettext(singular: str, plural: str, count: int, /, **values: Any) -> str:
        return tr.ngettext(singular, plural, count) % values

    return env.get_template("statement.html.j2").render(
        st=st,
        t=t,
        lang=locale.replace("_", "-"),
        first=first.isoformat(),
        last=last.isoformat(),
        date=date_text,
        money=lambda v, cur=st.currency: _money(v, cur, loc),
        kwh=lambda v: format_decimal(Decimal(str(v)), "#,##0.000", locale=loc),
        note=lambda ln: line_note(ln, gettext),
        reason=lambda text: reason_text(text, gettext),
        rate=rate,
        vat_note_text=vat_note_text(t, rate, gettext, ngettext) if t["vat_note"] else "",
        fee_basis=lambda f: _fee_basis(f, st.currency, loc, gettext),
        vat_source=VAT_SOURCE,
        show_fx=t["reporting_currency"] != st.currency and t["amount_due_reporting"] is not None,
        chart=chart_data(st, loc, daily),
        lines=st.lines[:HTML_MAX_LINES],
        more_lines=n_lines - HTML_MAX_LINES,
        n_lines=n_lines,
        disputed=[
            (ln, "included" if id(ln) in member else "excluded") for ln in st.disputed[:HTML_MAX_LINES]
        ],
        more_disputed=n_disputed - HTML_MAX_LINES,
        line_vat=sum((Decimal(r["vat"]) for r in t["vat_by_rate"] if r["vat"] is not None), Decimal(0)),
        line_incl=None if t["vat_unknown_lines"] else t["total_incl_vat"],
        # a negative amount due is a credit balance: the CPO owes the eMSP (and pays to its IBAN)
        payee="emsp" if Decimal(t["amount_due"]) < 0 else "cpo",
        credit_balance=-Decimal(t["amount_due"]),
    )
