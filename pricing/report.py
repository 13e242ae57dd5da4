"""Result rows: the one place where exact amounts are rounded (OCPI: 4 decimals, half-up).

``COLUMNS`` is the contract of ``roamledger price`` (DESIGN.md, "Contracts"). Every money and
quantity value is a decimal string with 4 places, or None when unknown (2.1.1 VAT, for instance).

Both engines report here: :func:`result_row` formats one reference :class:`PricedSession`;
:func:`result_table` / :func:`result_rows` format the kernel's result columns (exact 1e-4
integers) into the same text, column by column, so the kernel itself never formats.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pyarrow as pa

from pricing.compile import Compiled, compile_tariffs
from pricing.fixed_point import I64, half_up_div
from pricing.kernel import CATEGORY_NAMES, price_table
from pricing.model import RESULT_COLUMNS, Dimension, Phase, Session
from pricing.period_table import PeriodTable
from pricing.periods import from_sessions
from pricing.policy import PricingPolicy
from pricing.reference import (
    CATEGORIES,
    ENERGY,
    PARKING,
    RESERVATION,
    TIME,
    PricedSession,
    add_known,
    amount,
    with_taxes,
)
from pricing.units import MS_PER_HOUR, MWH_PER_KWH, fmt

COST_COLUMNS = [f"{cat}_cost_{kind}" for cat in CATEGORIES for kind in ("excl_vat", "incl_vat")]
COLUMNS: list[str] = list(RESULT_COLUMNS)
DECIMAL_COLUMNS = [c for c in COLUMNS if c.endswith(("_vat", "_kwh", "_h"))]
EXTRA_COLUMNS = ["ocpi_version", "source", "line"]
# the money of a row: negated for a credit CDR (PRICING-SEMANTICS §4.2: a credit carries its
# original's data and negated money; quantities stay positive), as the CPO's own totals are
MONEY_COLUMNS = ["total_cost_excl_vat", "total_cost_incl_vat", *COST_COLUMNS]


def negated_text(value: str | None) -> str | None:
    """A money text (``"1.2345"``) negated; zero stays ``"0.0000"`` (no ``-0``)."""
    if value is None or not value.strip("-0."):
        return value
    return value[1:] if value.startswith("-") else f"-{value}"


def credit_row(row: dict[str, Any]) -> dict[str, Any]:
    """A credit CDR's result row: its money columns and tax amounts negated (in place)."""
    for c in MONEY_COLUMNS:
        row[c] = negated_text(row.get(c))
    if row.get("taxes"):
        row["taxes"] = [dict(t, amount=negated_text(t.get("amount"))) for t in row["taxes"]]
    return row


def credit_frame(frame: pl.DataFrame, credit: np.ndarray) -> pl.DataFrame:
    """:func:`credit_row` on the rows of a result frame where ``credit`` (a bool per row)."""
    if not credit.any():
        return frame
    flag = pl.lit(pl.Series("credit", credit, dtype=pl.Boolean))
    money = [pl.when(flag).then(-pl.col(c)).otherwise(pl.col(c)).alias(c) for c in MONEY_COLUMNS]
    amount = pl.element().struct.field("amount")
    minus = (
        pl.when(amount.str.strip_chars("-0.") == "")
        .then(amount)
        .when(amount.str.starts_with("-"))
        .then(amount.str.slice(1))
        .otherwise(pl.lit("-") + amount)
    )
    taxes = pl.col("taxes").list.eval(pl.element().struct.with_fields(minus.alias("amount")))
    return frame.with_columns(*money, pl.when(flag).then(taxes).otherwise(pl.col("taxes")).alias("taxes"))


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
    "start_local",
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
    "vat_amount",
    "cost_incl_vat",
]


def _local(ms: int | None, zone: str) -> str | None:
    """ISO-8601 local time with its UTC offset (milliseconds), beside the epoch-ms ``start``."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(zone)).isoformat(timespec="milliseconds")


def _costs(excl: Fraction | None, incl: Fraction | None) -> dict[str, str | None]:
    return {
        "cost_excl_vat": None if excl is None else fmt(excl),
        "vat_amount": None if excl is None or incl is None else fmt(incl - excl),
        "cost_incl_vat": None if incl is None else fmt(incl),
    }


def trace_rows(priced: PricedSession) -> list[dict[str, Any]]:
    """The ``--explain`` trace: per piece and dimension, which element priced what, and every other
    amount of the total, so the rows add up to it (up to the 4-decimal rounding of each row).

    * a piece's FLAT choice is shown without an amount; the FLAT amounts are rows of their own
      (``piece`` null), as the ``flat_fee`` policy counts them (once per distinct component, …);
    * step-size rounding is its own row (dimension ``<DIM>+STEP``) with the quantity it adds;
    * a min/max clamp is a row (dimension ``MIN_PRICE`` / ``MAX_PRICE``) with what it adds or removes;
    * every amount row has its excl. VAT, VAT and incl. VAT amounts (VAT null when unknown, 2.1.1).
    """

    s = priced.session
    zone = s.time_zone
    rows: list[dict[str, Any]] = []

    def row(**kw: Any) -> dict[str, Any]:
        base: dict[str, Any] = dict.fromkeys(TRACE_COLUMNS)
        base["cdr_id"] = s.id
        base.update(kw)
        return base

    def choice_fields(choice: Any) -> dict[str, Any]:
        c = choice.component
        return {
            "tariff_id": s.tariffs[choice.tariff_idx].id,
            "element": choice.element_idx,
            "component": choice.component_idx,
            "price": f"{c.price}",
            "vat": None if c.vat is None else f"{c.vat}",
        }

    for n, (piece, chosen) in enumerate(priced.pieces):
        for dim, choice in chosen.items():
            if dim is Dimension.FLAT:
                qty, unit, shown = 1, "session", "1"
            elif dim is Dimension.ENERGY:
                qty, unit, shown = piece.energy_mwh, "kWh", fmt(kwh(piece.energy_mwh))
            else:
                qty, unit, shown = piece.duration_ms, "h", fmt(hours(piece.duration_ms))
            tariff = s.tariffs[choice.tariff_idx]
            costs = (
                dict.fromkeys(("cost_excl_vat", "vat_amount", "cost_incl_vat"))
                if dim is Dimension.FLAT
                else _costs(*with_taxes(tariff, choice.component, amount(choice.component, qty)))
            )
            rows.append(
                row(
                    piece=n,
                    start=piece.start_ms,
                    start_local=_local(piece.start_ms, zone),
                    duration_ms=piece.duration_ms,
                    phase=piece.phase.value,
                    dimension=dim.value,
                    quantity=shown,
                    billed_quantity=shown,
                    unit=unit,
                    **choice_fields(choice),
                    **costs,
                )
            )
    for ln in priced.lines:
        if ln.choice.component.dimension is Dimension.FLAT:
            rows.append(
                row(
                    dimension="FLAT",
                    quantity=str(ln.quantity),
                    billed_quantity=str(ln.quantity),
                    unit="session",
                    **choice_fields(ln.choice),
                    **_costs(ln.excl, ln.incl),
                )
            )
    for r in priced.roundings:
        is_energy = r.category == ENERGY
        conv = kwh if is_energy else hours
        tariff = s.tariffs[r.choice.tariff_idx]
        rows.append(
            row(
                dimension=f"{r.choice.component.dimension.value}+STEP",
                quantity=fmt(conv(r.measured)),
                billed_quantity=fmt(conv(r.measured + r.extra)),
                unit="kWh" if is_energy else "h",
                **choice_fields(r.choice),
                **_costs(*with_taxes(tariff, r.choice.component, amount(r.choice.component, r.extra))),
            )
        )
    if priced.min_max_applied:
        excl = add_known([ln.excl for ln in priced.lines])
        incl = add_known([ln.incl for ln in priced.lines])
        rows.append(
            row(
                dimension=f"{priced.min_max_applied.upper()}_PRICE",
                unit="session",
                **_costs(
                    None if priced.total_excl is None or excl is None else priced.total_excl - excl,
                    None if priced.total_incl is None or incl is None else priced.total_incl - incl,
                ),
            )
        )
    return rows


# ---- the kernel's result columns as rows and frames -------------------------------------------


def fmt_expr(name: str, null: str | None = None) -> pl.Expr:
    """4-decimal string of a 1e-4 integer column (the report's ``fmt``); null where ``null``."""
    v = pl.col(name)
    a = v.abs()
    text = (
        pl.when(v < 0).then(pl.lit("-")).otherwise(pl.lit(""))
        + (a // 10_000).cast(pl.String)
        + "."
        + (a % 10_000).cast(pl.String).str.zfill(4)
    )
    if null is not None:
        text = pl.when(pl.col(null)).then(pl.lit(None, pl.String)).otherwise(text)
    return text.alias(name)


def fmt_e4(values: np.ndarray) -> list[str]:
    """4-decimal strings of 1e-4 integers."""
    return pl.DataFrame({"v": np.asarray(values, I64)}).select(fmt_expr("v")).to_series().to_list()


def percentage(vat_e2: int) -> str:
    return f"{Decimal(vat_e2).scaleb(-2).normalize():f}"


def result_e4(res: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The decimal result columns as 1e-4 integers, and per money column its null mask."""
    e4: dict[str, np.ndarray] = {
        "total_cost_excl_vat": res["total_excl_e4"],
        "total_cost_incl_vat": res["total_incl_e4"],
    }
    nulls: dict[str, np.ndarray] = {
        "total_cost_excl_vat": res["total_excl_null"],
        "total_cost_incl_vat": res["total_incl_null"],
    }
    for name in CATEGORY_NAMES:
        for side, label in (("excl", "excl_vat"), ("incl", "incl_vat")):
            e4[f"{name}_cost_{label}"] = res[f"{name}_{side}_e4"]
            nulls[f"{name}_cost_{label}"] = res[f"{name}_{side}_null"]
    charging, parking, reservation = res["charging_ms"], res["parking_ms"], res["reservation_ms"]
    e4["total_energy_kwh"] = half_up_div(res["energy_mwh"], 100)
    e4["billed_energy_kwh"] = half_up_div(res["energy_mwh"] + res["extra_energy_mwh"], 100)
    for name, ms in (
        ("total_time_h", charging + parking),
        ("charging_time_h", charging),
        ("billed_charging_time_h", charging + res["extra_time_ms"]),
        ("parking_time_h", parking),
        ("billed_parking_time_h", parking + res["extra_parking_ms"]),
        ("reservation_time_h", reservation),
        ("billed_reservation_time_h", reservation + res["extra_reservation_ms"]),
    ):
        e4[name] = half_up_div(ms, 360)
    return e4, nulls


def result_frame(res: dict[str, np.ndarray], pt: PeriodTable, ct: Compiled | None = None) -> pl.DataFrame:
    """The result columns of :func:`pricing.report.result_row` as strings (no ``taxes``)."""
    e4, nulls = result_e4(res)
    frame = pl.DataFrame({**e4, **{f"{k}__null": v for k, v in nulls.items()}})
    exprs = [fmt_expr(k, f"{k}__null" if k in nulls else None) for k in e4]
    return frame.select(exprs)


def decimal_e4(name: str, values: np.ndarray, null: np.ndarray | None = None) -> pl.Series:
    """1e-4 integers as an exact polars ``Decimal(38, 4)`` column (Arrow decimal128 words, no
    text and no float on the way); null where ``null``."""

    v = np.asarray(values, I64)
    words = np.empty(2 * len(v), I64)
    words[0::2] = v
    words[1::2] = v >> 63  # sign extension into the high word
    mask = None
    if null is not None and np.any(null):
        mask = pa.array(~np.asarray(null, bool), pa.bool_()).buffers()[1]
    arr = pa.Array.from_buffers(pa.decimal128(38, 4), len(v), [mask, pa.py_buffer(words)])
    return pl.Series(name, pl.from_arrow(arr))


def result_decimals(res: dict[str, np.ndarray]) -> dict[str, pl.Series]:
    """The decimal result columns as ``Decimal(38, 4)`` series (their text is :func:`fmt_expr`'s)."""
    e4, nulls = result_e4(res)
    return {k: decimal_e4(k, v, nulls.get(k)) for k, v in e4.items()}


def result_rows(
    res: dict[str, np.ndarray], pt: PeriodTable, ct: Compiled | None = None
) -> list[dict[str, Any]]:
    """Rows identical to :func:`pricing.report.result_row` from the kernel's columns (the dicts
    of :func:`result_table`, decimals as their text)."""
    if not pt.n_sessions:
        return []
    return result_table(res, pt, ct).with_columns(pl.col(pl.Decimal).cast(pl.String)).to_dicts()


REPORT_ORDER = RESULT_COLUMNS


def meta_series(pt: PeriodTable, name: str) -> pl.Series:
    """A ``pt.meta`` column as a polars String series (lazy columns of :mod:`pricing.periods`
    convert without one Python object per row)."""
    col = pt.meta[name]
    if hasattr(col, "series"):
        return col.series(name)
    return pl.Series(name, list(col), dtype=pl.String)


def tax_lists(res: dict[str, np.ndarray], pt: PeriodTable, ct: Compiled | None = None) -> pl.Series:
    """The ``taxes`` column of :func:`result_rows` as a polars List(Struct) of strings: null for a
    session whose primary tariff is not 2.3.0, else its tax lines in the kernel's order."""

    n_s = pt.n_sessions
    v23 = (ct.v23 if ct is not None else np.array([t.version.startswith("2.3") for t in pt.tariffs], bool))[
        pt.s_primary
    ]
    sess = res["tax_sess"]
    offsets = np.zeros(n_s + 1, np.int64)
    np.cumsum(np.bincount(sess, minlength=n_s), out=offsets[1:])
    rates = res["tax_rate_e2"]
    distinct = np.unique(rates)
    pct = pa.array([percentage(int(r)) for r in distinct.tolist()], pa.string()).take(
        pa.array(np.searchsorted(distinct, rates), pa.int64())
    )
    values = pa.StructArray.from_arrays(
        [
            pa.array(np.full(len(sess), "VAT", object), pa.string()),
            pct,
            pa.array(fmt_e4(res["tax_amount_e4"]), pa.string()),
        ],
        names=["name", "percentage", "amount"],
    )
    lists = pa.LargeListArray.from_arrays(
        pa.array(offsets, pa.int64()), values, mask=pa.array(~np.asarray(v23, bool), pa.bool_())
    )
    return pl.Series("taxes", pl.from_arrow(lists))


def result_table(res: dict[str, np.ndarray], pt: PeriodTable, ct: Compiled | None = None) -> pl.DataFrame:
    """The rows of :func:`result_rows` as one polars DataFrame, built column by column (no Python
    object per row): the ``RESULT_COLUMNS`` in order; decimal columns exact ``Decimal(38, 4)``
    (cast to String they are :func:`result_rows`' text), ``taxes`` List(Struct) of strings (as
    :func:`tax_lists`), the others String."""
    cols: dict[str, pl.Series] = {}
    for name in ("cdr_id", "currency", "tariff_id", "time_zone"):
        cols[name] = meta_series(pt, name) if pt.n_sessions else pl.Series(name, [], dtype=pl.String)
    cols.update(result_decimals(res))
    cols["min_max_applied"] = pl.Series("min_max_applied", [None, "min", "max"], dtype=pl.String).gather(
        np.asarray(res["min_max"], I64)
    )
    cols["taxes"] = tax_lists(res, pt, ct)
    names = [c for c in REPORT_ORDER if c in cols]
    return pl.DataFrame([cols[n].alias(n) for n in names])


def straddling_lists(res: dict[str, np.ndarray], n_s: int) -> list[tuple[int, ...]]:
    """Per session, the sorted source indices of its straddling periods (``flag`` policy)."""
    out: list[list[int]] = [[] for _ in range(n_s)]
    if "straddle_sess" in res:
        for s, src in zip(res["straddle_sess"].tolist(), res["straddle_src"].tolist(), strict=True):
            out[s].append(src)
    return [tuple(x) for x in out]


def price_sessions_detailed(
    sessions: list[Session] | tuple[Session, ...], policy: PricingPolicy | None = None, workers: int = 1
) -> tuple[list[dict[str, Any]], list[tuple[int, ...]]]:
    """Rows like :func:`pricing.report.result_row` and, per session, the straddling periods."""
    pt = from_sessions(sessions)
    ct = compile_tariffs(pt.tariffs, pt.zones, pt.group_ranges())
    res = price_table(pt, policy, ct, workers)
    return result_rows(res, pt, ct), straddling_lists(res, pt.n_sessions)


def price_sessions(
    sessions: list[Session] | tuple[Session, ...], policy: PricingPolicy | None = None, workers: int = 1
) -> list[dict[str, Any]]:
    """Canonical sessions → rows like :func:`pricing.report.result_row`, in input order."""
    return price_sessions_detailed(sessions, policy, workers)[0]
