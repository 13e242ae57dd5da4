"""OCPI 2.2.1 wire models (Tariff, CDR, Session) and their conversion to the canonical model.

2.2.1 specifics: tariffs and CDRs belong to a CPO (``country_code``/``party_id``); prices are
excl. VAT (``TaxIncluded.NO``) with an optional per-component ``vat`` percentage (absent = no VAT
applies); money is ``Price {excl_vat, incl_vat?}``, also for ``min_price``/``max_price``; the CDR
has ``end_date_time``, ``cdr_token`` and a ``CdrLocation`` (no time zone), charging periods name
their ``tariff_id``.

The fields 2.2.1 and 2.3.0 share (elements, CDR, Session) are declared once in
:mod:`pricing.ocpi._v22`; this module names the version's money and tariff types.
"""

from __future__ import annotations

from pydantic import Field

from pricing import model as M
from pricing.errors import Finding
from pricing.ocpi._common import (
    Currency,
    DateTime,
    Number,
    TariffDimensionType,
    TariffRestrictions,
    TariffType,
    WireModel,
    cdr22_to_canonical,
    check_window,
    elements_to_canonical,
    opt_ms,
)
from pricing.ocpi._v22 import (
    CdrBase,
    CdrDimension,
    CdrDimensionType,
    CdrLocation,
    CdrToken,
    ChargingPeriod,
    PriceComponent,
    SessionBase,
    SessionStatus,
    TariffElement,
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


class Price(WireModel):
    excl_vat: Number
    incl_vat: Number | None = None

    def to_money(self) -> M.Money:
        return M.Money(excl=self.excl_vat, incl=self.incl_vat)

    def to_limit(self) -> M.PriceLimit:
        return M.PriceLimit(excl=self.excl_vat, incl=self.incl_vat)


# ---- tariff -------------------------------------------------------------------------------------


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


# ---- CDR and session (fields in pricing.ocpi._v22) -------------------------------------------


class Cdr(CdrBase[Price, Tariff]):
    def to_canonical(self, findings: list[Finding] | None = None) -> M.Cdr:
        """Canonical CDR; raises RecordRejected for inconsistent times or negative volumes."""
        return cdr22_to_canonical(self, VERSION, Price.to_money, findings)


class Session(SessionBase[Price]):
    """The cost-relevant part of a 2.2.1 Session."""
