"""OCPI 2.1.1 wire models (Tariff, CDR, Session) and their conversion to the canonical model.

2.1.1 specifics: no ``country_code``/``party_id`` on tariffs and CDRs, no VAT anywhere (every
price is excl. VAT and the VAT is *unknown*: ``TaxIncluded.UNKNOWN``, ``vat = None``), costs are
bare numbers, the CDR carries ``stop_date_time``, ``auth_id`` and a full ``Location`` (optional
``time_zone``; connectors name their ``tariff_id``), and ``FLAT`` is a CdrDimensionType (ignored:
it has no canonical field). Sessions use ``start_datetime``/``end_datetime``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from pricing import model as M
from pricing.errors import Finding
from pricing.ocpi._common import (
    Currency,
    DateTime,
    Identifier,
    Integer,
    Number,
    TariffDimensionType,
    TariffRestrictions,
    WireModel,
    cdr_times,
    check_volumes,
    check_window,
    distinct,
    elements_to_canonical,
    epoch_ms,
    opt_ms,
    periods_to_canonical,
)

VERSION = "2.1.1"

__all__ = [
    "VERSION",
    "Cdr",
    "CdrDimension",
    "CdrDimensionType",
    "ChargingPeriod",
    "Connector",
    "Evse",
    "Location",
    "PriceComponent",
    "Session",
    "SessionStatus",
    "Tariff",
    "TariffDimensionType",
    "TariffElement",
    "TariffRestrictions",
]


class CdrDimensionType(StrEnum):
    ENERGY = "ENERGY"
    FLAT = "FLAT"
    MAX_CURRENT = "MAX_CURRENT"
    MIN_CURRENT = "MIN_CURRENT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class SessionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    INVALID = "INVALID"
    PENDING = "PENDING"


# ---- tariff -------------------------------------------------------------------------------------


class PriceComponent(WireModel):
    type: TariffDimensionType
    price: Number  # excl. VAT
    step_size: Integer


class TariffElement(WireModel):
    price_components: tuple[PriceComponent, ...] = Field(min_length=1)
    restrictions: TariffRestrictions | None = None


class Tariff(WireModel):
    id: str
    currency: Currency
    tariff_alt_url: str | None = None
    elements: tuple[TariffElement, ...] = Field(min_length=1)
    last_updated: DateTime | None = None  # required by the spec; absent in PUT examples

    def to_canonical(self, path: str = "$", findings: list[Finding] | None = None) -> M.Tariff:
        """Canonical tariff; VAT unknown. ``findings`` (unused in 2.1.1) collects warnings."""
        return M.Tariff(
            id=self.id,
            currency=self.currency,
            elements=elements_to_canonical(self.elements, path, with_vat=False),
            version=VERSION,
            tax_included=M.TaxIncluded.UNKNOWN,
            last_updated_ms=opt_ms(self.last_updated),
        )


# ---- CDR ----------------------------------------------------------------------------------------


class CdrDimension(WireModel):
    type: CdrDimensionType
    volume: Number


class ChargingPeriod(WireModel):
    start_date_time: DateTime
    dimensions: tuple[CdrDimension, ...] = Field(min_length=1)


class Connector(WireModel):
    id: str | None = None
    tariff_id: str | None = None


class Evse(WireModel):
    uid: str | None = None
    evse_id: str | None = None
    connectors: tuple[Connector, ...] | None = None


class Location(WireModel):
    """The full 2.1.1 Location, reduced to what pricing uses."""

    id: str
    country: str
    time_zone: str | None = None
    evses: tuple[Evse, ...] | None = None

    def tariff_ids(self) -> tuple[str, ...]:
        """The connectors' ``tariff_id`` values, distinct, in document order."""
        return distinct([c.tariff_id for e in self.evses or () for c in e.connectors or ()])


class Cdr(WireModel):
    id: Identifier
    start_date_time: DateTime
    stop_date_time: DateTime
    auth_id: str
    auth_method: str | None = None
    location: Location
    meter_id: str | None = None
    currency: Currency
    tariffs: tuple[Tariff, ...] | None = None
    charging_periods: tuple[ChargingPeriod, ...] = Field(min_length=1)
    total_cost: Number  # excl. VAT
    total_energy: Number
    total_time: Number
    total_parking_time: Number | None = None
    remark: str | None = None
    last_updated: DateTime | None = None

    def to_canonical(self, findings: list[Finding] | None = None) -> M.Cdr:
        """Canonical CDR; raises RecordRejected for inconsistent times or negative volumes."""
        start_ms, end_ms = cdr_times(self.start_date_time, self.stop_date_time, "stop_date_time")
        check_volumes(self.charging_periods)
        periods = periods_to_canonical(self.charging_periods, end_ms)
        tariffs = tuple(t.to_canonical(f"$.tariffs[{i}]", findings) for i, t in enumerate(self.tariffs or ()))
        return M.Cdr(
            id=self.id,
            version=VERSION,
            start_ms=start_ms,
            end_ms=end_ms,
            currency=self.currency,
            periods=periods,
            tariffs=tariffs,
            contract_id=self.auth_id,
            location_id=self.location.id,
            location_country=self.location.country,
            location_time_zone=self.location.time_zone,
            connector_tariff_ids=self.location.tariff_ids(),
            total_cost=M.Money(excl=self.total_cost, incl=None),
            total_energy=self.total_energy,
            total_time=self.total_time,
            total_parking_time=self.total_parking_time,
            last_updated_ms=opt_ms(self.last_updated),
        )


# ---- session ------------------------------------------------------------------------------------


class Session(WireModel):
    """The cost-relevant part of a 2.1.1 Session."""

    id: str
    start_datetime: DateTime
    end_datetime: DateTime | None = None
    kwh: Number
    auth_id: str | None = None
    location: Location | None = None
    currency: Currency
    charging_periods: tuple[ChargingPeriod, ...] | None = None
    total_cost: Number | None = None  # excl. VAT; absent = no price information (not free)
    status: SessionStatus
    last_updated: DateTime | None = None

    @property
    def start_ms(self) -> int:
        return epoch_ms(self.start_datetime)

    @property
    def end_ms(self) -> int | None:
        return opt_ms(self.end_datetime)

    def total_cost_money(self) -> M.Money | None:
        return None if self.total_cost is None else M.Money(excl=self.total_cost, incl=None)

    def check(self) -> None:
        """Cheap consistency checks (RecordRejected): end not before start, periods in order."""
        check_window(self.start_datetime, self.end_datetime, "start_datetime", "end_datetime")
        self.canonical_periods()

    def canonical_periods(self) -> tuple[M.CdrPeriod, ...]:
        return periods_to_canonical(self.charging_periods or (), self.end_ms)
