"""Small builders so tests read like the scenario they describe."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pricing.model import (
    Dimension,
    Element,
    Period,
    Phase,
    PriceComponent,
    PriceLimit,
    ReservationKind,
    Restrictions,
    Session,
    Tariff,
    TaxIncluded,
)

MIN = 60_000


def local_ms(text: str, tz: str = "Europe/Berlin", fold: int = 0) -> int:
    """Epoch ms of a local wall-clock time like '2024-06-03T09:30'."""
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz), fold=fold).timestamp() * 1000)


def comp(dim: str, price: str, vat: str | None = None, step: int = 1) -> PriceComponent:
    return PriceComponent(Dimension(dim), Decimal(price), None if vat is None else Decimal(vat), step)


def element(*components: PriceComponent, **restrictions: Any) -> Element:
    if "days" in restrictions:
        restrictions["days"] = frozenset(restrictions["days"])
    if "reservation" in restrictions:
        restrictions["reservation"] = ReservationKind(restrictions["reservation"])
    return Element(tuple(components), Restrictions(**restrictions))


def tariff(
    *elements: Element,
    tax: TaxIncluded = TaxIncluded.NO,
    version: str = "2.2.1",
    min_price: tuple[str | None, str | None] | None = None,
    max_price: tuple[str | None, str | None] | None = None,
    id: str = "T",
) -> Tariff:
    def limit(v: tuple[str | None, str | None] | None) -> PriceLimit | None:
        if v is None:
            return None
        return PriceLimit(*(None if x is None else Decimal(x) for x in v))

    return Tariff(
        id,
        "EUR",
        tuple(elements),
        version=version,
        tax_included=tax,
        min_price=limit(min_price),
        max_price=limit(max_price),
    )


def session(
    t: Tariff, start: str, *parts: tuple[Any, ...], tz: str = "Europe/Berlin", expired: bool = False
) -> Session:
    """parts: (phase, minutes, kwh[, extra Period fields]) laid end to end from ``start``."""
    t0 = local_ms(start, tz)
    cursor = t0
    periods = []
    for i, part in enumerate(parts):
        phase, minutes, kwh = part[0], part[1], part[2] if len(part) > 2 else 0
        extra = part[3] if len(part) > 3 else {}
        dur = round(Decimal(str(minutes)) * MIN)
        periods.append(
            Period(
                cursor, int(dur), Phase(phase), int(Decimal(str(kwh)) * 1_000_000), source_index=i, **extra
            )
        )
        cursor += int(dur)
    return Session("S", "EUR", tz, (t,), tuple(periods), t0, reservation_expired=expired)
