"""Result rows rendered as NDJSON by the processes that priced them, merged in order when written.

``roamledger price --out X.ndjson`` on one large OCPI NDJSON file (:mod:`pricing.ndjson_parallel`):
each span's rows, sorted, are written by the process that priced them as the output's NDJSON lines
(:func:`pricing.io.write_table`: the bytes the whole file would get) to a temporary file, and only
their sort keys and line offsets come back (:class:`Spill`). The parent counts the lines of each
span before handing it out, so a span's rows carry their line numbers of the file and their lines
are final. :class:`RenderedRows` holds the spans in file order; :meth:`RenderedRows.write` merges
their lines in the order of :func:`pricing.results.merge_rows` (``cdr_id``, then line: one
source), :data:`MERGE_ROWS` lines at a time, copying bytes (no parsing, no rendering). So the
parent neither renders rows (the workers do, in parallel) nor holds the result frame or the
output text: memory is the keys, ~30 bytes per row.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from pricing import io as rio
from pricing.report import DECIMAL_COLUMNS
from pricing.results import ROW_COLUMNS


@dataclass
class Spill:
    """One span's rows as NDJSON lines in ``path``, in result order: ``keys`` (cdr_id, line),
    ``offsets`` (n + 1 byte offsets of the lines, each line with its ``\\n``)."""

    path: str
    keys: Any
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1


MERGE_ROWS = 25_000  # lines merged at a time (~25 MB of text, held twice while merged)
MERGE_THREADS = 2  # pieces gathered at once


def spill_rows(rows: Any, path: str) -> Spill:
    """Result rows (a RowFrame or sorted dict rows, lines already numbered in the file) written
    to ``path`` as the output's NDJSON lines."""
    frame = getattr(rows, "frame", None)
    if frame is not None:
        keys = frame.select(pl.col("cdr_id").cast(pl.String), pl.col("line").cast(pl.Int64))
    else:
        keys = pl.DataFrame(
            {"cdr_id": [r["cdr_id"] for r in rows], "line": [r["line"] for r in rows]},
            schema={"cdr_id": pl.String, "line": pl.Int64},
        )
    rio.write_table(path, rows, ROW_COLUMNS, DECIMAL_COLUMNS)
    data = np.fromfile(path, np.uint8)
    ends = np.flatnonzero(data == 10)
    if len(ends) != keys.height:  # an NDJSON row is one line (json escapes line breaks)
        raise ValueError(f"{path}: {len(ends)} lines for {keys.height} rows")
    return Spill(path, keys, np.r_[0, ends + 1].astype(np.int64))


def spill_dir() -> str:
    return tempfile.mkdtemp(prefix="roamledger-spans-")


class RenderedRows:
    """The result rows of a file priced in spans, each span rendered to a :class:`Spill` (in file
    order, lines already numbered in the file); owns the temporary directory ``folder`` (removed
    when this object goes). Reads like its length only: it is written, not iterated."""

    def __init__(self, spills: list[Spill], folder: str) -> None:
        self.spills = spills
        self.folder = folder
        self._cleanup = weakref.finalize(self, shutil.rmtree, folder, True)

    def __len__(self) -> int:
        return sum(len(s) for s in self.spills)

    def __iter__(self) -> Any:
        raise TypeError("rendered result rows are written with write(), not read")

    def order(self) -> np.ndarray:
        """Row indices (spans concatenated) in result order: a stable sort by (cdr_id, line)."""
        if not len(self):
            return np.zeros(0, np.int64)
        keys = pl.concat([s.keys for s in self.spills])
        by = [pl.col("cdr_id"), pl.col("line").fill_null(0)]
        return keys.select(pl.arg_sort_by(by, maintain_order=True)).to_series().to_numpy().astype(np.int64)

    def write(self, path: str | os.PathLike[str]) -> None:
        """The rows as NDJSON (atomically), the bytes :func:`pricing.io.write_table` writes for
        the merged rows; then the temporary files go. The lines are copied as they are (each
        span rendered them whole, line numbers included), in merge order."""
        order = self.order()
        counts = np.array([len(s) for s in self.spills], np.int64)
        first = np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64)
        span_of = np.repeat(np.arange(len(self.spills)), counts)
        files = [os.open(s.path, os.O_RDONLY) for s in self.spills]
        tmp = rio.temp_sibling(path)
        try:
            with open(tmp, "wb") as out, ThreadPoolExecutor(MERGE_THREADS) as pool:
                # pieces gathered on threads (reads and Arrow release the GIL), written in order;
                # at most MERGE_THREADS + 1 pieces held
                pending: deque[Future[Any]] = deque()
                for lo in range(0, len(order), MERGE_ROWS):
                    idx = order[lo : lo + MERGE_ROWS]
                    pending.append(pool.submit(self._piece, idx, span_of, first, files))
                    if len(pending) > MERGE_THREADS:
                        out.write(pending.popleft().result())
                while pending:
                    out.write(pending.popleft().result())
            os.replace(tmp, path)
        finally:
            for fd in files:
                os.close(fd)
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._cleanup()

    def _piece(self, idx: np.ndarray, span_of: np.ndarray, first: np.ndarray, files: list[int]) -> Any:
        """The bytes of the lines of rows ``idx``, in this order. A span's rows keep their order
        in the merge, so those of one piece are one run of its file: read once, then the lines
        are gathered (Arrow ``take`` on the runs as one string array)."""
        spans = span_of[idx]
        local = idx - first[spans]
        arrays, pos, base = [], np.empty(len(idx), np.int64), 0
        for s in np.unique(spans).tolist():
            sel = spans == s
            a, b = int(local[sel].min()), int(local[sel].max()) + 1
            offs = self.spills[s].offsets[a : b + 1]
            slab = os.pread(files[s], int(offs[-1] - offs[0]), int(offs[0]))
            if len(slab) != offs[-1] - offs[0]:
                raise OSError(f"{self.spills[s].path}: temporary file shorter than written")
            rel = pa.py_buffer((offs - offs[0]).astype(np.int64).tobytes())
            buffers = [None, rel, pa.py_buffer(slab)]
            arrays.append(pa.LargeBinaryArray.from_buffers(pa.large_binary(), b - a, buffers))
            pos[sel] = base + local[sel] - a
            base += b - a
        take = pa.Array.from_buffers(pa.int64(), len(pos), [None, pa.py_buffer(pos)])  # not pa.array:
        lines = pa.concat_arrays(arrays).take(take)  # that one imports pandas (~0.3 s) to look for it
        offsets = np.frombuffer(lines.buffers()[1], np.int64, count=len(lines) + 1, offset=8 * lines.offset)
        return memoryview(lines.buffers()[2])[int(offsets[0]) : int(offsets[-1])]
