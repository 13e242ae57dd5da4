"""OCPI 2.2.1 wire models (Tariff, CDR, Session) and their conversion to the canonical model.

2.2.1 specifics: tariffs and CDRs belong to a CPO (``country_code``/``party_id``); prices are
excl. VAT (``TaxIncluded.NO``) with an optional per-component ``vat`` percentage (absent = no VAT
applies); money is ``Price {excl_vat, incl_vat?}``, also for ``min_price``/``max_price``; the CDR
has ``end_date_time``, ``cdr_token`` and a ``CdrLocation`` (no time zone), charging periods name
their ``tariff_id``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from pricing import model as M
from pricing.errors import Finding
from pricing.ocpi._common import (
    Currency,
    DateTime,
    Integer,
    Number,
    TariffDimensionType,
    TariffRestrictions,
    TariffType,
    WireModel,
    cdr22_to_canonical,
    check_window,
    elements_to_canonical,
    epoch_ms,
    opt_ms,
    periods_to_canonical,
)

VERSION = "2.2.1"

__all__ = [
    "VERSION",
    "Cdr",
    "CdrDimension",
    "CdrDimensionType",
    "CdrLocation",
    "CdrToken",
    "ChargingPeriod",
    "Price",
    "PriceComponent",
    "Session",
    "SessionStatus",
    "Tariff",
    "TariffDimensionType",
    "TariffElement",
    "TariffRestrictions",
    "TariffType",
]


class CdrDimensionType(StrEnum):
    CURRENT = "CURRENT"  # Session only
    ENERGY = "ENERGY"
    ENERGY_EXPORT = "ENERGY_EXPORT"  # Session only
    ENERGY_IMPORT = "ENERGY_IMPORT"  # Session only
    MAX_CURRENT = "MAX_CURRENT"
    MIN_CURRENT = "MIN_CURRENT"
    MAX_POWER = "MAX_POWER"
    MIN_POWER = "MIN_POWER"
    PARKING_TIME = "PARKING_TIME"
    POWER = "POWER"  # Session only
    RESERVATION_TIME = "RESERVATION_TIME"
    STATE_OF_CHARGE = "STATE_OF_CHARGE"  # Session only
    TIME = "TIME"


class SessionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    INVALID = "INVALID"
    PENDING = "PENDING"
    RESERVATION = "RESERVATION"


class Price(WireModel):
    excl_vat: Number
    incl_vat: Number | None = None

    def to_money(self) -> M.Money:
        return M.Money(excl=self.excl_vat, incl=self.incl_vat)

    def to_limit(self) -> M.PriceLimit:
        return M.PriceLimit(excl=self.excl_vat, incl=self.incl_vat)


# ---- tariff -------------------------------------------------------------------------------------


class PriceComponent(WireModel):
    type: TariffDimensionType
    price: Number  # excl. VAT
    vat: Number | None = None  # percentage; absent = no VAT applies
    step_size: Integer


class TariffElement(WireModel):
    price_components: tuple[PriceComponent, ...] = Field(min_length=1)
    restrictions: TariffRestrictions | None = None


class Tariff(WireModel):
    country_code: str
    party_id: str
    id: str
    currency: Currency
    type: TariffType | None = None
    tariff_alt_url: str | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    elements: tuple[TariffElement, ...] = Field(min_length=1)
    start_date_time: DateTime | None = None
    end_date_time: DateTime | None = None
    last_updated: DateTime | None = None  # required by the spec; absent in the PUT example

    def to_canonical(self, path: str = "$", findings: list[Finding] | None = None) -> M.Tariff:
        """Canonical tariff (prices excl. VAT). ``findings`` (unused in 2.2.1) collects warnings."""
        check_window(self.start_date_time, self.end_date_time, "start_date_time", "end_date_time", path)
        return M.Tariff(
            id=self.id,
            currency=self.currency,
            elements=elements_to_canonical(self.elements, path, with_vat=True),
            version=VERSION,
            country_code=self.country_code,
            party_id=self.party_id,
            type=None if self.type is None else self.type.value,
            tax_included=M.TaxIncluded.NO,
            min_price=None if self.min_price is None else self.min_price.to_limit(),
            max_price=None if self.max_price is None else self.max_price.to_limit(),
            start_ms=opt_ms(self.start_date_time),
            end_ms=opt_ms(self.end_date_time),
            last_updated_ms=opt_ms(self.last_updated),
        )


# ---- CDR ----------------------------------------------------------------------------------------


class CdrDimension(WireModel):
    type: CdrDimensionType
    volume: Number


class ChargingPeriod(WireModel):
    start_date_time: DateTime
    dimensions: tuple[CdrDimension, ...] = Field(min_length=1)
    tariff_id: str | None = None


class CdrToken(WireModel):
    country_code: str | None = None  # mandatory from 2.2.1-d2; absent in the 2.2.1 tag's example
    party_id: str | None = None
    uid: str | None = None
    type: str | None = None
    contract_id: str


class CdrLocation(WireModel):
    id: str
    country: str
    evse_uid: str | None = None
    evse_id: str | None = None
    connector_id: str | None = None


class Cdr(WireModel):
    country_code: str
    party_id: str
    id: str
    start_date_time: DateTime
    end_date_time: DateTime
    session_id: str | None = None
    cdr_token: CdrToken
    auth_method: str | None = None
    authorization_reference: str | None = None
    cdr_location: CdrLocation
    meter_id: str | None = None
    currency: Currency
    tariffs: tuple[Tariff, ...] | None = None
    charging_periods: tuple[ChargingPeriod, ...] = Field(min_length=1)
    total_cost: Price
    total_fixed_cost: Price | None = None
    total_energy: Number
    total_energy_cost: Price | None = None
    total_time: Number
    total_time_cost: Price | None = None
    total_parking_time: Number | None = None
    total_parking_cost: Price | None = None
    total_reservation_cost: Price | None = None
    remark: str | None = None
    invoice_reference_id: str | None = None
    credit: bool | None = None
    credit_reference_id: str | None = None
    home_charging_compensation: bool | None = None
    last_updated: DateTime | None = None

    def to_canonical(self, findings: list[Finding] | None = None) -> M.Cdr:
        """Canonical CDR; raises RecordRejected for inconsistent times or negative volumes."""
        return cdr22_to_canonical(self, VERSION, Price.to_money, findings)


# ---- session ------------------------------------------------------------------------------------


class Session(WireModel):
    """The cost-relevant part of a 2.2.1 Session."""

    country_code: str
    party_id: str
    id: str
    start_date_time: DateTime
    end_date_time: DateTime | None = None
    kwh: Number
    cdr_token: CdrToken | None = None
    location_id: str | None = None
    evse_uid: str | None = None
    connector_id: str | None = None
    currency: Currency
    charging_periods: tuple[ChargingPeriod, ...] | None = None
    total_cost: Price | None = None  # absent = no price information (not free)
    status: SessionStatus
    last_updated: DateTime | None = None

    @property
    def start_ms(self) -> int:
        return epoch_ms(self.start_date_time)

    @property
    def end_ms(self) -> int | None:
        return opt_ms(self.end_date_time)

    def total_cost_money(self) -> M.Money | None:
        return None if self.total_cost is None else self.total_cost.to_money()

    def check(self) -> None:
        """Cheap consistency checks (RecordRejected): end not before start, periods in order."""
        check_window(self.start_date_time, self.end_date_time, "start_date_time", "end_date_time")
        self.canonical_periods()

    def canonical_periods(self) -> tuple[M.CdrPeriod, ...]:
        return periods_to_canonical(self.charging_periods or (), self.end_ms)
