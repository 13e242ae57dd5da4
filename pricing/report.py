"""Result rows: the one place where exact amounts are rounded (OCPI: 4 decimals, half-up).

``COLUMNS`` is the contract of ``roamledger price`` (DESIGN.md, "Contracts"). Every money and
quantity value is a decimal string with 4 places, or None when unknown (2.1.1 VAT, for instance).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from pricing.model import RESULT_COLUMNS, Dimension, Phase
from pricing.reference import CATEGORIES, ENERGY, PARKING, RESERVATION, TIME, PricedSession
from pricing.units import MS_PER_HOUR, MWH_PER_KWH, fmt

COST_COLUMNS = [f"{cat}_cost_{kind}" for cat in CATEGORIES for kind in ("excl_vat", "incl_vat")]
COLUMNS: list[str] = list(RESULT_COLUMNS)
DECIMAL_COLUMNS = [c for c in COLUMNS if c.endswith(("_vat", "_kwh", "_h"))]
EXTRA_COLUMNS = ["ocpi_version", "source", "line"]


def hours(ms: int) -> Fraction:
    return Fraction(ms, MS_PER_HOUR)


def kwh(mwh: int) -> Fraction:
    return Fraction(mwh, MWH_PER_KWH)


def result_row(priced: PricedSession) -> dict[str, Any]:
    """One output row for a priced session (without source/line, added by the batch)."""
    s = priced.session
    primary = s.tariffs[0]
    taxes_known = all(t.taxes_known for t in s.tariffs)
    row: dict[str, Any] = {
        "cdr_id": s.id,
        "currency": s.currency,
        "tariff_id": primary.id,
        "time_zone": s.time_zone,
        "total_cost_excl_vat": fmt(priced.total_excl),
        "total_cost_incl_vat": fmt(priced.total_incl),
    }
    for cat in CATEGORIES:
        has_lines = any(ln.category == cat for ln in priced.lines)
        excl, incl = (
            priced.category(cat) if has_lines else (Fraction(0), Fraction(0) if taxes_known else None)
        )
        row[f"{cat}_cost_excl_vat"] = fmt(excl)
        row[f"{cat}_cost_incl_vat"] = fmt(incl)
    charging = priced.measured(Phase.CHARGING)
    parking = priced.measured(Phase.PARKING)
    reservation = priced.measured(Phase.RESERVATION)
    row.update(
        {
            "total_energy_kwh": fmt(kwh(priced.energy_mwh)),
            "billed_energy_kwh": fmt(kwh(priced.energy_mwh + priced.extra(ENERGY))),
            "total_time_h": fmt(hours(charging + parking)),
            "charging_time_h": fmt(hours(charging)),
            "billed_charging_time_h": fmt(hours(charging + priced.extra(TIME))),
            "parking_time_h": fmt(hours(parking)),
            "billed_parking_time_h": fmt(hours(parking + priced.extra(PARKING))),
            "reservation_time_h": fmt(hours(reservation)),
            "billed_reservation_time_h": fmt(hours(reservation + priced.extra(RESERVATION))),
            "min_max_applied": priced.min_max_applied,
            "taxes": tax_list(priced) if primary.version.startswith("2.3") else None,
        }
    )
    return row


def tax_list(priced: PricedSession) -> list[dict[str, str | None]]:
    return [
        {"name": name, "percentage": f"{rate.normalize():f}", "amount": fmt(amt)}
        for name, rate, amt in priced.taxes
    ]


TRACE_COLUMNS = [
    "cdr_id",
    "piece",
    "start",
    "duration_ms",
    "phase",
    "dimension",
    "tariff_id",
    "element",
    "component",
    "quantity",
    "billed_quantity",
    "unit",
    "price",
    "vat",
    "cost_excl_vat",
]


def trace_rows(priced: PricedSession) -> list[dict[str, Any]]:
    """The ``--explain`` trace: per piece and dimension, which element priced what.

    Step-size rounding shows as its own row (dimension ``<DIM>+STEP``) so the pieces keep their
    measured quantities and the added quantity is visible with the component that bills it.
    """
    from pricing.reference import amount  # local: only the trace needs it

    s = priced.session
    rows: list[dict[str, Any]] = []
    for n, (piece, chosen) in enumerate(priced.pieces):
        for dim, choice in chosen.items():
            if dim is Dimension.FLAT:
                qty, unit, shown = 1, "session", "1"
            elif dim is Dimension.ENERGY:
                qty, unit, shown = piece.energy_mwh, "kWh", fmt(kwh(piece.energy_mwh))
            else:
                qty, unit, shown = piece.duration_ms, "h", fmt(hours(piece.duration_ms))
            rows.append(
                {
                    "cdr_id": s.id,
                    "piece": n,
                    "start": piece.start_ms,
                    "duration_ms": piece.duration_ms,
                    "phase": piece.phase.value,
                    "dimension": dim.value,
                    "tariff_id": s.tariffs[choice.tariff_idx].id,
                    "element": choice.element_idx,
                    "component": choice.component_idx,
                    "quantity": shown,
                    "billed_quantity": shown,
                    "unit": unit,
                    "price": f"{choice.component.price}",
                    "vat": None if choice.component.vat is None else f"{choice.component.vat}",
                    "cost_excl_vat": fmt(amount(choice.component, qty))
                    if dim is not Dimension.FLAT
                    else None,
                }
            )
    for r in priced.roundings:
        is_energy = r.category == ENERGY
        conv = kwh if is_energy else hours
        rows.append(
            {
                "cdr_id": s.id,
                "piece": None,
                "start": None,
                "duration_ms": None,
                "phase": None,
                "dimension": f"{r.choice.component.dimension.value}+STEP",
                "tariff_id": s.tariffs[r.choice.tariff_idx].id,
                "element": r.choice.element_idx,
                "component": r.choice.component_idx,
                "quantity": fmt(conv(r.measured)),
                "billed_quantity": fmt(conv(r.measured + r.extra)),
                "unit": "kWh" if is_energy else "h",
                "price": f"{r.choice.component.price}",
                "vat": None if r.choice.component.vat is None else f"{r.choice.component.vat}",
                "cost_excl_vat": fmt(amount(r.choice.component, r.extra)),
            }
        )
    return rows
