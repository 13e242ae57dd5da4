"""The columnar engine's input: every CDR file of a run as :class:`Piece` objects, in the order the
record engine reads them (the other inputs in the order given, then the flat Parquet files).

A :class:`Piece` is the one interface the engine settles (:func:`settlement.columnar.piece.process_piece`);
anything that can produce one can be settled at scale (a CDR store reading its month in Arrow
pieces, for instance):

* ``table``: whole CDRs in the flat layout of :mod:`pricing.flat` (any of its optional columns;
  absent ones read as null). With a ``line`` column (int64, the record's line on each of its rows,
  as :func:`pricing.ocpi.columnar.read_ndjson_flat` gives it) a record is a run of one ``cdr_id``
  and one ``line``, found at that line; without it a record's line is ``row0`` + its first row + 1.
* ``fallback``: :class:`~pricing.io.Record` objects the engine parses and reconciles one by one
  (the record engine's own functions), counted in the manifest's ``record_path`` by
  ``fallback_why``; ``versions``: the OCPI version of each source (what the parser checks every
  CDR of a file against).
* ``base``: where the piece starts in the input order of the run (``base`` + line, or + row
  without a ``line`` column, orders its records among all others).
* ``exact``: for a source whose records are JSON, the Records of given lines (the engine parses
  the exact CDR where it judges one record by record); None: the CDR is built from the columns.

Sources here: flat Parquet (:func:`pricing.flat.iter_pieces`), OCPI NDJSON
(:mod:`pricing.ndjson_pieces`: spans read in the worker, bounded memory), and any other readable
file (an OCPI JSON document: object, array or envelope; non-flat Parquet) as one piece of records
only — such a file is decoded whole by :func:`pricing.io.read_records` anyway, and its records
are counted as ``not NDJSON (read record by record)``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from pricing.errors import RoamledgerError
from pricing.flat import FlatPiece, is_flat_file, iter_pieces, piece_cdrs, split_piece
from pricing.io import Record, read_records
from pricing.model import Cdr
from pricing.ndjson_parallel import first_version
from pricing.ndjson_pieces import SPAN_BYTES, NdjsonPiece, exact_records, is_ndjson_file, iter_ndjson_pieces
from settlement.jobs import file_versions

NOT_NDJSON = "not NDJSON (read record by record)"
NO_VERSION = "no OCPI version on the file's first CDR (read record by record)"


@dataclass
class Piece:
    """What the columnar engine settles at a time (see the module docstring)."""

    source: str
    table: pa.Table | None
    base: int
    row0: int = 0
    fallback: list[Record] = field(default_factory=list)
    fallback_why: Counter[str] = field(default_factory=Counter)
    versions: dict[str, str] = field(default_factory=dict)
    exact: Callable[[list[int]], dict[int, Record]] | None = None


@dataclass(frozen=True)
class RecordsPiece:
    """A file read record by record (not NDJSON, not flat): decoded when the piece is loaded."""

    source: str
    base: int
    why: str = NOT_NDJSON


def load(item: Any) -> Piece:
    """An item of :func:`iter_run_pieces` as a :class:`Piece` (reading it where it is not read yet)."""
    if isinstance(item, Piece):
        return item
    if isinstance(item, FlatPiece):
        return Piece(item.source, item.table, item.base, item.row0)
    if isinstance(item, NdjsonPiece):
        table, fallback, why = item.read()
        versions = {item.source: item.version} if item.version else {}
        return Piece(item.source, table, item.base, 0, fallback, why, versions, item.records)
    records = list(read_records(item.source))
    why = Counter({item.why: len(records)}) if records else Counter()
    return Piece(item.source, None, item.base, 0, records, why, file_versions(records))


def run_order(files: Sequence[Path]) -> list[Path]:
    """The inputs in the record engine's order: the others as given, then the flat Parquet files."""
    flat = [f for f in files if is_flat_file(f)]
    return [f for f in files if f not in flat] + flat


def iter_run_pieces(
    files: Sequence[Path],
    piece_rows: int,
    known: frozenset[str] | None,
    span_bytes: int = SPAN_BYTES,
    seen: list[Any] | None = None,
) -> Iterator[Any]:
    """Every input as pieces (not read yet: :func:`load` reads one), in :func:`run_order`.
    ``known``: the ids of the tariffs given (None: none given). ``seen`` receives the NDJSON
    pieces (what :func:`exact_cdrs` re-reads)."""
    base = 0
    ordered = run_order(files)
    flat = [f for f in ordered if is_flat_file(f)]
    for f in ordered:
        if f in flat:
            continue
        if not is_ndjson_file(f):
            yield RecordsPiece(str(f), base)
        elif not _version_readable(f):
            yield RecordsPiece(str(f), base, NO_VERSION)
        else:
            for p in iter_ndjson_pieces(f, base, known, span_bytes):
                if seen is not None:
                    seen.append(p)
                yield p
        base += os.path.getsize(f) + 2  # more than the lines (or records) of the file
    for fp in iter_pieces(flat, piece_rows):
        yield FlatPiece(fp.source, fp.row0, fp.table, base + fp.base)


def _version_readable(path: Path) -> bool:
    """Whether the file's first CDR names an OCPI version (else it is read per record,
    where the parser says what is wrong with each record)."""
    try:
        first_version(str(path))
    except RoamledgerError:
        return False
    return True


def exact_cdrs(
    wanted: dict[str, list[int]],
    ndjson: Sequence[NdjsonPiece],
    parse: Callable[[list[Record]], list[tuple[Record, Cdr | None]]],
    readers: Mapping[str, Callable[[list[int]], dict[int, Record]]] | None = None,
) -> dict[tuple[str, int], Cdr]:
    """The CDRs of (source, line) as the record engine parses them: re-read from NDJSON spans, by
    a source's ``exact`` callback (``readers``: sources that are no files, e.g. the store), or
    from a flat file's columns."""
    out: dict[tuple[str, int], Cdr] = {}
    for source, lines in wanted.items():
        reader = (readers or {}).get(source)
        if reader is not None or any(p.source == source for p in ndjson):
            recs = reader(lines) if reader is not None else exact_records(ndjson, source, lines)
            for rec, cdr in parse([recs[n] for n in sorted(recs)]):
                if cdr is not None and rec.line is not None:
                    out[(source, rec.line)] = cdr
            continue
        todo = set(lines)
        for fp in iter_pieces([source]):
            fr, _ = split_piece(fp)
            ks = [k for k in range(fr.n_records) if fp.row0 + int(fr.first_row[k]) + 1 in todo]
            for k, cdr in zip(ks, piece_cdrs(fp, fr, ks), strict=True):
                out[(source, fp.row0 + int(fr.first_row[k]) + 1)] = cdr
    return out
