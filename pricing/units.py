"""Exact money and quantity helpers.

Conventions (also used by the vectorized kernel's integer columns):

* energy: integer milli-watt-hours (``*_mwh``); 1 kWh = 1_000_000 mWh
* durations and instants: integer milliseconds (``*_ms``; instants are UTC epoch ms)
* power: integer watts (``*_w``); current: integer milli-amperes (``*_ma``)
* prices: :class:`~decimal.Decimal` with at most 6 decimals (``price_e6`` in the kernel)
* VAT percentages: :class:`~decimal.Decimal` with at most 2 decimals (``vat_e2``)

Conversion from OCPI numbers to these units happens once, at the edge, and refuses values that
would lose precision (a finding, not a silent rounding), except time and energy volumes, which
are rounded half-up to the unit (1 ms, 1 mWh) because CPOs write hours with long decimal tails.
Money is computed exactly (:class:`fractions.Fraction`) and rounded only when reported.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction

MWH_PER_KWH = 1_000_000
MWH_PER_WH = 1_000
MS_PER_HOUR = 3_600_000
MS_PER_SECOND = 1_000
MS_PER_MINUTE = 60_000
W_PER_KW = 1_000
MA_PER_A = 1_000
PRICE_PLACES = 6
VAT_PLACES = 2
OCPI_PLACES = 4
INT64_MAX = 2**63 - 1
# an input number has fewer digits than this before its point: no quantity or amount fits 64 bits
# in its unit beyond 10**19, and a larger one (1E+999999) would leave Decimal's exponent range
# when scaled (decimal.Overflow)
NUMBER_DIGITS = 19


def to_decimal(value: object) -> Decimal:
    """Parse a JSON number (int, str or float as written by a JSON decoder) into a Decimal.

    Floats are converted through ``repr`` so ``0.1`` becomes ``Decimal('0.1')``, the number the
    JSON text held, not the binary approximation.
    """
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(f"{value!r} is not a number") from exc
        if not d.is_finite():
            raise ValueError(f"{value!r} is not a finite number")
        return d
    raise TypeError(f"{type(value).__name__} is not a number")


def decimals_of(d: Decimal) -> int:
    """Number of significant decimal places of ``d`` (``1.50`` has 1)."""
    d = d.normalize()
    exp = d.as_tuple().exponent
    assert isinstance(exp, int)
    return max(0, -exp)


def scaled_int(d: Decimal, places: int, what: str) -> int:
    """``d * 10**places`` as an exact int; ValueError if that would lose precision."""
    if decimals_of(d) > places:
        raise ValueError(f"{what} {d} has more than {places} decimal places")
    return int(d.scaleb(places))


def round_scaled(d: Decimal, scale: int) -> int:
    """``d * scale`` rounded half-up to an int (used for volumes: hours → ms, kWh → mWh)."""
    return int((d * scale).to_integral_value(rounding=ROUND_HALF_UP))


def kwh_to_mwh(kwh: Decimal) -> int:
    return round_scaled(kwh, MWH_PER_KWH)


def hours_to_ms(hours: Decimal) -> int:
    return round_scaled(hours, MS_PER_HOUR)


def round_half_up(value: Fraction, places: int = OCPI_PLACES) -> Decimal:
    """Round an exact rational half-up (away from zero on a tie) to ``places`` decimals."""
    scale = 10**places
    n = value.numerator * scale
    d = value.denominator
    q, r = divmod(abs(n), d)
    if 2 * r >= d:
        q += 1
    if n < 0:
        q = -q
    return Decimal(q).scaleb(-places)


def fmt(value: Fraction | None, places: int = OCPI_PLACES) -> str | None:
    """Report format: a fixed-point string with ``places`` decimals, or None when unknown."""
    if value is None:
        return None
    return f"{round_half_up(value, places):.{places}f}"


def frac(d: Decimal | int) -> Fraction:
    return Fraction(d)
