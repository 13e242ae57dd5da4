"""The flattened CDR layout: one row per CDR charging period, all quantities as exact integers.

This is the fastest input of ``roamledger price`` (Parquet, ~0.1 s per 10^6 CDRs to read) and the
columnar form the vectorized kernel works on. Rows are grouped by CDR (all periods of one CDR are
consecutive, in ``period_idx`` order); CDR-level columns repeat on each of its rows (Parquet
dictionary/RLE encoding makes that nearly free).

Units follow :mod:`pricing.units`: instants are UTC epoch milliseconds, durations milliseconds,
energy milli-watt-hours, power watts, current milli-amperes. A null volume means the CDR did not
report that dimension in that period (which is not the same as 0). Money reported by the CPO is
kept as decimal strings-free ``decimal128(38, 6)`` so reconciliation stays exact.

Column                     type              meaning
-------------------------  ----------------  ---------------------------------------------------
cdr_id                     string            CDR.id
ocpi_version               string            "2.1.1" | "2.2.1" | "2.3.0"
country_code               string?           CPO country (null for 2.1.1)
party_id                   string?           CPO party
emsp_country_code          string?           cdr_token.country_code
emsp_party_id              string?           cdr_token.party_id
cdr_start_ms               int64             CDR.start_date_time
cdr_end_ms                 int64             CDR.end_date_time (2.1.1: stop_date_time)
currency                   string            CDR.currency
time_zone                  string?           IANA zone if known (else resolved from the country)
location_country           string?           cdr_location.country (alpha-3 or alpha-2)
period_idx                 int32             0-based index of the charging period in the CDR
period_start_ms            int64             ChargingPeriod.start_date_time
tariff_id                  string?           ChargingPeriod.tariff_id (or the CDR's tariff)
energy_mwh                 int64?            ENERGY volume
time_ms                    int64?            TIME volume
parking_ms                 int64?            PARKING_TIME volume
reservation_ms             int64?            RESERVATION_TIME volume
min_power_w, max_power_w   int64?            MIN_POWER / MAX_POWER
min_current_ma, max_current_ma int64?        MIN_CURRENT / MAX_CURRENT
reported_total_excl        decimal128(38,6)? CDR.total_cost excl. VAT / before taxes
reported_total_incl        decimal128(38,6)? CDR.total_cost incl. VAT / after taxes

Optional CDR-level columns (settlement reads them when present; pricing ignores them):

location_id                string?           CDR location id (statement lines)
contract_id                string?           cdr_token.contract_id / 2.1.1 auth_id (maps 2.1.1 eMSPs)
credit                     bool?             credit CDR (its money is negative)
credit_reference_id        string?           the credited CDR's id

Money in this layout has at most 4 decimals (OCPI amounts); settlement rejects a record whose
reported total needs more (``UNSUPPORTED_PRECISION``).

Tariffs are not in this file: they are passed separately (``--tariffs``) and referenced by
``tariff_id`` (and the CPO's ``country_code``/``party_id`` where present).
"""

from __future__ import annotations

FLAT_COLUMNS: dict[str, str] = {
    "cdr_id": "string",
    "ocpi_version": "string",
    "country_code": "string",
    "party_id": "string",
    "emsp_country_code": "string",
    "emsp_party_id": "string",
    "cdr_start_ms": "int64",
    "cdr_end_ms": "int64",
    "currency": "string",
    "time_zone": "string",
    "location_country": "string",
    "period_idx": "int32",
    "period_start_ms": "int64",
    "tariff_id": "string",
    "energy_mwh": "int64",
    "time_ms": "int64",
    "parking_ms": "int64",
    "reservation_ms": "int64",
    "min_power_w": "int64",
    "max_power_w": "int64",
    "min_current_ma": "int64",
    "max_current_ma": "int64",
    "reported_total_excl": "decimal128(38,6)",
    "reported_total_incl": "decimal128(38,6)",
}
# optional (settlement): absent columns read as null
FLAT_OPTIONAL: dict[str, str] = {
    "location_id": "string",
    "contract_id": "string",
    "credit": "bool",
    "credit_reference_id": "string",
}


def arrow_schema(optional: bool = False):  # -> pyarrow.Schema (pyarrow imported lazily)
    """The layout's schema; with ``optional`` also the optional settlement columns."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "int32": pa.int32(),
        "bool": pa.bool_(),
        "decimal128(38,6)": pa.decimal128(38, 6),
    }
    cols = {**FLAT_COLUMNS, **(FLAT_OPTIONAL if optional else {})}
    return pa.schema([pa.field(name, types[t]) for name, t in cols.items()])


def is_flat(column_names: list[str]) -> bool:
    """A Parquet file is in the flat layout when it has the period columns."""
    return {"cdr_id", "period_start_ms", "period_idx", "cdr_start_ms"} <= set(column_names)


def iter_flat_tables(path: str, max_rows: int = 1_000_000):  # -> Iterator[pyarrow.Table]
    """A flat Parquet file in pieces of about ``max_rows`` rows, never splitting a CDR.

    Rows of one CDR are consecutive (the layout's rule), so a piece ends at the last CDR boundary
    inside it and the remainder is carried into the next piece. Memory stays bounded by the piece
    size whatever the file size.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path, pre_buffer=False)  # read-ahead would grow with the file
    carry: pa.Table | None = None
    for batch in pf.iter_batches(batch_size=max_rows):
        table = pa.Table.from_batches([batch])
        if carry is not None and carry.num_rows:
            table = pa.concat_tables([carry, table])
        ids = table.column("cdr_id")
        n = table.num_rows
        last_id = ids[n - 1]
        # first row of the trailing run of the last cdr_id
        other = np.flatnonzero(~pc.equal(ids, last_id).combine_chunks().to_numpy(zero_copy_only=False))
        cut = int(other[-1]) + 1 if len(other) else 0
        if cut == 0:  # one CDR longer than a piece: keep collecting
            carry = table
            continue
        yield table.slice(0, cut)
        carry = table.slice(cut)
    if carry is not None and carry.num_rows:
        yield carry
