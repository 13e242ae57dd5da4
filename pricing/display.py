"""Display strings for quotes and price sheets: babel number/currency/date formats and a few words.

Amounts shown to a person are rounded half-up to the currency's minor unit (babel's currency data)
from the exact value; unit prices keep every decimal the tariff states (a 0.333333 EUR/kWh price
is shown as such, never rounded to 0.33). The words ("per kWh", "Parking", weekday names come from
babel) are translated here for en, fr, de and nl; any other locale babel knows gets its own number
and date formats with the English words.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.numbers import (
    format_currency,
    format_decimal,
    get_currency_precision,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
)

from pricing.errors import InputError
from pricing.units import round_half_up

TRANSLATED = ("en", "fr", "de", "nl")

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "total": "Total",
        "energy": "Energy",
        "time": "Charging time",
        "parking": "Parking",
        "fixed": "Session fee",
        "reservation": "Reservation",
        "per_kwh": "per kWh",
        "per_hour": "per hour",
        "per_minute": "per minute",
        "per_session": "per session",
        "incl_vat": "incl. VAT",
        "excl_vat": "excl. VAT",
        "vat": "VAT",
        "vat_unknown": "VAT not stated",
        "min_price": "Minimum price",
        "max_price": "Maximum price",
        "always": "at all times",
        "while_reserved": "reservation, until charging starts",
        "reservation_expired": "reservation that expires unused",
        "per_reservation": "per reservation",
        "other_times": "other times",
        "parking_price": "parking {x}",
        "prices_incl_vat": "prices incl. VAT ({x})",
        "every_day": "every day",
        "from_kwh": "from {x} kWh",
        "below_kwh": "below {x} kWh",
        "after_min": "after {x} min",
        "before_min": "for the first {x} min",
        "min_power": "at {x} kW or more",
        "below_power": "below {x} kW",
        "min_current": "at {x} A or more",
        "below_current": "below {x} A",
        "from_date": "from {x}",
        "until_date": "until {x}",
        "billed_per": "billed per {x}",
        "min_applied": "the minimum price applies",
        "max_applied": "the maximum price applies",
        "min_adjust": "Minimum price adjustment",
        "max_adjust": "Maximum price adjustment",
        "adjustment": "Adjustment",
        "lines_rounded": (
            "lines rounded by largest remainder so that they add up to the total; exact amounts in JSON"
        ),
        "free": "Free",
    },
    "fr": {
        "total": "Total",
        "energy": "Énergie",
        "time": "Temps de charge",
        "parking": "Stationnement",
        "fixed": "Frais de session",
        "reservation": "Réservation",
        "per_kwh": "par kWh",
        "per_hour": "par heure",
        "per_minute": "par minute",
        "per_session": "par session",
        "incl_vat": "TTC",
        "excl_vat": "HT",
        "vat": "TVA",
        "vat_unknown": "TVA non indiquée",
        "min_price": "Prix minimum",
        "max_price": "Prix maximum",
        "always": "à toute heure",
        "while_reserved": "réservation, jusqu'au début de la charge",
        "reservation_expired": "réservation expirée sans charge",
        "per_reservation": "par réservation",
        "other_times": "aux autres heures",
        "parking_price": "stationnement {x}",
        "prices_incl_vat": "prix TTC (TVA {x})",
        "every_day": "tous les jours",
        "from_kwh": "à partir de {x} kWh",
        "below_kwh": "en dessous de {x} kWh",
        "after_min": "après {x} min",
        "before_min": "pendant les {x} premières min",
        "min_power": "à {x} kW ou plus",
        "below_power": "en dessous de {x} kW",
        "min_current": "à {x} A ou plus",
        "below_current": "en dessous de {x} A",
        "from_date": "à partir du {x}",
        "until_date": "jusqu'au {x}",
        "billed_per": "facturé par {x}",
        "min_applied": "le prix minimum s'applique",
        "max_applied": "le prix maximum s'applique",
        "min_adjust": "Ajustement au prix minimum",
        "max_adjust": "Ajustement au prix maximum",
        "adjustment": "Ajustement",
        "lines_rounded": (
            "lignes arrondies pour que leur somme soit le total (plus fo"
            "rts restes) ; montants exacts dans le JSON"
        ),
        "free": "Gratuit",
    },
    "de": {
        "total": "Gesamt",
        "energy": "Energie",
        "time": "Ladezeit",
        "parking": "Parken",
        "fixed": "Startgebühr",
        "reservation": "Reservierung",
        "per_kwh": "pro kWh",
        "per_hour": "pro Stunde",
        "per_minute": "pro Minute",
        "per_session": "pro Ladevorgang",
        "incl_vat": "inkl. MwSt.",
        "excl_vat": "zzgl. MwSt.",
        "vat": "MwSt.",
        "vat_unknown": "MwSt. nicht angegeben",
        "min_price": "Mindestpreis",
        "max_price": "Höchstpreis",
        "always": "jederzeit",
        "while_reserved": "Reservierung, bis der Ladevorgang beginnt",
        "reservation_expired": "Reservierung, die ungenutzt abläuft",
        "per_reservation": "pro Reservierung",
        "other_times": "zu anderen Zeiten",
        "parking_price": "Parken {x}",
        "prices_incl_vat": "Preise inkl. MwSt. ({x})",
        "every_day": "täglich",
        "from_kwh": "ab {x} kWh",
        "below_kwh": "unter {x} kWh",
        "after_min": "nach {x} Min.",
        "before_min": "in den ersten {x} Min.",
        "min_power": "ab {x} kW",
        "below_power": "unter {x} kW",
        "min_current": "ab {x} A",
        "below_current": "unter {x} A",
        "from_date": "ab {x}",
        "until_date": "bis {x}",
        "billed_per": "abgerechnet je {x}",
        "min_applied": "der Mindestpreis gilt",
        "max_applied": "der Höchstpreis gilt",
        "min_adjust": "Anpassung an den Mindestpreis",
        "max_adjust": "Anpassung an den Höchstpreis",
        "adjustment": "Anpassung",
        "lines_rounded": (
            "Positionen so gerundet, dass ihre Summe der Gesamtbetrag is"
            "t (größte Reste); genaue Beträge im JSON"
        ),
        "free": "Kostenlos",
    },
    "nl": {
        "total": "Totaal",
        "energy": "Energie",
        "time": "Laadtijd",
        "parking": "Parkeren",
        "fixed": "Starttarief",
        "reservation": "Reservering",
        "per_kwh": "per kWh",
        "per_hour": "per uur",
        "per_minute": "per minuut",
        "per_session": "per sessie",
        "incl_vat": "incl. btw",
        "excl_vat": "excl. btw",
        "vat": "btw",
        "vat_unknown": "btw niet vermeld",
        "min_price": "Minimumprijs",
        "max_price": "Maximumprijs",
        "always": "altijd",
        "while_reserved": "reservering, tot het laden begint",
        "reservation_expired": "reservering die ongebruikt verloopt",
        "per_reservation": "per reservering",
        "other_times": "overige tijden",
        "parking_price": "parkeren {x}",
        "prices_incl_vat": "prijzen incl. btw ({x})",
        "every_day": "elke dag",
        "from_kwh": "vanaf {x} kWh",
        "below_kwh": "onder {x} kWh",
        "after_min": "na {x} min",
        "before_min": "de eerste {x} min",
        "min_power": "bij {x} kW of meer",
        "below_power": "onder {x} kW",
        "min_current": "bij {x} A of meer",
        "below_current": "onder {x} A",
        "from_date": "vanaf {x}",
        "until_date": "tot {x}",
        "billed_per": "afgerekend per {x}",
        "min_applied": "de minimumprijs geldt",
        "max_applied": "de maximumprijs geldt",
        "min_adjust": "Correctie minimumprijs",
        "max_adjust": "Correctie maximumprijs",
        "adjustment": "Correctie",
        "lines_rounded": (
            "regels zo afgerond dat ze optellen tot het totaal (grootste resten); exacte bedragen in de JSON"
        ),
        "free": "Gratis",
    },
}


@lru_cache(maxsize=64)
def locale_of(name: str) -> Locale:
    """A babel Locale from ``fr``, ``fr_FR`` or ``fr-FR``; InputError with a hint otherwise."""
    try:
        return Locale.parse(name.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise InputError(
            f"unknown locale {name!r}. Hint: use a language tag such as en, fr_FR, de_DE or nl_NL"
        ) from exc


def words(loc: Locale) -> dict[str, str]:
    return WORDS.get(loc.language, WORDS["en"])


@lru_cache(maxsize=256)
def minor_digits(currency: str) -> int:
    return get_currency_precision(currency)


def money(value: Fraction | Decimal | None, currency: str, loc: Locale) -> str | None:
    """An amount as a person reads it: half-up to the currency's minor unit, then babel's format."""
    if value is None:
        return None
    digits = minor_digits(currency)
    rounded = round_half_up(Fraction(value), digits)
    fast = money_format(currency, loc)
    if fast is None:
        return format_currency(rounded, currency, locale=loc, currency_digits=True)
    return fast.apply(rounded)


@dataclass(frozen=True, slots=True)
class MoneyFormat:
    """babel's currency format for one (locale, currency), applied without re-reading CLDR data.

    babel's ``format_currency`` looks the pattern, symbols and plural rules up on every call
    (~40 µs); a quote shows up to a dozen amounts. The pattern's pieces are taken from babel once,
    and :func:`money_format` keeps this fast path only when it gives babel's exact text on probes.
    """

    pos: tuple[str, str]
    neg: tuple[str, str]
    decimal: str
    group: str
    grouping: tuple[int, int]
    digits: int

    def apply(self, value: Decimal) -> str:
        text = f"{abs(value):.{self.digits}f}"
        whole, _, frac = text.partition(".")
        first, rest = self.grouping
        parts = [] if len(whole) <= first else [whole[-first:]]
        head = whole[:-first] if len(whole) > first else whole
        while len(whole) > first and len(head) > rest:
            parts.append(head[-rest:])
            head = head[:-rest]
        parts.append(head)
        number = self.group.join(reversed(parts)) + (self.decimal + frac if frac else "")
        prefix, suffix = self.neg if value < 0 else self.pos
        return f"{prefix}{number}{suffix}"


PROBES = tuple(
    Decimal(x) for x in ("0", "1.5", "-2.25", "12.34", "999.99", "1234.5", "-1234567.891", "10000000")
)


@lru_cache(maxsize=256)
def money_format(currency: str, loc: Locale) -> MoneyFormat | None:
    try:
        pattern = loc.currency_formats["standard"]
        symbol = get_currency_symbol(currency, loc)
        digits = minor_digits(currency)
        fast = MoneyFormat(
            (pattern.prefix[0].replace("¤", symbol), pattern.suffix[0].replace("¤", symbol)),
            (pattern.prefix[1].replace("¤", symbol), pattern.suffix[1].replace("¤", symbol)),
            get_decimal_symbol(loc),
            get_group_symbol(loc),
            (pattern.grouping[0], pattern.grouping[1]),
            digits,
        )
        for probe in PROBES:
            exact = probe.quantize(Decimal(1).scaleb(-digits))
            if fast.apply(exact) != format_currency(exact, currency, locale=loc, currency_digits=True):
                return None
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None
    return fast


def shares(total: Fraction, parts: list[Fraction], currency: str) -> list[Decimal]:
    """Display amounts of ``parts`` that add up to ``total`` shown half-up (largest remainder).

    The billed amount is the exact total rounded half-up to the currency's minor unit; it is never
    changed to fit the lines. Each part is rounded down to the minor unit and the units still
    missing go, one each, to the parts with the largest remainders (the earlier part on a tie).
    ``parts`` must add up exactly to ``total`` (a caller adds an adjustment line when they don't).
    """
    if sum(parts, Fraction(0)) != total:
        raise ValueError("display shares: the parts do not add up to the total")
    digits = minor_digits(currency)
    scale = 10**digits
    shown = int(round_half_up(total, digits).scaleb(digits))
    floors = [(p * scale).numerator // (p * scale).denominator for p in parts]
    missing = shown - sum(floors)  # 0 <= missing <= len(parts): half-up of the summed remainders
    order = sorted(range(len(parts)), key=lambda i: (-(parts[i] * scale - floors[i]), i))
    for i in order[:missing]:
        floors[i] += 1
    return [Decimal(units).scaleb(-digits) for units in floors]


def unit_price(value: Decimal, currency: str, loc: Locale) -> str:
    """A unit price with every decimal the tariff states (at least the currency's minor unit)."""
    return format_currency(value, currency, locale=loc, currency_digits=True, decimal_quantization=False)


def number(value: Decimal | Fraction | int, loc: Locale) -> str:
    if isinstance(value, Fraction):
        value = round_half_up(value, 4).normalize()
    return format_decimal(value, locale=loc, decimal_quantization=False)
