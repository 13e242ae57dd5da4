"""An OCPI NDJSON file priced on several cores: spans read, converted and priced in processes.

Reading JSON is the slow step (PERF-NOTES: ~60–80 k CDRs/s per core), and pyarrow's reader,
numpy and the kernel hold the GIL for much of it, so threads do not help; processes do. The
file is cut into spans at line ends; each worker process runs the one-process path
(:func:`pricing.batch.price_ndjson_columnar`) on its span as if it were a file of its own, with
the version of the file's first CDR (what the per-record path checks every CDR against). The
parent renumbers each span's lines by the lines before it and merges the results in the order
:func:`pricing.results.merge_rows` defines, so the output is byte-identical to one process.

With ``workers`` processes, ``workers - 1`` are started and the calling process is the last one:
it prices the next span itself whenever the oldest submitted one is not done yet (one process
fewer to start and import, ~1.5 CPU-s, and no core idles while the others start up). The
helpers are those ``roamledger price`` started before it loaded these modules
(:func:`pricing.workers.start_helpers`), or started here.
Memory stays bounded by the span size times the processes in flight (at most ``2 × (workers -
1)`` spans are submitted ahead), plus the result rows the command writes anyway. With one process the
spans are priced one after the other in the caller's process (same merge): a large file never
becomes one table.

``workers=AUTO`` (``roamledger price``'s default) takes one process per core for a file of at
least :data:`pricing.workers.MIN_SPLIT_BYTES` (below that, starting a process costs more than it
saves) and one otherwise (:func:`pricing.workers.processes`).

With no tariffs given, the embedded tariffs form one set in file order (the first tariff seen
with an id wins): see :func:`price_ndjson_spans`. CDRs the kernel refuses are priced per record
where their span is (:func:`pricing.refusals.kernel_parts`).
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from pricing.io import _read_ndjson
from pricing.ocpi import file_version_of
from pricing.ocpi.columnar_values import count_of
from pricing.policy import PricingPolicy
from pricing.rendered import RenderedRows, render_rows, rows_file
from pricing.results import BatchResult, merge_rows
from pricing.sessions import TariffSet
from pricing.workers import helper_pool, take_helpers

# The largest span (a worker's memory grows with it: ~0.4 GB at 30 MB). Under 32 MB, glibc's
# largest mmap threshold: a span's bytes are then read into heap memory that the next span's read
# reuses, where a buffer above it is a fresh mapping every time (page faults for each of its pages:
# ~330k per 10^6 CDRs, ~1 CPU-s of system time at 32 MB spans).
SPAN_BYTES = 30 << 20
MIN_SPAN_BYTES = 4 << 20
Span = tuple[int, int, str | None]  # (start byte, stop byte, the file's OCPI version)


def span_bytes(size: int, n_processes: int) -> int:
    """The span size: several spans per process (so none waits long for the last one), within
    [:data:`MIN_SPAN_BYTES`, :data:`SPAN_BYTES`]."""
    if n_processes <= 1:
        return SPAN_BYTES
    return max(MIN_SPAN_BYTES, min(SPAN_BYTES, -(-size // (4 * n_processes))))


def tail_bytes(size: int, n_processes: int) -> int:
    """The end of a file priced in spans of ``size`` on ``n_processes`` processes that is cut in
    smaller spans (:func:`spans`): as many full spans as can be in flight when the spans run out
    (each process's own and those submitted ahead to a helper). Measured at 10^6 CDRs on 2
    processes: one process idled ~0.45 s at the end while the other priced its last 30 MB spans."""
    return 0 if n_processes <= 1 else 3 * n_processes * size


def spans(path: str, size: int = SPAN_BYTES, tail: int = 0) -> list[tuple[int, int]]:
    """Byte ranges of about ``size`` covering the file, each ending just after a ``\\n`` (or at
    the end of the file); a line longer than ``size`` stays whole in one span. ``tail``: the
    file's last ``tail`` bytes are cut in spans of a quarter of ``size`` (at least
    :data:`MIN_SPAN_BYTES`), so that processes pricing spans side by side end close together
    (:func:`tail_bytes`)."""
    total = os.path.getsize(path)
    out: list[tuple[int, int]] = []
    start = 0
    with open(path, "rb") as fh:
        while start < total:
            pos = start + (size if total - start > tail else min(size, max(MIN_SPAN_BYTES, size // 4)))
            if pos >= total:
                out.append((start, total))
                break
            fh.seek(pos)
            while True:
                chunk = fh.read(1 << 20)
                if not chunk:
                    pos = total
                    break
                nl = chunk.find(b"\n")
                if nl >= 0:
                    pos += nl + 1
                    break
                pos += len(chunk)
            out.append((start, pos))
            start = pos
    return out


def count_lines(data: bytes | bytearray | memoryview, end: int | None = None, start: int = 0) -> int:
    """Lines of ``data[start:end]`` as :func:`pricing.io.ndjson_lines` counts them (each ends at
    ``\\n``; text after the last one is a line too), without splitting or copying."""
    end = len(data) if end is None else end
    if end <= start:
        return 0
    n = count_of(np.frombuffer(data, np.uint8, count=end - start, offset=start), 10)
    return n + (0 if data[end - 1] == 10 else 1)


def span_lines(path: str, todo: list[Span]) -> Iterator[int]:
    """For each span, the lines of the file before it (each span counted when asked, read into one
    buffer that every span reuses: no more of the file in memory than one span; no mapping, so
    an interruption mid-count leaves nothing that cannot be closed)."""
    line0 = 0
    buf = bytearray(max((stop - start for start, stop, _v in todo), default=0))
    with open(path, "rb", buffering=0) as fh:
        for start, stop, _v in todo:
            yield line0
            if stop <= start:
                continue
            fh.seek(start)
            view = memoryview(buf)[: stop - start]
            got = 0
            while got < len(view):
                n = fh.readinto(view[got:])
                if not n:
                    break
                got += n
            line0 += count_lines(buf, got)


def first_version(path: str) -> str | None:
    """The OCPI version of the file's first CDR (:func:`pricing.ocpi.file_version_of`, as
    :func:`pricing.batch.parse_record` fixes it), decoding lines from the start only until one
    is found."""
    carry = b""
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(1 << 20)
            data = carry + chunk
            cut = len(data) if not chunk else data.rfind(b"\n") + 1
            carry = data[cut:]
            for rec in _read_ndjson(data[:cut], path):
                version = None if rec.error is not None else file_version_of(rec.obj)
                if version is not None:
                    return version
            if not chunk:
                return None


def _price_span(
    price: Callable[..., BatchResult],
    path: str,
    span: Span,
    *args: Any,
    seen: dict[str, Any] | None = None,
    render: bool = False,
    line0: int | None = None,
) -> Any:
    """One span priced in a worker by ``price`` (:func:`pricing.batch.price_ndjson_columnar`):
    (result, lines in the span, embedded tariffs first seen: ``seen`` and then the span's,
    ``line0``). ``render``: the span's rows are rendered as the output's NDJSON lines (the
    result's rows are then a :class:`~pricing.rendered.Rendered`) with their lines numbered in
    the file: ``line0``, the lines before the span (:func:`span_lines`), is added to every line
    number of the result (rows, rejects, warnings) first."""
    stats: dict[str, Any] = {}
    result = price(path, *args, span=span, stats=stats, seen=seen)
    if render:
        result = _shift(result, line0 or 0)
        result.rows = render_rows(result.rows)  # type: ignore[assignment]
    return result, stats["lines"], stats.get("embedded", {}), line0


def _differs(span_seen: dict[str, Any], seen: dict[str, Any]) -> bool:
    """Whether a span took an embedded tariff as the first with its id that an earlier span had
    seen with other content (one process would have sent its rows per record)."""
    return any(tid in seen and seen[tid][0] != key for tid, (key, _t) in span_seen.items())


def init_worker() -> None:
    """A worker process: one thread for Arrow (the other cores run the other workers), and no
    pandas (:func:`skip_pandas_probe`)."""
    pa.set_cpu_count(1)
    skip_pandas_probe()


class _NoPandas:
    """An import hook that says pandas is not installed (:func:`skip_pandas_probe`)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas":
            raise ModuleNotFoundError("pandas is not looked for here", name=name)


def skip_pandas_probe() -> None:
    """Spare this process pyarrow's look for pandas: at its first conversion of a Python value
    (``pa.array(numpy)``, a scalar argument of a compute function) pyarrow imports pandas, only
    to ask whether the value is a pandas object — 0.2–0.4 s per process, in every pricing process.
    Pricing never hands it one: pyarrow is asked once while pandas looks absent, and remembers.
    Where pandas is needed later after all (``to_pandas``), pyarrow imports it then; nothing is
    done where pandas is imported already. For the processes that price NDJSON spans (the
    ``price`` command and its workers), not for a library caller's process."""
    if "pandas" in sys.modules:
        return
    hook = _NoPandas()
    sys.meta_path.insert(0, hook)
    try:
        pa.scalar(0)
    finally:
        sys.meta_path.remove(hook)


def _shift(result: BatchResult, offset: int) -> BatchResult:
    """The span's lines renumbered as lines of the file."""
    if not offset:
        return result
    frame = getattr(result.rows, "frame", None)
    if frame is not None:
        result.rows = type(result.rows)(frame.with_columns(pl.col("line") + offset))
    else:
        result.rows = [dict(r, line=(r["line"] or 0) + offset) for r in result.rows]
    result.rejects = [replace(f, line=(f.line or 0) + offset) for f in result.rejects]
    result.warnings = [replace(f, line=(f.line or 0) + offset) for f in result.warnings]
    return result


def price_ndjson_spans(
    price: Callable[..., BatchResult],
    path: str,
    tariffs: TariffSet | None,
    policy: PricingPolicy,
    tz: str | None,
    workers: int,
    span_bytes: int = SPAN_BYTES,
    render_ndjson: str | os.PathLike[str] | None = None,
) -> BatchResult:
    """The file priced span by span by ``price`` (``price(path, tariffs, policy, tz, span=…,
    stats=…, seen=…)``) on ``workers`` processes (1: in this process, one span after the other).

    With no tariffs given, the embedded ones decide which rows stay columnar in file order (the
    first tariff seen with an id): a span is priced without knowing the spans before it, and
    priced again here, knowing them, in the rare case it took a tariff as the first with its id
    that an earlier span had seen with other content.

    ``render_ndjson``: the NDJSON output the rows are for: each span's rows are rendered as its
    lines where they were priced and appended, in span order, to a file beside it; the result's
    rows are then that :class:`~pricing.rendered.RenderedRows` (written, not read)."""
    version = first_version(path)
    todo = [(a, b, version) for a, b in spans(path, span_bytes, tail_bytes(span_bytes, workers))]
    total = BatchResult(policy=policy, engine="kernel")
    parts: list[Any] = []
    offset = 0
    seen: dict[str, Any] = {}
    args = (tariffs, policy, tz)
    render = render_ndjson is not None
    rendered = RenderedRows(rows_file(render_ndjson)) if render_ndjson is not None else None
    line0s = span_lines(path, todo) if render else None
    results = _span_results(price, path, todo, args, workers, render, line0s)
    for span, out in zip(todo, results, strict=False):
        if _differs(out[2], seen):
            out = _price_span(price, path, span, *args, seen=dict(seen), render=render, line0=offset)
        part, n_lines, span_seen, numbered_from = out
        if render and numbered_from != offset:  # the count and the reader disagree
            raise RuntimeError(f"{path}: {numbered_from} lines counted before byte {span[0]}, {offset} read")
        for tid, first in span_seen.items():
            seen.setdefault(tid, first)
        if rendered is not None:  # numbered where it was priced
            rendered.append(part.rows)
        else:
            parts.append(_shift(part, offset).rows)
        offset += n_lines
        total.add(part)
    total.rows = rendered.close() if rendered is not None else merge_rows(parts)  # type: ignore[assignment]
    total.rejects.sort(key=lambda f: f.line or 0)
    total.warnings.sort(key=lambda f: f.line or 0)
    return total


def _span_results(
    price: Callable[..., BatchResult],
    path: str,
    todo: list[Span],
    args: tuple[Any, ...],
    workers: int,
    render: bool = False,
    line0s: Iterator[int] | None = None,
) -> Iterator[Any]:
    """:func:`_price_span` of each span, in span order, on ``workers`` processes (1: here).
    ``line0s``: the lines before each span (:func:`span_lines`), for rendered spans."""
    if workers <= 1:
        for span in todo:
            line0 = next(line0s) if line0s is not None else None
            yield _price_span(price, path, span, *args, render=render, line0=line0)
        return
    waiting = deque(todo)
    helpers = workers - 1  # this process is the last worker: one process fewer to start and import
    pool = take_helpers(helpers) or helper_pool(helpers)  # started early by the command, or now
    done = False
    try:
        slots: deque[Future[Any]] = deque()  # in span order; this process's own spans done
        while waiting or slots:
            while waiting and sum(not f.done() for f in slots) < 2 * helpers:
                span = waiting.popleft()
                line0 = next(line0s) if line0s is not None else None
                job = pool.submit(_price_span, price, path, span, *args, render=render, line0=line0)
                slots.append(job)
            if waiting and not slots[0].done():  # rather than wait, price the next span here
                span = waiting.popleft()
                line0 = next(line0s) if line0s is not None else None
                mine: Future[Any] = Future()
                mine.set_result(_here(price, path, span, args, render, line0))
                slots.append(mine)
                continue
            out = slots.popleft().result()
            if not waiting and not slots:  # every span in: the helpers exit while this process
                done = True  # writes the output (their exit frees their heaps: ~0.1 s)
                pool.shutdown(wait=False)
            yield out
    finally:
        if not done:  # an error or an interruption: the helpers are waited for
            pool.shutdown(cancel_futures=True)


def _here(
    price: Callable[..., BatchResult],
    path: str,
    span: Span,
    args: tuple[Any, ...],
    render: bool,
    line0: int | None,
) -> Any:
    """:func:`_price_span` in this process, on one Arrow thread like the workers (the other
    cores run them)."""
    cpus = pa.cpu_count()
    pa.set_cpu_count(1)
    try:
        return _price_span(price, path, span, *args, render=render, line0=line0)
    finally:
        pa.set_cpu_count(cpus)
