"""Pricing many CDRs: parse → choose tariff and zone → price → rows, with every reject kept.

The invariant ``read == priced + rejected`` holds for every run: each input record ends up either
as exactly one result row or as exactly one reject row (with its source, line, code and a message
that says how to fix it). Warnings about priced records are kept apart (``warnings``).

Three paths price a batch, each to the same :class:`~pricing.results.BatchResult`: record by record
(:func:`price_records`, either engine), flat Parquet files (:func:`price_flat_file`, columns into
the kernel) and NDJSON through the columnar reader (:func:`price_ndjson_columnar`). Only the
kernel's declared refusals (:class:`~pricing.errors.KernelRefusal`) send work down another path,
and every record that went another way is counted in ``BatchResult.fallbacks`` with its reason.
A :class:`~pricing.errors.RoamledgerError` about one record is a reject row; any other exception
is a bug and propagates, with a note naming the record.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from pricing import errors as E
from pricing.compile import compile_tariffs
from pricing.errors import Finding, KernelRefusal, RecordRejected, RoamledgerError
from pricing.files import columnar_ndjson, expand_inputs
from pricing.flat import FlatRecords, flat_cdr, is_flat_file, iter_flat_tables, read_flat, split_flat
from pricing.io import Record, RowFrame, decoded_record, iter_sources
from pricing.kernel import price_table
from pricing.model import Cdr, Tariff
from pricing.ndjson_parallel import SPAN_BYTES, price_ndjson_spans, span_bytes
from pricing.ocpi import file_version_of, parse_cdr, parse_tariff
from pricing.ocpi.columnar import line_records, read_ndjson_flat
from pricing.periods import from_flat, from_sessions
from pricing.policy import CDR_POLICY, PricingPolicy
from pricing.reference import price_session
from pricing.refusals import kernel_parts
from pricing.report import (
    credit_frame,
    credit_row,
    meta_series,
    price_sessions_detailed,
    result_row,
    result_table,
    trace_rows,
)
from pricing.results import BatchResult, finding_key, merge_rows, row_key, sort_owned
from pricing.sessions import TariffSet, build_session
from pricing.workers import cores, processes

ENGINES = ("kernel", "reference")


def load_tariffs(paths: Iterable[str | os.PathLike[str]] | None) -> tuple[TariffSet | None, list[Finding]]:
    """Tariffs from files or directories (object, array, envelope, NDJSON); bad ones are findings."""
    if paths is None:
        return None, []
    tariffs: list[Tariff] = []
    findings: list[Finding] = []
    invalid: dict[str, str] = {}
    for rec in iter_sources(paths):
        if rec.error is not None:
            findings.append(rec.error)
            continue
        try:
            tariff, warns = parse_tariff(rec.obj)
        except RecordRejected as exc:
            rid = rec.obj.get("id") if isinstance(rec.obj, dict) else None
            findings.append(Finding(exc.code, exc.message, rec.source, rec.line, rid, exc.path))
            if isinstance(rid, str) and rid:
                invalid.setdefault(rid, f"{rec.source} line {rec.line}: {exc.message}")
            continue
        tariffs.append(tariff)
        findings.extend(w.located(rec.source, rec.line) for w in warns)
    store = TariffSet.of(tariffs)
    store.invalid = invalid
    return store, findings


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
            yield decoded_record("<memory>", i, item)


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
    file_versions: dict[str, str] | None = None,
) -> BatchResult:
    """Price decoded records one by one. ``file_versions`` seeds the OCPI version each source
    file was found to have (its first CDR's); a reader that handled that first CDR itself passes
    it so the remaining records are checked against the file's version, not their own."""
    if engine == "kernel":
        return price_records_kernel(
            records, tariffs, policy, tz, version, explain, location_zones, workers, file_versions
        )
    policy = policy or CDR_POLICY
    result = BatchResult(policy=policy)
    file_version: dict[str, str] = dict(file_versions or {})
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
        except RoamledgerError as exc:
            result.rejects.append(reject_of(exc, rec.source, rec.line, rid))
            continue
        except Exception as exc:  # a bug: it propagates, saying which record hit it
            exc.add_note(f"while pricing {rec.source} line {rec.line}")
            raise
        row = credit_row(result_row(priced)) if cdr.credit else result_row(priced)
        row.update({"ocpi_version": cdr.version, "source": rec.source, "line": rec.line})
        result.rows.append(row)
        result.warnings.extend(w.located(rec.source, rec.line) for w in warns)
        result.warnings.extend(straddle_warning(i, rec.source, rec.line, cdr.id) for i in priced.straddling)
        if explain:
            result.traces.extend(trace_rows(priced))
    result.rows.sort(key=row_key)
    return result


def parse_record(rec: Record, version: str | None, file_version: dict[str, str]) -> tuple[Cdr, list[Finding]]:
    """Parse one CDR; within one file all CDRs must share one OCPI version, that of its first CDR
    (:func:`pricing.ocpi.file_version_of`: an object that is not a CDR fixes nothing and is
    rejected for what it is)."""
    if not isinstance(rec.obj, dict):
        got = {list: "an array", str: "a string", bool: "true/false", type(None): "null"}.get(
            type(rec.obj), "a number"
        )
        hint = "one CDR object per line of an .ndjson file, or one array of CDR objects in a .json file"
        raise RecordRejected(E.BAD_RECORD, f"expected a CDR (a JSON object), got {got}. Hint: {hint}")
    if version is None:
        detected = file_version_of(rec.obj)
        if detected is None:
            return parse_cdr(rec.obj)
        expected = file_version.setdefault(rec.source, detected)
        if detected != expected:
            raise RecordRejected(
                E.VERSION_MISMATCH,
                f"this CDR is OCPI {detected} but the file's first CDR was {expected}. "
                "Hint: keep one OCPI version per file (split this one by version)",
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


class PricedCdrs(NamedTuple):
    """What :func:`price_cdrs` returns: the priced rows and the rejected records (``read ==
    frame height + len(rejects)``), so a caller cannot lose a record without seeing it."""

    frame: Any
    rejects: list[Finding]


def price_cdrs(
    cdrs: Iterable[Any] | str | os.PathLike[str],
    tariffs: Any = None,
    policy: PricingPolicy | None = None,
    tz: str | None = None,
    version: str | None = None,
    frame: str = "polars",
) -> PricedCdrs:
    """Price CDRs: ``(frame, rejects)``. ``frame`` has the columns of ``roamledger price``: polars by
    default, pandas with ``frame="pandas"`` (decimal columns stay exact in both: polars
    ``Decimal(38, 4)``, pandas ``ArrowDtype(decimal128(38, 4))``; never float); ``rejects`` are the
    records that could not be priced, each a :class:`~pricing.errors.Finding` (source, line, code,
    message), as in ``OUT.rejects.ndjson``.
    """
    result = price_batch(cdrs, tariffs, policy, tz, version)
    return PricedCdrs(result.frame(frame), list(result.rejects))


# ---- the vectorized kernel (``--engine kernel``) --------------------------------------------------
# Same parsing, tariff/zone decisions, rejects and warnings as ``price_records``; only the pricing
# step runs in ``pricing.kernel``. A block the kernel refuses (a KernelRefusal: int64 overflow, a
# tariff it cannot compile) is priced by the reference instead, so the output never depends on
# the engine, and its records are counted as ``kernel_refused: <reason>``.

KERNEL_BLOCK = 200_000


def kernel_refused(exc: KernelRefusal) -> str:
    """The ``fallbacks`` key of records the kernel refused."""
    return f"kernel_refused: {exc.reason}"


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


def reject_of(exc: RoamledgerError, source: str, line: int | None, rid: Any) -> Finding:
    """The reject row of a record whose processing raised ``exc``."""
    if isinstance(exc, RecordRejected):
        return Finding(exc.code, exc.message, source, line, rid, exc.path)
    return Finding(E.INVALID_VALUE, str(exc), source, line, rid)


def kernel_outcomes(
    sessions: list[Any], policy: PricingPolicy, workers: int = 1, fallbacks: Counter[str] | None = None
) -> list[Any]:
    """Per session: (row, straddling) from the kernel, or from the reference for a session the
    kernel refuses (counted in ``fallbacks``); the RoamledgerError instance where the reference
    rejects the session too. Any other exception propagates.

    A block refused while pricing (a value out of the kernel's range) is halved until the sessions
    it refuses alone are found: those go to the reference and are counted, the others stay with
    the kernel, so the count is the same however the sessions were grouped (one process or spans
    on several: meta.json is the same). A block whose tariffs do not compile (a tariff the kernel
    cannot hold: every session priced with it would be refused alone) goes to the reference
    whole, counted whole: halving it would cost a kernel attempt per session."""
    out: list[Any] = []
    todo = [sessions[lo : lo + KERNEL_BLOCK] for lo in range(0, len(sessions), KERNEL_BLOCK)][::-1]
    while todo:
        block = todo.pop()
        try:
            rows, straddles = price_sessions_detailed(block, policy, workers)
        except KernelRefusal as exc:
            if len(block) > 1 and _compiles(block):
                mid = len(block) // 2
                todo += [block[mid:], block[:mid]]  # the first half next: the order is kept
                continue
            if fallbacks is not None:
                fallbacks[kernel_refused(exc)] += len(block)
        else:
            out.extend(zip(rows, straddles, strict=True))
            continue
        for session in block:
            try:
                priced = price_session(session, policy)
            except RoamledgerError as exc:  # becomes a reject row, as in price_records
                out.append(exc)
                continue
            except Exception as exc:  # a bug: re-raised, naming the session
                exc.add_note(f"while pricing session {session.id!r} with the reference")
                raise
            out.append((result_row(priced), priced.straddling))
    return out


def _compiles(sessions: list[Any]) -> bool:
    """Whether the kernel compiles the tariffs of these sessions (its refusal then came from a
    value while pricing, not from a tariff)."""
    pt = from_sessions(sessions)
    try:
        compile_tariffs(pt.tariffs, pt.zones, pt.group_ranges())
    except KernelRefusal:
        return False
    return True


def price_records_kernel(
    records: Iterable[Record],
    tariffs: TariffSet | None = None,
    policy: PricingPolicy | None = None,
    tz: str | None = None,
    version: str | None = None,
    explain: bool = False,
    location_zones: dict[str, str] | None = None,
    workers: int = 1,
    file_versions: dict[str, str] | None = None,
) -> BatchResult:
    """``price_records`` with the pricing step in the kernel (all sessions at once)."""
    policy = policy or CDR_POLICY
    result = BatchResult(policy=policy, engine="kernel")
    file_version: dict[str, str] = dict(file_versions or {})
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
        except RoamledgerError as exc:  # same reject rows as price_records
            events.append(reject_of(exc, rec.source, rec.line, rid))
            continue
        except Exception as exc:  # a bug: re-raised, naming the record
            exc.add_note(f"while reading {rec.source} line {rec.line}")
            raise
        events.append(len(pending))
        pending.append((rec, cdr, warns, session, rid))
    outcomes = kernel_outcomes([p[3] for p in pending], policy, workers, result.fallbacks)
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
        if cdr.credit:
            credit_row(row)
        row.update({"ocpi_version": cdr.version, "source": rec.source, "line": rec.line})
        result.rows.append(row)
        result.warnings.extend(w.located(rec.source, rec.line) for w in warns)
        result.warnings.extend(straddle_warning(i, rec.source, rec.line, cdr.id) for i in straddling)
        if explain:
            result.traces.extend(trace_rows(price_session(session, policy)))
    result.rows.sort(key=row_key)
    return result


# ---- flat Parquet files (pricing.flat) -------------------------------------------------------------


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
    warnings); the reference engine (and ``--explain``) builds each CDR and prices it one by one,
    as does a file the kernel refuses (its records counted in ``fallbacks``)."""
    policy = policy or CDR_POLICY
    source = str(path)
    refused: KernelRefusal | None = None
    if engine == "kernel" and not explain:
        try:
            return flat_file_kernel(source, tariffs, policy, tz, workers)
        except KernelRefusal as exc:  # the reference decides (same output)
            refused = exc
    fr = split_flat(read_flat(source))
    result = flat_file_reference(fr, tariffs, policy, tz, explain, engine, source)
    if refused is not None:
        result.fallbacks[kernel_refused(refused)] += fr.n_records
    return result


def flat_file_reference(
    fr: FlatRecords,
    tariffs: TariffSet | None,
    policy: PricingPolicy,
    tz: str | None,
    explain: bool,
    engine: str,
    source: str,
) -> BatchResult:
    """The records of a split flat file built one by one as CDRs and priced by the reference."""
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
        except RoamledgerError as exc:  # a reject row, as in price_records
            rejects[k] = exc
            continue
        except Exception as exc:  # a bug: re-raised, naming the record
            exc.add_note(f"while pricing {source} row {int(fr.first_row[k]) + 1}")
            raise
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
        if fr.credit is not None and fr.credit[k]:
            credit_row(row)
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
    total = BatchResult(policy=policy, engine="kernel")
    parts: list[Any] = []
    row0 = 0
    pieces = ((t.num_rows, split_flat(t)) for t in iter_flat_tables(source, FLAT_PIECE_ROWS))
    for n_rows, fr in prefetched(pieces) if workers > 1 else pieces:
        part = flat_kernel_result(fr, tariffs, policy, tz, workers, source, row0 + fr.first_row + 1)
        row0 += n_rows
        del fr
        parts.append(part.rows)
        total.add(part)
        del part
    total.rows = merge_rows(parts)
    return total


def prefetched(items: Iterator[Any]) -> Iterator[Any]:
    """``items`` in order, the next one produced on a helper thread while the caller works on
    the current one (reading and decoding a piece overlaps pricing the previous one)."""
    done = object()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(next, items, done)
        while True:
            item = future.result()
            if item is done:
                return
            future = pool.submit(next, items, done)
            yield item


def flat_kernel_result(
    fr: FlatRecords,
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
    pt, rejects, rec_ok = from_flat(fr, tariffs, policy, tz)
    ct = compile_tariffs(pt.tariffs, pt.zones, pt.group_ranges())
    res = price_table(pt, policy, ct, workers)
    record_lines = np.asarray(record_lines, np.int64)
    frame = result_table(res, pt, ct)
    if fr.credit is not None:
        frame = credit_frame(frame, fr.credit[rec_ok])
    frame = frame.with_columns(
        meta_series(pt, "ocpi_version").alias("ocpi_version"),
        pl.lit(source, pl.String).alias("source"),
        pl.Series("line", record_lines[rec_ok], dtype=pl.Int64),
    )
    result = BatchResult(policy=policy, engine="kernel", read=fr.n_records)
    holder = [frame]
    del frame
    result.rows = RowFrame(sort_owned(holder))  # type: ignore[assignment]
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


# ---- NDJSON through the columnar reader (pricing.ocpi.columnar) ------------------------------------


def price_ndjson_columnar(
    path: str | os.PathLike[str],
    tariffs: TariffSet | None = None,
    policy: PricingPolicy | None = None,
    tz: str | None = None,
    workers: int = 1,
    span: tuple[int, int, str | None] | None = None,
    stats: dict[str, Any] | None = None,
    seen: dict[str, Any] | None = None,
    render_ndjson: str | os.PathLike[str] | None = None,
) -> BatchResult:
    """Price an NDJSON file of OCPI CDRs; the same BatchResult (rows, rejects, warnings, read) as
    ``price_records(iter_sources([path]), tariffs, policy, tz, engine="kernel", workers=workers)``.

    Columnar CDRs go through :func:`pricing.flat.split_flat` / ``from_flat`` and the kernel, the
    reader's per-record Records through :func:`price_records` (counted in ``fallbacks`` as
    ``columnar_reader: <reason>``); the results are merged in line order (rows sorted like
    ``price_records``). CDRs the kernel refuses (:func:`pricing.refusals.kernel_parts` finds them)
    are priced per record too and counted as ``columnar_reader: kernel_refused: <reason>``.

    A file larger than one span is priced span by span, on ``processes(path, workers)``
    processes (``workers=AUTO``, 0: one per core for a large file; :mod:`pricing.ndjson_parallel`;
    same output), so memory is bounded by the span size. ``span``/``stats``: one such span (see
    :func:`pricing.ocpi.columnar.read_ndjson_flat`);
    ``stats["embedded"]`` receives the embedded tariffs first seen (with no tariffs given:
    ``seen`` before the span, then the span's own). ``render_ndjson``: the NDJSON output the
    rows are for; where the file is priced in spans, the rows are then
    :class:`~pricing.rendered.RenderedRows` (each span's rows rendered as NDJSON by the process
    that priced it, gathered beside that output; written, not read).
    """
    policy = policy or CDR_POLICY
    source = str(path)
    if span is None:
        n_proc, size = processes(source, workers), os.path.getsize(source)
        if n_proc > 1 or size > SPAN_BYTES:
            piece = span_bytes(size, n_proc)
            return price_ndjson_spans(
                price_ndjson_columnar, source, tariffs, policy, tz, n_proc, piece, render_ndjson
            )
    workers = workers or threads()
    reasons: Counter[str] = Counter()
    versions: dict[str, str] = {}
    known = frozenset(k for k, v in tariffs.by_id.items() if v) if tariffs is not None else frozenset()
    embedded: list[Tariff] = []
    seen = dict(seen or {})
    table, fallback = read_ndjson_flat(
        path,
        reasons=reasons,
        versions=versions,
        known_tariffs=known,
        embedded=embedded,
        span=span,
        stats=stats,
        seen=seen,
    )
    if stats is not None:
        stats["embedded"] = seen
    # no tariffs given: the columnar CDRs are those whose own embedded tariffs are this one set
    columnar_tariffs = tariffs if known else TariffSet.of(embedded)
    result = BatchResult(policy=policy, engine="kernel")
    refused: list[tuple[Any, KernelRefusal]] = []
    if table.num_rows:

        def priced(piece: Any) -> BatchResult:
            fr = split_flat(piece)
            lines = piece.column("line").to_numpy()
            return flat_kernel_result(fr, columnar_tariffs, policy, tz, workers, source, lines[fr.first_row])

        # CDRs the kernel refuses go the per-record path (same output), the others stay here
        parts, refused = kernel_parts(table, priced, columnar_tariffs)
        del table
        if len(parts) == 1:
            result = parts[0]
        elif parts:
            for p in parts:
                result.add(p)
            result.rows = merge_rows([p.rows for p in parts])
    again: list[Record] = []
    if refused:  # counted once, here: the reference prices them (the kernel said no already)
        for cdr_lines, exc in refused:
            reasons[kernel_refused(exc)] += len(cdr_lines)
        again = line_records(path, np.sort(np.concatenate([c for c, _ in refused])), span)
    result.fallbacks.update({f"columnar_reader: {k}": v for k, v in reasons.items()})
    per_record = [
        price_records(
            iter(fallback), tariffs, policy, tz, engine="kernel", workers=workers, file_versions=versions
        ),
        price_records(iter(again), tariffs, policy, tz, engine="reference", file_versions=versions),
    ]
    for part in per_record:
        result.read += part.read
        result.fallbacks.update(part.fallbacks)
        result.rejects += part.rejects
        result.warnings += part.warnings
    result.rows = merge_rows([result.rows, *(part.rows for part in per_record)])
    result.rejects.sort(key=lambda f: f.line or 0)
    result.warnings.sort(key=lambda f: f.line or 0)
    return result


# ---- roamledger price's inputs -----------------------------------------------------------------------


def threads() -> int:
    """Kernel threads for ``workers=AUTO``: one per core."""
    return cores()


def price_inputs(
    paths: list[str],
    tariffs: TariffSet | None = None,
    policy: PricingPolicy | None = None,
    tz: str | None = None,
    version: str | None = None,
    explain: bool = False,
    engine: str = "kernel",
    workers: int = 1,
    render_ndjson: str | os.PathLike[str] | None = None,
) -> BatchResult:
    """``roamledger price``'s inputs: flat Parquet files go to :func:`price_flat_file`, OCPI
    NDJSON through :func:`price_ndjson_columnar`, every other file through
    :func:`price_records`, in input order. ``workers``: kernel threads, and processes for NDJSON
    files (``AUTO``, 0: one per core). ``render_ndjson``: the NDJSON output the rows are for:
    one NDJSON file priced in spans then gives :class:`~pricing.rendered.RenderedRows`
    (rendered where priced)."""
    policy = policy or CDR_POLICY
    processes_or_auto, workers = workers, workers or threads()
    files = expand_inputs(paths)
    flat = [is_flat_file(f) for f in files]
    columnar = [columnar_ndjson(f, engine, explain, version) for f in files]
    if not any(flat) and not any(columnar):
        return in_row_order(
            price_records(
                iter_sources(paths), tariffs, policy, tz, version, explain, engine=engine, workers=workers
            )
        )
    total = BatchResult(policy=policy, engine=engine)
    parts: list[Any] = []
    i = 0
    while i < len(files):
        if flat[i]:
            part = price_flat_file(files[i], tariffs, policy, tz, explain, engine, workers)
            i += 1
        elif columnar[i]:
            render = render_ndjson if len(files) == 1 else None
            part = price_ndjson_columnar(
                files[i], tariffs, policy, tz, processes_or_auto, render_ndjson=render
            )
            if render is not None:
                return part
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
        parts.append(part.rows)
        total.add(part)
    total.rows = merge_rows(parts)
    return in_row_order(total)


def in_row_order(result: BatchResult) -> BatchResult:
    """Rejects and warnings in the order of the rows (:func:`pricing.results.row_key`: by source,
    then line), so that with several input files all three outputs list the files alike."""
    result.rejects.sort(key=finding_key)
    result.warnings.sort(key=finding_key)
    return result
