"""NDJSON lines → Arrow tables with ``pyarrow.json`` (the columnar reader's parse,
:mod:`pricing.ocpi.columnar`): runs of whole lines parsed together, a run pyarrow refuses cut down
to the lines it refuses (those go the per-record path for their exact reject)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.json as pj

BISECT_LINES = 1  # a failing piece is cut down to its bad lines
PARSE_BLOCK = 16 << 20  # pyarrow's block size where it parses on several threads


def parse_runs(
    work: bytes, starts: np.ndarray, ends: np.ndarray, lines: np.ndarray, parse: pj.ParseOptions
) -> Iterator[tuple[Any, np.ndarray]]:
    """Arrow tables over runs of ``lines`` (row k = line lines[k]), in line order; a run that does
    not parse is cut around the row pyarrow names (:func:`_cut`), or halved when it names none,
    until the pieces parse, or yielded as (None, lines) once a piece is one line."""
    todo = [(lines, False)]
    while todo:
        part, whole = todo.pop()
        lo, hi = int(starts[part[0]]), int(ends[part[-1]]) + 1
        # blocks of PARSE_BLOCK parsed on Arrow's threads (one per core), or the run as one block
        # (then pyarrow's row numbers in errors count from the run's start)
        one = whole or hi - lo <= PARSE_BLOCK or pa.cpu_count() <= 1
        longest = int((ends[part] - starts[part]).max()) + 2  # pyarrow needs a whole line per block
        size = max(1 << 20, hi - lo + 1 if one else PARSE_BLOCK, longest)
        try:
            table = pj.read_json(
                pa.BufferReader(pa.py_buffer(work).slice(lo, hi - lo)),
                read_options=pj.ReadOptions(use_threads=not one, block_size=size),
                parse_options=parse,
            )
            if table.num_rows != len(part):
                raise ValueError("row count differs from line count")
            yield table, part
        except (pa.ArrowException, ValueError) as exc:
            if len(part) <= BISECT_LINES:
                yield None, part
            elif not one:  # the row pyarrow names counts from some block's start: again as one
                todo.append((part, True))
            else:
                todo.extend((p, True) for p in reversed(_cut(part, str(exc))))


_ROW = re.compile(r" in row (\d+)$")


def _cut(part: np.ndarray, error: str) -> list[np.ndarray]:
    """The pieces a run that pyarrow refused is parsed again in, in line order: the lines before
    the row its error names, that row alone, the lines after it (the bad line is found in about
    two more parses, not the ~2·log2(n) of halving); halves when no row is named. Whatever
    the row, each piece is parsed and checked again, so a wrong row costs time only."""
    m = _ROW.search(error)
    row = int(m.group(1)) if m else -1
    if 0 <= row < len(part):
        return [p for p in (part[:row], part[row : row + 1], part[row + 1 :]) if len(p)]
    mid = len(part) // 2
    return [part[:mid], part[mid:]]
