"""A CDR as store rows: its ``cdrs`` row (the raw JSON, its digest, the store's key, and the
CDR-level columns of the flat layout) and one ``cdr_periods`` row per charging period.

The one home of "CDR → store rows", for both ways a CDR arrives: a parsed
:class:`~pricing.model.Cdr` (OCPI pushes, and the records the columnar reader leaves to the
parser: :func:`model_rows`) and a flat-layout table of the columnar NDJSON reader
(:func:`table_rows`, no Python object per value). Both give the columns named in :data:`CDR_FLAT`
and :data:`PERIOD_FLAT`, which are also what the settlement reader selects (``settlement.store.read``)
— a new flat column is one entry in these maps, one column in the schema and a migration.

A CDR the kernel cannot take from columns alone is stored with ``kernel`` false and no period rows
(its raw JSON is settled record by record): embedded tariffs, no charging period, a reported
amount or quantity that is not a whole number of micro-units within 64 bits. The ``reported_*``
columns (per-dimension costs, total energy and time, 2.3.0 tax lines) give the engine the CDR's
own numbers (:func:`pricing.flat.reported_detail`). An OCPI 2.1.1 CDR whose connectors name its
tariff keeps those ids (``connector_tariff_ids``): which one prices it depends on the tariffs held
when settling, so the store reader resolves them then.
"""

from __future__ import annotations

import hashlib
import json
import time
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pricing.flat import DIMENSION_COLUMNS
from pricing.flat_columns import decimal_e6
from pricing.model import Cdr, Money

# flat-layout column → cdrs column (CDR level), beyond cdr_id / ocpi_version / start / end / currency
CDR_FLAT: dict[str, str] = {
    "emsp_country_code": "emsp_country_code",
    "emsp_party_id": "emsp_party_id",
    "time_zone": "time_zone",
    "location_country": "location_country",
    "location_id": "location_id",
    "contract_id": "contract_id",
    "credit_reference_id": "credit_reference_id",
}
CONNECTORS = "connector_tariff_ids"  # stored column (JSON list), resolved into tariff_id when read
MONEY_FLAT: dict[str, str] = {  # decimal128(38, 6) flat column → BIGINT micro-units
    "reported_total_excl": "reported_total_excl_e6",
    "reported_total_incl": "reported_total_incl_e6",
    **{flat: f"{flat}_e6" for flat in DIMENSION_COLUMNS.values()},  # reported cost per dimension, excl.
    "reported_total_energy": "reported_total_energy_e6",  # kWh
    "reported_total_time": "reported_total_time_e6",  # hours
}
TAXES = "reported_taxes"  # the 2.3.0 tax lines of total_cost: JSON [[name, percentage e6, amount e6]]
PERIOD_FLAT: tuple[str, ...] = (
    "period_idx",
    "period_start_ms",
    "tariff_id",
    "energy_mwh",
    "time_ms",
    "parking_ms",
    "reservation_ms",
    "min_power_w",
    "max_power_w",
    "min_current_ma",
    "max_current_ma",
)
_S, _I, _B = pa.string(), pa.int64(), pa.bool_()
# the staged cdrs row: ``seq`` orders and joins the staging tables (the CDR's line in its source)
CDR_SCHEMA = pa.schema(
    [
        ("seq", _I),
        ("country_code", _S),
        ("party_id", _S),
        ("cdr_id", _S),
        ("ocpi_version", _S),
        ("start_ms", _I),
        ("end_ms", _I),
        ("currency", _S),
        ("credit", _B),
        ("raw", _S),
        ("raw_sha256", _S),
        ("received_ms", _I),
        ("kernel", _B),
        *((c, _S) for c in CDR_FLAT.values()),
        *((c, _I) for c in MONEY_FLAT.values()),
        (TAXES, _S),
        (CONNECTORS, _S),
    ]
)
PERIOD_SCHEMA = pa.schema(
    [
        ("seq", _I),
        *((c, pa.int32() if c == "period_idx" else _S if c == "tariff_id" else _I) for c in PERIOD_FLAT),
    ]
)
E6 = Decimal(1_000_000)
INT64 = 1 << 63


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def e6(amount: Decimal | None) -> int | None:
    """An amount as exact micro-units (ValueError when it is not a whole number of them)."""
    if amount is None:
        return None
    v = amount * E6
    if v != v.to_integral_value() or not -INT64 <= v < INT64:
        raise ValueError(f"{amount} is not a whole number of micro-units")
    return int(v)


def money_e6(money: Money | None) -> tuple[int | None, int | None]:
    if money is None:
        return None, None
    return e6(money.excl), e6(money.incl)


def taxes_text(taxes: Any) -> str | None:
    """Tax lines ((name, percentage, amount), Decimals or None) as the stored JSON (micro-units);
    None for none. ValueError when an amount is not a whole number of micro-units."""
    if not taxes:
        return None
    return json.dumps([[name, e6(pct), e6(amount)] for name, pct, amount in taxes], separators=(",", ":"))


def reported_e6(cdr: Cdr) -> dict[str, int | None]:
    """The ``reported_*`` money and quantity columns of a parsed CDR (ValueError as :func:`e6`)."""
    out = dict(
        zip(("reported_total_excl_e6", "reported_total_incl_e6"), money_e6(cdr.total_cost), strict=True)
    )
    for field_name, flat in DIMENSION_COLUMNS.items():
        money = getattr(cdr, field_name)
        out[MONEY_FLAT[flat]] = None if money is None else e6(money.excl)
    out["reported_total_energy_e6"] = e6(cdr.total_energy)
    out["reported_total_time_e6"] = e6(cdr.total_time)
    return out


def model_rows(
    cdr: Cdr, key: tuple[str, str], raw: str, seq: int = 0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The staged ``cdrs`` row and ``cdr_periods`` rows of a parsed CDR stored under ``key`` (CPO
    country code, party id)."""
    row: dict[str, Any] = {
        "seq": seq,
        "country_code": key[0],
        "party_id": key[1],
        "cdr_id": cdr.id,
        "ocpi_version": cdr.version,
        "start_ms": cdr.start_ms,
        "end_ms": cdr.end_ms,
        "currency": cdr.currency,
        "credit": cdr.credit,
        "raw": raw,
        "raw_sha256": sha256(raw),
        "received_ms": now_ms(),
        "kernel": False,
    }
    row.update({col: None for col in (*CDR_FLAT.values(), *MONEY_FLAT.values(), TAXES, CONNECTORS)})
    if cdr.tariffs or not cdr.periods:
        return row, []
    try:
        reported = reported_e6(cdr)
        taxes = taxes_text(cdr.total_cost.taxes if cdr.total_cost is not None else ())
    except ValueError:
        return row, []
    fields = {
        "emsp_country_code": cdr.emsp_country_code,
        "emsp_party_id": cdr.emsp_party_id,
        "time_zone": cdr.location_time_zone,
        "location_country": cdr.location_country,
        "location_id": cdr.location_id,
        "contract_id": cdr.contract_id,
        "credit_reference_id": cdr.credit_reference_id,
    }
    row.update({CDR_FLAT[k]: v for k, v in fields.items()})
    row.update(reported)
    row.update({TAXES: taxes, "kernel": True})
    if cdr.connector_tariff_ids:
        row[CONNECTORS] = json.dumps(list(cdr.connector_tariff_ids))
    periods = [
        {
            "seq": seq,
            "period_idx": i,
            "period_start_ms": p.start_ms,
            "tariff_id": p.tariff_id,
            "energy_mwh": p.energy_mwh,
            "time_ms": p.time_ms,
            "parking_ms": p.parking_ms,
            "reservation_ms": p.reservation_ms,
            "min_power_w": p.min_power_w,
            "max_power_w": p.max_power_w,
            "min_current_ma": p.min_current_ma,
            "max_current_ma": p.max_current_ma,
        }
        for i, p in enumerate(cdr.periods)
    ]
    return row, periods


def period_row(staged: dict[str, Any], cdr_pk: int) -> dict[str, Any]:
    """A staged period row as a ``cdr_periods`` row of the stored CDR ``cdr_pk``."""
    return {"cdr_pk": cdr_pk, **{k: staged[k] for k in PERIOD_FLAT}}


def first_rows(line: np.ndarray) -> np.ndarray:
    """The first row of each CDR of a table of the columnar reader (one CDR per ``line``)."""
    n = len(line)
    if not n:
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.r_[True, line[1:] != line[:-1]])


def table_rows(flat: pa.Table, first: np.ndarray) -> tuple[dict[str, pa.Array], pa.Table]:
    """The flat-layout columns of a columnar reader's table (``line`` included), per CDR
    (``first``: the first row of each) and per period (a table of :data:`PERIOD_SCHEMA`, ``seq`` =
    line); ``kernel``: false for a CDR with an amount beyond 64-bit micro-units (held raw). The
    caller adds the store's key, raw JSON and digest."""
    take = pa.array(first, _I)
    per_cdr = {
        name: flat.column(name).take(take)
        for name in ("line", "cdr_id", "ocpi_version", "country_code", "party_id", "currency", "credit")
    }
    per_cdr["start_ms"] = flat.column("cdr_start_ms").take(take)
    per_cdr["end_ms"] = flat.column("cdr_end_ms").take(take)
    for name, col in CDR_FLAT.items():
        per_cdr[col] = flat.column(name).take(take)
    fits = np.ones(len(first), bool)
    for name, col in MONEY_FLAT.items():
        given = flat.column(name).take(take)
        v, ok = decimal_e6(given)
        fits &= ok | ~given.is_valid().to_numpy(zero_copy_only=False)
        per_cdr[col] = pa.array(v, _I, mask=~ok)
    per_cdr[TAXES] = pa.array([taxes_json(t) for t in flat.column(TAXES).take(take).to_pylist()], _S)
    per_cdr["kernel"] = pa.array(fits, _B)
    periods = {"seq": flat.column("line")}
    periods.update({name: flat.column(name) for name in PERIOD_FLAT})
    ptable = pa.table(periods).cast(PERIOD_SCHEMA)
    return per_cdr, ptable


def taxes_json(lines: list[dict[str, Any]] | None) -> str | None:
    """A ``reported_taxes`` value of the flat layout as the stored JSON."""
    if not lines:
        return None
    return taxes_text([(t["name"], t["percentage"], t["amount"]) for t in lines])


def credit_flags(column: pa.Array) -> pa.Array:
    """The stored ``credit``: an absent flag is false."""
    return pc.fill_null(column, False)
