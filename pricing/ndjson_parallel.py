"""An OCPI NDJSON file priced on several cores: spans read, converted and priced in processes.

Reading JSON is the slow step (PERF-NOTES: ~60–80 k CDRs/s per core), and pyarrow's reader,
numpy and the kernel hold the GIL for much of it, so threads do not help; processes do. The
file is cut into spans at line ends; each worker process runs the one-process path
(:func:`pricing.batch.price_ndjson_columnar`) on its span as if it were a file of its own, with
the version of the file's first CDR (what the per-record path checks every CDR against). The
parent renumbers each span's lines by the lines before it and merges the results in the order
:func:`pricing.results.merge_rows` defines, so the output is byte-identical to one process.

Memory stays bounded by the span size times the processes in flight (at most ``2 × workers``
spans are submitted ahead), plus the result rows the command writes anyway.

Kept on one process (the caller's path): files with no tariffs given, where embedded tariffs form
one set in file order (the first tariff seen with an id wins), and a span the kernel refuses.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from typing import Any

import polars as pl

from pricing.errors import KernelRefusal
from pricing.io import _read_ndjson
from pricing.ocpi import detect_version
from pricing.policy import PricingPolicy
from pricing.results import BatchResult, merge_rows
from pricing.sessions import TariffSet

SPAN_BYTES = 64 << 20
Span = tuple[int, int, str | None]  # (start byte, stop byte, the file's OCPI version)


def spans(path: str, size: int = SPAN_BYTES) -> list[tuple[int, int]]:
    """Byte ranges of about ``size`` covering the file, each ending just after a ``\\n`` (or at
    the end of the file); a line longer than ``size`` stays whole in one span."""
    total = os.path.getsize(path)
    out: list[tuple[int, int]] = []
    start = 0
    with open(path, "rb") as fh:
        while start < total:
            pos = start + size
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


def first_version(path: str) -> str | None:
    """The OCPI version of the file's first JSON object (as :func:`pricing.batch.parse_record`
    fixes it), decoding lines from the start only until one is found."""
    carry = b""
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(1 << 20)
            data = carry + chunk
            cut = len(data) if not chunk else data.rfind(b"\n") + 1
            carry = data[cut:]
            for rec in _read_ndjson(data[:cut], path):
                if rec.error is None and isinstance(rec.obj, dict):
                    return detect_version(rec.obj, "cdr")
            if not chunk:
                return None


def _price_span(price: Callable[..., BatchResult], path: str, span: Span, *args: Any) -> Any:
    """One span priced in a worker by ``price`` (:func:`pricing.batch.price_ndjson_columnar`):
    (result with span-relative lines, lines in the span); None when the kernel refuses it."""
    stats: dict[str, int] = {}
    try:
        result = price(path, *args, span=span, stats=stats)
    except KernelRefusal:
        return None
    return result, stats["lines"]


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
    tariffs: TariffSet,
    policy: PricingPolicy,
    tz: str | None,
    workers: int,
    span_bytes: int = SPAN_BYTES,
) -> BatchResult | None:
    """The file priced span by span by ``price`` (``price(path, tariffs, policy, tz, span=…,
    stats=…)``, raising KernelRefusal) on ``workers`` processes; None when some span was
    refused by the kernel (the caller prices the whole file on one process then)."""
    version = first_version(path)
    todo = deque((a, b, version) for a, b in spans(path, span_bytes))
    total = BatchResult(policy=policy, engine="kernel")
    parts: list[Any] = []
    offset = 0
    # spawn, not fork: a forked child inherits pyarrow's and polars' thread pools mid-state and hangs
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        running: deque[Future[Any]] = deque()
        while todo or running:
            while todo and len(running) < 2 * workers:
                span = todo.popleft()
                running.append(pool.submit(_price_span, price, path, span, tariffs, policy, tz))
            out = running.popleft().result()
            if out is None:
                for f in running:
                    f.cancel()
                return None
            part, n_lines = out
            part = _shift(part, offset)
            offset += n_lines
            parts.append(part.rows)
            total.add(part)
    total.rows = merge_rows(parts)
    total.rejects.sort(key=lambda f: f.line or 0)
    total.warnings.sort(key=lambda f: f.line or 0)
    return total
