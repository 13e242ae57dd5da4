"""Step 2 of the columnar engine: every piece of the run through :func:`work_piece` (here on a
thread pool, or on a Dask cluster: same results, in input order), then the duplicate and credit
checks over the run.

Duplicate ids of flat files are known before the run (their ``cdr_id`` column is read first); those
of JSON sources are found after it: a plain CDR whose id turns out to be on another record too is
moved to the record path (its exact CDR re-read), as are the CDRs credits refer to where the
credit check quotes their reported total.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from pricing.errors import Finding
from pricing.flat import is_flat_file
from pricing.io import Record
from pricing.model import Cdr, Money
from pricing.ndjson_pieces import SPAN_BYTES
from pricing.policy import PricingPolicy
from pricing.sessions import TariffSet
from settlement.cluster import dask_client
from settlement.columnar.piece import PieceJob, process_piece, special_ids
from settlement.columnar.source import Piece, exact_cdrs, iter_run_pieces, load
from settlement.contracts import Contracts
from settlement.jobs import Parsed, RunResult, parse_all, reconcile_all
from settlement.reconcile import ReconLine, check_duplicates_and_credits, id_key, id_key_expr
from settlement.rules import PaidMonths, d4, month_window_ms


@dataclass
class ColumnarRun:
    """What the columnar engine computed: plain CDRs as columns, the others as objects."""

    read: int = 0
    rejects: list[Finding] = field(default_factory=list)
    plain: list[pl.DataFrame] = field(default_factory=list)  # one frame per piece
    taxes: list[pl.DataFrame] = field(default_factory=list)  # 2.3.0 tax lines of plain CDRs on their basis
    straddles: list[pl.DataFrame] = field(default_factory=list)  # (ord, src) of plain CDRs
    dims: list[pl.DataFrame] = field(default_factory=list)  # dimension findings of plain CDRs
    detail: list[ReconLine] = field(default_factory=list)
    detail_ord: list[int] = field(default_factory=list)
    extra_findings: list[dict[str, Any]] = field(default_factory=list)
    record_path: Counter[str] = field(default_factory=Counter)  # records sent record by record, by reason
    late: dict[str, str] = field(default_factory=dict)  # late CDR id -> its closed month
    settled: dict[str, str] = field(default_factory=dict)  # already settled CDR id -> its closed month


def originals_of_credits(run: ColumnarRun, exact: dict[tuple[str, int], Cdr]) -> dict[str, Money]:
    """The reported totals of plain CDRs that a record-path credit refers to (the credit check
    of :func:`settlement.reconcile.check_duplicates_and_credits` nets against them): as the CDR
    reports it where its exact CDR is known (``exact``), else from the columns."""
    out: dict[str, Money] = {}
    for cid, (src, line, x, i) in _credited(run).items():
        cdr = exact.get((src, line))
        if cdr is not None:
            out[cid] = cdr.total_cost or Money(None)
        else:
            out[cid] = Money(None if x is None else d4(x), None if i is None else d4(i))
    return out


def _credited(run: ColumnarRun) -> dict[str, tuple[str, int, int | None, int | None]]:
    """The first plain CDR of each id a record-path credit refers to: (source, line, excl, incl)."""
    refs = {ln.cdr.credit_reference_id for ln in run.detail if ln.cdr.credit and ln.cdr.credit_reference_id}
    out: dict[str, tuple[str, int, int | None, int | None]] = {}
    if not refs:
        return out
    wanted = pl.Series(sorted(refs), dtype=pl.String).implode()
    for part in run.plain:
        hit = part.filter(pl.col("cdr_id").is_in(wanted))
        for cid, src, line, x, i in hit.select(
            "cdr_id", pl.col("source").cast(pl.String), "line", "rep_excl", "rep_incl"
        ).iter_rows():
            out.setdefault(cid, (src, line, x, i))
    return out


def work_piece(
    piece: Any, job: PieceJob
) -> tuple[
    int,
    list[Finding],
    pl.DataFrame,
    pl.DataFrame,
    pl.DataFrame,
    pl.DataFrame,
    list[ReconLine],
    list[int],
    Counter[str],
]:
    """One piece (read here when it is not yet), all the way to reconciled lines (a pure function:
    the unit of work on Dask)."""
    n, found, plain, tax, straddles, dims, detail, why = process_piece(load(piece), job)
    parsed = [Parsed(rec, cdr) for _, rec, cdr in detail]
    lines = reconcile_all(
        parsed, job.tariffs, job.policy, job.tz, job.contracts.default.tolerance, job.pricer
    )
    return n, found, plain, tax, straddles, dims, lines, [o for o, _, _ in detail], why


def run_columnar(
    files: Sequence[Path],
    tariffs: TariffSet | None,
    policy: PricingPolicy,
    tz: str | None,
    contracts: Contracts,
    month: str,
    zone: ZoneInfo,
    history: dict[str, Any],
    say: Callable[[str], None],
    pricer: str = "kernel",
    piece_rows: int = 500_000,
    engine: str = "local",
    scheduler: str | None = None,
    span_bytes: int = SPAN_BYTES,
    parties: bool = True,
    late: Mapping[str, str] | None = None,
    pieces: Iterable[Piece] | None = None,
    special: set[str] | None = None,
    paid: PaidMonths | None = None,
    history_credits: Mapping[str, str] | None = None,
    settled: Mapping[str, str] | None = None,
) -> ColumnarRun:
    """Every piece through :func:`work_piece` (here, or on a Dask cluster: same results, in
    input order), then the duplicate and credit checks over the run. ``late``: the late CDRs the
    month takes (:func:`settlement.jobs.settle`); they take the record path. ``pieces``: the run's
    pieces from elsewhere than ``files`` (a CDR store, :mod:`settlement.columnar.stored`), with
    ``special``, the ids on more than one of their records; ``settled``: the stored CDRs a closed
    month's final run settled (:func:`settlement.jobs.place_lines` excludes them; record path)."""
    if special is None:
        special = special_ids([f for f in files if is_flat_file(f)])
    window = month_window_ms(month, zone)
    run = ColumnarRun(late=dict(late or {}), settled=dict(settled or {}))
    late_ids = frozenset(run.late)
    job = PieceJob(
        tariffs,
        policy,
        tz,
        contracts,
        window,
        special,
        pricer,
        parties,
        late_ids,
        paid,
        frozenset(run.settled),
    )
    known = (
        frozenset(k for k, v in tariffs.by_id.items() if v) if tariffs is not None and len(tariffs) else None
    )
    ndjson: list[Any] = []
    readers: dict[str, Callable[[list[int]], dict[int, Record]]] = {}
    items: Iterable[Any] = (
        iter_run_pieces(files, piece_rows, known, span_bytes, ndjson)
        if pieces is None
        else _exact_readers(pieces, readers)
    )
    if engine == "dask":
        results: Any = _dask_pieces(items, job, scheduler)
    else:
        results = ordered_map(lambda piece: work_piece(piece, job), items, WORKERS)
    for n, found, plain, tax, straddles, dims, lines, ords, why in results:
        run.read += n
        run.rejects += found
        if plain.width:  # a piece the kernel refused has no plain CDRs (nor columns)
            run.plain.append(plain)
        run.taxes.append(tax)
        run.straddles.append(straddles)
        run.dims.append(dims)
        run.detail += lines
        run.detail_ord += ords
        run.record_path += why
        say(f"priced and reconciled {run.read} records ({len(run.detail)} record by record)")
    exact = late_duplicates(run, job, ndjson, readers)
    if paid is not None:  # the late CDRs of paid months took the record path: their months
        for ln in run.detail:
            of = paid.late_of(ln.cdr.id, ln.cdr.end_ms)
            if of is not None:
                run.late.setdefault(ln.cdr.id, of)
    # a credit's original may be a plain CDR of this run (it precedes the history, as in-run
    # originals do in the record engine)
    originals = {**history, **originals_of_credits(run, exact)}
    check_duplicates_and_credits(run.detail, originals, history_credits)
    return run


def _exact_readers(
    pieces: Iterable[Piece], readers: dict[str, Callable[[list[int]], dict[int, Record]]]
) -> Iterator[Piece]:
    """The pieces, keeping each source's ``exact`` callback (what :func:`late_duplicates` re-reads)."""
    for p in pieces:
        if p.exact is not None:
            readers.setdefault(p.source, p.exact)
        yield p


def late_duplicates(
    run: ColumnarRun,
    job: PieceJob,
    ndjson: Sequence[Any],
    readers: Mapping[str, Callable[[list[int]], dict[int, Record]]] | None = None,
) -> dict[tuple[str, int], Cdr]:
    """Plain CDRs whose id is on another record of the run (found after the run for JSON sources)
    move to the record path, their exact CDRs parsed again (counted as ``duplicate id``); returns
    the exact CDRs read (those of the credited originals too). ``readers``: the ``exact`` callback
    of the pieces' sources that are no files."""
    counts: Counter[str] = Counter(id_key(ln.cdr.id) for ln in run.detail)
    if run.plain:
        ids = pl.concat([p.select(id_key_expr()) for p in run.plain])["cdr_id"].value_counts()
        counts.update(dict(ids.iter_rows()))
    dups = sorted(k for k, v in counts.items() if v > 1)
    wanted: dict[str, list[int]] = {}
    moved: list[tuple[int, str, int]] = []
    if dups:
        is_dup = id_key_expr().is_in(pl.Series(dups, dtype=pl.String).implode())
        for part in run.plain:
            for o, src, line in (
                part.filter(is_dup).select("ord", pl.col("source").cast(pl.String), "line").iter_rows()
            ):
                moved.append((o, src, line))
    for _, src, line in _mismatched_originals(run, set(dups)):
        wanted.setdefault(src, []).append(line)
    for _, src, line in moved:
        wanted.setdefault(src, []).append(line)
    if not wanted:
        return {}
    exact = exact_cdrs({s: sorted(set(v)) for s, v in wanted.items()}, ndjson, _parse_exact, readers)
    if not moved:
        return exact
    gone = pl.Series([o for o, _, _ in moved], dtype=pl.Int64).implode()
    run.plain = [p.filter(~pl.col("ord").is_in(gone)) for p in run.plain]
    run.taxes = [t.filter(~pl.col("ord").is_in(gone)) for t in run.taxes]
    run.straddles = [t.filter(~pl.col("ord").is_in(gone)) for t in run.straddles]
    run.dims = [t.filter(~pl.col("ord").is_in(gone)) for t in run.dims]
    parsed = [Parsed(Record(src, line), exact[(src, line)]) for _, src, line in moved]
    tolerance = job.contracts.default.tolerance
    lines = reconcile_all(parsed, job.tariffs, job.policy, job.tz, tolerance, job.pricer)
    run.record_path["duplicate id"] += len(moved)
    both = sorted(
        [*zip(run.detail_ord, run.detail, strict=True), *zip([o for o, _, _ in moved], lines, strict=True)],
        key=lambda x: x[0],
    )
    run.detail_ord = [o for o, _ in both]
    run.detail = [ln for _, ln in both]
    return exact


def _mismatched_originals(run: ColumnarRun, dups: set[str]) -> list[tuple[str, str, int]]:
    """The plain originals a credit does not net (CREDIT_AMOUNT_MISMATCH quotes their reported
    total as the CDR wrote it): (id, source, line). A credit that nets its original needs no words."""
    credits: dict[str, list[Any]] = {}
    for ln in run.detail:
        if ln.cdr.credit and ln.cdr.credit_reference_id and ln.cdr.total_cost is not None:
            credits.setdefault(ln.cdr.credit_reference_id, []).append(ln.cdr.total_cost.excl)
    out = []
    for cid, (src, line, x, _) in _credited(run).items():
        if cid in dups or x is None:
            continue
        if any(mine is not None and mine != -d4(x) for mine in credits.get(cid, [])):
            out.append((cid, src, line))
    return out


def _parse_exact(records: list[Record]) -> list[tuple[Record, Cdr | None]]:
    """Records of JSON sources parsed as the record engine parses them (each file's version is
    that of the record: they were read before, as part of their file)."""
    out: list[tuple[Record, Cdr | None]] = []
    for rec in records:
        parsed = parse_all([rec], None, RunResult())
        out.append((rec, parsed[0].cdr if parsed else None))
    return out


WORKERS = 2  # pieces in flight on the local engine (threads: the heavy parts release the GIL)


def ordered_map(fn: Callable[[Any], Any], items: Any, workers: int) -> Any:
    """``map(fn, items)`` on a thread pool, results in input order, at most ``workers + 1``
    items in flight (memory stays bounded by a few pieces)."""
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending: list[Any] = []
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > workers:
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()


def _dask_pieces(pieces: Any, job: PieceJob, scheduler: str | None) -> Any:
    """Pieces on dask.distributed (a 2-worker LocalCluster unless ``scheduler`` is given), at most
    a few in flight, results yielded in input order."""
    with dask_client(scheduler) as client:
        shared = client.scatter(job, broadcast=True)
        pending: list[Any] = []
        for piece in pieces:
            pending.append(client.submit(work_piece, piece, shared, pure=False))
            if len(pending) > 3:
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()
