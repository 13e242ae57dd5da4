"""A month of the store as pieces of the flat layout (:class:`pricing.flat.FlatPiece`), for the
columnar settlement engine: set-based reads, no object per row.

PostgreSQL: ``COPY (SELECT …) TO STDOUT`` as CSV, parsed by ``pyarrow.csv``; SQLite: one
``SELECT`` per piece, its rows turned into Arrow columns. A piece holds whole CDRs (about
``piece_rows`` charging periods) of one OCPI version (``source`` = ``store:cdrs/<version>``, as
:meth:`settlement.store.Store.cdr_records` names them), ordered by row id; its ``line`` column is the
row id (what findings and rejects cite). The CDRs held without kernel columns are returned as
records (their raw JSON) for the record path.

The selected columns come from the maps of :mod:`settlement.store.rows` (a new optional flat column
is read once it is there); a flat column not held by the store reads as null.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
from sqlalchemy import Connection, Engine, and_, func, literal, select

from pricing.flat import TAXES_TYPE, FlatPiece, arrow_schema
from pricing.io import Record, loads
from pricing.sessions import connector_tariff
from settlement.store.rows import CDR_FLAT, CONNECTORS, MONEY_FLAT, PERIOD_FLAT, TAXES
from settlement.store.schema import cdr_periods, cdrs

SCHEMA = arrow_schema(optional=True, reported=True).append(pa.field("line", pa.int64()))


def _columns() -> dict[str, Any]:
    """Flat column → SQL expression."""
    c, p = cdrs.c, cdr_periods.c
    cols: dict[str, Any] = {
        "cdr_id": c.cdr_id,
        "ocpi_version": c.ocpi_version,
        # the key a CDR is held under is its CPO (a 2.1.1 CDR names none: the sender, or import --party)
        "country_code": c.country_code,
        "party_id": c.party_id,
        "cdr_start_ms": c.start_ms,
        "cdr_end_ms": c.end_ms,
        "currency": c.currency,
        "credit": c.credit,
        "line": c.id,
    }
    cols.update({flat: c[col] for flat, col in CDR_FLAT.items()})
    cols.update({flat: c[col] for flat, col in MONEY_FLAT.items()})
    cols.update({name: p[name] for name in PERIOD_FLAT})
    cols[TAXES] = c[TAXES]
    cols[CONNECTORS] = c[CONNECTORS]
    return cols


def _window(lo_ms: int, hi_ms: int, bound: int | None = None) -> Any:
    """CDRs whose session ended in [lo_ms, hi_ms), stored at or before row ``bound`` (a run reads
    the store as it was when it began: a CDR stored meanwhile is left for the next run)."""
    cond = and_(cdrs.c.end_ms >= lo_ms, cdrs.c.end_ms < hi_ms)
    return cond if bound is None else and_(cond, cdrs.c.id <= bound)


def last_row(engine: Engine) -> int:
    """The highest CDR row id held (0 when none): the snapshot bound of a run."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.max(cdrs.c.id))).scalar() or 0)


def month_rows(engine: Engine, lo_ms: int, hi_ms: int, bound: int | None) -> list[int]:
    """The row ids of the CDRs a run of [lo_ms, hi_ms) reads (under ``bound``)."""
    with engine.connect() as conn:
        return list(conn.execute(select(cdrs.c.id).where(_window(lo_ms, hi_ms, bound))).scalars())


def raw_by_row(engine: Engine, rows: list[int]) -> dict[int, Record]:
    """The stored CDRs of the given row ids as records (their raw JSON), by row id."""
    out: dict[int, Record] = {}
    with engine.connect() as conn:
        for i in range(0, len(rows), 500):
            c = cdrs.c
            query = select(c.id, c.ocpi_version, c.raw, c.country_code, c.party_id).where(
                c.id.in_(rows[i : i + 500])
            )
            for row_id, version, raw, cc, pid in conn.execute(query):
                out[row_id] = Record(f"store:cdrs/{version}", row_id, loads(raw), party=(cc, pid))
    return out


def special_ids(engine: Engine, lo_ms: int, hi_ms: int, bound: int | None = None) -> set[str]:
    """CDR ids held more than once in the month (under different CPOs, or in another case: OCPI ids
    are CiStrings), as :func:`settlement.reconcile.id_key` gives them: judged record by record."""
    key = func.upper(cdrs.c.cdr_id)
    query = select(key).where(_window(lo_ms, hi_ms, bound)).group_by(key).having(func.count() > 1)
    with engine.connect() as conn:
        return set(conn.execute(query).scalars())


def raw_records(engine: Engine, lo_ms: int, hi_ms: int, bound: int | None = None) -> list[Record]:
    """The month's CDRs held without kernel columns, as records (the order of ``cdr_records``)."""
    c = cdrs.c
    query = (
        select(c.id, c.ocpi_version, c.raw, c.country_code, c.party_id)
        .where(and_(_window(lo_ms, hi_ms, bound), c.kernel.is_(False)))
        .order_by(c.ocpi_version, c.id)
    )
    with engine.connect() as conn:
        return [
            Record(f"store:cdrs/{v}", i, loads(raw), party=(cc, pid))
            for i, v, raw, cc, pid in conn.execute(query)
        ]


def month_pieces(
    engine: Engine,
    lo_ms: int,
    hi_ms: int,
    piece_rows: int,
    known: frozenset[str] = frozenset(),
    bound: int | None = None,
) -> Iterator[FlatPiece]:
    """The month's kernel CDRs as flat pieces: per OCPI version, by row id, whole CDRs. ``known``:
    the ids of the tariffs the month is priced with (a 2.1.1 CDR takes the first of its connector
    tariff ids among them, as :func:`pricing.sessions.select_tariffs` does)."""
    sizes = (
        select(cdrs.c.ocpi_version, cdrs.c.id, func.count())
        .select_from(cdrs.join(cdr_periods, cdr_periods.c.cdr_pk == cdrs.c.id))
        .where(and_(_window(lo_ms, hi_ms, bound), cdrs.c.kernel.is_(True)))
        .group_by(cdrs.c.ocpi_version, cdrs.c.id)
        .order_by(cdrs.c.ocpi_version, cdrs.c.id)
    )
    with engine.connect() as conn:
        rows = conn.execute(sizes).all()
    base = 0
    for version in sorted({r[0] for r in rows}):
        ids = np.asarray([r[1] for r in rows if r[0] == version], np.int64)
        n = np.asarray([r[2] for r in rows if r[0] == version], np.int64)
        ends = np.cumsum(n)
        row0, k = 0, 0
        while k < len(ids):
            stop = max(k + 1, int(np.searchsorted(ends, row0 + piece_rows, "right")))
            table = _read(engine, version, int(ids[k]), int(ids[stop - 1]), lo_ms, hi_ms, known)
            yield FlatPiece(f"store:cdrs/{version}", row0, table, base)
            row0 += table.num_rows
            base += table.num_rows
            k = stop


def _query(version: str, first: int, last: int, lo_ms: int, hi_ms: int) -> Any:
    cols = _columns()
    return (
        select(*(expr.label(name) for name, expr in cols.items()))
        .select_from(cdrs.join(cdr_periods, cdr_periods.c.cdr_pk == cdrs.c.id))
        .where(
            and_(
                _window(lo_ms, hi_ms),
                cdrs.c.kernel.is_(True),
                cdrs.c.ocpi_version == literal(version),
                cdrs.c.id >= first,
                cdrs.c.id <= last,
            )
        )
        .order_by(cdrs.c.id, cdr_periods.c.period_idx)
    )


def _read(
    engine: Engine, version: str, first: int, last: int, lo_ms: int, hi_ms: int, known: frozenset[str]
) -> pa.Table:
    query = _query(version, first, last, lo_ms, hi_ms)
    names = [c.name for c in query.selected_columns]
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            columns = _copy_out(conn, query, names)
        else:
            rows = conn.execute(query).all()
            columns = {name: pa.array([r[i] for r in rows], _wire_type(name)) for i, name in enumerate(names)}
    columns["tariff_id"] = connector_tariffs(columns["tariff_id"], columns.pop(CONNECTORS), known)
    return _flat_table(columns)


def connector_tariffs(tariff_id: pa.Array, connectors: pa.Array, known: frozenset[str]) -> pa.Array:
    """Periods that name no tariff take the tariff their CDR's connectors name
    (:func:`pricing.sessions.connector_tariff`: the first among ``known``, else the first, which
    is then not found), when tariffs are known (none: the implicit rule, as without tariffs given)."""
    rows = np.flatnonzero(connectors.is_valid().to_numpy(zero_copy_only=False))
    if not len(rows):
        return tariff_id
    tids = tariff_id.to_pylist()
    lists = connectors.take(pa.array(rows, pa.int64())).to_pylist()
    first: dict[str, str | None] = {}
    for r, ids in zip(rows.tolist(), lists, strict=True):
        if tids[r] is None:
            if ids not in first:
                first[ids] = connector_tariff(json.loads(ids), known.__contains__) if known else None
            tids[r] = first[ids]
    return pa.array(tids, pa.string())


def _wire_type(name: str) -> pa.DataType:
    """The Arrow type a selected column is read as (money as int64 micro-units)."""
    if name in MONEY_FLAT:
        return pa.int64()
    if name in (CONNECTORS, TAXES):
        return pa.string()
    return SCHEMA.field(name).type


def _copy_out(conn: Connection, query: Any, names: list[str]) -> dict[str, pa.Array]:
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    buf = bytearray()
    with dbapi.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as cp:
        for block in cp:
            buf += block
    if not buf:
        return {name: pa.array([], _wire_type(name)) for name in names}
    table = pcsv.read_csv(
        pa.py_buffer(bytes(buf)),
        read_options=pcsv.ReadOptions(column_names=names),
        convert_options=pcsv.ConvertOptions(
            column_types={name: _wire_type(name) for name in names},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    return {name: table.column(name).combine_chunks() for name in names}


def e6_decimal(values: pa.Array) -> pa.Array:
    """int64 micro-units as ``decimal128(38, 6)`` of the same value (two's complement words, exact)."""
    n = len(values)
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    lo = np.where(valid, values.fill_null(0).to_numpy(zero_copy_only=False), 0).astype(np.int64)
    words = np.empty((n, 2), np.int64)
    words[:, 0], words[:, 1] = lo, lo >> 63
    mask = None if valid.all() else pa.array(valid).buffers()[1]  # validity bitmap
    return pa.Array.from_buffers(pa.decimal128(38, 6), n, [mask, pa.py_buffer(words.tobytes())])


def tax_lines(texts: pa.Array) -> pa.Array:
    """Stored tax lines (JSON, micro-units) as the flat layout's ``reported_taxes``."""

    def e6(v: int | None) -> Decimal | None:
        return None if v is None else Decimal(v).scaleb(-6)

    return pa.array(
        [
            None
            if t is None
            else [
                {"name": name, "percentage": e6(pct), "amount": e6(amount)}
                for name, pct, amount in json.loads(t)
            ]
            for t in texts.to_pylist()
        ],
        TAXES_TYPE,
    )


def _flat_table(columns: dict[str, pa.Array]) -> pa.Table:
    n = len(next(iter(columns.values())))
    arrays = []
    for f in SCHEMA:
        if f.name in MONEY_FLAT:
            arrays.append(e6_decimal(columns[f.name]))
        elif f.name == TAXES:
            arrays.append(tax_lines(columns[f.name]))
        elif f.name in columns:
            arrays.append(columns[f.name].cast(f.type))
        else:
            arrays.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)
