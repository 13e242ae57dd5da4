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
reported_fixed_cost_excl   decimal128(38,6)? CDR.total_fixed_cost excl. VAT / before taxes
reported_energy_cost_excl  decimal128(38,6)? CDR.total_energy_cost excl. VAT / before taxes
reported_time_cost_excl    decimal128(38,6)? CDR.total_time_cost excl. VAT / before taxes
reported_parking_cost_excl decimal128(38,6)? CDR.total_parking_cost excl. VAT / before taxes
reported_reservation_cost_excl decimal128(38,6)? CDR.total_reservation_cost excl. VAT / ...
reported_total_energy      decimal128(38,6)? CDR.total_energy (kWh, exact: 1e-6 kWh = 1 mWh)
reported_total_time        decimal128(38,6)? CDR.total_time (hours, exact)
reported_taxes             list<struct>?     2.3.0 total_cost.taxes: name string, percentage
                                             decimal128(38,6)?, amount decimal128(38,6)

The ``reported_*`` columns are what reconciliation checks beyond the total (settlement's
dimension-level findings, QUANTITY_MISMATCH, TOTALS_INCONSISTENT, the 2.3.0 tax lines of a
statement on the reported basis); a null is a value the CDR did not report. Their incl. VAT
parts are not kept: nothing reads them.

Money in this layout has at most 4 decimals (OCPI amounts); settlement rejects a record whose
reported total needs more (``UNSUPPORTED_PRECISION``).

Tariffs are not in this file: they are passed separately (``--tariffs``) and referenced by
``tariff_id`` (and the CPO's ``country_code``/``party_id`` where present).

This module is also the one reader of the layout: :func:`split_flat` cuts a table into records
with the parser's rejects, :func:`flat_cdr` / :func:`piece_cdrs` build canonical CDRs of records
that need per-record work, and :func:`iter_pieces` / :func:`split_piece` give settlement the same
pieces, rejects (incl. money precision) and line numbers (``line`` = 1-based row of the record's
first period) that pricing sees. :func:`pricing.periods.from_flat` turns split records into the
kernel's period table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pricing import errors as E
from pricing.errors import InputError
from pricing.flat_columns import codes, decimal_e6, ints, row_strings
from pricing.model import Cdr, CdrPeriod, Money

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
FLAT_SETTLEMENT: dict[str, str] = {
    "location_id": "string",
    "contract_id": "string",
    "credit": "bool",
    "credit_reference_id": "string",
}
FLAT_REPORTED: dict[str, str] = {  # optional: what the CPO reported beyond the total
    **{
        f"reported_{d}_cost_excl": "decimal128(38,6)"
        for d in ("fixed", "energy", "time", "parking", "reservation")
    },
    "reported_total_energy": "decimal128(38,6)",
    "reported_total_time": "decimal128(38,6)",
    "reported_taxes": "taxes",
}
FLAT_OPTIONAL: dict[str, str] = {**FLAT_SETTLEMENT, **FLAT_REPORTED}
DIMENSION_COLUMNS = {  # Cdr field → flat column (the reported costs per dimension, excl. VAT)
    f"total_{d}_cost": f"reported_{d}_cost_excl"
    for d in ("fixed", "energy", "time", "parking", "reservation")
}
TAXES_TYPE = pa.list_(
    pa.struct([("name", pa.string()), ("percentage", pa.decimal128(38, 6)), ("amount", pa.decimal128(38, 6))])
)


def arrow_schema(optional: bool = False, reported: bool = False) -> pa.Schema:
    """The layout's schema; with ``optional`` also the optional settlement columns, with
    ``reported`` also the optional ``reported_*`` columns."""

    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "int32": pa.int32(),
        "bool": pa.bool_(),
        "decimal128(38,6)": pa.decimal128(38, 6),
        "taxes": TAXES_TYPE,
    }
    cols = {**FLAT_COLUMNS, **(FLAT_SETTLEMENT if optional else {}), **(FLAT_REPORTED if reported else {})}
    return pa.schema([pa.field(name, types[t]) for name, t in cols.items()])


def is_flat(column_names: list[str]) -> bool:
    """A Parquet file is in the flat layout when it has the period columns."""
    return {"cdr_id", "period_start_ms", "period_idx", "cdr_start_ms"} <= set(column_names)


@contextmanager
def parquet_read(path: str | Path) -> Iterator[None]:
    """Arrow's errors reading a Parquet file (cut short, damaged) as an input error naming it
    (a truncated file was an internal error, exit 70; a damaged one named no file)."""
    try:
        yield
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:  # the system's (no access…): as it is
            raise
        raise InputError(
            f"{path}: not a readable Parquet file ({exc}). "
            "Hint: it may be cut short or damaged; write it again"
        ) from exc


def iter_flat_tables(path: str, max_rows: int = 1_000_000) -> Iterator[pa.Table]:
    """:func:`_flat_tables`, Arrow's errors named (:func:`parquet_read`)."""
    with parquet_read(path):
        yield from _flat_tables(path, max_rows)


def _flat_tables(path: str, max_rows: int) -> Iterator[pa.Table]:
    """A flat Parquet file in pieces of about ``max_rows`` rows, never splitting a CDR.

    Rows of one CDR are consecutive (the layout's rule), so a piece ends at the last CDR boundary
    inside it and the remainder is carried into the next piece. Memory stays bounded by the piece
    size whatever the file size.
    """

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


MEASURES = ("min_power_w", "max_power_w", "min_current_ma", "max_current_ma")


def read_flat(path: str) -> Any:
    """A flat-layout Parquet file as a pyarrow Table."""

    with parquet_read(path):
        return pq.read_table(path)


@dataclass
class FlatRecords:
    """A flat table split into records (CDRs), with the first problem of each record, if any."""

    n_rows: int
    rec: np.ndarray  # per row: record index
    first_row: np.ndarray  # per record: first row (0-based)
    cols: dict[str, Any]  # decoded columns (numpy)
    rejects: dict[int, tuple[str, str, str]]  # record → (code, message, path)
    credit: np.ndarray | None = None  # per record: a credit CDR (its money negated in the rows)

    @property
    def n_records(self) -> int:
        return len(self.first_row)


FLAT_VOLUMES = ("energy_mwh", "time_ms", "parking_ms", "reservation_ms")


FLAT_STRINGS = (
    "cdr_id",
    "ocpi_version",
    "country_code",
    "party_id",
    "currency",
    "time_zone",
    "location_country",
    "tariff_id",
)


FLAT_INTS = ("cdr_start_ms", "cdr_end_ms", "period_start_ms", *FLAT_VOLUMES, *MEASURES)


def split_flat(table: Any) -> FlatRecords:
    """Decode a flat table, cut it into records (runs of one ``cdr_id``, and of one ``line`` where
    the table has that column, as the columnar OCPI reader's does) and find, per record, the
    first problem in the parser's order: a missing field, end before start, a negative volume,
    periods out of order, a period after the end."""
    cols, same = decode_flat_columns(table)
    new = ~same
    rec = np.cumsum(new) - 1
    first_row = np.flatnonzero(new)
    rejects = record_problems(cols, rec, first_row, new)
    credit = None
    if "credit" in table.column_names:
        flags = table.column("credit").to_numpy(zero_copy_only=False)
        credit = (
            np.asarray([bool(v) for v in flags[first_row]], bool) if len(first_row) else np.zeros(0, bool)
        )
    return FlatRecords(table.num_rows, rec, first_row, cols, rejects, credit)


def decode_flat_columns(table: Any) -> tuple[dict[str, Any], np.ndarray]:
    """The string columns as dictionary codes (``cdr_id`` as row strings), the integer columns as
    (values, present); and per row whether its ``cdr_id`` equals the previous row's."""
    cols: dict[str, Any] = {}
    for name in FLAT_STRINGS:
        if name == "cdr_id":
            code, values, same = row_strings(table.column(name))
            cols[name] = (code, values)
        else:
            cols[name] = codes(table.column(name))
    tcode, tvalues = cols["tariff_id"]
    if "" in tvalues:  # an empty tariff_id names no tariff (build_session: ``if i``)
        cols["tariff_id"] = (np.where(tcode == tvalues.index(""), -1, tcode), tvalues)
    for name in FLAT_INTS:
        cols[name] = ints(table.column(name))
    if "line" in table.column_names:  # a source line per record: the same id twice is two records
        line = table.column("line").to_numpy()
        same = same & np.r_[False, line[1:] == line[:-1]]
    return cols, same


def record_problems(
    cols: dict[str, Any], rec: np.ndarray, first_row: np.ndarray, new: np.ndarray
) -> dict[int, tuple[str, str, str]]:
    """Per record, its first problem in the parser's order (record → (code, message, path))."""
    n = len(rec)
    rejects: dict[int, tuple[str, str, str]] = {}
    rejected = np.zeros(len(first_row), bool)

    def flag(bad_rows: np.ndarray, code: str, message: Any, path: Any) -> None:
        """The first bad row of each record not rejected yet: only those reach Python."""
        rows = np.flatnonzero(bad_rows)
        if not len(rows):
            return
        r_rec = rec[rows]
        first = np.empty(len(rows), bool)
        first[0] = True
        np.not_equal(r_rec[1:], r_rec[:-1], out=first[1:])  # rows ascend, so records do
        rows = rows[first & ~rejected[r_rec]]
        rejected[rec[rows]] = True
        for r in rows.tolist():
            rejects[int(rec[r])] = (code, message(r), path(r))

    def pos(r: int) -> int:
        return r - int(first_row[rec[r]])

    for name, what in (
        ("cdr_id", "id"),
        ("currency", "currency"),
        ("cdr_start_ms", "start_date_time"),
        ("cdr_end_ms", "end_date_time"),
        ("period_start_ms", "charging_periods[].start_date_time"),
    ):
        present = cols[name][0] >= 0 if name in FLAT_STRINGS else cols[name][1]
        flag(
            ~present,
            E.MISSING_FIELD,
            lambda r, name=name, what=what: f"{name}: missing ({what}). Hint: every row of a CDR needs it",
            lambda r, what=what: f"$.{what}",
        )
    codes, values = cols["cdr_id"]
    blank = values.blank()  # per row (codes are row numbers, -1 for null)
    if blank.any():
        flag(
            (codes >= 0) & blank[np.maximum(codes, 0)],
            E.INVALID_VALUE,
            lambda r: (
                "cdr_id: empty. Hint: every CDR needs a non-empty id (it is settled and credited by it)"
            ),
            lambda r: "$.id",
        )
    start, end = cols["cdr_start_ms"][0], cols["cdr_end_ms"][0]
    flag(
        end < start,
        E.INVALID_VALUE,
        lambda r: (
            "cdr_end_ms is before cdr_start_ms. Hint: end_date_time must not be earlier than start_date_time"
        ),
        lambda r: "$.end_date_time",
    )
    for name in FLAT_VOLUMES:
        v, has = cols[name]
        flag(
            has & (v < 0),
            E.NEGATIVE_VOLUME,
            lambda r, name=name, v=v: (
                f"charging_periods[{pos(r)}].{name}: {int(v[r])} is negative. "
                "Hint: volumes are non-negative quantities"
            ),
            lambda r: f"$.charging_periods[{pos(r)}]",
        )
    ps = cols["period_start_ms"][0]
    back = np.zeros(n, bool)
    back[1:] = (~new[1:]) & (ps[1:] < ps[:-1])
    flag(
        back,
        E.PERIODS_OUT_OF_ORDER,
        lambda r: (
            f"charging_periods[{pos(r)}].start_date_time is before the start of charging_periods"
            f"[{pos(r) - 1}]. Hint: charging periods must be sent in time order"
        ),
        lambda r: f"$.charging_periods[{pos(r)}].start_date_time",
    )
    flag(
        ps > end,
        E.PERIOD_AFTER_END,
        lambda r: (
            f"charging_periods[{pos(r)}].start_date_time is after the end of the session. "
            "Hint: a charging period cannot start after end_date_time; check both timestamps"
        ),
        lambda r: f"$.charging_periods[{pos(r)}].start_date_time",
    )
    return rejects


def flat_value(cols: dict[str, Any], name: str, row: int) -> Any:
    c = cols[name]
    if name in FLAT_STRINGS:
        code, values = c
        return None if code[row] < 0 else values[code[row]]
    v, has = c
    return int(v[row]) if has[row] else None


def flat_cdr(fr: FlatRecords, k: int) -> Any:
    """Record ``k`` as a canonical :class:`~pricing.model.Cdr` (for the reference engine)."""

    cols = fr.cols
    lo = int(fr.first_row[k])
    hi = int(fr.first_row[k + 1]) if k + 1 < fr.n_records else fr.n_rows
    periods = tuple(
        CdrPeriod(
            start_ms=flat_value(cols, "period_start_ms", r),
            energy_mwh=flat_value(cols, "energy_mwh", r),
            time_ms=flat_value(cols, "time_ms", r),
            parking_ms=flat_value(cols, "parking_ms", r),
            reservation_ms=flat_value(cols, "reservation_ms", r),
            min_power_w=flat_value(cols, "min_power_w", r),
            max_power_w=flat_value(cols, "max_power_w", r),
            min_current_ma=flat_value(cols, "min_current_ma", r),
            max_current_ma=flat_value(cols, "max_current_ma", r),
            tariff_id=flat_value(cols, "tariff_id", r),
        )
        for r in range(lo, hi)
    )
    return Cdr(
        id=flat_value(cols, "cdr_id", lo),
        version=flat_value(cols, "ocpi_version", lo) or "",
        start_ms=flat_value(cols, "cdr_start_ms", lo),
        end_ms=flat_value(cols, "cdr_end_ms", lo),
        currency=flat_value(cols, "currency", lo),
        periods=periods,
        country_code=flat_value(cols, "country_code", lo),
        party_id=flat_value(cols, "party_id", lo),
        location_country=flat_value(cols, "location_country", lo),
        location_time_zone=flat_value(cols, "time_zone", lo),
    )


E6_PER_E4 = 100


SETTLEMENT_COLUMNS = ("location_id", "contract_id", "credit", "credit_reference_id")


@dataclass
class FlatPiece:
    """A run of whole CDRs of one flat file, and where it starts in the file."""

    source: str
    row0: int  # rows of the file before this piece
    table: Any  # pyarrow.Table
    base: int = 0  # rows of all inputs before this piece (input order across files)


def is_flat_file(path: str | Path) -> bool:
    """A Parquet file (by suffix) whose columns are the flat layout's."""
    path = Path(path)
    if path.suffix.lower() != ".parquet" or not path.is_file():
        return False
    with parquet_read(path):
        return is_flat(pq.read_schema(path).names)


def iter_pieces(paths: Sequence[str | Path], max_rows: int = 500_000) -> Iterator[FlatPiece]:
    base = 0
    for path in paths:
        row0 = 0
        for table in iter_flat_tables(str(path), max_rows):
            yield FlatPiece(str(path), row0, table, base)
            row0 += table.num_rows
            base += table.num_rows


def optional_column(table: Any, name: str) -> Any:
    """A settlement column, or an all-null one when the file does not have it."""

    if name in table.column_names:
        return table.column(name)
    return pa.nulls(table.num_rows, OPTIONAL_TYPES[name])


OPTIONAL_TYPES = {f.name: f.type for f in arrow_schema(True, True) if f.name in FLAT_OPTIONAL}


def plain_decimal(v: int, places: int = 6) -> Decimal:
    """A value in units of ``10**-places`` as a Decimal without trailing zeros (``12.5``, ``3``)."""
    d = Decimal(int(v)).scaleb(-places)
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d.normalize()


def reported_detail(table: Any, lo: np.ndarray) -> list[dict[str, Any]]:
    """Per record starting at rows ``lo``: the Cdr fields of the ``reported_*`` columns (dimension
    costs as Money excl. VAT, total energy and time, and the 2.3.0 tax lines on ``total_cost``)."""
    take = pa.array(lo, pa.int64())
    out: list[dict[str, Any]] = [{} for _ in range(len(lo))]

    def e6(name: str) -> list[Decimal | None]:
        v, ok = decimal_e6(optional_column(table, name).take(take))
        return [plain_decimal(int(x)) if k else None for x, k in zip(v.tolist(), ok.tolist(), strict=True)]

    for field_name, col in DIMENSION_COLUMNS.items():
        for j, d in enumerate(e6(col)):
            if d is not None:
                out[j][field_name] = Money(d, None)
    for field_name, col in (("total_energy", "reported_total_energy"), ("total_time", "reported_total_time")):
        for j, d in enumerate(e6(col)):
            if d is not None:
                out[j][field_name] = d
    for j, taxes in enumerate(optional_column(table, "reported_taxes").take(take).to_pylist()):
        if taxes:
            out[j]["taxes"] = tuple(
                (t["name"], None if t["percentage"] is None else t["percentage"].normalize(), t["amount"])
                for t in taxes
            )
    return out


def precision_rejects(table: Any, first_row: np.ndarray) -> dict[int, tuple[str, str, str]]:
    """Records whose reported totals need more than 4 decimals (record → (code, message, path))."""
    out: dict[int, tuple[str, str, str]] = {}
    for name, path in (
        ("reported_total_excl", "$.total_cost.excl_vat"),
        ("reported_total_incl", "$.total_cost.incl_vat"),
    ):
        v, ok = decimal_e6(table.column(name))
        bad = np.flatnonzero((ok & (v % E6_PER_E4 != 0))[first_row])
        for k in bad.tolist():
            out.setdefault(
                k,
                (
                    E.UNSUPPORTED_PRECISION,
                    f"{name}: {Decimal(int(v[first_row[k]])).scaleb(-6)} has more than 4 decimals. "
                    "Hint: OCPI amounts carry at most 4 decimals; round them at the source",
                    path,
                ),
            )
    return out


def e4_decimal(v: int) -> Decimal:
    return Decimal(v).scaleb(-4)


PERIOD_FIELDS = {  # CdrPeriod field → flat column
    "start_ms": "period_start_ms",
    "energy_mwh": "energy_mwh",
    "time_ms": "time_ms",
    "parking_ms": "parking_ms",
    "reservation_ms": "reservation_ms",
    "min_power_w": "min_power_w",
    "max_power_w": "max_power_w",
    "min_current_ma": "min_current_ma",
    "max_current_ma": "max_current_ma",
    "tariff_id": "tariff_id",
}


CDR_FIELDS = {  # Cdr field → flat column (first row of the record)
    "id": "cdr_id",
    "version": "ocpi_version",
    "start_ms": "cdr_start_ms",
    "end_ms": "cdr_end_ms",
    "currency": "currency",
    "country_code": "country_code",
    "party_id": "party_id",
    "location_country": "location_country",
    "location_time_zone": "time_zone",
    "emsp_country_code": "emsp_country_code",
    "emsp_party_id": "emsp_party_id",
    "location_id": "location_id",
    "contract_id": "contract_id",
    "credit": "credit",
    "credit_reference_id": "credit_reference_id",
}


def piece_cdrs(piece: FlatPiece, fr: Any, ks: Sequence[int]) -> list[Cdr]:
    """Records ``ks`` of a split piece as complete canonical CDRs (periods, money, parties,
    credit), read column-wise (one Arrow ``take`` per column, no per-value lookups). Values are
    those of :func:`pricing.flat.flat_cdr`: an empty ``tariff_id`` names no tariff."""

    if not ks:
        return []
    t = piece.table
    k = np.asarray(ks, np.int64)
    first = np.asarray(fr.first_row, np.int64)
    ends = np.append(first[1:], t.num_rows)
    lo, hi = first[k], ends[k]
    counts = hi - lo
    starts = np.cumsum(counts) - counts
    rows = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts - lo, counts)
    per_row = {f: optional_column(t, c).take(pa.array(rows)).to_pylist() for f, c in PERIOD_FIELDS.items()}
    per_row["tariff_id"] = [x or None for x in per_row["tariff_id"]]
    per_cdr = {f: optional_column(t, c).take(pa.array(lo)).to_pylist() for f, c in CDR_FIELDS.items()}
    excl, excl_ok = decimal_e6(t.column("reported_total_excl"))
    incl, incl_ok = decimal_e6(t.column("reported_total_incl"))
    names = list(PERIOD_FIELDS)
    columns = [per_row[f] for f in names]
    detail = reported_detail(t, lo)
    out = []
    for j in range(len(k)):
        r = int(lo[j])
        a, b = int(starts[j]), int(starts[j] + counts[j])
        periods = tuple(
            CdrPeriod(**dict(zip(names, vals, strict=True)))
            for vals in zip(*(c[a:b] for c in columns), strict=True)
        )
        money = None
        extra = dict(detail[j])
        taxes = extra.pop("taxes", ())
        if excl_ok[r] or incl_ok[r]:
            money = Money(
                e4_decimal(int(excl[r]) // E6_PER_E4) if excl_ok[r] else None,
                e4_decimal(int(incl[r]) // E6_PER_E4) if incl_ok[r] else None,
                taxes,
            )
        fields = {f: per_cdr[f][j] for f in CDR_FIELDS} | extra
        fields["version"] = fields["version"] or ""
        fields["credit"] = bool(fields["credit"])
        out.append(Cdr(periods=periods, total_cost=money, **fields))
    return out


def split_piece(piece: FlatPiece) -> tuple[Any, dict[int, tuple[str, str, str]]]:
    """``split_flat`` of the piece and its structural rejects (incl. money precision)."""

    fr = split_flat(piece.table)
    rejects = dict(fr.rejects)
    for k, rej in precision_rejects(piece.table, fr.first_row).items():
        rejects.setdefault(k, rej)
    return fr, rejects


def record_id(fr: Any, k: int) -> str | None:
    code, values = fr.cols["cdr_id"]
    r = fr.first_row[k]
    return None if code[r] < 0 else values[int(code[r])]
