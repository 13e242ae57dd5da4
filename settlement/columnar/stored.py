"""A month of the CDR store as :class:`settlement.columnar.source.Piece` objects, in the order the
record engine reads it (:meth:`settlement.store.Store.cdr_records`, then the late CDRs):

* one piece of records only: the CDRs held without kernel columns (stored before migration
  0003, or beyond what the columns hold), read record by record (``held without kernel columns``);
* flat pieces of the kernel CDRs (:func:`settlement.store.read.month_pieces`), per OCPI version, by
  row id; their ``line`` is the row id and their ``exact`` callback reads the raw JSON of given
  rows (the engine quotes a CDR's own numbers from it);
* one piece of records only: the late CDRs of closed months the month takes (``late CDR``).

Every piece reads under one snapshot bound (the highest row id when the run began), so a CDR stored
while the month is read is left whole for the next run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

from pricing.io import Record
from settlement.columnar.source import Piece
from settlement.jobs import file_versions
from settlement.store import Store
from settlement.store.months import cdr_records_of
from settlement.store.read import month_pieces, raw_by_row, raw_records

HELD_RAW = "held without kernel columns"
LATE = "late CDR"


def store_pieces(
    store: Store,
    window: tuple[int, int],
    piece_rows: int,
    known: frozenset[str],
    bound: int,
    late_rows: Sequence[int] = (),
) -> Iterator[Piece]:
    """The pieces of a store's month (see the module docstring). ``known``: the ids of the tariffs
    held (a 2.1.1 CDR takes the first of its connector tariff ids among them)."""
    engine = store.engine
    lo, hi = window
    step = bound + 1  # orders: held raw < each version's kernel CDRs < the late CDRs
    raw = raw_records(engine, lo, hi, bound)
    if raw:
        yield _records_piece(raw, 0, HELD_RAW)

    def exact(lines: list[int]) -> dict[int, Record]:
        return raw_by_row(engine, sorted(set(lines)))

    versions: list[str] = []
    for fp in month_pieces(engine, lo, hi, piece_rows, known, bound):
        if fp.source not in versions:
            versions.append(fp.source)
        base = step * len(versions)
        version = fp.source.split("/", 1)[1]
        yield Piece(fp.source, fp.table, base, fp.row0, versions={fp.source: version}, exact=exact)
    late = [r for r in late_rows if r <= bound]
    if late:
        yield _records_piece(list(cdr_records_of(store, late)), step * (len(versions) + 1), LATE)


def _records_piece(records: list[Record], base: int, why: str) -> Piece:
    """Records the engine parses one by one (source: the store)."""
    source = records[0].source
    return Piece(source, None, base, 0, records, Counter({why: len(records)}), file_versions(records))
