"""OCPI NDJSON files in pieces of whole CDRs, for settlement at scale (next to
:func:`pricing.flat.iter_pieces` for flat Parquet).

A file is cut at line ends into spans (:func:`pricing.ndjson_parallel.spans`); a piece is one span,
read when it is processed (:meth:`NdjsonPiece.read`, the columnar reader
:func:`pricing.ocpi.columnar.read_ndjson_flat`) into the flat layout with its ``line`` column and the
reader's fallback :class:`~pricing.io.Record` objects, both numbered as lines of the file — the
numbers and records :func:`pricing.io.read_records` gives. Memory is bounded by the span size.

A span's lines are counted up front without decoding (each ends at ``\\n``: what
:func:`pricing.io.ndjson_lines` and the reader count), so every piece knows the lines before it.
:meth:`NdjsonPiece.records` gives back the exact Records of some lines of the span (re-read from
the file): what settlement parses where a CDR is judged record by record.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pricing.io import Record, _read_ndjson
from pricing.ndjson_parallel import SPAN_BYTES, count_lines, first_version, spans
from pricing.ocpi.columnar import read_ndjson_flat
from pricing.ocpi.columnar_values import positions

NDJSON_SUFFIXES = (".ndjson", ".jsonl")


def is_ndjson_file(path: str | Path) -> bool:
    """A file :func:`pricing.io.read_records` reads line by line (by suffix)."""
    return Path(path).suffix.lower() in NDJSON_SUFFIXES and Path(path).is_file()


def _read_span(path: str, start: int, stop: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(start)
        return fh.read(stop - start)


@dataclass(frozen=True)
class NdjsonPiece:
    """One span of an NDJSON file: bytes ``start:stop``, ``line0`` lines of the file before it."""

    source: str
    start: int
    stop: int
    version: str | None  # the OCPI version of the file's first CDR (what every CDR is checked against)
    line0: int
    base: int  # input order of the file's line 0 across the run's inputs
    known: frozenset[str] | None  # ids of the tariffs given (None: none given)

    def read(self) -> tuple[pa.Table, list[Record], Counter[str]]:
        """(flat table with ``line``, fallback Records, why they fell back), lines of the file."""
        reasons: Counter[str] = Counter()
        table, fallback = read_ndjson_flat(
            self.source,
            reasons=reasons,
            known_tariffs=self.known,
            span=(self.start, self.stop, self.version),
        )
        if self.line0:
            i = table.schema.get_field_index("line")
            table = table.set_column(i, "line", pc.add(table.column("line"), self.line0))
            fallback = [_shifted(r, self.line0) for r in fallback]
        return table, fallback, reasons

    def records(self, lines: Sequence[int]) -> dict[int, Record]:
        """The Records of these lines of the file (each in this span), as ``read_records`` gives them."""
        data = _read_span(self.source, self.start, self.stop)
        out: dict[int, Record] = {}
        ends = positions(np.frombuffer(data, np.uint8), 10)  # a line ends at each \n (ndjson_lines)
        starts = np.r_[0, ends + 1]
        ends = np.r_[ends, len(data)]
        at = [(n, n - self.line0 - 1) for n in sorted(set(lines))]
        raws = ((n, data[starts[k] : ends[k]]) for n, k in at)
        for n, raw in raws:
            for rec in _read_ndjson(raw, self.source):
                out[n] = _shifted(rec, n - 1)
        return out


def _shifted(rec: Record, by: int) -> Record:
    err = rec.error
    line = (rec.line or 0) + by
    if err is not None:
        err = dataclasses.replace(err, line=line)
    return Record(rec.source, line, rec.obj, err)


def iter_ndjson_pieces(
    path: str | Path, base: int, known: frozenset[str] | None, span_bytes: int = SPAN_BYTES
) -> Iterator[NdjsonPiece]:
    """The pieces of one NDJSON file, in order (nothing is decoded here; the lines are counted)."""
    src = str(path)
    version = first_version(src)
    line0 = 0
    for start, stop in spans(src, span_bytes):
        yield NdjsonPiece(src, start, stop, version, line0, base, known)
        line0 += count_lines(_read_span(src, start, stop))


def exact_records(pieces: Sequence[Any], source: str, lines: Sequence[int]) -> dict[int, Record]:
    """The Records of ``lines`` of ``source`` from its pieces (each span re-read once)."""
    out: dict[int, Record] = {}
    mine = sorted((p for p in pieces if p.source == source), key=lambda p: p.line0)
    todo = sorted(set(lines))
    for i, p in enumerate(mine):
        end = mine[i + 1].line0 if i + 1 < len(mine) else None
        part = [n for n in todo if n > p.line0 and (end is None or n <= end)]
        if part:
            out.update(p.records(part))
    return out
