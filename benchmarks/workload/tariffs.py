"""The tariff specs as OCPI tariff JSON (per version), and where each tariff can switch."""

from __future__ import annotations

import copy
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from benchmarks.workload.specs import Cpo, TariffSpec

# ---- tariffs as OCPI JSON -----------------------------------------------------------------------

PHASE_DIMS = {0: ("ENERGY", "TIME", "FLAT"), 1: ("PARKING_TIME", "FLAT")}  # 0 charging, 1 parking


def _num(text: str) -> int | Decimal:
    """A decimal string as the JSON number a CPO would write: ``12`` stays an integer, ``0.30`` a decimal.

    A Decimal is written from its own digits (:mod:`benchmarks.workload.jsontext`), never via a float.
    """
    d = Decimal(text)
    return int(d) if d == d.to_integral_value() and "." not in text else d


def _with_vat(price: str, vat: str) -> str:
    q = Decimal(price) * (1 + Decimal(vat) / 100)
    return f"{q.quantize(Decimal('0.0001'), ROUND_HALF_UP).normalize():f}"


def tariff_json(spec: TariffSpec, cpo: Cpo, version: str, valid_from: str) -> dict[str, Any]:
    """The OCPI tariff object of ``spec`` in ``version``."""
    incl = version == "2.3.0" and spec.tax_included_230 == "YES"
    out: dict[str, Any] = {}
    if version != "2.1.1":
        out.update(country_code=cpo.country, party_id=cpo.party)
    out.update(id=spec.tariff_id(version), currency=cpo.currency)
    if version != "2.1.1":
        out["type"] = "REGULAR"
    text = f"{cpo.name} {spec.kind} tariff"
    out["tariff_alt_text"] = [{"language": "en", "text": text}]
    if version != "2.1.1":
        for name, limit in (("min_price", spec.min_price), ("max_price", spec.max_price)):
            if limit is not None:
                keys = ("excl_vat", "incl_vat") if version == "2.2.1" else ("before_taxes", "after_taxes")
                out[name] = {keys[0]: _num(limit[0]), keys[1]: _num(limit[1])}
    elements = []
    for el in spec.elements:
        comps = []
        for c in el.comps:
            price = _with_vat(c.price, cpo.vat) if incl else c.price
            comp: dict[str, Any] = {"type": c.dim, "price": _num(price)}
            if version != "2.1.1":
                comp["vat"] = Decimal(cpo.vat)
            comp["step_size"] = c.step
            comps.append(comp)
        entry: dict[str, Any] = {"price_components": comps}
        if el.restrictions:
            entry["restrictions"] = {k: v for k, v in el.restrictions}
        elements.append(entry)
    out["elements"] = elements
    if version == "2.3.0":
        out["tax_included"] = spec.tax_included_230
    if version != "2.1.1":
        out["start_date_time"] = valid_from
    out["last_updated"] = valid_from
    return out


def wrong_tariff_json(good: dict[str, Any]) -> dict[str, Any]:
    """The tariff an overcharging CPO used by mistake: parking step 3600 s, ENERGY price +10 %."""
    bad = copy.deepcopy(good)
    for el in bad["elements"]:
        for c in el["price_components"]:
            if c["type"] == "PARKING_TIME":
                c["step_size"] = 3600
            elif c["type"] == "ENERGY":
                c["price"] = (Decimal(c["price"]) * Decimal("1.1")).quantize(Decimal("0.0001"))
    return bad


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def phase_boundaries(spec: TariffSpec) -> dict[str, Any]:
    """Where the tariff can switch, per phase (0 charging, 1 parking): what the CPO splits at."""
    out: dict[str, Any] = {"clock": {0: set(), 1: set()}, "duration": {0: set(), 1: set()}}
    kwh: set[int] = set()
    power: set[int] = set()
    for el in spec.elements:
        r = dict(el.restrictions)
        dims = {c.dim for c in el.comps}
        for phase in (0, 1):
            if not dims & set(PHASE_DIMS[phase]):
                continue
            for key in ("start_time", "end_time"):
                if key in r:
                    out["clock"][phase].add(_minutes(r[key]) % 1440)
            if "day_of_week" in r:
                out["clock"][phase].add(0)
            for key in ("min_duration", "max_duration"):
                if key in r:
                    out["duration"][phase].add(int(r[key]))
        if "ENERGY" in dims or "TIME" in dims:
            for key in ("min_kwh", "max_kwh"):
                if key in r:
                    kwh.add(int(Decimal(str(r[key])) * 1000))
            for key in ("min_power", "max_power"):
                if key in r:
                    power.add(int(Decimal(str(r[key])) * 1000))
    out["kwh_wh"] = kwh
    out["power_w"] = power
    return out
