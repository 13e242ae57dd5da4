"""The wire structure OCPI 2.2.1 and 2.3.0 share, written once.

2.3.0 changed money (``Price``, ``PriceLimit``, taxes) and the tariff (``tax_included``); every
other CDR / Session / tariff-element field is the same in both. The shared models are defined here
once; the CDR and the Session are generic over the version's ``Price`` (and, for embedded
tariffs, its ``Tariff``), and each version module names its concrete class (``class
Cdr(CdrBase[Price, Tariff])``) so that pydantic's field order, error paths and messages are
exactly those of a class written out in full.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Generic, TypeVar

from pydantic import Field

from pricing import model as M
from pricing.ocpi._common import (
    CountryCode,
    Currency,
    DateTime,
    Identifier,
    Integer,
    Number,
    PartyId,
    TariffDimensionType,
    TariffRestrictions,
    WireModel,
    check_window,
    epoch_ms,
    opt_ms,
    periods_to_canonical,
)

PriceT = TypeVar("PriceT", bound=WireModel)
TariffT = TypeVar("TariffT", bound=WireModel)


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


class PriceComponent(WireModel):
    type: TariffDimensionType
    price: Number  # 2.2.1: excl. VAT; 2.3.0: incl. or excl. taxes according to Tariff.tax_included
    vat: Number | None = None  # percentage; absent = no VAT applies
    step_size: Integer


class TariffElement(WireModel):
    price_components: tuple[PriceComponent, ...] = Field(min_length=1)
    restrictions: TariffRestrictions | None = None


class CdrDimension(WireModel):
    type: CdrDimensionType
    volume: Number


class ChargingPeriod(WireModel):
    start_date_time: DateTime
    dimensions: tuple[CdrDimension, ...] = Field(min_length=1)
    tariff_id: str | None = None


class CdrToken(WireModel):
    country_code: CountryCode | None = None  # 2.2.1: mandatory from 2.2.1-d2; absent in the tag's example
    party_id: PartyId | None = None
    uid: str | None = None
    type: str | None = None
    contract_id: str


class CdrLocation(WireModel):
    id: str
    country: str
    evse_uid: str | None = None
    evse_id: str | None = None
    connector_id: str | None = None


class CdrBase(WireModel, Generic[PriceT, TariffT]):
    """The 2.2.x CDR; ``PriceT``: the version's Price, ``TariffT``: its Tariff."""

    country_code: CountryCode
    party_id: PartyId
    id: Identifier
    start_date_time: DateTime
    end_date_time: DateTime
    session_id: str | None = None
    cdr_token: CdrToken
    auth_method: str | None = None
    authorization_reference: str | None = None
    cdr_location: CdrLocation
    meter_id: str | None = None
    currency: Currency
    tariffs: tuple[TariffT, ...] | None = None
    charging_periods: tuple[ChargingPeriod, ...] = Field(min_length=1)
    total_cost: PriceT
    total_fixed_cost: PriceT | None = None
    total_energy: Number
    total_energy_cost: PriceT | None = None
    total_time: Number
    total_time_cost: PriceT | None = None
    total_parking_time: Number | None = None
    total_parking_cost: PriceT | None = None
    total_reservation_cost: PriceT | None = None
    remark: str | None = None
    invoice_reference_id: str | None = None
    credit: bool | None = None
    credit_reference_id: str | None = None
    home_charging_compensation: bool | None = None
    last_updated: DateTime | None = None


# ---- session ------------------------------------------------------------------------------------


class SessionBase(WireModel, Generic[PriceT]):
    """The cost-relevant part of a 2.2.x Session; ``PriceT``: the version's Price."""

    country_code: str
    party_id: Identifier
    id: Identifier
    start_date_time: DateTime
    end_date_time: DateTime | None = None
    kwh: Number
    cdr_token: CdrToken | None = None
    location_id: str | None = None
    evse_uid: str | None = None
    connector_id: str | None = None
    currency: Currency
    charging_periods: tuple[ChargingPeriod, ...] | None = None
    total_cost: PriceT | None = None  # absent = no price information (not free)
    status: SessionStatus
    last_updated: DateTime | None = None

    @property
    def start_ms(self) -> int:
        return epoch_ms(self.start_date_time)

    @property
    def end_ms(self) -> int | None:
        return opt_ms(self.end_date_time)

    def total_cost_money(self) -> M.Money | None:
        return None if self.total_cost is None else self.total_cost.to_money()  # type: ignore[attr-defined]

    def check(self) -> None:
        """Cheap consistency checks (RecordRejected): end not before start, periods in order."""
        check_window(self.start_date_time, self.end_date_time, "start_date_time", "end_date_time")
        self.canonical_periods()

    def canonical_periods(self) -> tuple[M.CdrPeriod, ...]:
        return periods_to_canonical(self.charging_periods or (), self.end_ms)
