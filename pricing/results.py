"""The result of pricing many CDRs, and how partial results merge.

Kept apart from :mod:`pricing.batch` so that every path that prices a batch (per record, flat
Parquet, the columnar NDJSON reader) builds the same :class:`BatchResult` without importing the
others. ``fallbacks`` counts, per reason, the records that did not take the path their run asked
for (the kernel refused a block, the columnar reader left a record to the per-record parser), so a
run says how much of it really went the fast way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import polars as pl

from pricing.errors import Finding, InputError
from pricing.io import RowFrame, rows_to_frame
from pricing.policy import PricingPolicy
from pricing.report import COLUMNS, DECIMAL_COLUMNS, EXTRA_COLUMNS

ROW_COLUMNS = COLUMNS + EXTRA_COLUMNS
FRAME_KINDS = ("polars", "pandas")


@dataclass
class BatchResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    traces: list[dict[str, Any]] = field(default_factory=list)
    read: int = 0
    policy: PricingPolicy = field(default_factory=PricingPolicy)
    engine: str = "reference"
    # records that took another path than the run's engine, per reason ("kernel_refused: …",
    # "columnar_reader: …"); written to ``OUT.meta.json`` as ``fallbacks``
    fallbacks: Counter[str] = field(default_factory=Counter)

    @property
    def priced(self) -> int:
        return len(self.rows)

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    def add(self, part: BatchResult) -> None:
        """Count, rejects, warnings, traces and fallbacks of ``part`` (its rows are merged by the
        caller with :func:`merge_rows`)."""
        self.read += part.read
        self.rejects.extend(part.rejects)
        self.warnings.extend(part.warnings)
        self.traces.extend(part.traces)
        self.fallbacks.update(part.fallbacks)

    def fallback_counts(self) -> dict[str, int]:
        """``fallbacks`` as a plain, sorted dict (for ``meta.json``)."""
        return {k: v for k, v in sorted(self.fallbacks.items()) if v}

    def frame(self, kind: str = "polars") -> Any:
        """The rows as a polars DataFrame (decimal columns as ``pl.Decimal(38, 4)``), or with
        ``kind="pandas"`` as a pandas DataFrame whose decimal columns keep their exact values
        (``pd.ArrowDtype(pa.decimal128(38, 4))``, never float)."""
        if kind not in FRAME_KINDS:
            raise InputError(
                f"frame={kind!r} is not one of {', '.join(FRAME_KINDS)}. Hint: use 'polars' or 'pandas'"
            )
        columns = COLUMNS + EXTRA_COLUMNS
        schema: dict[str, Any] = {c: pl.String for c in columns}
        for c in DECIMAL_COLUMNS:
            schema[c] = pl.Decimal(38, 4)
        schema["line"] = pl.Int64
        schema["taxes"] = pl.List(
            pl.Struct({"name": pl.String, "percentage": pl.String, "amount": pl.Decimal(38, 4)})
        )

        def conv(row: dict[str, Any]) -> dict[str, Any]:
            out = {c: row.get(c) for c in columns}
            for c in DECIMAL_COLUMNS:
                if out[c] is not None:
                    out[c] = Decimal(out[c])
            if out["taxes"] is not None:
                out["taxes"] = [{**t, "amount": Decimal(t["amount"])} for t in out["taxes"]]
            return out

        frame = pl.DataFrame([conv(r) for r in self.rows], schema=schema, orient="row")
        if kind == "pandas":
            # Arrow-backed columns: decimal128 stays decimal128 (to_pandas' default would give
            # object columns of Decimal, or float for some versions)
            return frame.to_pandas(use_pyarrow_extension_array=True)
        return frame


def row_key(r: dict[str, Any]) -> tuple[Any, ...]:
    """The order of result rows: the input's, by source and line (then CDR id)."""
    return (r["source"], r["line"] or 0, r["cdr_id"])


def finding_key(f: Any) -> tuple[str, int]:
    """The order of rejects and warnings: that of the rows (:func:`row_key`), by source and line."""
    return (f.source or "", f.line or 0)


def sort_frame(frame: Any) -> Any:
    """A result frame in :func:`row_key` order (stable; strings compare by code point in both)."""
    return sort_owned([frame])


def _in_order(frame: Any) -> bool:
    if frame.height < 2:
        return True
    if frame["cdr_id"].null_count() + frame["source"].null_count():
        return False
    n = frame.height
    c, src, line = frame["cdr_id"], frame["source"], frame["line"].fill_null(0)

    def nxt_prv(x: pl.Series) -> tuple[pl.Series, pl.Series]:
        return x.slice(1), x.slice(0, n - 1)

    (c1, c0), (s1, s0), (l1, l0) = nxt_prv(c), nxt_prv(src), nxt_prv(line)
    return bool(((s1 > s0) | ((s1 == s0) & ((l1 > l0) | ((l1 == l0) & (c1 >= c0))))).all())


def sort_owned(holder: list[Any]) -> Any:
    """:func:`sort_frame` of the one frame in ``holder`` (taken out of it): a stable argsort of the
    keys, then one column at a time, each unsorted column let go once its sorted copy exists (when
    nothing else holds the frame, memory grows by one column, not by a whole copy). A frame in
    order already (parts of a file concatenated) has each column made one chunk the same way: the
    Parquet writer then takes its columns without another copy."""
    frame = holder.pop()
    if _in_order(frame):  # a stable sort would not move a row
        if max(frame.n_chunks("all"), default=1) <= 1:
            return frame
        order = None  # parts concatenated in order: each column made one chunk (as a sort would)
    else:
        keys = [pl.col("source"), pl.col("line").fill_null(0), pl.col("cdr_id")]
        order = frame.select(pl.arg_sort_by(keys, maintain_order=True)).to_series()
    columns = []
    for name in frame.columns:
        column = frame.get_column(name)
        columns.append(column.rechunk() if order is None else column.gather(order))
        frame = frame.drop(name)
    return pl.DataFrame(columns)


def merge_rows(parts: list[Any]) -> Any:
    """Result rows of several parts in :func:`row_key` order: one RowFrame when some part is one
    (dict rows that do not fit a frame turn the whole into a list), else a sorted list. Empties
    ``parts`` when it merges frames (their memory goes as the merged frame is sorted)."""
    merged = None
    if any(getattr(p, "frame", None) is not None for p in parts):
        try:
            frames = [
                p.frame
                if getattr(p, "frame", None) is not None
                else rows_to_frame(list(p), ROW_COLUMNS, DECIMAL_COLUMNS)
                for p in parts
                if len(p)
            ]
            if not frames:
                return RowFrame(rows_to_frame([], ROW_COLUMNS, DECIMAL_COLUMNS))
            frames = [f.select(ROW_COLUMNS) for f in frames]
            merged = pl.concat(frames, rechunk=False) if len(frames) > 1 else frames[0]
            del frames
        except (TypeError, ValueError, pl.exceptions.PolarsError):
            merged = None
    if merged is not None:
        parts.clear()
        holder = [merged]
        del merged
        return RowFrame(sort_owned(holder))
    rows = [r for p in parts for r in p]
    rows.sort(key=row_key)
    return rows
