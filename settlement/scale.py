"""The columnar settlement engine: flat Parquet months (:mod:`pricing.flat`) at scale.

Per piece of whole CDRs (bounded memory): the vectorized kernel prices the piece, the reconciliation
status, parties, month membership, line amounts and VAT buckets are computed on columns, and the
piece leaves only integer columns behind. The CDRs that need judgement — anything but MATCH /
ROUNDING, credits and their originals, duplicate ids, straddling periods, several tariffs, no
amount on the contract's basis — go through the record-by-record code of :mod:`settlement.jobs`
(the same functions, so the same findings and words). Statements, findings and the manifest are
then written from columns with polars.

The files are byte-identical to the record-by-record engine on the same input (tested); this
module is the fast path, :func:`settlement.jobs.flat_lines` is its oracle.

Money is exact: reported totals are read as 128-bit decimals into int64 units of 1e-4 (a reported
total with more than 4 decimals is rejected, ``UNSUPPORTED_PRECISION``), recomputed totals come
from the kernel in the same units, line roundings are integer arithmetic.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from pricing.errors import Finding
from pricing.flat import E6_PER_E4, iter_pieces, optional_column, piece_cdrs, record_id, split_piece
from pricing.flat_columns import decimal_e6
from pricing.io import Record, dumps
from pricing.model import Money
from pricing.policy import PricingPolicy
from pricing.sessions import TariffSet
from settlement.contracts import Contracts
from settlement.reconcile import RECON_COLUMNS, STATUSES, ReconLine, check_duplicates_and_credits
from settlement.statement import (
    LINE_COLUMNS,
    Aggregates,
    Line,
    Statement,
    finish,
    minor_unit,
    month_bounds,
    tariffs_vat_bucket,
)

E4 = 10_000
SLICE = 200_000  # rows formatted at a time when writing


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


def month_window_ms(month: str, zone: ZoneInfo) -> tuple[int, int]:
    """[first instant, first instant of the next month) of the month in the zone, epoch ms."""
    first, last = month_bounds(month)
    lo = datetime(first.year, first.month, first.day, tzinfo=zone)
    nxt = last + timedelta(days=1)
    hi = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)
    return int(lo.timestamp()) * 1000, int(hi.timestamp()) * 1000


def special_ids(files: Sequence[Path]) -> set[str]:
    """CDR ids seen on more than one record across the run: duplicates are judged record by
    record (identical or conflicting copies)."""
    import pyarrow.parquet as pq

    counts: list[pl.DataFrame] = []
    for f in files:
        df = pl.from_arrow(pq.ParquetFile(f).read(columns=["cdr_id"]))
        assert isinstance(df, pl.DataFrame)
        first = df.filter(
            pl.col("cdr_id").ne_missing(pl.col("cdr_id").shift(1)) | (pl.int_range(pl.len()) == 0)
        )
        counts.append(first)
    if not counts:
        return set()
    ids = pl.concat(counts).drop_nulls()
    return set(ids.filter(ids["cdr_id"].is_duplicated())["cdr_id"].unique().to_list())


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


def with_parties(frame: pl.DataFrame, contracts: Contracts) -> pl.DataFrame:
    """Add ``cpo`` and ``emsp`` with :func:`settlement.jobs.parties`, once per distinct party
    fields (the location only matters without a CPO, the contract id only without an eMSP)."""
    from settlement.jobs import parties

    null, sep = "\x00", "\x1f"

    def given(a: str, b: str) -> pl.Expr:
        return (pl.col(a).fill_null("") != "") & (pl.col(b).fill_null("") != "")

    def key(cols: list[pl.Expr]) -> pl.Expr:
        return pl.concat_str([c.fill_null(null) for c in cols], separator=sep)

    def back(text: str) -> list[str | None]:
        return [None if v == null else v for v in text.split(sep)]

    # only a contract id's normalized head can match a prefix: map the heads, not every id
    longest = max(
        (len(p.replace("-", "").replace("*", "")) for p in contracts.emsp_by_contract_prefix), default=0
    )
    prefix = (
        pl.col("contract_id")
        .str.to_uppercase()
        .str.replace_all("-", "", literal=True)
        .str.replace_all("*", "", literal=True)
        .str.head(longest)
    )
    cpo_key = key(
        [
            pl.col("country_code"),
            pl.col("party_id"),
            pl.when(given("country_code", "party_id")).then(None).otherwise(pl.col("location_id")),
        ]
    )
    emsp_key = key(
        [
            pl.col("emsp_country_code"),
            pl.col("emsp_party_id"),
            pl.when(given("emsp_country_code", "emsp_party_id")).then(None).otherwise(prefix),
        ]
    )
    keys = frame.select(cpo_key.alias("c"), emsp_key.alias("e"))
    cpo_of = {}
    for k in keys["c"].unique().to_list():
        cc, pid, loc = back(k)
        cpo_of[k] = parties(cc, pid, None, None, loc, None, contracts)[0]
    emsp_of = {}
    for k in keys["e"].unique().to_list():
        ecc, epid, cid = back(k)
        emsp_of[k] = parties(None, None, ecc, epid, None, cid, contracts)[1]
    return frame.with_columns(
        keys["c"].replace_strict(cpo_of, return_dtype=pl.String).alias("cpo"),
        keys["e"].replace_strict(emsp_of, return_dtype=pl.String).alias("emsp"),
    )


@dataclass(frozen=True)
class PieceJob:
    """What every piece of a run is settled with (shipped once to each Dask worker)."""

    tariffs: TariffSet | None
    policy: PricingPolicy
    tz: str | None
    contracts: Contracts
    window: tuple[int, int]  # the month in the statement zone, epoch ms [from, to)
    special: set[str]  # duplicate ids: judged record by record
    pricer: str = "kernel"


def process_piece(
    piece: Any, job: PieceJob
) -> tuple[int, list[Finding], pl.DataFrame, pl.DataFrame, pl.DataFrame, list[tuple[int, Record, Any]]]:
    """One piece: (records read, rejects, plain CDR columns, their tax lines, their straddling
    periods, the records for the record path)."""
    tariffs, policy, tz, contracts = job.tariffs, job.policy, job.tz, job.contracts
    window, special = job.window, job.special
    from pricing.compile import compile_tariffs
    from pricing.fixed_point import half_up_div
    from pricing.kernel import price_table
    from pricing.periods import from_flat

    fr, rejects = split_piece(piece)
    fr.rejects = rejects
    n_rec = fr.n_records
    t = piece.table
    first_row = fr.first_row
    tol = int((contracts.default.tolerance * E4).to_integral_value(rounding="ROUND_FLOOR"))
    found: list[Finding] = []
    for k, (code, message, path) in sorted(rejects.items()):
        line = piece.row0 + int(first_row[k]) + 1
        found.append(Finding(code, message, piece.source, line, record_id(fr, k), path))
    pt, _not_priced, rec_ok = from_flat(fr, tariffs, policy, tz)  # the record path words those
    ct = compile_tariffs(pt.tariffs, pt.zones, pt.group_ranges())
    res = price_table(pt, policy, ct)
    n_s = pt.n_sessions

    # -- per priced session: reported vs recomputed (units of 1e-4)
    rows = first_row[rec_ok]
    rep_x, rep_x_ok = (a[rows] for a in decimal_e6(t.column("reported_total_excl")))
    rep_i, rep_i_ok = (a[rows] for a in decimal_e6(t.column("reported_total_incl")))
    rep_x, rep_i = rep_x // E6_PER_E4, rep_i // E6_PER_E4
    rec_x, rec_x_ok = res["total_excl_e4"], ~res["total_excl_null"]
    rec_i, rec_i_ok = res["total_incl_e4"], ~res["total_incl_null"]
    dx_ok, di_ok = rep_x_ok & rec_x_ok, rep_i_ok & rec_i_ok
    dx, di = rep_x - rec_x, rep_i - rec_i
    # the larger difference (excl. VAT on a tie: max() keeps the first), as reconcile_one
    worst_is_x = dx_ok & (~di_ok | (np.abs(dx) >= np.abs(di)))
    worst = np.where(worst_is_x, dx, di)
    comparable = dx_ok | di_ok

    # -- what needs the record-by-record path
    multi = np.zeros(n_s, bool)
    if len(pt.sess):
        differs = pt.tariff != pt.tariff[pt.s_off[pt.sess]]
        multi[pt.sess[differs]] = True
    credit = optional_column(t, "credit").to_numpy(zero_copy_only=False)[rows]
    credit = np.asarray([bool(c) for c in credit], bool) if credit.dtype == object else credit.astype(bool)
    is_special = (
        pl.from_arrow(t.column("cdr_id").take(rows))
        .is_in(pl.Series(sorted(special), dtype=pl.String).implode())
        .to_numpy()
        if special
        else np.zeros(n_s, bool)
    )

    cols = {
        name: optional_column(t, name).take(rows)
        for name in (
            "cdr_id",
            "currency",
            "country_code",
            "party_id",
            "emsp_country_code",
            "emsp_party_id",
            "location_id",
            "contract_id",
        )
    }
    frame = pl.DataFrame(
        {
            **{k: pl.from_arrow(v) for k, v in cols.items()},
            "rec": rec_ok,
            "sess": np.arange(n_s),
            "start_ms": fr.cols["cdr_start_ms"][0][rows],
            "end_ms": fr.cols["cdr_end_ms"][0][rows],
            "rep_excl": pl.Series(rep_x).set(pl.Series(~rep_x_ok), None),
            "rep_incl": pl.Series(rep_i).set(pl.Series(~rep_i_ok), None),
            "rec_excl": pl.Series(rec_x).set(pl.Series(~rec_x_ok), None),
            "rec_incl": pl.Series(rec_i).set(pl.Series(~rec_i_ok), None),
            "diff_excl": pl.Series(dx).set(pl.Series(~dx_ok), None),
            "diff_incl": pl.Series(di).set(pl.Series(~di_ok), None),
            "worst": worst,
            "worst_is_x": worst_is_x,
            "energy": half_up_div(res["energy_mwh"], 100),
            "primary": pt.s_primary,
            "candidate": comparable & ~credit & ~is_special & ~multi,
        }
    )
    frame = with_parties(frame, contracts).with_columns(pl.col("currency").str.to_uppercase().alias("cur"))
    # the contract's basis and dispute treatment per pair
    pairs = frame.select("cpo", "emsp").unique().rows()
    terms = [contracts.terms(cpo, emsp) for cpo, emsp in pairs]
    by_pair = pl.DataFrame(
        {
            "cpo": [c for c, _ in pairs],
            "emsp": [e for _, e in pairs],
            "basis": [x.basis for x in terms],
            "exclude_disputed": [x.disputed == "exclude" for x in terms],
        },
        schema={"cpo": pl.String, "emsp": pl.String, "basis": pl.String, "exclude_disputed": pl.Boolean},
    )
    frame = frame.join(by_pair, on=["cpo", "emsp"], how="left", maintain_order="left")
    reported = pl.col("basis") == "reported"
    frame = frame.with_columns(
        pl.when(reported).then("rep_excl").otherwise("rec_excl").alias("amt_excl"),
        pl.when(reported).then("rep_incl").otherwise("rec_incl").alias("amt_incl"),
    )
    lo, hi = window
    end_s = (pl.col("end_ms") // 1000) * 1000
    frame = frame.with_columns(
        ((end_s >= lo) & (end_s < hi)).alias("in_month"),
        (
            pl.col("candidate")
            & pl.col("amt_excl").is_not_null()
            & (pl.col("amt_excl") >= 0)
            & (pl.col("amt_incl").is_null() | (pl.col("amt_incl") >= 0))
        ).alias("plain"),
    )
    plain_mask = frame["plain"].to_numpy()
    buckets = [
        tariffs_vat_bucket((tf,)) for tf in pt.tariffs
    ]  # one tariff per plain CDR (several → record path)
    plain = frame.filter("plain").with_columns(
        pl.when(pl.col("amt_incl").is_null())
        .then(pl.lit("unknown"))
        .otherwise(pl.col("primary").replace_strict(dict(enumerate(buckets)), return_dtype=pl.String))
        .alias("vat_rate"),
        status_expr(tol).alias("status"),
    )
    line_of = piece.row0 + first_row.astype(np.int64) + 1
    ord_of = piece.base + first_row.astype(np.int64)  # input order across files
    rec_of_plain = plain["rec"].to_numpy()
    plain = plain.with_columns(
        pl.Series("ord", ord_of[rec_of_plain]),
        pl.Series("line", line_of[rec_of_plain]),
        pl.lit(piece.source).alias("source"),
    )
    no = np.zeros(0, np.int64)
    straddles = pl.DataFrame(
        {"sess": res.get("straddle_sess", no), "src": res.get("straddle_src", no)},
        schema={"sess": pl.Int64, "src": pl.Int64},
    ).join(plain.select("sess", "ord"), on="sess", how="inner")
    plain = plain.with_columns(pl.col("sess").is_in(straddles["sess"].implode()).alias("straddles"))
    plain = plain.with_columns(reasons_expr().alias("reasons"))
    disputed = pl.col("status").is_in(["OVERCHARGED", "UNDERCHARGED"]) & (pl.col("basis") == "reported")
    plain = plain.with_columns(
        disputed.alias("disputed"),
        pl.when(disputed)
        .then(pl.col("status").str.to_lowercase() + " beyond tolerance")
        .otherwise(pl.lit(""))
        .alias("dispute_reason"),
        (~disputed | ~pl.col("exclude_disputed")).alias("included"),
    )
    plain = plain.with_columns(  # few distinct values: keep them small in memory
        pl.col(CATEGORIES).cast(pl.Categorical)
    ).drop(
        "exclude_disputed",
        "candidate",
        "plain",
        "primary",
        "contract_id",
        "country_code",
        "party_id",
        "emsp_country_code",
        "emsp_party_id",
    )
    # recomputed 2.3.0 tax lines of plain CDRs on the recomputed basis
    tax = pl.DataFrame(
        {"sess": res["tax_sess"], "rate_e2": res["tax_rate_e2"], "amount": res["tax_amount_e4"]},
        schema={"sess": pl.Int64, "rate_e2": pl.Int64, "amount": pl.Int64},
    )
    tax = tax.join(
        plain.filter(pl.col("basis") == "recomputed").select("sess", "ord"), on="sess", how="inner"
    ).select("ord", "rate_e2", "amount")
    plain = plain.drop("rec", "sess")

    # -- the records that need the record path (not rejected, not plain)
    todo = np.ones(n_rec, bool)
    todo[list(rejects)] = False
    todo[rec_ok[plain_mask]] = False
    detail_k = np.flatnonzero(todo).tolist()
    cdrs = piece_cdrs(piece, fr, detail_k)
    detail = [
        (int(ord_of[k]), Record(piece.source, int(line_of[k])), cdr)
        for k, cdr in zip(detail_k, cdrs, strict=True)
    ]
    return n_rec, found, plain, tax, straddles.select("ord", "src"), detail


CATEGORIES = [
    "cpo",
    "emsp",
    "cur",
    "currency",
    "location_id",
    "basis",
    "status",
    "reasons",
    "source",
    "vat_rate",
]
CATEGORIES += ["dispute_reason"]


def status_expr(tol: int) -> pl.Expr:
    w = pl.col("worst")
    return (
        pl.when(w == 0)
        .then(pl.lit("MATCH"))
        .when(w.abs() <= tol)
        .then(pl.lit("ROUNDING"))
        .when(w > 0)
        .then(pl.lit("OVERCHARGED"))
        .otherwise(pl.lit("UNDERCHARGED"))
    )


def reasons_expr() -> pl.Expr:
    """The sorted, distinct finding codes of a plain CDR, comma-joined (``ReconLine.codes``)."""
    straddle = "PERIOD_STRADDLES_BOUNDARY"
    expr = pl.when(False).then(pl.lit(""))
    for status in ("MATCH", "ROUNDING", "OVERCHARGED", "UNDERCHARGED"):
        own = [] if status == "MATCH" else [status]
        for has in (True, False):
            codes = ",".join(sorted([*own, *([straddle] if has else [])]))
            expr = expr.when((pl.col("status") == status) & (pl.col("straddles") == has)).then(pl.lit(codes))
    return expr.otherwise(pl.lit(None, pl.String))


# ---- the run ------------------------------------------------------------------------------------


def work_piece(
    piece: Any, job: PieceJob
) -> tuple[int, list[Finding], pl.DataFrame, pl.DataFrame, pl.DataFrame, list[ReconLine], list[int]]:
    """One piece, all the way to reconciled lines (a pure function: the unit of work on Dask)."""
    from settlement.jobs import Parsed, reconcile_all

    n, found, plain, tax, straddles, detail = process_piece(piece, job)
    parsed = [Parsed(rec, cdr) for _, rec, cdr in detail]
    tolerance = job.contracts.default.tolerance
    lines = reconcile_all(parsed, job.tariffs, job.policy, job.tz, tolerance, job.pricer)
    return n, found, plain, tax, straddles, lines, [o for o, _, _ in detail]


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
) -> ColumnarRun:
    """Every piece through :func:`work_piece` (here, or on a Dask cluster: same results, in
    input order), then the duplicate and credit checks over the run."""
    special = special_ids(files)
    window = month_window_ms(month, zone)
    run = ColumnarRun()
    job = PieceJob(tariffs, policy, tz, contracts, window, special, pricer)
    pieces = iter_pieces(files, piece_rows)
    if engine == "dask":
        results: Any = _dask_pieces(pieces, job, scheduler)
    else:
        results = ordered_map(lambda piece: work_piece(piece, job), pieces, WORKERS)
    for n, found, plain, tax, straddles, lines, ords in results:
        run.read += n
        run.rejects += found
        run.plain.append(plain)
        run.taxes.append(tax)
        run.straddles.append(straddles)
        run.detail += lines
        run.detail_ord += ords
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
    from dask.distributed import Client, LocalCluster

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


def e4_text(expr: pl.Expr) -> pl.Expr:
    """4-decimal text of a 1e-4 integer (null stays null)."""
    a = expr.abs()
    sign = pl.when(expr < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    return sign + (a // E4).cast(pl.String) + "." + (a % E4).cast(pl.String).str.zfill(4)


def minor_text(expr: pl.Expr, m: int) -> pl.Expr:
    """Text of a 1e-4 integer already rounded to ``m`` decimals (as ``str(Decimal)``)."""
    a = expr.abs()
    sign = pl.when(expr < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    whole = sign + (a // E4).cast(pl.String)
    if m == 0:
        return whole
    return whole + "." + ((a % E4) // 10 ** (4 - m)).cast(pl.String).str.zfill(m)


def local_text(ms: str, zone: str) -> pl.Expr:
    return (
        pl.from_epoch(pl.col(ms) // 1000, time_unit="s")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(zone)
        .dt.strftime("%Y-%m-%dT%H:%M:%S")
    )


def json_value(name: str) -> pl.Expr:
    """The JSON text of a column's value, as Python's json.dumps writes it."""
    return pl.struct(name).struct.json_encode().str.slice(len(json.dumps(name)) + 2).str.head(-1)


def d4(v: int) -> Decimal:
    return Decimal(int(v)).scaleb(-4)


def dm(v: int, m: int) -> Decimal:
    """A 1e-4 integer rounded to m decimals, as a Decimal with exactly m decimals."""
    return Decimal(int(v)).scaleb(-4).quantize(Decimal(1).scaleb(-m))


def line_frame(lines: Sequence[Line], ords: Sequence[int]) -> pl.DataFrame:
    """Detail lines (objects) as the columns of a statement's line table."""
    rows = [ln.as_row() for ln in lines]
    data: dict[str, Any] = {c: [r[c] for r in rows] for c in LINE_COLUMNS}
    schema: dict[str, Any] = {c: pl.String for c in LINE_COLUMNS}
    schema["credit"] = schema["disputed"] = pl.Boolean
    frame = pl.DataFrame(data, schema=schema)
    return frame.with_columns(pl.Series("ord", list(ords), pl.Int64))


def plain_lines(p: pl.DataFrame, zone: str, m: int) -> pl.DataFrame:
    """Plain CDRs of one statement as the columns of its line table (+ integer columns)."""
    return p.select(
        pl.col("cdr_id"),
        local_text("start_ms", zone).alias("session_start"),
        local_text("end_ms", zone).alias("session_end"),
        pl.col("location_id").cast(pl.String).fill_null(""),
        e4_text(pl.col("energy")).alias("energy_kwh"),
        e4_text(pl.col("amt_excl")).alias("amount_excl_vat"),
        e4_text(pl.col("amt_incl")).alias("amount_incl_vat"),
        minor_text(pl.col("excl_r"), m).alias("line_excl_vat"),
        minor_text(pl.col("incl_r") - pl.col("excl_r"), m).alias("line_vat"),
        minor_text(pl.col("incl_r"), m).alias("line_incl_vat"),
        pl.col("vat_rate"),
        pl.lit(False).alias("credit"),
        pl.lit(None, pl.String).alias("credit_reference_id"),
        pl.col("status"),
        pl.col("reasons"),
        pl.col("disputed"),
        pl.col("dispute_reason"),
        pl.col("ord"),
        pl.col("included"),
        pl.col("disputed").alias("disputed_"),
        pl.col("energy"),
        pl.col("amt_excl"),
        pl.col("amt_incl"),
        pl.col("excl_r"),
        pl.col("incl_r"),
    )


def add_aggregates(x: Aggregates, y: Aggregates) -> Aggregates:
    out = Aggregates(
        lines=x.lines + y.lines,
        disputed=x.disputed + y.disputed,
        disputed_excluded=x.disputed_excluded + y.disputed_excluded,
        energy_kwh=x.energy_kwh + y.energy_kwh,
        unrounded_excl=x.unrounded_excl + y.unrounded_excl,
        total_excl=x.total_excl + y.total_excl,
        unknown_vat=x.unknown_vat + y.unknown_vat,
        unrounded_incl=x.unrounded_incl + y.unrounded_incl,
        sessions=x.sessions + y.sessions,
    )
    for src in (x, y):
        for k, v in src.vat_by_rate.items():
            out.vat_by_rate[k] += v
        for k, v in src.base_by_rate.items():
            out.base_by_rate[k] += v
        for k, v in src.taxes.items():
            out.taxes[k] += v
    return out


# ---- statements and files -----------------------------------------------------------------------


@dataclass
class Built:
    """One statement: header and totals (``st``, no lines) and what its line tables are made of
    (their text is made when the statement is written, one statement at a time)."""

    st: Statement
    n_lines: int
    plain: pl.DataFrame  # all plain CDRs of the run; this statement's are those of ``key``
    key: tuple[str, str, str]
    detail_lines: pl.DataFrame  # included record-path lines, LINE_COLUMNS + ord
    detail_disputed: pl.DataFrame  # disputed record-path lines, LINE_COLUMNS + ord + included
    zone: str
    minor: int

    def tables(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(included lines, disputed lines), sorted as the record engine sorts them."""
        if not self.plain.height:  # every CDR of the run went the record way
            return _sorted_lines([], self.detail_lines), _sorted_lines([], self.detail_disputed)
        cpo, emsp, cur = self.key
        mine = self.plain.filter(
            pl.col("in_month") & (pl.col("cpo") == cpo) & (pl.col("emsp") == emsp) & (pl.col("cur") == cur)
        )
        text = plain_lines(mine, self.zone, self.minor).select(*LINE_COLUMNS, "ord", "included", "disputed_")
        lines = _sorted_lines([text.filter("included").drop("included", "disputed_")], self.detail_lines)
        disputed = _sorted_lines([text.filter("disputed_").drop("disputed_")], self.detail_disputed)
        return lines, disputed


def build(
    run: ColumnarRun, contracts: Contracts, month: str, zone: ZoneInfo
) -> tuple[list[Built], dict[str, Any], pl.DataFrame, Any]:
    """Statements, counts and the plain rows (for the run files) of a columnar run."""
    from settlement.jobs import RunResult, mixed_currency_findings, place_lines

    sub = RunResult()
    groups: dict[tuple[str, str, str], Statement] = {}
    pair_currencies: dict[tuple[str, str], set[str]] = defaultdict(set)
    origin: dict[int, ReconLine] = {}
    place_lines(run.detail, zone, month, contracts, sub, groups, pair_currencies, origin)
    ord_of = {id(ln): o for ln, o in zip(run.detail, run.detail_ord, strict=True)}
    plain = pl.concat(run.plain, how="vertical_relaxed", rechunk=False) if run.plain else pl.DataFrame()
    run.plain.clear()
    taxes = pl.concat(run.taxes) if run.taxes else pl.DataFrame()
    sums: dict[tuple[str, str, str], Aggregates] = {}
    n_in = excluded_plain = 0
    if plain.height:
        units = {c: 10 ** (4 - minor_unit(c)) for c in plain["cur"].cast(pl.String).unique().to_list()}
        unit = pl.col("cur").cast(pl.String).replace_strict(units, return_dtype=pl.Int64)
        plain = plain.with_columns(round_to(pl.col("amt_excl"), unit).alias("excl_r"))
        plain = plain.with_columns(round_to(pl.col("amt_incl"), unit).alias("incl_r"))
        sums = group_aggregates(plain, taxes)
        n_in, excluded_plain = plain.select(
            pl.col("in_month").sum().alias("n"), (pl.col("in_month") & ~pl.col("included")).sum().alias("x")
        ).row(0)
    for cpo, emsp, cur in sums:
        pair_currencies[(cpo, emsp)].add(cur)
    keys = set(groups) | set(sums)
    built: list[Built] = []
    zone_name = zone.key
    for key in sorted(keys):
        cpo, emsp, cur = key
        det = groups.get(key) or Statement(cpo, emsp, cur, month, contracts.terms(cpo, emsp))
        agg = add_aggregates(sums.get(key, Aggregates()), _detail_aggregates(det))
        st = Statement(cpo, emsp, cur, month, det.terms)
        finish(st, contracts, agg)
        member = {id(ln) for ln in det.lines}
        det_lines = line_frame(det.lines, [ord_of[id(origin[id(ln)])] for ln in det.lines])
        det_disputed = line_frame(
            det.disputed, [ord_of[id(origin[id(ln)])] for ln in det.disputed]
        ).with_columns(pl.Series("included", [id(ln) in member for ln in det.disputed], pl.Boolean))
        built.append(Built(st, agg.lines, plain, key, det_lines, det_disputed, zone_name, minor_unit(cur)))
    counts = {
        "read": run.read,
        "settled": n_in - excluded_plain + len(sub.settled_ids),
        "excluded": excluded_plain + len(sub.excluded),
        "rejected": len(run.rejects),
        "out_of_month": (plain.height - n_in) + len(sub.out_of_month),
    }
    extra = run.extra_findings + mixed_currency_findings(pair_currencies)
    return built, {"counts": counts, "extra": extra}, plain, sub


def round_to(expr: pl.Expr, unit: pl.Expr) -> pl.Expr:
    """Half-up (away from zero) to a multiple of ``unit`` (1e-4 integers)."""
    q = (expr.abs() + unit // 2) // unit * unit
    return pl.when(expr < 0).then(-q).otherwise(q)


def group_aggregates(plain: pl.DataFrame, taxes: pl.DataFrame) -> dict[tuple[str, str, str], Aggregates]:
    """Per statement (CPO, eMSP, currency): the sums of its plain lines, in one pass."""
    from pricing.report import percentage

    keys = ["cpo", "emsp", "cur"]
    rows = plain.filter("in_month").select(
        *keys,
        "included",
        "disputed",
        "energy",
        "amt_excl",
        "amt_incl",
        "excl_r",
        "incl_r",
        "vat_rate",
        "ord",
    )
    inc = pl.col("included")
    known = inc & pl.col("incl_r").is_not_null()
    main = rows.group_by(keys).agg(
        inc.sum().alias("n"),
        pl.col("energy").filter(inc).sum().alias("energy"),
        pl.col("amt_excl").filter(inc).sum().alias("amt_excl"),
        pl.col("excl_r").filter(inc).sum().alias("excl_r"),
        (inc & pl.col("incl_r").is_null()).sum().alias("unknown"),
        pl.col("amt_incl").filter(known).sum().alias("amt_incl"),
        pl.col("disputed").sum().alias("disputed"),
        (pl.col("disputed") & ~inc).sum().alias("disputed_excluded"),
    )
    out: dict[tuple[str, str, str], Aggregates] = {}
    for r in main.iter_rows(named=True):
        key = (str(r["cpo"]), str(r["emsp"]), str(r["cur"]))
        m = minor_unit(r["cur"])
        a = Aggregates(disputed=int(r["disputed"]), disputed_excluded=int(r["disputed_excluded"]))
        if r["n"]:
            a.lines = a.sessions = int(r["n"])  # plain lines are never credits
            a.energy_kwh, a.unrounded_excl = d4(r["energy"]), d4(r["amt_excl"])
            a.total_excl, a.unknown_vat = dm(r["excl_r"], m), int(r["unknown"])
            if int(r["n"]) > int(r["unknown"]):
                a.unrounded_incl = d4(r["amt_incl"])
        out[key] = a
    by_rate = (
        rows.filter(known)
        .group_by([*keys, "vat_rate"])
        .agg((pl.col("incl_r") - pl.col("excl_r")).sum().alias("vat"), pl.col("excl_r").sum().alias("base"))
    )
    for cpo, emsp, cur, rate, vat, base in by_rate.iter_rows():
        m = minor_unit(str(cur))
        out[(str(cpo), str(emsp), str(cur))].vat_by_rate[str(rate)] += dm(vat, m)
        out[(str(cpo), str(emsp), str(cur))].base_by_rate[str(rate)] += dm(base, m)
    if taxes.height:
        tax = (
            taxes.join(rows.filter(inc).select(*keys, "ord"), on="ord", how="inner")
            .group_by([*keys, "rate_e2"])
            .agg(pl.col("amount").sum())
        )
        for cpo, emsp, cur, rate, amount in tax.iter_rows():
            out[(str(cpo), str(emsp), str(cur))].taxes[("VAT", percentage(int(rate)))] += d4(amount)
    return out


def _sorted_lines(frames: list[pl.DataFrame], detail: pl.DataFrame) -> pl.DataFrame:
    """Plain and detail lines of a statement by (session end, CDR id, input order): the stable
    sort of the record engine."""
    return pl.concat([*frames, detail], how="vertical_relaxed").sort(["session_end", "cdr_id", "ord"])


def _detail_aggregates(st: Statement) -> Aggregates:
    from settlement.statement import aggregate

    return aggregate(st)


def _daily(lines: pl.DataFrame) -> dict[int, tuple[Decimal, Decimal]]:
    if not lines.height:
        return {}
    by = (
        lines.select(
            pl.col("session_end").str.slice(8, 2).cast(pl.Int64).alias("d"),
            pl.col("energy_kwh").str.to_decimal(scale=4).alias("e"),
            pl.col("line_excl_vat").str.to_decimal(scale=4).alias("a"),
        )
        .group_by("d")
        .agg(pl.col("e").sum(), pl.col("a").sum())
    )
    return {int(d) - 1: (Decimal(e), Decimal(a)) for d, e, a in by.iter_rows()}


def _json_writer(frame: pl.DataFrame) -> tuple[int, Callable[[Any], None]]:
    """Line rows as :func:`settlement.render.compact_rows` writes them."""

    def write(fh: Any) -> None:
        write_items(fh, frame, json_object(frame, sorted(LINE_COLUMNS)))

    return frame.height, write


NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def json_object(frame: pl.DataFrame, cols: Sequence[str]) -> pl.Expr:
    """``json.dumps(row, separators=(",", ":"), ensure_ascii=False)`` of the ``cols`` of each row
    (string / boolean columns), by concatenation; a string column holding a character JSON must
    escape is encoded by polars' JSON writer instead."""
    parts: list[pl.Expr] = []
    for i, c in enumerate(cols):
        key = ("{" if i == 0 else ",") + json.dumps(c) + ":"
        dtype = frame.schema[c]
        if dtype == pl.Boolean:
            value = pl.when(pl.col(c)).then(pl.lit("true")).otherwise(pl.lit("false"))
        elif frame.height and frame.select(pl.col(c).str.contains(NEEDS_ESCAPE).any()).item():
            value = json_value(c)
        else:
            value = pl.lit('"') + pl.col(c) + pl.lit('"')
        parts.append(pl.lit(key) + value.fill_null(pl.lit("null")))
    return pl.concat_str(parts) + pl.lit("}")


def write_text(fh: Any, text: pl.Series) -> None:
    """Each value on its own line, written by polars into the binary file ``fh``."""
    if len(text):
        text.to_frame("t").write_csv(fh, include_header=False, quote_style="never", line_terminator="\n")


def write_items(fh: Any, frame: pl.DataFrame, item: pl.Expr) -> None:
    """JSON list items (``item`` of each row), indented by 4, separated by ``,\n``, no newline after
    the last (:func:`settlement.render.write_document` writes the rest)."""
    text = frame.select((pl.lit("    ") + item).alias("t"))["t"]
    n = len(text)
    for lo in range(0, n - 1, SLICE):
        write_text(fh, text.slice(lo, min(SLICE, n - 1 - lo)) + ",")
    if n:
        fh.write(text[n - 1].encode("utf-8"))


def write_statement(b: Built, folder: Path, locale: str) -> None:
    from settlement.render import (
        HTML_MAX_LINES,
        invoice_reconciliation_record,
        statement_document,
        statement_html,
        write_document,
    )

    folder.mkdir(parents=True, exist_ok=True)
    st = b.st
    lines, disputed = b.tables()
    n = lines.height
    doc = statement_document(st)  # (no lines yet) the lists are streamed in below
    doc.pop("lines")
    doc.pop("disputed")
    with open(folder / "statement.json", "wb") as fh:
        write_document(doc, {"lines": _json_writer(lines), "disputed": _json_writer(disputed)}, fh)
    with open(folder / "lines.csv", "wb") as fh:
        fh.write((",".join(LINE_COLUMNS) + "\n").encode("utf-8"))
        if n:
            lines.select(LINE_COLUMNS).with_columns(
                pl.col(pl.String).replace("", None)  # csv.writer writes "" as nothing
            ).write_csv(
                fh, include_header=False, line_terminator="\n", quote_style="necessary", null_value=""
            )

    def ids(fh: Any) -> None:
        write_items(fh, lines, json_value("cdr_id"))

    with open(folder / "invoice_reconciliation_record.json", "wb") as fh:
        write_document(invoice_reconciliation_record(st), {"cdrs": (n, ids)}, fh, ensure_ascii=True)
    st.lines = [_line_of_row(r) for r in lines.head(HTML_MAX_LINES).iter_rows(named=True)]
    shown = [(_line_of_row(r), r["included"]) for r in disputed.head(HTML_MAX_LINES).iter_rows(named=True)]
    st.disputed = [ln for ln, _ in shown]
    members = [ln for ln, included in shown if included]
    html = statement_html(st, locale, _daily(lines), n, members, disputed.height)
    (folder / "statement.html").write_text(html, encoding="utf-8")


def _line_of_row(r: dict[str, Any]) -> Line:
    def dec(v: str | None) -> Decimal | None:
        return None if v is None else Decimal(v)

    return Line(
        cdr_id=r["cdr_id"],
        session_start=r["session_start"],
        session_end=r["session_end"],
        day=r["session_end"][:10],
        location_id=r["location_id"],
        energy_kwh=Decimal(r["energy_kwh"]),
        amount_excl=Decimal(r["amount_excl_vat"]),
        amount_incl=dec(r["amount_incl_vat"]),
        excl=Decimal(r["line_excl_vat"]),
        incl=dec(r["line_incl_vat"]),
        vat_bucket=r["vat_rate"],
        taxes=[],
        credit=r["credit"],
        credit_reference_id=r["credit_reference_id"],
        status=r["status"],
        reasons=r["reasons"],
        disputed=r["disputed"],
        dispute_reason=r["dispute_reason"],
    )


def _recon_text(part: pl.DataFrame) -> pl.DataFrame:
    """reconciliation.ndjson rows of plain CDRs: (ord, seq, text)."""
    cols = {
        "cdr_id": pl.col("cdr_id"),
        "status": pl.col("status"),
        "reasons": pl.col("reasons"),
        "currency": pl.col("currency"),
        "credit": pl.lit(False),
        "reported_total_excl_vat": e4_text(pl.col("rep_excl")),
        "recomputed_total_excl_vat": e4_text(pl.col("rec_excl")),
        "diff_excl_vat": e4_text(pl.col("diff_excl")),
        "reported_total_incl_vat": e4_text(pl.col("rep_incl")),
        "recomputed_total_incl_vat": e4_text(pl.col("rec_incl")),
        "diff_incl_vat": e4_text(pl.col("diff_incl")),
        "source": pl.col("source"),
        "line": pl.col("line"),
    }
    assert list(cols) == RECON_COLUMNS
    return part.select(
        "ord", pl.lit(0, pl.Int64).alias("seq"), pl.struct(**cols).struct.json_encode().alias("text")
    )


STRADDLE_MESSAGE = (
    "charging period {} straddles a tariff restriction boundary (a price change inside the period); it "
    "was priced by its state at its start. The CPO must start a new period at every price change"
)


def _finding_text(**cols: pl.Expr) -> pl.Expr:
    base = {
        "dimension": pl.lit(None, pl.String),
        "period": pl.lit(None, pl.Int64),
        "amount": pl.lit(None, pl.String),
    }
    row = {"cdr_id": pl.col("cdr_id"), "code": cols["code"], **base}
    row.update({k: v for k, v in cols.items() if k != "code"})
    row.update({"source": pl.col("source"), "line": pl.col("line")})
    order = ["cdr_id", "code", "dimension", "period", "amount", "message", "source", "line"]
    return pl.struct(**{k: row[k] for k in order}).struct.json_encode()


def _finding_texts(part: pl.DataFrame, straddles: pl.DataFrame, tolerance: Decimal) -> pl.DataFrame:
    """The findings of plain CDRs as reconcile_one words them, (ord, seq, text): straddling
    periods (in period order), then the status finding (ROUNDING, or OVER/UNDERCHARGED)."""
    keys = part.select("ord", "cdr_id", "source", "line")
    straddle = (
        straddles.join(keys, on="ord", how="inner")
        .sort(["ord", "src"])
        .select(
            "ord",
            pl.col("src").alias("seq"),
            _finding_text(
                code=pl.lit("PERIOD_STRADDLES_BOUNDARY"),
                period=pl.col("src"),
                message=pl.lit(STRADDLE_MESSAGE.split("{}")[0])
                + pl.col("src").cast(pl.String)
                + pl.lit(STRADDLE_MESSAGE.split("{}")[1]),
            ).alias("text"),
        )
    )
    last = pl.lit(1 << 40, pl.Int64).alias("seq")  # after the straddles of the same CDR
    w = pl.col("worst")
    rounding = part.filter(pl.col("status") == "ROUNDING").select(
        "ord",
        last,
        _finding_text(
            code=pl.lit("ROUNDING"),
            dimension=pl.lit("total"),
            amount=e4_text(w),
            message=pl.lit("reported and recomputed totals differ by ")
            + pl.when(w < 0).then(pl.lit("-")).otherwise(pl.lit("+"))
            + e4_text(w.abs())
            + pl.lit(f" (within tolerance {tolerance})"),
        ).alias("text"),
    )
    # OVER/UNDER: said in excl. VAT terms when that differs beyond the tolerance
    tol = int((tolerance * E4).to_integral_value(rounding="ROUND_FLOOR"))
    dx = pl.col("diff_excl")
    use_x = dx.is_not_null() & (dx.abs() > tol)
    which_x = use_x | pl.col("worst_is_x")
    diff = pl.when(use_x).then(dx).otherwise(w)
    rep = pl.when(which_x).then(pl.col("rep_excl")).otherwise(pl.col("rep_incl"))
    ours = pl.when(which_x).then(pl.col("rec_excl")).otherwise(pl.col("rec_incl"))
    over = part.filter(pl.col("status").is_in(["OVERCHARGED", "UNDERCHARGED"])).select(
        "ord",
        last,
        _finding_text(
            code=pl.col("status"),
            dimension=pl.lit("total"),
            amount=e4_text(diff),
            message=pl.lit("the CPO billed ")
            + e4_text(diff.abs())
            + " "
            + pl.col("currency")
            + pl.when(diff > 0).then(pl.lit(" more")).otherwise(pl.lit(" less"))
            + " than the tariff gives ("
            + pl.when(which_x).then(pl.lit("excl. VAT")).otherwise(pl.lit("incl. VAT"))
            + ": reported "
            + e4_text(rep)
            + ", recomputed "
            + e4_text(ours)
            + ")",
        ).alias("text"),
    )
    return pl.concat([straddle, rounding, over]).sort(["ord", "seq"])


def _write_in_order(
    fh: Any, plain: pl.DataFrame, make: Callable[[pl.DataFrame], pl.DataFrame], detail: pl.DataFrame
) -> None:
    """Texts in input order: ``make`` turns contiguous slices of the plain rows (already in input
    order) into (ord, seq, text); the record-path rows (``detail``: ord, seq, text) are merged in
    by ``ord``. Nothing is sorted as a whole; memory is bounded by the slice."""
    detail = detail.sort(["ord", "seq"])
    det_ord = detail["ord"].to_numpy()
    done = 0
    step = 2 * SLICE
    for lo in range(0, plain.height, step):
        part = plain.slice(lo, step)
        last = lo + step >= plain.height
        upto = len(det_ord) if last else int(np.searchsorted(det_ord, part["ord"][-1], "right"))
        texts = make(part)
        if upto > done:
            texts = pl.concat([texts, detail.slice(done, upto - done)]).sort(["ord", "seq"])
            done = upto
        write_text(fh, texts["text"])
    if done < len(det_ord):
        write_text(fh, detail.slice(done)["text"])


def write_columnar(
    run: ColumnarRun,
    contracts: Contracts,
    out_dir: str | Any,
    month: str,
    zone: ZoneInfo,
    inputs: Sequence[Any],
    settings: dict[str, Any],
    locale: str,
    say: Callable[[str], None],
) -> tuple[Path, dict[str, int], list[Statement]]:
    from settlement.jobs import (
        atomic_output,
        out_of_month_finding,
        statement_entry,
        write_manifest,
        write_rejects,
    )

    say("building statements")
    built, meta, plain, sub = build(run, contracts, month, zone)
    tolerance = contracts.default.tolerance

    def recon_row(ln: ReconLine) -> list[str]:
        return [dumps(ln.as_row())]

    def finding_rows(ln: ReconLine) -> list[str]:
        return [dumps(f.as_row()) for f in ln.findings]

    def detail_texts(
        lines: Sequence[ReconLine], ord_of: dict[int, int], make: Callable[[ReconLine], list[str]]
    ) -> pl.DataFrame:
        data = [(ord_of[id(ln)], seq, t) for ln in lines for seq, t in enumerate(make(ln))]
        return pl.DataFrame(data, schema={"ord": pl.Int64, "seq": pl.Int64, "text": pl.String}, orient="row")

    ord_of = dict(zip(map(id, run.detail), run.detail_ord, strict=True))

    def reconciliation(tmp: Path) -> None:
        with open(tmp / "reconciliation.ndjson", "wb") as fh:
            _write_in_order(fh, plain, _recon_text, detail_texts(run.detail, ord_of, recon_row))

    def findings(tmp: Path) -> None:
        straddles = pl.concat(run.straddles).sort("ord") if run.straddles else pl.DataFrame()
        with open(tmp / "findings.ndjson", "wb") as fh:
            _write_in_order(
                fh,
                plain,
                lambda part: _finding_texts(part, straddles, tolerance),
                detail_texts(run.detail, ord_of, finding_rows),
            )
            outside = plain.filter(~pl.col("in_month")) if plain.height else plain
            oom = [
                (o, dumps(out_of_month_finding(cid, end, month, src, line)))
                for o, cid, src, line, end in (
                    outside.select(
                        "ord", "cdr_id", pl.col("source").cast(pl.String), "line", "end_ms"
                    ).iter_rows()
                    if outside.height
                    else []
                )
            ]
            oom += [
                (
                    ord_of[id(ln)],
                    dumps(out_of_month_finding(ln.cdr.id, ln.cdr.end_ms, month, ln.source, ln.line)),
                )
                for ln in sub.out_of_month
            ]
            oom.sort(key=lambda r: r[0])
            fh.writelines((t + "\n").encode("utf-8") for _, t in oom)
            fh.writelines((dumps(r) + "\n").encode("utf-8") for r in meta["extra"])

    def manifest(tmp: Path) -> None:
        write_rejects(tmp, run.rejects)
        write_manifest(
            tmp,
            month,
            inputs,
            settings,
            contracts,
            meta["counts"],
            _summary(plain, pl.concat(run.straddles) if run.straddles else pl.DataFrame(), run.detail),
            [statement_entry(b.st, b.n_lines) for b in built],
        )

    def fill(tmp: Path) -> None:
        """Two writers at once (most of the work is in polars, outside the GIL): one starts on the
        run files (written in bounded slices), the other on the statements, biggest first (a
        statement's line text is the largest thing in memory); whoever is free takes the next
        statement."""
        done: list[str] = []

        def run_files() -> None:
            for name, write in (
                ("reconciliation.ndjson", reconciliation),
                ("findings.ndjson", findings),
                ("manifest.json", manifest),
            ):
                write(tmp)
                say(f"{name} written")

        def statement(b: Built) -> None:
            write_statement(b, tmp / b.st.folder, locale)
            done.append(b.st.folder)
            say(f"statement {len(done)}/{len(built)} written ({b.st.folder})")

        tasks: list[Callable[[], None]] = [run_files]
        tasks += [lambda b=b: statement(b) for b in sorted(built, key=lambda b: -b.n_lines)]
        with ThreadPoolExecutor(2) as pool:
            for fut in [pool.submit(t) for t in tasks]:
                fut.result()

    out = atomic_output(out_dir, fill)
    return out, meta["counts"], [b.st for b in built]


def _summary(plain: pl.DataFrame, straddles: pl.DataFrame, detail: list[ReconLine]) -> dict[str, Any]:
    from settlement.reconcile import summarize

    s = summarize(detail)
    by_status = Counter(s["by_status"])
    by_code = Counter(s["findings_by_code"])
    diff = Decimal(s["net_difference_excl_vat"])
    if plain.height:
        for status, n in plain.group_by("status").len().iter_rows():
            by_status[status] += n
        for status, n in plain.group_by("status").len().iter_rows():
            if status != "MATCH":
                by_code[status] += n
        by_code["PERIOD_STRADDLES_BOUNDARY"] += straddles.height
        diff += d4(plain["diff_excl"].sum() or 0)
    return {
        "cdrs": len(detail) + plain.height,
        "by_status": {st: by_status.get(st, 0) for st in STATUSES},
        "findings_by_code": dict(sorted((k, v) for k, v in by_code.items() if v)),
        "net_difference_excl_vat": f"{diff:.4f}",
    }


def settle_columnar(
    cdrs: Sequence[Any],
    tariffs: Sequence[Any] | None,
    month: str,
    out_dir: Any,
    tz: str | None = None,
    basis: str | None = None,
    contracts_path: Any = None,
    policy: PricingPolicy | None = None,
    history: Sequence[Any] = (),
    progress: Callable[[str], None] | None = None,
    pricer: str = "kernel",
    settings: dict[str, Any] | None = None,
    locale: str = "en_GB",
    inputs: Sequence[Any] | None = None,
    piece_rows: int = 500_000,
    engine: str = "local",
    scheduler: str | None = None,
) -> tuple[Path, dict[str, int], list[Statement]]:
    """Settle a month of flat-layout Parquet files and write the run into ``out_dir``.

    Same outputs as :func:`settlement.jobs.settle` + :func:`settlement.jobs.write_run` on the
    same files, in bounded memory per piece. Returns (folder, counts, statements)."""
    from pricing.batch import expand_inputs, load_tariffs
    from pricing.errors import InputError
    from pricing.flat import is_flat_file
    from pricing.timezones import validate_zone
    from settlement.contracts import load_contracts
    from settlement.jobs import DEFAULT_POLICY, read_history

    try:
        month_bounds(month)
    except ValueError as exc:
        raise InputError(f"--month {month!r}: {exc}. Hint: use YYYY-MM, e.g. 2026-10") from exc
    files = expand_inputs(cdrs)
    other = [str(f) for f in files if not is_flat_file(f)]
    if other:
        raise InputError(
            "the columnar engine reads flat-layout Parquet only (pricing.flat); not flat: "
            f"{', '.join(other)}. Hint: use --engine local for OCPI JSON/NDJSON"
        )
    contracts = load_contracts(contracts_path, basis)
    zone = ZoneInfo(validate_zone(tz or contracts.statement_time_zone or "UTC"))
    say = progress or (lambda _msg: None)
    say("reading tariffs")
    store, tariff_findings = load_tariffs(tariffs) if tariffs else (None, [])
    run = run_columnar(
        files,
        store,
        policy or DEFAULT_POLICY,
        tz,
        contracts,
        month,
        zone,
        read_history(history),
        say,
        pricer,
        piece_rows,
        engine,
        scheduler,
    )
    run.extra_findings += [dict(f.as_row(), cdr_id=None) for f in tariff_findings]
    return write_columnar(
        run,
        contracts,
        out_dir,
        month,
        zone,
        inputs if inputs is not None else cdrs,
        settings or {},
        locale,
        say,
    )
