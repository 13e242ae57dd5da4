"""OCPI 2.3.0 wire models (Tariff, CDR, Session) and their conversion to the canonical model.

2.3.0 specifics (on top of 2.2.1): the tariff says whether its prices contain taxes
(``tax_included``: YES / NO / N/A, required); money is ``Price {before_taxes, taxes[]}`` with
``TaxAmount {name, account_number?, percentage?, amount}``; ``min_price``/``max_price`` are
``PriceLimit {before_taxes, after_taxes?}``.

A tariff without ``tax_included`` (the spec's own 2.3.0 ``cdr_example.json`` embeds one) is read as
``NO`` and reported as a ``MISSING_TAX_INCLUDED`` warning.

The fields 2.2.1 and 2.3.0 share (elements, CDR, Session) are declared once in
:mod:`pricing.ocpi._v22`; this module names the version's money and tariff types.
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
    Number,
    TariffDimensionType,
    TariffRestrictions,
    TariffType,
    WireModel,
    cdr22_to_canonical,
    check_window,
    elements_to_canonical,
    missing_tax_included,
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


# ---- CDR and session (fields in pricing.ocpi._v22) -------------------------------------------


class Cdr(CdrBase[Price, Tariff]):
    def to_canonical(self, findings: list[Finding] | None = None) -> M.Cdr:
        """Canonical CDR; embedded tariffs without ``tax_included`` add warnings to ``findings``."""
        return cdr22_to_canonical(self, VERSION, Price.to_money, findings)


class Session(SessionBase[Price]):
    """The cost-relevant part of a 2.3.0 Session."""
