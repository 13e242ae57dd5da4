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

import errno
import fcntl
import mmap
import os
import shutil
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
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
        self._fh: Any = DirectFile(path)  # closed by close(), write() or the finalizer
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
    try:
        fh.close()
    finally:
        if os.path.exists(path):
            os.unlink(path)


ALIGN = 4096  # O_DIRECT transfers: offsets, sizes and memory aligned to this (a page; any block size)
_DIRECT = getattr(os, "O_DIRECT", 0)


class DirectFile:
    """A new file written by appending, past the page cache where the file system allows
    (``O_DIRECT``): the bytes go from two reused buffers to the disk, one filled while a thread
    writes the other, rather than copied into freshly allocated cache pages (measured on this VM,
    920 MB: 0.2-1.6 CPU-s in write(), as the cache pages were warm or not; 0.09 CPU-s direct).
    Where the file system refuses ``O_DIRECT``, the same file is written through the cache."""

    def __init__(self, path: str, buffer_bytes: int = 8 << 20) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            self.fd = os.open(path, flags | _DIRECT, 0o666)
        except OSError as exc:
            if exc.errno != errno.EINVAL or not _DIRECT:
                raise
            self.fd = os.open(path, flags, 0o666)
        self.bufs = [mmap.mmap(-1, buffer_bytes), mmap.mmap(-1, buffer_bytes)]  # page-aligned
        self.fill = 0  # bytes in bufs[0], the one being filled
        self.size = 0
        self.pending: Future[None] | None = None  # bufs[1] being written
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="roamledger-rows")
        self.closed = False
        self.failed = False  # a write failed: close() only releases the file and the buffers

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        buf = self.bufs[0]
        while len(view):
            n = min(len(view), len(buf) - self.fill)
            buf[self.fill : self.fill + n] = view[:n]
            self.fill += n
            self.size += n
            view = view[n:]
            if self.fill == len(buf):
                self._hand_over(self.fill)
                buf = self.bufs[0]

    def _hand_over(self, n: int) -> None:
        """The filled buffer's first ``n`` bytes to the writer thread; the other buffer (written
        by then) is filled next."""
        self._wait()
        self.pending = self.writer.submit(self._out, self.bufs[0], n)
        self.bufs.reverse()
        self.fill = 0

    def _wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            try:
                pending.result()
            except BaseException:
                self.failed = True
                raise

    def _out(self, buf: mmap.mmap, n: int) -> None:
        """``buf``'s first ``n`` bytes (a multiple of :data:`ALIGN`) appended to the file."""
        view = memoryview(buf)[:n]
        try:
            while len(view):
                try:
                    done = os.write(self.fd, view)
                except OSError as exc:  # a file system that takes the flag but not the transfer
                    flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
                    if exc.errno != errno.EINVAL or not flags & _DIRECT:
                        raise
                    fcntl.fcntl(self.fd, fcntl.F_SETFL, flags & ~_DIRECT)
                    continue
                view = view[done:]
        finally:
            view.release()

    def close(self) -> None:
        """The last bytes written (padded to a whole block, the file then cut to its size); on an
        error raised here or before, the file is closed all the same."""
        if self.closed:
            return
        self.closed = True
        try:
            self._wait()
            if self.failed:
                return
            if self.fill:
                padded = -(-self.fill // ALIGN) * ALIGN
                self.bufs[0][self.fill : padded] = bytes(padded - self.fill)
                self._out(self.bufs[0], padded)
            os.ftruncate(self.fd, self.size)
        finally:
            self.writer.shutdown(wait=True)
            os.close(self.fd)
            for buf in self.bufs:
                buf.close()
