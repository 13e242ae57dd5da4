"""Price sheets: a tariff in human terms, in the shape an AFIR price display or a driver app shows.

For every element (in tariff order: the first matching one prices a dimension) the sheet says when
it applies — weekdays, time window, dates, energy/duration/power/current thresholds — and its prices
per kWh, per hour *and* per minute, per session and for parking, excl. and incl. VAT where known,
with the step in which it is billed. Caps (min_price / max_price) and the VAT rates close it.

Unit prices are exact decimals (a price incl. VAT or per minute that does not terminate is given
to 6 decimals, half-up, and marked ``exact: false``); display strings come from babel for the asked
locale and keep every stated decimal. Nothing here prices a session: that is :mod:`pricing.quote`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from babel import Locale
from babel.dates import format_date

from pricing import display
from pricing.model import (
    Dimension,
    Element,
    PriceComponent,
    PriceLimit,
    ReservationKind,
    Restrictions,
    Tariff,
    TaxIncluded,
)
from pricing.quote import TariffStore, resolve_tariff
from pricing.units import round_half_up

__all__ = ["PriceSheet", "price_sheet"]

SHEET_PLACES = 6  # unit prices: the OCPI price precision
UNIT = {
    Dimension.ENERGY: "kWh",
    Dimension.TIME: "hour",
    Dimension.PARKING_TIME: "hour",
    Dimension.FLAT: "session",
}
KIND = {
    Dimension.ENERGY: "energy",
    Dimension.TIME: "time",
    Dimension.PARKING_TIME: "parking",
    Dimension.FLAT: "fixed",
}


@dataclass(frozen=True, slots=True)
class PriceSheet:
    tariff: Tariff
    locale: str
    body: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return self.body


def dec_text(value: Fraction | Decimal) -> tuple[str, bool]:
    """(decimal text, exact?) with at most 6 decimals, half-up; no exponent, no trailing zeros."""
    frac = Fraction(value)
    shown = round_half_up(frac, SHEET_PLACES)
    text = f"{shown.normalize():f}" if shown else "0"
    return text, Fraction(shown) == frac


def with_vat(tariff: Tariff, comp: PriceComponent) -> tuple[Fraction | None, Fraction | None]:
    """(excl, incl) of a component price, as the pricer reads VAT (§2.9): None when unknown."""
    price = Fraction(comp.price)
    vat = None if comp.vat is None else 1 + Fraction(comp.vat) / 100
    if tariff.tax_included is TaxIncluded.YES:
        return (price / vat if vat is not None else None), price
    if not tariff.taxes_known:
        return price, None
    if tariff.tax_included is TaxIncluded.NOT_APPLICABLE or vat is None:
        return price, price
    return price, price * vat


def component_entry(
    tariff: Tariff, comp: PriceComponent, loc: Locale, reservation: bool = False
) -> dict[str, Any]:
    w = display.words(loc)
    cur = tariff.currency
    excl, incl = with_vat(tariff, comp)
    shown_price = incl if incl is not None else excl
    entry: dict[str, Any] = {"dimension": comp.dimension.value, "kind": KIND[comp.dimension]}
    for name, value in (("excl_vat", excl), ("incl_vat", incl)):
        text, exact = dec_text(value) if value is not None else (None, True)
        entry[f"price_{name}"] = text
        if not exact:
            entry[f"price_{name}_exact"] = False
    entry["unit"] = UNIT[comp.dimension]
    entry["vat"] = None if comp.vat is None else f"{comp.vat.normalize():f}"
    flat = "per_reservation" if reservation else "per_session"  # a reservation's FLAT is its fee
    per = {Dimension.ENERGY: "per_kwh", Dimension.FLAT: flat}.get(comp.dimension, "per_hour")
    texts = [f"{price_text(shown_price, cur, loc)} {w[per]}"]
    if comp.dimension in (Dimension.TIME, Dimension.PARKING_TIME):
        minute, exact = dec_text(shown_price / 60) if shown_price is not None else (None, True)
        entry["per_minute"] = minute
        if not exact:
            entry["per_minute_exact"] = False
        texts.insert(0, f"{price_text(shown_price / 60, cur, loc)} {w['per_minute']}")
    step = step_text(comp, loc)
    if step:
        entry["step_size"] = comp.step_size
        texts.append(w["billed_per"].format(x=step))
    text = ", ".join(texts)
    # parking is priced per hour like charging time: the text names it, not only the JSON kind
    entry["text"] = w["parking_price"].format(x=text) if comp.dimension is Dimension.PARKING_TIME else text
    return entry


def price_text(value: Fraction | None, currency: str, loc: Locale) -> str:
    if value is None:
        return "?"
    text, _ = dec_text(value)
    return display.unit_price(Decimal(text), currency, loc)


def step_text(comp: PriceComponent, loc: Locale) -> str | None:
    """The billing step in words, when it is more than the unit's finest grain."""
    if comp.dimension is Dimension.FLAT or comp.step_size <= 1:
        return None
    if comp.dimension is Dimension.ENERGY:
        return f"{display.number(Fraction(comp.step_size, 1000), loc)} kWh"
    if comp.step_size % 60 == 0:
        return f"{comp.step_size // 60} min"
    return f"{comp.step_size} s"


def when(r: Restrictions, loc: Locale) -> tuple[dict[str, Any], str]:
    """The restrictions as fields and as one localized phrase."""
    w = display.words(loc)
    fields: dict[str, Any] = {}
    parts: list[str] = []
    if r.days:
        fields["days"] = sorted(r.days)
        names = loc.days["format"]["abbreviated"]
        parts.append(", ".join(names[d - 1] for d in sorted(r.days)))
    if r.has_time_of_day:
        start, end = r.start_time_min or 0, r.end_time_min if r.end_time_min is not None else 1440
        fields["start_time"], fields["end_time"] = hhmm(start), hhmm(end)
        parts.append(f"{hhmm(start)}–{hhmm(end)}")
    for key, value, word in (
        ("start_date", r.start_date, "from_date"),
        ("end_date", r.end_date, "until_date"),
    ):
        if value is not None:
            fields[key] = value.isoformat()
            parts.append(w[word].format(x=format_date(value, "medium", locale=loc)))
    scaled = (
        ("min_kwh", r.min_kwh_mwh, 1_000_000, "from_kwh"),
        ("max_kwh", r.max_kwh_mwh, 1_000_000, "below_kwh"),
        ("min_power_kw", r.min_power_w, 1000, "min_power"),
        ("max_power_kw", r.max_power_w, 1000, "below_power"),
        ("min_current_a", r.min_current_ma, 1000, "min_current"),
        ("max_current_a", r.max_current_ma, 1000, "below_current"),
    )
    for key, value, scale, word in scaled:
        if value is not None:
            fields[key], _ = dec_text(Fraction(value, scale))
            parts.append(w[word].format(x=display.number(Fraction(value, scale), loc)))
    for key, value, word in (
        ("min_duration_s", r.min_duration_s, "after_min"),
        ("max_duration_s", r.max_duration_s, "before_min"),
    ):
        if value is not None:
            fields[key] = value
            parts.append(w[word].format(x=display.number(Fraction(value, 60), loc)))
    if r.reservation is not None:  # said first: these prices apply to a reservation, not to charging
        fields["reservation"] = r.reservation.value
        expired = r.reservation is ReservationKind.RESERVATION_EXPIRES
        parts.insert(0, w["reservation_expired" if expired else "while_reserved"])
    return fields, (", ".join(parts) if parts else w["always"])


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def limit_entry(limit: PriceLimit | None, currency: str, loc: Locale) -> dict[str, Any] | None:
    if limit is None or (limit.excl is None and limit.incl is None):
        return None
    shown = limit.incl if limit.incl is not None else limit.excl
    return {
        "excl_vat": None if limit.excl is None else f"{limit.excl:f}",
        "incl_vat": None if limit.incl is None else f"{limit.incl:f}",
        "text": display.money(shown, currency, loc),
    }


def element_entry(
    tariff: Tariff, index: int, el: Element, loc: Locale, earlier: set[Dimension]
) -> dict[str, Any]:
    """One element; ``earlier`` holds the dimensions priced by earlier elements of its group.

    An element without restrictions applies "at all times" only to a dimension no earlier element
    prices: otherwise an earlier (restricted) element takes precedence when it matches, and this
    one is the price at the other times. Each price carries its own ``when_text`` for that reason.
    """
    fields, phrase = when(el.restrictions, loc)
    w = display.words(loc)
    prices = []
    for comp in el.components:
        entry = component_entry(tariff, comp, loc, reservation=el.restrictions.reservation is not None)
        fallback = phrase == w["always"] and comp.dimension in earlier
        entry["when_text"] = w["other_times"] if fallback else phrase
        prices.append(entry)
    earlier.update(c.dimension for c in el.components)
    shown = {p["when_text"] for p in prices}
    return {
        "element": index,
        "when": fields,
        "when_text": shown.pop() if len(shown) == 1 else phrase,
        "prices": prices,
    }


def element_entries(tariff: Tariff, loc: Locale, reservation: bool) -> list[dict[str, Any]]:
    """The regular (or reservation) elements in tariff order: earlier ones take precedence."""
    earlier: set[Dimension] = set()
    return [
        element_entry(tariff, i, e, loc, earlier)
        for i, e in enumerate(tariff.elements)
        if (e.restrictions.reservation is not None) is reservation
    ]


def price_sheet(
    tariff: Any,
    locale: str = "en",
    *,
    ocpi_version: str | None = None,
    store: TariffStore | None = None,
) -> PriceSheet:
    """The price sheet of an inline OCPI tariff (any version), a canonical Tariff or a stored one.

    >>> sheet = price_sheet(tariff_json, "nl_NL")
    >>> sheet.as_dict()["elements"][0]["prices"][0]["text"]
    '€ 0,25 per kWh'
    """
    loc = display.locale_of(locale)
    t, _ = resolve_tariff(tariff, store, ocpi_version)
    w = display.words(loc)
    regular = element_entries(t, loc, reservation=False)
    reserve = element_entries(t, loc, reservation=True)
    rates = sorted({c.vat for e in t.elements for c in e.components if c.vat is not None})
    body: dict[str, Any] = {
        "tariff_id": t.id,
        "country_code": t.country_code,
        "party_id": t.party_id,
        "ocpi_version": t.version,
        "currency": t.currency,
        "locale": str(loc),
        "tax_included": t.tax_included.value,
        "vat_known": t.taxes_known,
        "vat_rates": [f"{r.normalize():f}" for r in rates],
        "vat_text": vat_text(t, rates, loc),
        "elements": regular,
        "reservation": reserve,
        "min_price": limit_entry(t.min_price, t.currency, loc),
        "max_price": limit_entry(t.max_price, t.currency, loc),
    }
    summary = [f"{p['when_text']}: {p['text']}" for e in regular for p in e["prices"]]
    summary += [f"{p['when_text']}: {p['text']}" for e in reserve for p in e["prices"]]
    for key in ("min_price", "max_price"):
        if body[key] is not None:
            summary.append(f"{w[key]}: {body[key]['text']}")
    body["summary"] = summary or [w["free"]]
    return PriceSheet(t, str(loc), body)


def vat_text(t: Tariff, rates: list[Decimal], loc: Locale) -> str:
    w = display.words(loc)
    if not t.taxes_known:
        return w["vat_unknown"]
    if not rates or t.tax_included is TaxIncluded.NOT_APPLICABLE:
        return f"0 % {w['vat']}"
    shown = ", ".join(f"{display.number(r, loc)} %" for r in rates)
    # every price the sheet shows includes VAT (a tariff stated excl. VAT is shown with it added)
    return w["prices_incl_vat"].format(x=shown)
