"""OCPI 2.3.0 wire models (Tariff, CDR, Session) and their conversion to the canonical model.

2.3.0 specifics (on top of 2.2.1): the tariff says whether its prices contain taxes
(``tax_included``: YES / NO / N/A, required); money is ``Price {before_taxes, taxes[]}`` with
``TaxAmount {name, account_number?, percentage?, amount}``; ``min_price``/``max_price`` are
``PriceLimit {before_taxes, after_taxes?}``.

A tariff without ``tax_included`` (the spec's own 2.3.0 ``cdr_example.json`` embeds one) is read as
``NO`` and reported as a ``MISSING_TAX_INCLUDED`` warning.
"""

from __future__ import annotations

from decimal import Decimal
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
    missing_tax_included,
    opt_ms,
    periods_to_canonical,
)

VERSION = "2.3.0"

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
    "PriceLimit",
    "Session",
    "SessionStatus",
    "Tariff",
    "TariffDimensionType",
    "TariffElement",
    "TariffRestrictions",
    "TariffType",
    "TaxAmount",
    "TaxIncluded",
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


class TaxIncluded(StrEnum):
    YES = "YES"
    NO = "NO"
    NOT_APPLICABLE = "N/A"


_TAX_INCLUDED = {
    TaxIncluded.YES: M.TaxIncluded.YES,
    TaxIncluded.NO: M.TaxIncluded.NO,
    TaxIncluded.NOT_APPLICABLE: M.TaxIncluded.NOT_APPLICABLE,
}


class TaxAmount(WireModel):
    name: str
    account_number: str | None = None
    percentage: Number | None = None
    amount: Number


class Price(WireModel):
    before_taxes: Number
    taxes: tuple[TaxAmount, ...] | None = None

    def to_money(self) -> M.Money:
        """``incl`` = before_taxes + Σ tax amounts when ``taxes`` is present (even empty), else None."""
        taxes = self.taxes
        incl = None if taxes is None else self.before_taxes + sum((t.amount for t in taxes), Decimal(0))
        return M.Money(
            excl=self.before_taxes,
            incl=incl,
            taxes=tuple((t.name, t.percentage, t.amount) for t in taxes or ()),
        )


class PriceLimit(WireModel):
    before_taxes: Number
    after_taxes: Number | None = None

    def to_limit(self) -> M.PriceLimit:
        return M.PriceLimit(excl=self.before_taxes, incl=self.after_taxes)


# ---- tariff -------------------------------------------------------------------------------------


class PriceComponent(WireModel):
    type: TariffDimensionType
    price: Number  # incl. or excl. taxes according to Tariff.tax_included
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
    min_price: PriceLimit | None = None
    max_price: PriceLimit | None = None
    elements: tuple[TariffElement, ...] = Field(min_length=1)
    tax_included: TaxIncluded | None = None  # required by the spec; absent → NO + warning
    start_date_time: DateTime | None = None
    end_date_time: DateTime | None = None
    last_updated: DateTime | None = None  # required by the spec; absent in the PUT example

    def to_canonical(self, path: str = "$", findings: list[Finding] | None = None) -> M.Tariff:
        """Canonical tariff; a missing ``tax_included`` adds a warning Finding to ``findings``."""
        check_window(self.start_date_time, self.end_date_time, "start_date_time", "end_date_time", path)
        if self.tax_included is None:
            tax_included = M.TaxIncluded.NO
            if findings is not None:
                findings.append(missing_tax_included(f"{path}.tax_included", self.id))
        else:
            tax_included = _TAX_INCLUDED[self.tax_included]
        return M.Tariff(
            id=self.id,
            currency=self.currency,
            elements=elements_to_canonical(self.elements, path, with_vat=True),
            version=VERSION,
            country_code=self.country_code,
            party_id=self.party_id,
            type=None if self.type is None else self.type.value,
            tax_included=tax_included,
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
    country_code: str | None = None
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
        """Canonical CDR; embedded tariffs without ``tax_included`` add warnings to ``findings``."""
        return cdr22_to_canonical(self, VERSION, Price.to_money, findings)


# ---- session ------------------------------------------------------------------------------------


class Session(WireModel):
    """The cost-relevant part of a 2.3.0 Session."""

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
