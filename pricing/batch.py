"""Pricing many CDRs: parse → choose tariff and zone → price → rows, with every reject kept.

The invariant ``read == priced + rejected`` holds for every run: each input record ends up either
as exactly one result row or as exactly one reject row (with its source, line, code and a message
that says how to fix it). Warnings about priced records are kept apart (``warnings``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pricing import errors as E
from pricing.errors import Finding, RecordRejected, RoamledgerError
from pricing.io import Record, iter_sources
from pricing.model import Cdr, Tariff
from pricing.ocpi import detect_version, parse_cdr, parse_tariff
from pricing.policy import PricingPolicy
from pricing.reference import price_session
from pricing.report import COLUMNS, DECIMAL_COLUMNS, EXTRA_COLUMNS, result_row, trace_rows
from pricing.sessions import TariffSet, build_session

ENGINES = ("kernel", "reference")
ROW_COLUMNS = COLUMNS + EXTRA_COLUMNS


@dataclass
class BatchResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    traces: list[dict[str, Any]] = field(default_factory=list)
    read: int = 0
    policy: PricingPolicy = field(default_factory=PricingPolicy)
    engine: str = "reference"

    @property
    def priced(self) -> int:
        return len(self.rows)

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    def frame(self) -> Any:
        """The rows as a polars DataFrame (decimal columns as ``pl.Decimal(38, 4)``)."""
        import polars as pl

        columns = COLUMNS + EXTRA_COLUMNS
        schema: dict[str, Any] = {c: pl.String for c in columns}
        for c in DECIMAL_COLUMNS:
            schema[c] = pl.Decimal(38, 4)
        schema["line"] = pl.Int64
        schema["taxes"] = pl.List(
            pl.Struct({"name": pl.String, "percentage": pl.String, "amount": pl.Decimal(38, 4)})
        )
        from decimal import Decimal

        def conv(row: dict[str, Any]) -> dict[str, Any]:
            out = {c: row.get(c) for c in columns}
            for c in DECIMAL_COLUMNS:
                if out[c] is not None:
                    out[c] = Decimal(out[c])
            if out["taxes"] is not None:
                out["taxes"] = [{**t, "amount": Decimal(t["amount"])} for t in out["taxes"]]
            return out

        return pl.DataFrame([conv(r) for r in self.rows], schema=schema, orient="row")


def load_tariffs(paths: Iterable[str | os.PathLike[str]] | None) -> tuple[TariffSet | None, list[Finding]]:
    """Tariffs from files or directories (object, array, envelope, NDJSON); bad ones are findings."""
    if paths is None:
        return None, []
    tariffs: list[Tariff] = []
    findings: list[Finding] = []
    for rec in iter_sources(paths):
        if rec.error is not None:
            findings.append(rec.error)
            continue
        try:
            tariff, warns = parse_tariff(rec.obj)
        except RecordRejected as exc:
            rid = rec.obj.get("id") if isinstance(rec.obj, dict) else None
            findings.append(Finding(exc.code, exc.message, rec.source, rec.line, rid, exc.path))
            continue
        tariffs.append(tariff)
        findings.extend(w.located(rec.source, rec.line) for w in warns)
    return TariffSet.of(tariffs), findings


def as_records(cdrs: Iterable[Any] | str | os.PathLike[str]) -> Iterator[Record]:
    """Paths, or already-decoded dicts (source ``<memory>``, line = position)."""
    if isinstance(cdrs, (str, os.PathLike)):
        yield from iter_sources([cdrs])
        return
    for i, item in enumerate(cdrs, start=1):
        if isinstance(item, Record):
            yield item
        elif isinstance(item, (str, os.PathLike)):
            yield from iter_sources([item])
        else:
            yield Record("<memory>", i, item)


def price_records(
    records: Iterable[Record],
    tariffs: TariffSet | None = None,
    policy: PricingPolicy | None = None,
    tz: str | None = None,
    version: str | None = None,
    explain: bool = False,
    location_zones: dict[str, str] | None = None,
    engine: str = "reference",
    workers: int = 1,
) -> BatchResult:
    if engine == "kernel":
        return price_records_kernel(records, tariffs, policy, tz, version, explain, location_zones, workers)
    policy = policy or PricingPolicy()
    result = BatchResult(policy=policy)
    file_version: dict[str, str] = {}
    for rec in records:
        result.read += 1
        if rec.error is not None:
            result.rejects.append(rec.error)
            continue
        rid = rec.obj.get("id") if isinstance(rec.obj, dict) else None
        try:
            cdr, warns = parse_record(rec, version, file_version)
            session = build_session(cdr, tariffs, policy, tz, location_zones)
            priced = price_session(session, policy)
        except RecordRejected as exc:
            result.rejects.append(Finding(exc.code, exc.message, rec.source, rec.line, rid, exc.path))
            continue
        except RoamledgerError as exc:
            result.rejects.append(Finding(E.INVALID_VALUE, str(exc), rec.source, rec.line, rid))
            continue
        except Exception as exc:  # a bug must not stop the batch, nor hide: it is a reject row
            msg = f"internal error {type(exc).__name__}: {exc}. Hint: please report this record"
            result.rejects.append(Finding("INTERNAL_ERROR", msg, rec.source, rec.line, rid))
            continue
        row = result_row(priced)
        row.update({"ocpi_version": cdr.version, "source": rec.source, "line": rec.line})
        result.rows.append(row)
        result.warnings.extend(w.located(rec.source, rec.line) for w in warns)
        for idx in priced.straddling:
            result.warnings.append(
                Finding(
                    E.PERIOD_STRADDLES_BOUNDARY,
                    f"charging_periods[{idx}] straddles a tariff restriction boundary; it was priced "
                    "by its state at its start. Hint: the CPO must open a new period at every price change",
                    rec.source,
                    rec.line,
                    cdr.id,
                    f"$.charging_periods[{idx}]",
                    "warning",
                )
            )
        if explain:
            result.traces.extend(trace_rows(priced))
    result.rows.sort(key=lambda r: (r["cdr_id"], r["source"], r["line"] or 0))
    return result


def parse_record(rec: Record, version: str | None, file_version: dict[str, str]) -> tuple[Cdr, list[Finding]]:
    """Parse one CDR; within one file all records must share one OCPI version."""
    if not isinstance(rec.obj, dict):
        raise RecordRejected(E.BAD_RECORD, f"expected a JSON object, got {type(rec.obj).__name__}")
    if version is None:
        detected = detect_version(rec.obj, "cdr")
        expected = file_version.setdefault(rec.source, detected)
        if detected != expected:
            raise RecordRejected(
                E.VERSION_MISMATCH,
                f"this CDR is OCPI {detected} but the file's first CDR was {expected}. "
                "Hint: keep one OCPI version per file, or pass --ocpi-version",
            )
        return parse_cdr(rec.obj, detected)
    return parse_cdr(rec.obj, version)


def price_batch(
    cdrs: Iterable[Any] | str | os.PathLike[str],
    tariffs: Iterable[str | os.PathLike[str]] | TariffSet | Iterable[Tariff] | None = None,
    policy: PricingPolicy | None = None,
    tz: str | None = None,
    version: str | None = None,
    explain: bool = False,
) -> BatchResult:
    """Price CDRs (paths or decoded dicts) with tariffs (paths, a TariffSet, or Tariff objects)."""
    store, tariff_findings = _tariff_store(tariffs)
    result = price_records(as_records(cdrs), store, policy, tz, version, explain)
    result.warnings.extend(tariff_findings)
    return result


def _tariff_store(tariffs: Any) -> tuple[TariffSet | None, list[Finding]]:
    if tariffs is None or isinstance(tariffs, TariffSet):
        return tariffs, []
    if isinstance(tariffs, (str, os.PathLike)):
        return load_tariffs([tariffs])
    items = list(tariffs)
    if all(isinstance(t, Tariff) for t in items):
        return TariffSet.of(items), []
    return load_tariffs(items)


def price_cdrs(
    cdrs: Iterable[Any] | str | os.PathLike[str],
    tariffs: Any = None,
    policy: PricingPolicy | None = None,
    tz: str | None = None,
    version: str | None = None,
) -> Any:
    """Price CDRs and return a polars DataFrame with the columns of ``roamledger price``.

    Rejected records are not in the frame; use :func:`price_batch` to get them too.
    """
    return price_batch(cdrs, tariffs, policy, tz, version).frame()


# ---- the vectorized kernel (``--engine kernel``) --------------------------------------------------
# Same parsing, tariff/zone decisions, rejects and warnings as ``price_records``; only the pricing
# step runs in ``pricing.kernel``. A block the kernel refuses (int64 overflow, a tariff it cannot
# compile) is priced by the reference instead, so the output never depends on the engine.

KERNEL_BLOCK = 200_000


def straddle_warning(idx: int, source: str, line: int | None, cdr_id: str | None) -> Finding:
    return Finding(
        E.PERIOD_STRADDLES_BOUNDARY,
        f"charging_periods[{idx}] straddles a tariff restriction boundary; it was priced "
        "by its state at its start. Hint: the CPO must open a new period at every price change",
        source,
        line,
        cdr_id,
        f"$.charging_periods[{idx}]",
        "warning",
    )


def kernel_outcomes(sessions: list[Any], policy: PricingPolicy, workers: int = 1) -> list[Any]:
    """Per session: (row, straddling) from the kernel, or from the reference for a block the
    kernel refuses; an exception instance where the reference raises too."""
    from pricing.kernel import price_sessions_detailed

    out: list[Any] = []
    for lo in range(0, len(sessions), KERNEL_BLOCK):
        block = sessions[lo : lo + KERNEL_BLOCK]
        try:
            rows, straddles = price_sessions_detailed(block, policy, workers)
            out.extend(zip(rows, straddles, strict=True))
            continue
        except Exception:  # overflow, uncompilable tariff, odd input: the reference decides
            pass
        for session in block:
            try:
                priced = price_session(session, policy)
                out.append((result_row(priced), priced.straddling))
            except Exception as exc:  # becomes a reject row, as in price_records
                out.append(exc)
    return out


def reject_of(exc: Exception, source: str, line: int | None, rid: Any) -> Finding:
    if isinstance(exc, RecordRejected):
        return Finding(exc.code, exc.message, source, line, rid, exc.path)
    if isinstance(exc, RoamledgerError):
        return Finding(E.INVALID_VALUE, str(exc), source, line, rid)
    msg = f"internal error {type(exc).__name__}: {exc}. Hint: please report this record"
    return Finding("INTERNAL_ERROR", msg, source, line, rid)


def price_records_kernel(
    records: Iterable[Record],
    tariffs: TariffSet | None = None,
    policy: PricingPolicy | None = None,
    tz: str | None = None,
    version: str | None = None,
    explain: bool = False,
    location_zones: dict[str, str] | None = None,
    workers: int = 1,
) -> BatchResult:
    """``price_records`` with the pricing step in the kernel (all sessions at once)."""
    policy = policy or PricingPolicy()
    result = BatchResult(policy=policy, engine="kernel")
    file_version: dict[str, str] = {}
    events: list[Finding | int] = []
    pending: list[tuple[Record, Cdr, list[Finding], Any, Any]] = []
    for rec in records:
        result.read += 1
        if rec.error is not None:
            events.append(rec.error)
            continue
        rid = rec.obj.get("id") if isinstance(rec.obj, dict) else None
        try:
            cdr, warns = parse_record(rec, version, file_version)
            session = build_session(cdr, tariffs, policy, tz, location_zones)
        except Exception as exc:  # same reject rows as price_records
            events.append(reject_of(exc, rec.source, rec.line, rid))
            continue
        events.append(len(pending))
        pending.append((rec, cdr, warns, session, rid))
    outcomes = kernel_outcomes([p[3] for p in pending], policy, workers)
    for ev in events:
        if isinstance(ev, Finding):
            result.rejects.append(ev)
            continue
        rec, cdr, warns, session, rid = pending[ev]
        outcome = outcomes[ev]
        if isinstance(outcome, Exception):
            result.rejects.append(reject_of(outcome, rec.source, rec.line, rid))
            continue
        row, straddling = outcome
        row.update({"ocpi_version": cdr.version, "source": rec.source, "line": rec.line})
        result.rows.append(row)
        result.warnings.extend(w.located(rec.source, rec.line) for w in warns)
        result.warnings.extend(straddle_warning(i, rec.source, rec.line, cdr.id) for i in straddling)
        if explain:
            result.traces.extend(trace_rows(price_session(session, policy)))
    result.rows.sort(key=lambda r: (r["cdr_id"], r["source"], r["line"] or 0))
    return result


def price_flat_file(
    path: str | os.PathLike[str],
    tariffs: TariffSet | None = None,
    policy: PricingPolicy | None = None,
    tz: str | None = None,
    explain: bool = False,
    engine: str = "kernel",
    workers: int = 1,
) -> BatchResult:
    """A flat-layout Parquet file (:mod:`pricing.flat`): one CDR per run of rows with one
    ``cdr_id``; ``line`` is the 1-based row of its first period. The kernel reads it as columns
    and returns its rows as one :class:`~pricing.io.RowFrame` (Python touches only rejects and
    warnings); the reference engine (and ``--explain``) builds each CDR and prices it one by one."""
    from pricing.periods import flat_cdr, read_flat, split_flat

    policy = policy or PricingPolicy()
    source = str(path)
    if engine == "kernel" and not explain:
        try:
            return flat_file_kernel(source, tariffs, policy, tz, workers)
        except Exception:  # the reference decides (same output)
            pass
    fr = split_flat(read_flat(source))
    result = BatchResult(policy=policy, engine=engine, read=fr.n_records)
    ids = fr.cols["cdr_id"]
    outcomes: dict[int, Any] = {}
    rejects: dict[int, Any] = {}
    versions: dict[int, str | None] = {}
    for k in range(fr.n_records):
        if k in fr.rejects:
            rejects[k] = fr.rejects[k]
            continue
        cdr = flat_cdr(fr, k)
        versions[k] = cdr.version or None
        try:
            session = build_session(cdr, tariffs, policy, tz)
            priced = price_session(session, policy)
        except Exception as exc:  # a reject row, as in price_records
            rejects[k] = exc
            continue
        outcomes[k] = (result_row(priced), priced.straddling)
        if explain:
            result.traces.extend(trace_rows(priced))
    for k in range(fr.n_records):
        line = int(fr.first_row[k]) + 1
        code = ids[0][fr.first_row[k]]
        rid = None if code < 0 else ids[1][code]
        if k in rejects:
            rej = rejects[k]
            if isinstance(rej, Exception):
                result.rejects.append(reject_of(rej, source, line, rid))
            else:
                result.rejects.append(Finding(rej[0], rej[1], source, line, rid, rej[2]))
            continue
        row, straddling = outcomes[k]
        row.update({"ocpi_version": versions.get(k), "source": source, "line": line})
        result.rows.append(row)
        result.warnings.extend(straddle_warning(i, source, line, rid) for i in straddling)
    result.rows.sort(key=row_key)
    return result


FLAT_PIECE_ROWS = 500_000  # rows (periods) per piece of a flat file: bounded memory


def flat_file_kernel(
    source: str, tariffs: TariffSet | None, policy: PricingPolicy, tz: str | None, workers: int
) -> BatchResult:
    """:func:`price_flat_file` with the kernel, in pieces of about ``FLAT_PIECE_ROWS`` rows
    (:func:`pricing.flat.iter_flat_tables` never splits a CDR); rows of all pieces as one sorted
    RowFrame, rejects and warnings in file order."""
    from pricing.flat import iter_flat_tables
    from pricing.periods import split_flat

    total = BatchResult(policy=policy, engine="kernel")
    parts: list[Any] = []
    row0 = 0
    pieces = ((t.num_rows, split_flat(t)) for t in iter_flat_tables(source, FLAT_PIECE_ROWS))
    for n_rows, fr in prefetched(pieces) if workers > 1 else pieces:
        part = flat_kernel_result(fr, tariffs, policy, tz, workers, source, row0 + fr.first_row + 1)
        row0 += n_rows
        del fr
        total.read += part.read
        parts.append(part.rows)
        total.rejects.extend(part.rejects)
        total.warnings.extend(part.warnings)
        del part
    total.rows = merge_rows(parts)
    return total


def prefetched(items: Iterator[Any]) -> Iterator[Any]:
    """``items`` in order, the next one produced on a helper thread while the caller works on
    the current one (reading and decoding a piece overlaps pricing the previous one)."""
    from concurrent.futures import ThreadPoolExecutor

    done = object()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(next, items, done)
        while True:
            item = future.result()
            if item is done:
                return
            future = pool.submit(next, items, done)
            yield item


def row_key(r: dict[str, Any]) -> tuple[Any, ...]:
    """The order of result rows: by CDR id, then source and line."""
    return (r["cdr_id"], r["source"], r["line"] or 0)


def flat_kernel_result(
    fr: Any,
    tariffs: TariffSet | None,
    policy: PricingPolicy,
    tz: str | None,
    workers: int,
    source: str,
    record_lines: Any,
) -> BatchResult:
    """Flat records priced by the kernel as a BatchResult whose rows are one sorted
    :class:`~pricing.io.RowFrame`; ``record_lines[k]``: the line of record k's first row.

    The same rows, rejects (in record order) and straddle warnings (record, then period order)
    as the per-record loop: only rejected records and straddling periods reach Python."""
    import numpy as np
    import polars as pl

    from pricing.compile import compile_tariffs
    from pricing.io import RowFrame
    from pricing.kernel import meta_series, price_table, result_table
    from pricing.periods import from_flat

    pt, rejects, rec_ok = from_flat(fr, tariffs, policy, tz)
    ct = compile_tariffs(pt.tariffs, pt.zones, pt.group_ranges())
    res = price_table(pt, policy, ct, workers)
    record_lines = np.asarray(record_lines, np.int64)
    frame = result_table(res, pt, ct).with_columns(
        meta_series(pt, "ocpi_version").alias("ocpi_version"),
        pl.lit(source, pl.String).alias("source"),
        pl.Series("line", record_lines[rec_ok], dtype=pl.Int64),
    )
    result = BatchResult(policy=policy, engine="kernel", read=fr.n_records)
    holder = [frame]
    del frame
    result.rows = RowFrame(_sort_owned(holder))  # type: ignore[assignment]
    ids = fr.cols["cdr_id"]

    def rid_of(k: int) -> str | None:
        code = ids[0][fr.first_row[k]]
        return None if code < 0 else ids[1][code]

    for k in sorted(rejects):
        rej = rejects[k]
        result.rejects.append(Finding(rej[0], rej[1], source, int(record_lines[k]), rid_of(k), rej[2]))
    if "straddle_sess" in res and len(res["straddle_sess"]):
        for s, i in zip(res["straddle_sess"].tolist(), res["straddle_src"].tolist(), strict=True):
            k = int(rec_ok[s])
            result.warnings.append(straddle_warning(i, source, int(record_lines[k]), rid_of(k)))
    return result


def sort_frame(frame: Any) -> Any:
    """A result frame in :func:`row_key` order (stable; strings compare by code point in both)."""
    return _sort_owned([frame])


def _in_order(frame: Any) -> bool:
    import polars as pl

    if frame.height < 2:
        return True
    if frame["cdr_id"].null_count() + frame["source"].null_count():
        return False
    n = frame.height
    c, src, line = frame["cdr_id"], frame["source"], frame["line"].fill_null(0)

    def nxt_prv(x: pl.Series) -> tuple[pl.Series, pl.Series]:
        return x.slice(1), x.slice(0, n - 1)

    (c1, c0), (s1, s0), (l1, l0) = nxt_prv(c), nxt_prv(src), nxt_prv(line)
    return bool(((c1 > c0) | ((c1 == c0) & ((s1 > s0) | ((s1 == s0) & (l1 >= l0))))).all())


def _sort_owned(holder: list[Any]) -> Any:
    """:func:`sort_frame` of the one frame in ``holder`` (taken out of it): a stable argsort of the
    keys, then one column at a time, each unsorted column let go once its sorted copy exists (when
    nothing else holds the frame, memory grows by one column, not by a whole copy)."""
    import polars as pl

    frame = holder.pop()
    if _in_order(frame):
        return frame  # a stable sort would not move a row
    keys = [pl.col("cdr_id"), pl.col("source"), pl.col("line").fill_null(0)]
    order = frame.select(pl.arg_sort_by(keys, maintain_order=True)).to_series()
    columns = []
    for name in frame.columns:
        columns.append(frame.get_column(name).gather(order))
        frame = frame.drop(name)
    return pl.DataFrame(columns)


def merge_rows(parts: list[Any]) -> Any:
    """Result rows of several parts in :func:`row_key` order: one RowFrame when some part is one
    (dict rows that do not fit a frame turn the whole into a list), else a sorted list. Empties
    ``parts`` when it merges frames (their memory goes as the merged frame is sorted)."""
    from pricing.io import RowFrame, rows_to_frame

    merged = None
    if any(getattr(p, "frame", None) is not None for p in parts):
        import polars as pl

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
        return RowFrame(_sort_owned(holder))
    rows = [r for p in parts for r in p]
    rows.sort(key=row_key)
    return rows


def flat_parquet(path: Path) -> bool:
    if path.suffix.lower() != ".parquet" or not path.is_file():
        return False
    import pyarrow.parquet as pq

    from pricing.flat import is_flat

    return is_flat(pq.read_schema(path).names)


def expand_inputs(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files in the order ``iter_sources`` reads them."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(expand_inputs(c for c in sorted(p.iterdir()) if c.suffix.lower() in READABLE))
        else:
            out.append(p)
    return out


READABLE = (".json", ".ndjson", ".jsonl", ".parquet")


def price_inputs(
    paths: list[str],
    tariffs: TariffSet | None = None,
    policy: PricingPolicy | None = None,
    tz: str | None = None,
    version: str | None = None,
    explain: bool = False,
    engine: str = "kernel",
    workers: int = 1,
) -> BatchResult:
    """``roamledger price``'s inputs: flat Parquet files go to :func:`price_flat_file`, every
    other file through :func:`price_records`, in input order."""
    policy = policy or PricingPolicy()
    files = expand_inputs(paths)
    flat = [flat_parquet(f) for f in files]
    # NDJSON goes through the columnar reader (same results as the per-record path, tested), when
    # nothing asks for per-record work: the kernel engine, no trace, no forced version
    columnar = [
        engine == "kernel" and not explain and version is None and f.suffix.lower() in (".ndjson", ".jsonl")
        for f in files
    ]
    if not any(flat) and not any(columnar):
        return price_records(
            iter_sources(paths), tariffs, policy, tz, version, explain, engine=engine, workers=workers
        )
    total = BatchResult(policy=policy, engine=engine)
    parts: list[Any] = []
    i = 0
    while i < len(files):
        if flat[i]:
            part = price_flat_file(files[i], tariffs, policy, tz, explain, engine, workers)
            i += 1
        elif columnar[i]:
            from pricing.columnar import price_ndjson_columnar

            part = price_ndjson_columnar(files[i], tariffs, policy, tz, workers)
            i += 1
        else:
            j = i
            while j < len(files) and not flat[j] and not columnar[j]:
                j += 1
            part = price_records(
                iter_sources(files[i:j]),
                tariffs,
                policy,
                tz,
                version,
                explain,
                engine=engine,
                workers=workers,
            )
            i = j
        total.read += part.read
        parts.append(part.rows)
        total.rejects.extend(part.rejects)
        total.warnings.extend(part.warnings)
        total.traces.extend(part.traces)
    total.rows = merge_rows(parts)
    return total
