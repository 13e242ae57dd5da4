"""Result rows rendered as NDJSON by the processes that priced them, merged in order when written.

``roamledger price --out X.ndjson`` on one large OCPI NDJSON file (:mod:`pricing.ndjson_parallel`):
each span's rows, sorted, are written by the process that priced them as the output's NDJSON lines
(:func:`pricing.io.write_table`: the bytes the whole file would get) to a temporary file, and only
their sort keys and line offsets come back (:class:`Spill`). The parent counts the lines of each
span before handing it out, so a span's rows carry their line numbers of the file and their lines
are final. :class:`RenderedRows` holds the spans in file order; :meth:`RenderedRows.write` merges
their lines in the order of :func:`pricing.results.merge_rows` (``cdr_id``, then line: one
source), :data:`MERGE_ROWS` lines at a time, copying bytes (no parsing, no rendering), each piece
written at its own offset of the output by one of :data:`MERGE_THREADS` threads. So the parent
neither renders rows (the workers do, in parallel) nor holds the result frame or the output text:
memory is the keys, ~30 bytes per row.
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
MERGE_THREADS = 2  # pieces gathered and written at once (the cores the pricing used)
COPY_RUN = 1024  # rows in merge order that are consecutive lines of one span, copied as one range


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
    if frame is not None:  # the lines' sizes as rendered (json escapes line breaks: a row is a line)
        sizes = rio.write_ndjson_frame(path, frame, ROW_COLUMNS)
    else:
        rio.write_table(path, rows, ROW_COLUMNS, DECIMAL_COLUMNS)
        sizes = np.diff(np.r_[-1, np.flatnonzero(np.fromfile(path, np.uint8) == 10)])
    if len(sizes) != keys.height:
        raise ValueError(f"{path}: {len(sizes)} lines for {keys.height} rows")
    return Spill(path, keys, np.r_[0, np.cumsum(sizes)].astype(np.int64))


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
        span rendered them whole, line numbers included), in merge order. Every row's place in
        the output is known beforehand (its line lengths summed in merge order), so the output
        is written in independent pieces at their own offsets, :data:`MERGE_THREADS` at a time
        (reads, Arrow and writes release the GIL: the merge uses the cores the pricing used): a
        run of at least :data:`COPY_RUN` rows that are consecutive lines of one span is copied
        file to file by the kernel (:func:`_copy_range`), the other rows are gathered
        :data:`MERGE_ROWS` at a time (:meth:`_piece`)."""
        order = self.order()
        counts = np.array([len(s) for s in self.spills], np.int64)
        first = np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64)
        span_of = np.repeat(np.arange(len(self.spills)), counts)
        sizes = np.concatenate([np.diff(s.offsets) for s in self.spills]) if len(order) else counts
        at = np.r_[0, np.cumsum(sizes[order])].astype(np.int64)  # output offset of each row, in order
        files = [os.open(s.path, os.O_RDONLY) for s in self.spills]
        tmp = rio.temp_sibling(path)
        try:
            with open(tmp, "wb", buffering=0) as out, ThreadPoolExecutor(MERGE_THREADS) as pool:
                fd = out.fileno()

                def copy(lo: int, hi: int) -> None:
                    s = int(span_of[order[lo]])
                    a = int(order[lo] - first[s])
                    offs = self.spills[s].offsets
                    _copy_range(files[s], fd, int(offs[a]), int(offs[a + hi - lo] - offs[a]), int(at[lo]))

                def gather(lo: int, hi: int) -> None:
                    _write_at(fd, self._piece(order[lo:hi], span_of, first, files), int(at[lo]))

                pending: deque[Future[None]] = deque()  # at most 2 × MERGE_THREADS pieces held
                for lo, hi, whole in _runs(order, span_of, first):
                    steps = [(lo, hi)] if whole else _pieces(lo, hi)
                    for a, b in steps:
                        while len(pending) >= 2 * MERGE_THREADS:
                            pending.popleft().result()
                        pending.append(pool.submit(copy if whole else gather, a, b))
                while pending:
                    pending.popleft().result()
            os.replace(tmp, path)
        finally:
            for fd_ in files:
                os.close(fd_)
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


def _runs(order: np.ndarray, span_of: np.ndarray, first: np.ndarray) -> list[tuple[int, int, bool]]:
    """``order`` (row indices, spans concatenated) cut into consecutive stretches ``[lo, hi)``:
    ``copy`` True for a run of at least :data:`COPY_RUN` rows that are consecutive rows of one
    span (one byte range of its file), False for the rows between such runs."""
    n = len(order)
    if not n:
        return []
    # a run breaks where the next row is not the next row of the same span
    step = np.flatnonzero((order[1:] != order[:-1] + 1) | (span_of[order[1:]] != span_of[order[:-1]])) + 1
    bounds = np.r_[0, step, n]
    out: list[tuple[int, int, bool]] = []
    lo = 0  # start of the rows not yet placed
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if b - a >= COPY_RUN:
            if lo < a:
                out.append((lo, a, False))
            out.append((a, b, True))
            lo = b
    if lo < n:
        out.append((lo, n, False))
    return out


def _pieces(lo: int, hi: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` cut into stretches of at most :data:`MERGE_ROWS`."""
    return [(k, min(hi, k + MERGE_ROWS)) for k in range(lo, hi, MERGE_ROWS)]


def _write_at(fd: int, data: Any, offset: int) -> None:
    """``data`` written to file ``fd`` at ``offset`` (its position untouched: threads write
    pieces of one file at once)."""
    view = memoryview(data)
    while len(view):
        done = os.pwrite(fd, view, offset)
        view, offset = view[done:], offset + done


def _copy_range(src: int, dst: int, offset: int, count: int, to: int) -> None:
    """Bytes ``offset:offset + count`` of file ``src`` written to ``dst`` at ``to``:
    ``os.copy_file_range`` where the system has it, else read and written here."""
    end = offset + count
    if hasattr(os, "copy_file_range"):
        try:
            while offset < end:
                done = os.copy_file_range(src, dst, end - offset, offset, to)
                if done <= 0:
                    break
                offset, to = offset + done, to + done
        except OSError:  # e.g. across file systems on older kernels: copy it here
            pass
    while offset < end:
        chunk = os.pread(src, min(end - offset, 16 << 20), offset)
        if not chunk:
            raise OSError("temporary file shorter than written")
        _write_at(dst, chunk, to)
        offset, to = offset + len(chunk), to + len(chunk)
