"""Pieces shared by the OCPI wire models: lax scalar types, enums and conversion helpers.

Scalars (all versions):

* :data:`Number` — a JSON number as an exact :class:`~decimal.Decimal`. Accepts what JSON
  decoders hand over: ``int``, ``Decimal`` (``json.loads(..., parse_float=Decimal)``), ``float``
  (orjson; converted through ``repr`` so ``0.1`` is ``Decimal("0.1")``) and numeric strings
  (the 2.1.1 CDR example writes ``"price": "2.00"``). Never a float inside.
* :data:`Integer` — a whole number (``300``, ``300.0``, ``"300"``); ``1.5`` is an invalid value.
* :data:`DateTime` — RFC 3339 with or without ``Z``/offset/fraction; a naive timestamp is UTC
  (OCPI: all times are UTC). Stored as an aware UTC datetime rounded half-up to the millisecond,
  so :func:`epoch_ms` is exact.
* :data:`Date` (``YYYY-MM-DD``), :data:`StartTime` / :data:`EndTime` (``HH:MM``; ``EndTime``
  also accepts ``24:00``, which some 2.1.1 CPOs write for "end of day").

Conversion problems that pydantic cannot see (precision, ordering, bounds) raise
:class:`~pricing.errors.RecordRejected` with a JSON path and a ``Hint:``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from pricing import errors as E
from pricing import model as M
from pricing.errors import Finding, RecordRejected
from pricing.units import (
    INT64_MAX,
    MA_PER_A,
    MWH_PER_KWH,
    NUMBER_DIGITS,
    PRICE_PLACES,
    VAT_PLACES,
    W_PER_KW,
    hours_to_ms,
    kwh_to_mwh,
    round_scaled,
    scaled_int,
    to_decimal,
)

# decimals of a tariff bound that its canonical unit keeps exactly: kWh → mWh, kW → W, A → mA
MWH_PLACES, W_PLACES, MA_PLACES = 6, 3, 3
assert 10**MWH_PLACES == MWH_PER_KWH and 10**W_PLACES == W_PER_KW and 10**MA_PLACES == MA_PER_A

# ---- lax scalar types ---------------------------------------------------------------------------

# A number is below 10**NUMBER_DIGITS in magnitude (pricing.units): refused here (``1e308``,
# ``1E+999999``), it never reaches Decimal arithmetic, whose exponent range it could leave.


def _number(value: Any) -> Decimal:
    try:
        d = to_decimal(value)
    except TypeError:
        raise PydanticCustomError("decimal_type", "Input should be a number") from None
    except ValueError:
        raise PydanticCustomError("decimal_parsing", "Input should be a number") from None
    if not d.is_finite():
        raise PydanticCustomError("finite_number", "Input should be a finite number")
    if d and d.adjusted() >= NUMBER_DIGITS:
        raise PydanticCustomError("number_too_large", "Input is out of range")
    return d


def _identifier(value: str) -> str:
    """An id must identify: an empty (or blank) CDR id cannot be settled, credited or disputed."""
    if not value.strip():
        raise PydanticCustomError("empty_id", "Input should be a non-empty id")
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]


def _integer(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    d = _number(value)
    if d != d.to_integral_value():
        raise PydanticCustomError("whole_number", "Input should be a whole number")
    return int(d)


_DT = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)


def _round_ms(dt: datetime) -> datetime:
    ms = (dt.microsecond + 500) // 1000  # half-up
    return dt.replace(microsecond=0) + timedelta(milliseconds=ms)


def parse_datetime(value: Any) -> datetime:
    """An OCPI DateTime as an aware UTC datetime with millisecond resolution."""
    if isinstance(value, datetime):
        dt = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return _round_ms(dt.astimezone(UTC))
    if not isinstance(value, str):
        raise PydanticCustomError("datetime_type", "Input should be an RFC 3339 timestamp string")
    m = _DT.fullmatch(value.strip())
    if m is None:
        raise PydanticCustomError(
            "datetime_format", "Input should be an RFC 3339 timestamp like 2024-06-12T08:00:00Z"
        )
    year, month, day, hour, minute, second, frac, _z, sign, oh, om = m.groups()
    try:
        dt = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=UTC)
        if sign:
            offset = timedelta(hours=int(oh), minutes=int(om))
            if offset >= timedelta(hours=24):
                raise ValueError("offset out of range")
            dt -= offset if sign == "+" else -offset
    except (ValueError, OverflowError):
        raise PydanticCustomError("datetime_range", "Input is not a valid date and time") from None
    if frac:
        ms = (Decimal("0." + frac) * 1000).to_integral_value(rounding=ROUND_HALF_UP)
        dt += timedelta(milliseconds=int(ms))
    return dt


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        raise PydanticCustomError("date_type", "Input should be a date string YYYY-MM-DD")
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("date_type", "Input should be a date string YYYY-MM-DD")
    text = value.strip()
    if not _DATE.fullmatch(text):
        raise PydanticCustomError("date_format", "Input should be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PydanticCustomError("date_range", "Input is not a valid calendar date") from None


_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def _start_time(value: str) -> str:
    if not _HHMM.fullmatch(value):
        raise ValueError("should be a 24-hour clock time HH:MM between 00:00 and 23:59")
    return value


def _end_time(value: str) -> str:
    if value != "24:00" and not _HHMM.fullmatch(value):
        raise ValueError("should be a 24-hour clock time HH:MM between 00:00 and 23:59 (00:00 = end of day)")
    return value


def _currency(value: str) -> str:
    if len(value) != 3 or not (value.isascii() and value.isalpha()):
        raise ValueError("should be a 3-letter ISO 4217 currency code such as EUR")
    return value


COUNTRY_CODE = re.compile(r"[A-Za-z]{2}")
PARTY_ID = re.compile(r"[A-Za-z0-9]{3}")


def _code(pattern: re.Pattern[str], should: str) -> AfterValidator:
    """A validator of a code written as ``pattern``, refusing others with ``should``."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(should)
        return value

    return AfterValidator(check)


Number = Annotated[Decimal, BeforeValidator(_number)]
Integer = Annotated[int, BeforeValidator(_integer)]
DateTime = Annotated[datetime, BeforeValidator(parse_datetime)]
Date = Annotated[date, BeforeValidator(_date)]
StartTime = Annotated[str, AfterValidator(_start_time)]
EndTime = Annotated[str, AfterValidator(_end_time)]
Currency = Annotated[str, AfterValidator(_currency)]
# the parties of a CDR name statements and their folders: OCPI's CiString(2) / CiString(3) codes
CountryCode = Annotated[str, _code(COUNTRY_CODE, "should be a 2-letter ISO 3166-1 country code such as NL")]
PartyId = Annotated[
    str, _code(PARTY_ID, "should be a 3-character party id of letters and digits (ISO 15118) such as ABC")
]


class WireModel(BaseModel):
    """Base of every OCPI wire model: unknown fields are tolerated and dropped."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# ---- enums shared by all versions ---------------------------------------------------------------


class TariffDimensionType(StrEnum):
    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class DayOfWeek(StrEnum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


ISO_WEEKDAY = {d: i for i, d in enumerate(DayOfWeek, start=1)}


class ReservationRestrictionType(StrEnum):
    RESERVATION = "RESERVATION"
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"


class TariffType(StrEnum):
    AD_HOC_PAYMENT = "AD_HOC_PAYMENT"
    PROFILE_CHEAP = "PROFILE_CHEAP"
    PROFILE_FAST = "PROFILE_FAST"
    PROFILE_GREEN = "PROFILE_GREEN"
    REGULAR = "REGULAR"


class TariffRestrictions(WireModel):
    """TariffRestrictions, the 2.2.1/2.3.0 field set (identical in both).

    2.1.1 lacks ``min_current``/``max_current``/``reservation``; a 2.1.1 tariff that carries them
    anyway gets them honoured (ignoring a restriction would silently widen the element).
    """

    start_time: StartTime | None = None
    end_time: EndTime | None = None
    start_date: Date | None = None
    end_date: Date | None = None
    min_kwh: Number | None = None
    max_kwh: Number | None = None
    min_current: Number | None = None
    max_current: Number | None = None
    min_power: Number | None = None
    max_power: Number | None = None
    min_duration: Integer | None = None
    max_duration: Integer | None = None
    day_of_week: tuple[DayOfWeek, ...] | None = None
    reservation: ReservationRestrictionType | None = None

    def to_canonical(self, path: str = "$.restrictions") -> M.Restrictions:
        return M.Restrictions(
            start_time_min=None if self.start_time is None else minutes(self.start_time, end=False),
            end_time_min=None if self.end_time is None else minutes(self.end_time, end=True),
            start_date=self.start_date,
            end_date=self.end_date,
            min_kwh_mwh=exact(self.min_kwh, MWH_PLACES, f"{path}.min_kwh", "kWh"),
            max_kwh_mwh=exact(self.max_kwh, MWH_PLACES, f"{path}.max_kwh", "kWh"),
            min_current_ma=exact(self.min_current, MA_PLACES, f"{path}.min_current", "A"),
            max_current_ma=exact(self.max_current, MA_PLACES, f"{path}.max_current", "A"),
            min_power_w=exact(self.min_power, W_PLACES, f"{path}.min_power", "kW"),
            max_power_w=exact(self.max_power, W_PLACES, f"{path}.max_power", "kW"),
            min_duration_s=bounded(self.min_duration, f"{path}.min_duration"),
            max_duration_s=bounded(self.max_duration, f"{path}.max_duration"),
            days=frozenset(ISO_WEEKDAY[d] for d in self.day_of_week or ()),
            reservation=None if self.reservation is None else M.ReservationKind(self.reservation.value),
        )


# ---- conversion helpers -------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def rel(path: str) -> str:
    """``$.a.b[0]`` → ``a.b[0]`` (for messages)."""
    return path[2:] if path.startswith("$.") else path


def reject(code: str, path: str, problem: str, hint: str = "") -> RecordRejected:
    msg = f"{rel(path)}: {problem}"
    if hint:
        msg += f". Hint: {hint}"
    return RecordRejected(code, msg, path)


def epoch_ms(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def iso(dt: datetime) -> str:
    """``2024-06-12T08:00:00Z`` (with ``.123`` when there are milliseconds), for messages."""
    text = dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    ms = dt.microsecond // 1000
    return f"{text}.{ms:03d}Z" if ms else f"{text}Z"


def opt_ms(dt: datetime | None) -> int | None:
    return None if dt is None else epoch_ms(dt)


def bounded(value: int | None, path: str) -> int | None:
    """``value`` if it fits int64 (the kernel's column type); nothing is wrapped or saturated."""
    if value is not None and not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise reject(E.INVALID_VALUE, path, f"{value} is out of range", "the value is implausibly large")
    return value


def exact(value: Decimal | None, places: int, path: str, unit: str) -> int | None:
    """A tariff bound (kWh, kW, A) scaled by ``10**places`` exactly, or UNSUPPORTED_PRECISION."""
    if value is None:
        return None
    try:
        out = scaled_int(value, places, rel(path))
    except ValueError:
        raise reject(
            E.UNSUPPORTED_PRECISION,
            path,
            f"{value} {unit} has more than {places} decimal places",
            f"restriction bounds are kept exact; round the bound to {places} decimals",
        ) from None
    return bounded(out, path)


def minutes(hhmm: str, *, end: bool) -> int:
    h, m = hhmm.split(":")
    total = int(h) * 60 + int(m)
    return 1440 if end and total in (0, 1440) else total


def check_price(price: Decimal, path: str) -> None:
    try:
        bounded(scaled_int(price, PRICE_PLACES, rel(path)), path)
    except ValueError:
        raise reject(
            E.UNSUPPORTED_PRECISION,
            path,
            f"{price} has more than {PRICE_PLACES} decimal places",
            f"prices are exact to {PRICE_PLACES} decimals; round the price",
        ) from None


def check_vat(vat: Decimal | None, path: str) -> Decimal | None:
    if vat is None:
        return None
    if vat < 0:
        raise reject(E.INVALID_VALUE, path, f"{vat} is negative", "VAT is a percentage such as 21.0")
    try:
        scaled_int(vat, VAT_PLACES, rel(path))
    except ValueError:
        raise reject(
            E.UNSUPPORTED_PRECISION,
            path,
            f"{vat} has more than {VAT_PLACES} decimal places",
            f"VAT percentages are exact to {VAT_PLACES} decimals",
        ) from None
    return vat


def component(
    dim: TariffDimensionType, price: Decimal, vat: Decimal | None, step_size: int, path: str
) -> M.PriceComponent:
    check_price(price, f"{path}.price")
    if step_size < 0:
        raise reject(
            E.INVALID_VALUE,
            f"{path}.step_size",
            f"{step_size} is negative",
            "step_size is a count of Wh (ENERGY) or seconds (TIME, PARKING_TIME); use 1 for no rounding",
        )
    bounded(step_size, f"{path}.step_size")
    return M.PriceComponent(M.Dimension(dim.value), price, check_vat(vat, f"{path}.vat"), step_size)


def check_window(
    start: datetime | None, end: datetime | None, start_name: str, end_name: str, path: str = "$"
) -> None:
    if start is not None and end is not None and end < start:
        raise reject(
            E.INVALID_VALUE,
            f"{path}.{end_name}",
            f"{iso(end)} is before {start_name} {iso(start)}",
            f"{end_name} must not be earlier than {start_name}",
        )


# ---- charging periods ---------------------------------------------------------------------------


class DimensionLike(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def volume(self) -> Decimal: ...


class PeriodLike(Protocol):
    @property
    def start_date_time(self) -> datetime: ...
    @property
    def dimensions(self) -> Sequence[DimensionLike]: ...


SIGNED_DIMENSIONS = frozenset({"MIN_CURRENT", "MIN_POWER"})
_SUM_TIME = {"TIME": "time_ms", "PARKING_TIME": "parking_ms", "RESERVATION_TIME": "reservation_ms"}
_EXTREMES: dict[str, tuple[str, int, Callable[[Decimal, Decimal], Decimal]]] = {
    "MAX_POWER": ("max_power_w", W_PER_KW, max),
    "MIN_POWER": ("min_power_w", W_PER_KW, min),
    "MAX_CURRENT": ("max_current_ma", MA_PER_A, max),
    "MIN_CURRENT": ("min_current_ma", MA_PER_A, min),
}


def check_volumes(periods: Sequence[PeriodLike], path: str = "$.charging_periods") -> None:
    for i, p in enumerate(periods):
        for j, d in enumerate(p.dimensions):
            if d.volume < 0 and str(d.type) not in SIGNED_DIMENSIONS:
                hint = "volumes are non-negative quantities"
                if str(d.type) == "ENERGY":
                    hint += "; ENERGY export (V2G) is not supported"
                raise reject(
                    E.NEGATIVE_VOLUME,
                    f"{path}[{i}].dimensions[{j}].volume",
                    f"{d.volume} is negative ({d.type})",
                    hint,
                )


def periods_to_canonical(
    periods: Sequence[PeriodLike], end_ms: int | None, path: str = "$.charging_periods"
) -> tuple[M.CdrPeriod, ...]:
    """ChargingPeriods → CdrPeriods (quantities summed per type; MAX_* max, MIN_* min).

    Volumes are rounded half-up to 1 mWh / 1 ms; measured power and current half-up to 1 W / 1 mA
    (measurements, not tariff bounds). Session-only types (CURRENT, POWER, STATE_OF_CHARGE,
    ENERGY_EXPORT, ENERGY_IMPORT) and 2.1.1's FLAT have no canonical field and are ignored.
    Raises PERIODS_OUT_OF_ORDER / PERIOD_AFTER_END.
    """
    out: list[M.CdrPeriod] = []
    prev: int | None = None
    for i, p in enumerate(periods):
        here = f"{path}[{i}]"
        start = epoch_ms(p.start_date_time)
        if prev is not None and start < prev:
            raise reject(
                E.PERIODS_OUT_OF_ORDER,
                f"{here}.start_date_time",
                f"{iso(p.start_date_time)} is before the start of charging_periods[{i - 1}]",
                "charging periods must be sent in time order",
            )
        if end_ms is not None and start > end_ms:
            raise reject(
                E.PERIOD_AFTER_END,
                f"{here}.start_date_time",
                f"{iso(p.start_date_time)} is after the end of the session "
                f"({iso(_EPOCH + timedelta(milliseconds=end_ms))})",
                "a charging period cannot start after end_date_time; check both timestamps",
            )
        prev = start
        sums: dict[str, Decimal] = {}
        extremes: dict[str, Decimal] = {}
        for d in p.dimensions:
            t = str(d.type)
            if t == "ENERGY" or t in _SUM_TIME:
                sums[t] = sums.get(t, Decimal(0)) + d.volume
            elif t in _EXTREMES:
                pick = _EXTREMES[t][2]
                extremes[t] = d.volume if t not in extremes else pick(extremes[t], d.volume)
        fields: dict[str, Any] = {}
        if "ENERGY" in sums:
            fields["energy_mwh"] = bounded(kwh_to_mwh(sums["ENERGY"]), f"{here}.dimensions")
        for t, name in _SUM_TIME.items():
            if t in sums:
                fields[name] = bounded(hours_to_ms(sums[t]), f"{here}.dimensions")
        for t, value in extremes.items():
            name, scale, _ = _EXTREMES[t]
            fields[name] = bounded(round_scaled(value, scale), f"{here}.dimensions")
        out.append(M.CdrPeriod(start_ms=start, tariff_id=getattr(p, "tariff_id", None), **fields))
    return tuple(out)


def cdr_times(start: datetime, end: datetime, end_name: str) -> tuple[int, int]:
    check_window(start, end, "start_date_time", end_name)
    return epoch_ms(start), epoch_ms(end)


def distinct(items: Sequence[str | None]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for x in items:
        if x is not None:
            seen.setdefault(x, None)
    return tuple(seen)


def missing_tax_included(path: str, tariff_id: str) -> Finding:
    return Finding(
        E.MISSING_TAX_INCLUDED,
        f"{rel(path)}: tax_included is missing in OCPI 2.3.0 tariff {tariff_id!r}; assumed NO "
        "(prices exclude taxes). Hint: 2.3.0 requires tax_included (YES, NO or N/A)",
        record_id=tariff_id,
        path=path,
        severity="warning",
    )


# ---- tariffs ------------------------------------------------------------------------------------


class ComponentLike(Protocol):
    @property
    def type(self) -> TariffDimensionType: ...
    @property
    def price(self) -> Decimal: ...
    @property
    def step_size(self) -> int: ...


class ElementLike(Protocol):
    @property
    def price_components(self) -> Sequence[ComponentLike]: ...
    @property
    def restrictions(self) -> TariffRestrictions | None: ...


def elements_to_canonical(
    elements: Sequence[ElementLike], path: str, with_vat: bool
) -> tuple[M.Element, ...]:
    out = []
    for i, e in enumerate(elements):
        here = f"{path}.elements[{i}]"
        comps = tuple(
            component(
                c.type,
                c.price,
                getattr(c, "vat", None) if with_vat else None,
                c.step_size,
                f"{here}.price_components[{j}]",
            )
            for j, c in enumerate(e.price_components)
        )
        restrictions = (
            M.Restrictions()
            if e.restrictions is None
            else e.restrictions.to_canonical(f"{here}.restrictions")
        )
        out.append(M.Element(comps, restrictions))
    return tuple(out)


# ---- CDRs (2.2.1 and 2.3.0 share everything but the money shapes) -------------------------------


def cdr22_to_canonical(
    cdr: Any, version: str, money: Callable[[Any], M.Money], findings: list[Finding] | None
) -> M.Cdr:
    """A 2.2.1 / 2.3.0 wire CDR → canonical; ``money`` converts that version's Price."""
    start_ms, end_ms = cdr_times(cdr.start_date_time, cdr.end_date_time, "end_date_time")
    check_volumes(cdr.charging_periods)
    periods = periods_to_canonical(cdr.charging_periods, end_ms)
    if cdr.credit and not cdr.credit_reference_id:
        raise reject(
            E.MISSING_FIELD,
            "$.credit_reference_id",
            "a Credit CDR (credit: true) needs credit_reference_id",
            "set it to the id of the CDR being credited",
        )
    found: list[Finding] = []
    tariffs = tuple(t.to_canonical(f"$.tariffs[{i}]", found) for i, t in enumerate(cdr.tariffs or ()))
    found = [replace(f, record_id=cdr.id) for f in found]
    if findings is not None:
        findings.extend(found)

    def opt(p: Any) -> M.Money | None:
        return None if p is None else money(p)

    return M.Cdr(
        id=cdr.id,
        version=version,
        start_ms=start_ms,
        end_ms=end_ms,
        currency=cdr.currency,
        periods=periods,
        tariffs=tariffs,
        country_code=cdr.country_code,
        party_id=cdr.party_id,
        emsp_country_code=cdr.cdr_token.country_code,
        emsp_party_id=cdr.cdr_token.party_id,
        contract_id=cdr.cdr_token.contract_id,
        session_id=cdr.session_id,
        location_id=cdr.cdr_location.id,
        location_country=cdr.cdr_location.country,
        location_time_zone=None,  # CdrLocation has no time_zone
        total_cost=money(cdr.total_cost),
        total_fixed_cost=opt(cdr.total_fixed_cost),
        total_energy_cost=opt(cdr.total_energy_cost),
        total_time_cost=opt(cdr.total_time_cost),
        total_parking_cost=opt(cdr.total_parking_cost),
        total_reservation_cost=opt(cdr.total_reservation_cost),
        total_energy=cdr.total_energy,
        total_time=cdr.total_time,
        total_parking_time=cdr.total_parking_time,
        credit=bool(cdr.credit),
        credit_reference_id=cdr.credit_reference_id,
        invoice_reference_id=cdr.invoice_reference_id,
        home_charging_compensation=bool(cdr.home_charging_compensation),
        last_updated_ms=opt_ms(cdr.last_updated),
        warnings=tuple(f.code for f in found),
    )
