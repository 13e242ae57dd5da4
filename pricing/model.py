"""The canonical, version-neutral model.

OCPI 2.1.1, 2.2.1 and 2.3.0 wire objects convert into these types at the edge
(``pricing.ocpi.vXYZ``); nothing below this module knows OCPI versions. All quantities are
integers in the units of :mod:`pricing.units`; prices and percentages are Decimals. Values are
immutable. "Unknown" stays unknown: a 2.1.1 tariff has no VAT information, which is not 0 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

# Cost categories of a result (the CDR total_*_cost fields) and the result row contract of
# ``roamledger price`` (DESIGN.md "Contracts"); both pricers produce rows in exactly this order.
COST_CATEGORIES: tuple[str, ...] = ("energy", "time", "parking", "fixed", "reservation")
# The result columns that are quantities (measured, and billed after step_size).
QUANTITY_COLUMNS: tuple[str, ...] = (
    "total_energy_kwh",
    "billed_energy_kwh",
    "total_time_h",
    "charging_time_h",
    "billed_charging_time_h",
    "parking_time_h",
    "billed_parking_time_h",
    "reservation_time_h",
    "billed_reservation_time_h",
)
RESULT_COLUMNS: tuple[str, ...] = (
    "cdr_id",
    "currency",
    "tariff_id",
    "time_zone",
    "total_cost_excl_vat",
    "total_cost_incl_vat",
    *(f"{c}_cost_{k}" for c in COST_CATEGORIES for k in ("excl_vat", "incl_vat")),
    *QUANTITY_COLUMNS,
    "min_max_applied",
    "taxes",
)


class Dimension(StrEnum):
    ENERGY = "ENERGY"
    FLAT = "FLAT"
    TIME = "TIME"
    PARKING_TIME = "PARKING_TIME"


class ReservationKind(StrEnum):
    RESERVATION = "RESERVATION"
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"


class TaxIncluded(StrEnum):
    YES = "YES"  # prices contain taxes (2.3.0)
    NO = "NO"  # taxes come on top
    NOT_APPLICABLE = "N/A"  # no taxes apply
    UNKNOWN = "UNKNOWN"  # 2.1.1: OCPI carried no VAT information


class Phase(StrEnum):
    RESERVATION = "RESERVATION"
    CHARGING = "CHARGING"
    PARKING = "PARKING"


@dataclass(frozen=True, slots=True)
class PriceComponent:
    dimension: Dimension
    price: Decimal  # per kWh (ENERGY), per hour (TIME, PARKING_TIME), per session (FLAT)
    vat: Decimal | None  # percentage; None = no VAT applies (2.2.1+) or unknown (2.1.1)
    step_size: int  # Wh (ENERGY) or s (TIME, PARKING_TIME); meaningless for FLAT


@dataclass(frozen=True, slots=True)
class Restrictions:
    """TariffRestrictions in canonical units. ``None`` = not restricted."""

    start_time_min: int | None = None  # minutes after local midnight, [start, end)
    end_time_min: int | None = None  # 00:00 is stored as 1440 (end of day)
    start_date: date | None = None  # local date, inclusive
    end_date: date | None = None  # local date, exclusive
    min_kwh_mwh: int | None = None  # cumulative session energy >= min
    max_kwh_mwh: int | None = None  # cumulative session energy < max
    min_current_ma: int | None = None
    max_current_ma: int | None = None
    min_power_w: int | None = None
    max_power_w: int | None = None
    min_duration_s: int | None = None  # elapsed session time >= min
    max_duration_s: int | None = None  # elapsed session time < max
    days: frozenset[int] = frozenset()  # ISO weekdays 1 (Monday) .. 7; empty = every day
    reservation: ReservationKind | None = None

    @property
    def has_time_of_day(self) -> bool:
        return self.start_time_min is not None or self.end_time_min is not None


@dataclass(frozen=True, slots=True)
class Element:
    components: tuple[PriceComponent, ...]
    restrictions: Restrictions = Restrictions()

    def component(self, dimension: Dimension) -> tuple[int, PriceComponent] | None:
        """The first component of ``dimension`` (two of one dimension: the first wins)."""
        for i, c in enumerate(self.components):
            if c.dimension is dimension:
                return i, c
        return None


@dataclass(frozen=True, slots=True)
class PriceLimit:
    """min_price / max_price: pre-tax and (optional) post-tax bound."""

    excl: Decimal | None
    incl: Decimal | None


@dataclass(frozen=True, slots=True)
class Tariff:
    id: str
    currency: str
    elements: tuple[Element, ...]
    version: str = "2.2.1"
    country_code: str | None = None
    party_id: str | None = None
    type: str | None = None
    tax_included: TaxIncluded = TaxIncluded.NO
    min_price: PriceLimit | None = None
    max_price: PriceLimit | None = None
    start_ms: int | None = None  # validity window, UTC epoch ms, [start, end)
    end_ms: int | None = None
    last_updated_ms: int | None = None

    @property
    def taxes_known(self) -> bool:
        """Whether tax-inclusive amounts can be computed at all.

        2.1.1 carries no VAT. A 2.3.0 tariff with ``tax_included = NO`` and no ``vat`` on any
        component is the North-American style: taxes are added later by jurisdiction, so the
        amount after taxes is unknown (not equal to the amount before taxes).
        """
        if self.tax_included is TaxIncluded.UNKNOWN:
            return False
        if self.tax_included is TaxIncluded.NO and self.version.startswith("2.3"):
            return any(c.vat is not None for e in self.elements for c in e.components)
        return True

    def valid_at(self, instant_ms: int) -> bool:
        if self.start_ms is not None and instant_ms < self.start_ms:
            return False
        return not (self.end_ms is not None and instant_ms >= self.end_ms)


@dataclass(frozen=True, slots=True)
class Period:
    """One contiguous stretch of a single phase, priced as a unit (before boundary splitting)."""

    start_ms: int
    duration_ms: int
    phase: Phase
    energy_mwh: int = 0
    min_power_w: int | None = None
    max_power_w: int | None = None
    min_current_ma: int | None = None
    max_current_ma: int | None = None
    tariff_idx: int = 0  # index into Session.tariffs
    source_index: int = 0  # index of the CDR charging period this came from


@dataclass(frozen=True, slots=True)
class Session:
    """What the pricer prices: periods in time order, tariffs, a time zone."""

    id: str
    currency: str
    time_zone: str
    tariffs: tuple[Tariff, ...]
    periods: tuple[Period, ...]
    start_ms: int
    reservation_expired: bool = False

    @property
    def charging_start_ms(self) -> int:
        """Start of the charging session proper (after any reservation phase)."""
        for p in self.periods:
            if p.phase is not Phase.RESERVATION:
                return p.start_ms
        return self.start_ms


# ---- the CDR as it arrived (canonical, all versions) -------------------------------------------


@dataclass(frozen=True, slots=True)
class Money:
    """An OCPI Price: amount excl. VAT/before taxes, incl. VAT/after taxes, and 2.3.0 tax lines."""

    excl: Decimal | None
    incl: Decimal | None = None
    taxes: tuple[tuple[str, Decimal | None, Decimal], ...] = ()  # (name, percentage, amount)


@dataclass(frozen=True, slots=True)
class CdrPeriod:
    start_ms: int
    energy_mwh: int | None = None
    time_ms: int | None = None
    parking_ms: int | None = None
    reservation_ms: int | None = None
    min_power_w: int | None = None
    max_power_w: int | None = None
    min_current_ma: int | None = None
    max_current_ma: int | None = None
    tariff_id: str | None = None


@dataclass(frozen=True, slots=True)
class Cdr:
    id: str
    version: str
    start_ms: int
    end_ms: int
    currency: str
    periods: tuple[CdrPeriod, ...]
    tariffs: tuple[Tariff, ...] = ()
    country_code: str | None = None  # CPO
    party_id: str | None = None
    emsp_country_code: str | None = None
    emsp_party_id: str | None = None
    contract_id: str | None = None
    session_id: str | None = None
    location_id: str | None = None
    location_country: str | None = None
    location_time_zone: str | None = None
    connector_tariff_ids: tuple[str, ...] = ()
    total_cost: Money | None = None
    total_fixed_cost: Money | None = None
    total_energy_cost: Money | None = None
    total_time_cost: Money | None = None
    total_parking_cost: Money | None = None
    total_reservation_cost: Money | None = None
    total_energy: Decimal | None = None
    total_time: Decimal | None = None
    total_parking_time: Decimal | None = None
    credit: bool = False
    credit_reference_id: str | None = None
    invoice_reference_id: str | None = None
    home_charging_compensation: bool = False
    last_updated_ms: int | None = None
    warnings: tuple[str, ...] = field(default=())
