"""Step 2 of the columnar engine: every piece of the run through :func:`work_piece` (here on a
thread pool, or on a Dask cluster: same results, in input order), then the duplicate and credit
checks over the run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from dask.distributed import Client, LocalCluster

from pricing.errors import Finding
from pricing.flat import FlatPiece, iter_pieces
from pricing.io import Record
from pricing.model import Money
from pricing.policy import PricingPolicy
from pricing.sessions import TariffSet
from settlement.columnar.piece import PieceJob, process_piece, special_ids
from settlement.contracts import Contracts
from settlement.jobs import Parsed, file_versions, process_chunk, reconcile_all
from settlement.reconcile import ReconLine, check_duplicates_and_credits
from settlement.rules import d4, month_window_ms


@dataclass
class ColumnarRun:
    """What the columnar engine computed: plain CDRs as columns, the others as objects."""

    read: int = 0
    rejects: list[Finding] = field(default_factory=list)
    plain: list[pl.DataFrame] = field(default_factory=list)  # one frame per piece
    taxes: list[pl.DataFrame] = field(default_factory=list)  # recomputed 2.3.0 tax lines of plain CDRs
    straddles: list[pl.DataFrame] = field(default_factory=list)  # (ord, src) of plain CDRs
    detail: list[ReconLine] = field(default_factory=list)
    detail_ord: list[int] = field(default_factory=list)
    extra_findings: list[dict[str, Any]] = field(default_factory=list)
    record_path: Counter[str] = field(default_factory=Counter)  # records sent record by record, by reason


@dataclass
class PieceSource:
    """Where a run's CDRs come from: flat pieces in input order (``pieces(piece_rows)``), the ids
    on more than one record of the run (judged record by record), and records that take the
    record path from the start (before the pieces, counted under ``records_reason``)."""

    pieces: Callable[[int], Iterator[FlatPiece]]
    special: set[str]
    records: list[Record] = field(default_factory=list)
    records_reason: str = ""


def file_source(files: Sequence[Path]) -> PieceSource:
    """Flat-layout Parquet files, in order."""
    return PieceSource(lambda n: iter_pieces(files, n), special_ids(files))


def originals_of_credits(run: ColumnarRun) -> dict[str, Money]:
    """The reported totals of plain CDRs that a record-path credit refers to (the credit check
    of :func:`settlement.reconcile.check_duplicates_and_credits` nets against them)."""
    refs = {ln.cdr.credit_reference_id for ln in run.detail if ln.cdr.credit and ln.cdr.credit_reference_id}
    out: dict[str, Money] = {}
    if not refs:
        return out
    wanted = pl.Series(sorted(refs), dtype=pl.String).implode()
    for part in run.plain:
        hit = part.filter(pl.col("cdr_id").is_in(wanted)).select("cdr_id", "rep_excl", "rep_incl")
        for cid, x, i in hit.iter_rows():
            out.setdefault(cid, Money(None if x is None else d4(x), None if i is None else d4(i)))
    return out


def work_piece(
    piece: Any, job: PieceJob
) -> tuple[
    int, list[Finding], pl.DataFrame, pl.DataFrame, pl.DataFrame, list[ReconLine], list[int], Counter[str]
]:
    """One piece, all the way to reconciled lines (a pure function: the unit of work on Dask)."""
    n, found, plain, tax, straddles, detail, why = process_piece(piece, job)
    parsed = [Parsed(rec, cdr) for _, rec, cdr in detail]
    tolerance = job.contracts.default.tolerance
    lines = reconcile_all(parsed, job.tariffs, job.policy, job.tz, tolerance, job.pricer)
    return n, found, plain, tax, straddles, lines, [o for o, _, _ in detail], why


def run_columnar(
    files: Sequence[Path] | PieceSource,
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
) -> ColumnarRun:
    """Every piece through :func:`work_piece` (here, or on a Dask cluster: same results, in
    input order), then the duplicate and credit checks over the run. ``files``: flat Parquet
    files, or a :class:`PieceSource`."""
    source = files if isinstance(files, PieceSource) else file_source(files)
    window = month_window_ms(month, zone)
    run = ColumnarRun()
    job = PieceJob(tariffs, policy, tz, contracts, window, source.special, pricer)
    if source.records:  # record by record from the start, before every piece (negative order)
        tolerance = contracts.default.tolerance
        versions = file_versions(source.records)
        n, found, lines = process_chunk(source.records, tariffs, policy, tz, tolerance, versions, pricer)
        run.read += n
        run.rejects += found
        run.detail += lines
        run.detail_ord += list(range(-len(lines), 0))
        run.record_path[source.records_reason] += len(source.records)
    pieces = source.pieces(piece_rows)
    if engine == "dask":
        results: Any = _dask_pieces(pieces, job, scheduler)
    else:
        results = ordered_map(lambda piece: work_piece(piece, job), pieces, WORKERS)
    for n, found, plain, tax, straddles, lines, ords, why in results:
        run.read += n
        run.rejects += found
        if plain.width:  # a piece the kernel refused has no plain CDRs (nor columns)
            run.plain.append(plain)
        run.taxes.append(tax)
        run.straddles.append(straddles)
        run.detail += lines
        run.detail_ord += ords
        run.record_path += why
        say(f"priced and reconciled {run.read} records ({len(run.detail)} record by record)")
    # a credit's original may be a plain CDR of this run (it precedes the history, as in-run
    # originals do in the record engine)
    check_duplicates_and_credits(run.detail, {**history, **originals_of_credits(run)})
    return run


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
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        shared = client.scatter(job, broadcast=True)
        pending: list[Any] = []
        for piece in pieces:
            pending.append(client.submit(work_piece, piece, shared, pure=False))
            if len(pending) > 3:
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
