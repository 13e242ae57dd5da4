"""Result rows rendered as NDJSON by the processes that priced them, written in order as they come.

``roamledger price --out X.ndjson`` on one large OCPI NDJSON file (:mod:`pricing.ndjson_parallel`):
result rows are in input order (:func:`pricing.results.row_key`), so the output is the rows of
its spans, one span after the other. Each span's rows are rendered by the process that priced
them, as the output's NDJSON lines (:func:`render_rows`: the bytes :func:`pricing.io.write_table`
writes for them, line numbers of the file included), and come back as text. The parent appends
each span's text, in span order, to one file beside the output (:class:`RenderedRows`) and
renames it into place when the output is written. Nothing is sorted, merged or written twice,
and the parent holds the text of the spans in flight only.
"""

from __future__ import annotations

import os
import shutil
import weakref
from dataclasses import dataclass
from typing import Any

from pricing import io as rio
from pricing.report import DECIMAL_COLUMNS
from pricing.results import ROW_COLUMNS


@dataclass
class Rendered:
    """One span's result rows as the output's NDJSON lines (``text``), ``n`` of them."""

    text: bytes
    n: int

    def __len__(self) -> int:
        return self.n


def render_rows(rows: Any) -> Rendered:
    """Result rows (a RowFrame, or dict rows in result order; lines numbered in the file) as the
    NDJSON lines :func:`pricing.io.write_table` writes for them."""
    frame = getattr(rows, "frame", None)
    if frame is None:
        frame = rio.rows_to_frame(list(rows), ROW_COLUMNS, DECIMAL_COLUMNS)
    return Rendered(rio.ndjson_frame_text(frame, ROW_COLUMNS), frame.height)


def rows_file(out: str | os.PathLike[str]) -> str:
    """Where the rendered rows of the output ``out`` are gathered: a hidden file beside it (so the
    output is written by a rename), named after it and this process."""
    head, name = os.path.split(os.fspath(out))
    return os.path.join(head, f".{name}.roamledger-rows-{os.getpid()}")


class RenderedRows:
    """The result rows of a file priced in spans, as NDJSON text appended span by span (in file
    order) to ``path`` (:func:`rows_file`), which this object owns: removed when it goes unless
    :meth:`write` moved it. Reads like its length only: it is written, not iterated."""

    rendered_ndjson = True  # what pricing.io.write_table looks for

    def __init__(self, path: str) -> None:
        self.path = path
        self.n = 0
        self._fh: Any = open(path, "xb")  # closed by close(), write() or the finalizer
        self._cleanup = weakref.finalize(self, _discard, self._fh, path)

    def append(self, part: Rendered) -> None:
        self._fh.write(part.text)
        self.n += part.n

    def close(self) -> RenderedRows:
        self._fh.close()
        return self

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Any:
        raise TypeError("rendered result rows are written with write(), not read")

    def write(self, path: str | os.PathLike[str]) -> None:
        """The rows as NDJSON at ``path``: the file renamed there (copied where it is on another
        file system)."""
        self._fh.close()
        try:
            os.replace(self.path, path)
        except OSError:
            tmp = rio.temp_sibling(path)
            try:
                shutil.copyfile(self.path, tmp)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        self._cleanup()


def _discard(fh: Any, path: str) -> None:
    fh.close()
    if os.path.exists(path):
        os.unlink(path)
