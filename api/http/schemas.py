"""Request and response schemas (the OpenAPI contract) with examples.

Requests are validated by pydantic; responses are built by :mod:`pricing` as plain JSON and only
*documented* by the ``*Out`` models (validating every quote's trace again would double its cost).
Numbers may be sent as JSON numbers or decimal strings; amounts come back as decimal strings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

EXAMPLE_TARIFF: dict[str, Any] = {
    "country_code": "NL",
    "party_id": "RLG",
    "id": "AC-11",
    "currency": "EUR",
    "elements": [
        {"price_components": [{"type": "FLAT", "price": "0.50", "vat": "21.0", "step_size": 1}]},
        {"price_components": [{"type": "ENERGY", "price": "0.35", "vat": "21.0", "step_size": 1}]},
        {
            "price_components": [{"type": "PARKING_TIME", "price": "3.00", "vat": "21.0", "step_size": 60}],
            "restrictions": {"start_time": "09:00", "end_time": "18:00"},
        },
    ],
    "last_updated": "2025-01-01T00:00:00Z",
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TariffRef(Strict):
    """A tariff a CPO pushed to the store (the service needs ROAMLEDGER_STORE_URL)."""

    country_code: str = Field(min_length=2, max_length=2)
    party_id: str = Field(min_length=3, max_length=3)
    tariff_id: str = Field(min_length=1, max_length=36)


class Location(Strict):
    time_zone: str | None = Field(None, description="IANA zone, e.g. Europe/Amsterdam")
    country: str | None = Field(None, description="ISO 3166 alpha-2 or alpha-3, for single-zone countries")


class ProfileStep(Strict):
    minutes: Decimal = Field(gt=0, le=44_640)
    power_kw: Decimal = Field(gt=0, le=10_000)
    current_a: Decimal | None = Field(None, ge=0, le=10_000)


class QuoteIn(Strict):
    """One quote: a tariff and a planned session, or a tariff and an OCPI Session object."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "tariff": EXAMPLE_TARIFF,
                    "start": "2025-03-04T17:30:00+01:00",
                    "energy_kwh": "20",
                    "power_kw": "11",
                    "parking_minutes": 30,
                    "locale": "nl_NL",
                }
            ]
        },
    )

    tariff: dict[str, Any] | None = Field(None, description="an OCPI Tariff object, any version")
    tariff_ref: TariffRef | None = None
    start: str | None = Field(None, description="planned start, ISO 8601; without offset: local time")
    time_zone: str | None = None
    location: Location | None = None
    energy_kwh: Decimal | None = Field(None, ge=0, le=100_000)
    power_kw: Decimal | None = Field(None, gt=0, le=10_000)
    duration_minutes: Decimal | None = Field(None, ge=0, le=44_640)
    profile: list[ProfileStep] | None = Field(None, max_length=1000)
    parking_minutes: Decimal = Field(Decimal(0), ge=0, le=44_640)
    reservation_minutes: Decimal = Field(Decimal(0), ge=0, le=44_640)
    session: dict[str, Any] | None = Field(None, description="an OCPI Session object (2.1.1/2.2.1/2.3.0)")
    now: str | None = Field(None, description="with session: price up to this instant")
    project_to: str | None = Field(None, description="with session: also project to this end")
    locale: str | None = Field(None, max_length=35, description="display strings, e.g. fr_FR (default: en)")
    policy: dict[str, str] | None = Field(None, description="pricing policy NAME: VALUE (pricing.policy)")
    ocpi_version: str | None = Field(None, pattern=r"^2\.(1\.1|2\.1|3\.0)$")
    explain: bool = Field(True, description="include the per-period trace")


class QuoteBatchIn(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "quotes": [
                        {
                            "tariff": EXAMPLE_TARIFF,
                            "start": "2025-03-04T08:00:00Z",
                            "energy_kwh": 10,
                            "power_kw": 7.4,
                        },
                        {
                            "tariff": EXAMPLE_TARIFF,
                            "start": "2025-03-04T08:00:00Z",
                            "energy_kwh": 40,
                            "power_kw": 50,
                        },
                    ]
                }
            ]
        },
    )
    quotes: list[QuoteIn] = Field(min_length=1)


class Amounts(BaseModel):
    excl_vat: str | None
    incl_vat: str | None


class QuoteOut(BaseModel):
    """A priced session; amounts and quantities are decimal strings (4 places, OCPI half-up)."""

    model_config = ConfigDict(extra="allow")
    kind: str = Field(description="planned | session_so_far (with `projected` when asked)")
    tariff_id: str
    ocpi_version: str
    currency: str
    time_zone: str
    start: str
    end: str
    total: Amounts
    costs: dict[str, Amounts]
    quantities: dict[str, str | None]
    min_max_applied: str | None
    taxes: list[dict[str, Any]] | None
    periods: list[dict[str, Any]]
    display: dict[str, Any]
    policy: dict[str, Any]
    warnings: list[dict[str, Any]]


class BatchItem(BaseModel):
    quote: QuoteOut | None = None
    error: dict[str, Any] | None = Field(None, description="a problem object for this item")


class QuoteBatchOut(BaseModel):
    quotes: list[BatchItem]


class PriceSheetIn(Strict):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"tariff": EXAMPLE_TARIFF, "locale": "de_DE"}]}
    )
    tariff: dict[str, Any] = Field(description="an OCPI Tariff object, any version")
    locale: str | None = Field(None, max_length=35)
    ocpi_version: str | None = Field(None, pattern=r"^2\.(1\.1|2\.1|3\.0)$")


class PriceSheetOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    tariff_id: str
    currency: str
    locale: str
    elements: list[dict[str, Any]]
    reservation: list[dict[str, Any]]
    min_price: dict[str, Any] | None
    max_price: dict[str, Any] | None
    vat_text: str
    summary: list[str]


class LintIn(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "tariff": {
                        **EXAMPLE_TARIFF,
                        "min_price": {"excl_vat": "5.00"},
                        "max_price": {"excl_vat": "2.00"},
                    }
                }
            ]
        },
    )
    tariff: Any = Field(description="an OCPI Tariff object, any version (anything else is one finding)")
    ocpi_version: str | None = Field(None, pattern=r"^2\.(1\.1|2\.1|3\.0)$")


class LintFindingOut(BaseModel):
    code: str
    severity: str
    path: str
    message: str
    fix: str


class LintOut(BaseModel):
    tariff_id: str | None
    ocpi_version: str | None
    counts: dict[str, int]
    findings: list[LintFindingOut]


class Health(BaseModel):
    status: str = Field(description="ok, or unavailable when the store does not answer or is behind")
    version: str
    store: dict[str, Any] | None = Field(
        None, description="with a store: reachable, revision, head, migrations_current, parties"
    )


class Problem(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
