"""Canonical tariffs written back as OCPI JSON of their version (for tests that need wire tariffs).

Where the canonical value has no wire form (a price limit without its pre-tax amount), the field
is left out: tests price the JSON, so both sides of a comparison read the same tariff."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pricing.model import PriceLimit, Restrictions, Tariff, TaxIncluded

DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


def num(value: int, scale: int) -> str:
    return f"{Decimal(value).scaleb(-scale).normalize():f}" if value else "0"


def hhmm(minutes: int) -> str:
    minutes %= 1440
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def restrictions(r: Restrictions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if r.start_time_min is not None:
        out["start_time"] = hhmm(r.start_time_min)
    if r.end_time_min is not None:
        out["end_time"] = hhmm(r.end_time_min)
    if r.start_date is not None:
        out["start_date"] = r.start_date.isoformat()
    if r.end_date is not None:
        out["end_date"] = r.end_date.isoformat()
    for name, value, scale in (
        ("min_kwh", r.min_kwh_mwh, 6),
        ("max_kwh", r.max_kwh_mwh, 6),
        ("min_power", r.min_power_w, 3),
        ("max_power", r.max_power_w, 3),
        ("min_current", r.min_current_ma, 3),
        ("max_current", r.max_current_ma, 3),
        ("min_duration", r.min_duration_s, 0),
        ("max_duration", r.max_duration_s, 0),
    ):
        if value is not None:
            out[name] = int(value) if scale == 0 else num(value, scale)
    if r.days:
        out["day_of_week"] = [DAYS[d - 1] for d in sorted(r.days)]
    if r.reservation is not None:
        out["reservation"] = r.reservation.value
    return out


def limit(lim: PriceLimit | None, version: str) -> dict[str, Any] | None:
    if lim is None or lim.excl is None:
        return None
    if version.startswith("2.3"):
        out = {"before_taxes": str(lim.excl)}
        if lim.incl is not None:
            out["after_taxes"] = str(lim.incl)
        return out
    out = {"excl_vat": str(lim.excl)}
    if lim.incl is not None:
        out["incl_vat"] = str(lim.incl)
    return out


def tariff_json(t: Tariff, country_code: str = "NL", party_id: str = "RLQ") -> dict[str, Any]:
    elements = []
    for el in t.elements:
        comps = []
        for c in el.components:
            comp: dict[str, Any] = {
                "type": c.dimension.value,
                "price": str(c.price),
                "step_size": c.step_size,
            }
            if c.vat is not None and t.version != "2.1.1":
                comp["vat"] = str(c.vat)
            comps.append(comp)
        entry: dict[str, Any] = {"price_components": comps}
        r = restrictions(el.restrictions)
        if r:
            entry["restrictions"] = r
        elements.append(entry)
    out: dict[str, Any] = {"id": t.id, "currency": t.currency, "elements": elements}
    out["last_updated"] = "2024-01-01T00:00:00Z"
    if t.version == "2.1.1":
        return out
    out = {"country_code": country_code, "party_id": party_id, **out}
    if t.version.startswith("2.3"):
        out["tax_included"] = t.tax_included.value if t.tax_included is not TaxIncluded.UNKNOWN else "NO"
    for name in ("min_price", "max_price"):
        lim = limit(getattr(t, name), t.version)
        if lim is not None:
            out[name] = lim
    return out
