"""Step 1 of the columnar engine: one piece of whole CDRs, priced and reconciled on columns.

The vectorized kernel prices the piece; every line status (match, rounding, over/under, not
comparable, not priced), parties, month membership, line amounts, dispute and inclusion and VAT
buckets are computed on columns (the rules of :mod:`settlement.rules`), and the piece leaves only
integer and categorical columns behind ("plain" CDRs), whatever share of them is disputed. Only
the CDRs that are judged against other records — credits, duplicate ids — and those priced by
several tariffs go to the record path (:mod:`settlement.jobs`, the same functions as the record
engine), each counted with its reason (:data:`RECORD_PATH_REASONS`); so does a whole piece the
kernel refuses (counted as ``kernel refused``: the reference pricer decides record by record), and
so do the CDRs whose findings quote the CDR's own decimals (TOTALS_INCONSISTENT, QUANTITY_MISMATCH:
a JSON number's text is not in the columns).

Over/under-charges are explained per dimension on columns (the reported ``reported_*`` costs of
:mod:`pricing.flat` against the kernel's per-dimension results, in the words of
:func:`settlement.reconcile.explain_dimensions`); the statement's energy is the reported total
energy where the CDR has one; 2.3.0 tax lines come from ``reported_taxes`` (basis ``reported``) or
the kernel (basis ``recomputed``). For a JSON source (NDJSON), the few values a finding quotes as the
CDR wrote them are read from the exact records (:meth:`settlement.columnar.source.Piece.exact`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pricing.compile import compile_tariffs
from pricing.errors import Finding, KernelRefusal
from pricing.fixed_point import half_up_div
from pricing.flat import (
    DIMENSION_COLUMNS,
    E6_PER_E4,
    FlatPiece,
    optional_column,
    parquet_read,
    piece_cdrs,
    plain_decimal,
    record_id,
    split_piece,
)
from pricing.flat_columns import decimal_e6
from pricing.io import Record, dumps
from pricing.kernel import price_table
from pricing.model import Money
from pricing.periods import from_flat
from pricing.policy import PricingPolicy
from pricing.report import percentage, result_decimals
from pricing.sessions import TariffSet
from settlement.columnar.source import Piece
from settlement.contracts import Contracts
from settlement.jobs import NO_AMOUNT, UNKNOWN_PARTY, Parsed, RunResult, parse_all, parties
from settlement.reconcile import ReconFinding, explain_dimensions, id_key_expr
from settlement.rules import (
    NOT_COMPARABLE_MESSAGE,
    NOT_PRICED,
    PaidMonths,
    dispute_reason_expr,
    line_reasons_expr,
    line_status_expr,
    settles_in_expr,
    status_code_expr,
    tolerance_e4,
    worst_expr,
    worst_is_excl_expr,
)
from settlement.statement import tariffs_vat_bucket

# Why a record takes the record path, in the order they are tested (the first that applies counts).
RECORD_PATH_REASONS = (
    "kernel refused",  # the kernel refused the piece (overflow, uncompilable tariff): reference pricer
    "party unknown",  # excluded with its PARTY_UNKNOWN finding by place_lines
    "duplicate id",  # identical or conflicting copies are judged record by record
    "late CDR",  # a late CDR of a closed month: its line and LATE_CDR finding by place_lines
    "already settled",  # on a closed month's final statements: ALREADY_SETTLED by place_lines
    "credit",  # credits net their originals
    "several tariffs",  # the VAT bucket of a line priced by several tariffs
    "reported totals inconsistent",  # TOTALS_INCONSISTENT: its words quote the CDR's own numbers
    "reported quantities inconsistent",  # QUANTITY_MISMATCH: likewise
    "total energy beyond 4 decimals",  # the statement sums the reported energy exactly
    "dimension finding of the other sign",  # a dimension over/under-charged against the total
    "more than 4 decimals",  # a JSON CDR's reported total: the parser keeps it exact
)


def special_ids(files: Sequence[Path]) -> set[str]:
    """CDR ids (:func:`settlement.reconcile.id_key`) seen on more than one record across the run:
    duplicates are judged record by record (identical or conflicting copies)."""
    counts: list[pl.DataFrame] = []
    for f in files:
        with parquet_read(f):
            df = pl.from_arrow(pq.ParquetFile(f).read(columns=["cdr_id"]))
        assert isinstance(df, pl.DataFrame)
        first = df.filter(
            pl.col("cdr_id").ne_missing(pl.col("cdr_id").shift(1)) | (pl.int_range(pl.len()) == 0)
        )
        counts.append(first.select(id_key_expr()))
    if not counts:
        return set()
    ids = pl.concat(counts).drop_nulls()
    return set(ids.filter(ids["cdr_id"].is_duplicated())["cdr_id"].unique().to_list())


def with_parties(frame: pl.DataFrame, contracts: Contracts) -> pl.DataFrame:
    """Add ``cpo`` and ``emsp`` with :func:`settlement.jobs.parties`, once per distinct party
    fields (the location only matters without a CPO, the contract id only without an eMSP)."""

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
        mapped(keys["c"], cpo_of, pl.String).alias("cpo"),
        mapped(keys["e"], emsp_of, pl.String).alias("emsp"),
    )


def mapped(values: Any, mapping: dict[Any, Any], dtype: Any, *, or_null: bool = False) -> Any:
    """``values`` (an expression or Series) through ``mapping`` as ``replace_strict`` does, always
    of ``dtype``; ``or_null``: a value without a mapping becomes null, else it raises. The one home
    of this: for an empty mapping polars returns the input itself, of its own dtype (a piece
    without recomputed tax rates gave an Int64 ``pct`` column that then failed to concatenate with
    the reported String ones), and drops a ``cast`` after it as already done."""
    if mapping:
        return values.replace_strict(mapping, return_dtype=dtype, **({"default": None} if or_null else {}))
    return values.cast(pl.Null, strict=not or_null).cast(dtype)


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
    parties: bool = True  # False: reconciliation only (a CDR of unknown party needs no statement)
    late: frozenset[str] = frozenset()  # the late CDRs the month takes (settlement.rules.settles_in)
    paid: PaidMonths | None = None  # file mode: months the history settled (their CDRs are late)
    settled: frozenset[str] = frozenset()  # store: CDRs a closed month's final run settled


PieceResult = tuple[
    int,
    list[Finding],
    pl.DataFrame,
    pl.DataFrame,
    pl.DataFrame,
    pl.DataFrame,
    list[tuple[int, Record, Any]],
    Counter[str],
]


def process_piece(item: Any, job: PieceJob) -> PieceResult:
    """One piece (a :class:`settlement.columnar.source.Piece`, or a flat piece): (records read,
    rejects in input order, plain CDR columns, their tax lines, their straddling periods, their
    dimension findings, the records for the record path, how many took it by reason)."""
    piece = Piece(item.source, item.table, item.base, item.row0) if isinstance(item, FlatPiece) else item
    found: list[tuple[int, Finding]] = []
    why: Counter[str] = Counter(piece.fallback_why)
    detail = _parsed(piece, piece.fallback, found, job)
    if piece.table is None or not piece.table.num_rows:
        n = len(piece.fallback)
        return n, _in_order(found), *_nothing_plain(), no_dims(), detail, +why
    fr, rejects = split_piece(piece)
    n_read = fr.n_records + len(piece.fallback)
    first_row = fr.first_row
    has_line = "line" in piece.table.column_names
    if has_line:
        line_of = piece.table.column("line").to_numpy()[first_row].astype(np.int64)
        ord_of = piece.base + line_of
    else:
        line_of = piece.row0 + first_row.astype(np.int64) + 1
        ord_of = piece.base + first_row.astype(np.int64)  # input order across files
    todo = np.ones(fr.n_records, bool)  # the records that are no reject
    judged: list[int] = []  # JSON records the columns cannot take (a total of 5+ decimals): parsed
    if piece.exact is not None:
        judged = sorted(rejects)
        why["more than 4 decimals"] += len(judged)
        todo[judged] = False
        rejects = {}
    for k, (code, message, path) in sorted(rejects.items()):
        found.append(
            (int(ord_of[k]), Finding(code, message, piece.source, int(line_of[k]), record_id(fr, k), path))
        )
    todo[list(rejects)] = False
    pt, refused, rec_ok = from_flat(fr, job.tariffs, job.policy, job.tz)
    try:
        ct = compile_tariffs(pt.tariffs, pt.zones, pt.group_ranges())
        res = price_table(pt, job.policy, ct)
    except KernelRefusal:  # a counted fallback: the reference pricer decides, record by record
        detail_k = np.flatnonzero(todo).tolist()
        why["kernel refused"] += len(detail_k)
        detail += _detail(piece, fr, judged + detail_k, ord_of, line_of, found, job)
        return n_read, _in_order(found), *_nothing_plain(), no_dims(), _sorted(detail), +why

    frame = record_frame(piece, fr, pt, res, rec_ok, np.flatnonzero(todo), refused, job.special)
    late = (
        pl.col("cdr_id").is_in(pl.Series(sorted(job.late), dtype=pl.String).implode())
        if job.late
        else pl.lit(False)
    )
    if job.paid is not None:
        late = late | job.paid.late_expr(pl.col("cdr_id"), pl.col("end_ms"))
    settled = (
        pl.col("cdr_id").is_in(pl.Series(sorted(job.settled), dtype=pl.String).implode())
        if job.settled
        else pl.lit(False)
    )
    frame = frame.with_columns(late.alias("late"), (settled & ~late).alias("settled"))
    frame = with_terms(with_parties(frame, job.contracts), job.contracts, job.parties)
    frame = frame.with_columns(
        settles_in_expr(pl.col("end_ms"), job.window, pl.col("late")).alias("in_month")
    )
    plain, straddles = plain_rows(frame, pt, res, tolerance_e4(job.contracts.default.tolerance))
    rec_of_plain = plain["rec"].to_numpy()
    plain = plain.with_columns(
        pl.Series("ord", ord_of[rec_of_plain]),
        pl.Series("line", line_of[rec_of_plain]),
        pl.lit(piece.source).alias("source"),
    )
    plain, dims, other_sign = dimension_findings(plain, res, job.contracts.default.tolerance)
    plain = with_exact_words(plain, piece, job.tariffs is not None and len(job.tariffs) > 0)
    rec_of_plain = plain["rec"].to_numpy()
    straddles = straddles.join(plain.select("sess", "ord"), on="sess", how="inner")
    plain = finish_plain(plain, straddles)
    tax = plain_taxes(res, plain, piece.table, first_row)
    plain = plain.drop("rec", "sess")

    # -- the records that need the record path (not rejected, not plain), counted by reason
    todo[rec_of_plain] = False
    detail_k = np.flatnonzero(todo).tolist()
    why += Counter(dict(frame.filter(~pl.col("plain")).group_by("record_path").len().iter_rows()))
    if other_sign:
        why["dimension finding of the other sign"] += other_sign
    detail += _detail(piece, fr, judged + detail_k, ord_of, line_of, found, job)
    return n_read, _in_order(found), plain, tax, straddles.select("ord", "src"), dims, _sorted(detail), +why


def _in_order(found: list[tuple[int, Finding]]) -> list[Finding]:
    return [f for _, f in sorted(found, key=lambda x: x[0])]


def _sorted(detail: list[tuple[int, Record, Any]]) -> list[tuple[int, Record, Any]]:
    return sorted(detail, key=lambda x: x[0])


def _parsed(
    piece: Piece, records: list[Record], found: list[tuple[int, Finding]], job: PieceJob
) -> list[tuple[int, Record, Any]]:
    """Records parsed as the record engine parses them (:func:`settlement.jobs.parse_all`): its
    rejects into ``found``, the CDRs as (input order, record, CDR)."""
    if not records:
        return []
    part = RunResult()
    parsed: list[Parsed] = parse_all(records, None, part, piece.versions)
    found += [(piece.base + (f.line or 0), f) for f in part.rejects]
    return [(piece.base + (p.rec.line or 0), p.rec, p.cdr) for p in parsed]


def _detail(
    piece: Piece,
    fr: Any,
    ks: list[int],
    ord_of: np.ndarray,
    line_of: np.ndarray,
    found: list[tuple[int, Finding]],
    job: PieceJob,
) -> list[tuple[int, Record, Any]]:
    """Records ``ks`` as (input order, record, canonical CDR) for the record path: parsed from the
    exact JSON where the piece has it, else built from the columns."""
    if piece.exact is not None:
        if not ks:
            return []
        recs = piece.exact([int(line_of[k]) for k in ks])
        return _parsed(piece, [recs[n] for n in sorted(recs)], found, job)
    cdrs = piece_cdrs(piece, fr, ks)
    return [
        (int(ord_of[k]), Record(piece.source, int(line_of[k])), cdr) for k, cdr in zip(ks, cdrs, strict=True)
    ]


def _nothing_plain() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(plain, tax, straddles) of a piece without plain CDRs."""
    return (
        pl.DataFrame(),
        pl.DataFrame(schema=TAX_SCHEMA),
        pl.DataFrame(schema={"ord": pl.Int64, "src": pl.Int64}),
    )


TAX_SCHEMA = {"ord": pl.Int64, "name": pl.String, "pct": pl.String, "amount6": pl.Int64}
DIMS_SCHEMA = {"ord": pl.Int64, "seq": pl.Int64, "code": pl.String, "text": pl.String}


def no_dims() -> pl.DataFrame:
    return pl.DataFrame(schema=DIMS_SCHEMA)


def record_frame(
    piece: Any,
    fr: Any,
    pt: Any,
    res: dict[str, Any],
    rec_ok: np.ndarray,
    recs: np.ndarray,
    refused: dict[int, tuple[str, str, str]],
    special: set[str],
) -> pl.DataFrame:
    """Per record that is no reject (``recs``, in record order): party fields, times, reported and
    recomputed totals and their differences (units of 1e-4), why it could not be priced (the
    pricing's refusal, ``refused``: no tariff, tariff not found, currency mismatch, …; the words of
    :func:`pricing.sessions.build_session`), and what sends it to the record path."""
    t = piece.table
    n_s = pt.n_sessions
    sess_of = np.full(fr.n_records, -1, np.int64)
    sess_of[rec_ok] = np.arange(n_s)
    sess = sess_of[recs]
    priced = sess >= 0
    s = sess[priced]
    rows = fr.first_row[recs]

    def spread(values: np.ndarray, fill: int = 0) -> np.ndarray:
        out = np.full(len(recs), fill, values.dtype)
        out[priced] = values[s]
        return out

    rep_x, rep_x_ok = (a[rows] for a in decimal_e6(t.column("reported_total_excl")))
    rep_i, rep_i_ok = (a[rows] for a in decimal_e6(t.column("reported_total_incl")))
    rep_x, rep_i = rep_x // E6_PER_E4, rep_i // E6_PER_E4
    rec_x, rec_x_ok = spread(res["total_excl_e4"]), spread(~res["total_excl_null"])
    rec_i, rec_i_ok = spread(res["total_incl_e4"]), spread(~res["total_incl_null"])
    dx_ok, di_ok = rep_x_ok & rec_x_ok, rep_i_ok & rec_i_ok
    refusal = [None] * len(recs)
    words = [None] * len(recs)
    for j in np.flatnonzero(~priced).tolist():
        refusal[j], words[j], _ = refused[int(recs[j])]

    # -- what needs the record-by-record path
    multi = np.zeros(n_s, bool)
    if len(pt.sess):
        differs = pt.tariff != pt.tariff[pt.s_off[pt.sess]]
        multi[pt.sess[differs]] = True
    credit = optional_column(t, "credit").to_numpy(zero_copy_only=False)[rows]
    credit = np.asarray([bool(c) for c in credit], bool) if credit.dtype == object else credit.astype(bool)
    is_special = (
        pl.from_arrow(t.column("cdr_id").take(rows))
        .str.to_uppercase()  # the id_key of settlement.reconcile
        .is_in(pl.Series(sorted(special), dtype=pl.String).implode())
        .to_numpy()
        if special
        else np.zeros(len(recs), bool)
    )
    names = (
        "cdr_id",
        "currency",
        "country_code",
        "party_id",
        "emsp_country_code",
        "emsp_party_id",
        "location_id",
        "contract_id",
    )
    frame = pl.DataFrame(
        {
            **{name: pl.from_arrow(optional_column(t, name).take(rows)) for name in names},
            "rec": recs,
            "sess": sess,
            "priced": priced,
            "start_ms": fr.cols["cdr_start_ms"][0][rows],
            "end_ms": fr.cols["cdr_end_ms"][0][rows],
            "rep_excl": pl.Series(rep_x).set(pl.Series(~rep_x_ok), None),
            "rep_incl": pl.Series(rep_i).set(pl.Series(~rep_i_ok), None),
            "rec_excl": pl.Series(rec_x).set(pl.Series(~rec_x_ok), None),
            "rec_incl": pl.Series(rec_i).set(pl.Series(~rec_i_ok), None),
            "diff_excl": pl.Series(rep_x - rec_x).set(pl.Series(~dx_ok), None),
            "diff_incl": pl.Series(rep_i - rec_i).set(pl.Series(~di_ok), None),
            "energy": spread(half_up_div(res["energy_mwh"], 100)),  # no energy where not priced
            "primary": spread(pt.s_primary, -1),
            "refusal": pl.Series(refusal, dtype=pl.String),
            "message": pl.Series(words, dtype=pl.String),
            "special": is_special,
            "credit": credit,
            "multi": spread(multi),
        }
    )
    frame = frame.with_columns(**reported_checks(t, fr, rows, recs))
    # the statement's energy: the reported total where the CDR has one, else the recomputed
    frame = frame.with_columns(
        pl.when(pl.col("rep_energy").is_not_null())
        .then(pl.col("rep_energy") // E6_PER_E4)
        .otherwise(pl.col("energy"))
        .alias("energy")
    )
    dx, di = pl.col("diff_excl"), pl.col("diff_incl")
    return frame.with_columns(
        worst_expr(dx, di).alias("worst"),
        worst_is_excl_expr(dx, di).alias("worst_is_x"),
    )


DIMS = tuple(DIMENSION_COLUMNS.values())


def reported_checks(t: Any, fr: Any, rows: np.ndarray, recs: np.ndarray) -> dict[str, Any]:
    """Per record (first rows ``rows`` of records ``recs``): the reported dimension costs excl. VAT
    (1e-6 units, null where not reported), the reported total energy (1e-6 kWh = mWh) and whether
    :func:`settlement.reconcile.check_reported_consistency` / ``check_quantities`` would find
    something (those CDRs take the record path: their words quote the CDR's own decimals), or the
    reported energy has more than 4 decimals."""
    out: dict[str, Any] = {}
    n = len(recs)
    if not n:
        empty = pl.Series([], dtype=pl.Int64)
        return {c: empty for c in (*DIMS, "rep_energy")} | {
            c: np.zeros(0, bool) for c in ("tot_bad", "qty_bad", "energy_frac")
        }
    parts = np.zeros(n, np.int64)
    present = np.zeros(n, np.int64)
    for col in DIMS:
        v, ok = (a[rows] for a in decimal_e6(optional_column(t, col)))
        out[col] = pl.Series(v).set(pl.Series(~ok), None)
        parts += np.where(ok, v, 0)
        present += ok
    total, total_ok = (a[rows] for a in decimal_e6(t.column("reported_total_excl")))
    # all five reported: their sum; some absent (unknown): the others alone above the total
    over = (parts - total) * np.where(total < 0, -1, 1)
    tot_bad = (
        (present > 0)
        & total_ok
        & np.where(present == len(DIMS), np.abs(total - parts) > 50 * present, over > 50 * present)
    )
    energy, e_ok = (a[rows] for a in decimal_e6(optional_column(t, "reported_total_energy")))
    hours, h_ok = (a[rows] for a in decimal_e6(optional_column(t, "reported_total_time")))
    e_v, e_has = fr.cols["energy_mwh"]
    t_v, t_has = fr.cols["time_ms"]
    p_v, p_has = fr.cols["parking_ms"]
    r_v, r_has = fr.cols["reservation_ms"]
    first = fr.first_row

    def per_record(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, first)[recs] if len(values) else np.zeros(n, values.dtype)

    e_sum = per_record(np.where(e_has, e_v, 0))
    e_any = per_record(e_has.astype(np.int64)) > 0
    t_sum = per_record(np.where(t_has, t_v, 0) + np.where(p_has, p_v, 0) + np.where(r_has, r_v, 0))
    t_any = per_record((t_has | p_has | r_has).astype(np.int64)) > 0
    qty_bad = (e_ok & e_any & (np.abs(energy - e_sum) > 500)) | (
        h_ok & t_any & (np.abs(36 * hours - 10 * t_sum) > 18_000)  # |h·3.6e6 − ms| > 1800, ×10
    )
    out["rep_energy"] = pl.Series(energy).set(pl.Series(~e_ok), None)
    out["tot_bad"] = tot_bad
    out["qty_bad"] = qty_bad
    out["energy_frac"] = e_ok & (energy % E6_PER_E4 != 0)
    return out


def with_exact_words(plain: pl.DataFrame, piece: Piece, given: bool) -> pl.DataFrame:
    """What the columns of a JSON source cannot say, from the exact records of the few CDRs that
    need it: ``rep_x_text`` / ``rep_i_text``, the reported totals of over/under-charged CDRs as the
    CDR writes them (the status finding quotes them: ``36.21``, not ``36.2100``; null elsewhere),
    and the VAT bucket of a CDR that could not be priced: that of its own embedded tariffs, if any
    (:func:`settlement.statement.vat_bucket`) — only with tariffs ``given``: else a CDR with
    embedded tariffs is read record by record (:mod:`pricing.ocpi.columnar_tariffs`)."""
    over = plain["status"].is_in(["OVERCHARGED", "UNDERCHARGED"])
    unpriced = ~plain["priced"] & plain["amt_incl"].is_not_null() & given
    none = pl.lit(None, pl.String)
    if piece.exact is None or not (over | unpriced).any():
        return plain.with_columns(none.alias("rep_x_text"), none.alias("rep_i_text"))
    lines = plain.filter(over | unpriced)["line"].to_list()
    recs = piece.exact(lines)
    cdrs = {
        p.rec.line or 0: p.cdr
        for p in parse_all([recs[n] for n in sorted(recs)], None, RunResult(), piece.versions)
    }

    def text(v: Decimal | None) -> str | None:
        return None if v is None else str(v)

    sel = over | unpriced
    few = plain.filter(sel).select("line").with_columns(o=over.filter(sel), u=unpriced.filter(sel))
    rep_x, rep_i, bucket = [], [], []
    for n, is_over, is_unpriced in few.iter_rows():
        cdr = cdrs.get(n)
        m = (cdr.total_cost if cdr is not None else None) or Money(None)
        rep_x.append(text(m.excl) if is_over else None)
        rep_i.append(text(m.incl) if is_over else None)
        own = is_unpriced and cdr is not None and cdr.tariffs
        bucket.append(tariffs_vat_bucket(cdr.tariffs) if own else None)  # type: ignore[union-attr]
    words = few.select("line").with_columns(
        pl.Series("rep_x_text", rep_x, dtype=pl.String),
        pl.Series("rep_i_text", rep_i, dtype=pl.String),
        pl.Series("own_vat", bucket, dtype=pl.String),
    )
    plain = plain.join(words, on="line", how="left", maintain_order="left")
    return plain.with_columns(pl.col("own_vat").fill_null(pl.col("vat_rate")).alias("vat_rate")).drop(
        "own_vat"
    )


def dimension_findings(
    plain: pl.DataFrame, res: dict[str, Any], tolerance: Decimal
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """The dimension-level findings of over/under-charged plain CDRs, in the words of
    :func:`settlement.reconcile.explain_dimensions` (the same function, on the kernel's per-dimension
    results): (plain without the CDRs whose dimension finding has the other sign than the total —
    their reasons list both codes: the record path decides them —, findings as (ord, seq, code,
    text), how many left)."""
    over = plain["status"].is_in(["OVERCHARGED", "UNDERCHARGED"]) & pl.any_horizontal(
        [plain[c].is_not_null() for c in DIMS]
    )
    cand = plain.filter(over)
    if not cand.height:
        return plain, no_dims(), 0
    decimals = result_decimals(res)
    sess = cand["sess"].to_numpy()
    wanted = [
        *(f"{cat}_cost_excl_vat" for cat in ("energy", "time", "parking", "fixed", "reservation")),
        "billed_energy_kwh",
        "billed_charging_time_h",
        "billed_parking_time_h",
        "billed_reservation_time_h",
    ]
    rows = pl.DataFrame({c: decimals[c].gather(sess).cast(pl.String) for c in wanted}).to_dicts()
    fields = list(DIMENSION_COLUMNS)
    texts: list[tuple[int, int, str, str]] = []
    other: list[int] = []
    keys = cand.select("ord", "cdr_id", "source", "line", "status", *DIMS).iter_rows()
    for (o, cid, src, line, status, *dims), row in zip(keys, rows, strict=True):
        cdr = SimpleNamespace(
            **{f: None if v is None else Money(plain_decimal(v)) for f, v in zip(fields, dims, strict=True)}
        )
        got: list[ReconFinding] = []

        def find(code: str, msg: str, dim: Any = None, period: Any = None, amt: Any = None) -> None:
            got.append(ReconFinding(cid, code, msg, dim, period, src, line, amt))  # noqa: B023

        explain_dimensions(cdr, row, 1, tolerance, find)  # type: ignore[arg-type]
        if any(f.code != status for f in got):
            other.append(o)
            continue
        texts += [(o, (1 << 40) + 1 + i, f.code, dumps(f.as_row())) for i, f in enumerate(got)]
    dims_frame = pl.DataFrame(texts, schema=DIMS_SCHEMA, orient="row")
    if other:
        plain = plain.filter(~pl.col("ord").is_in(pl.Series(other, dtype=pl.Int64).implode()))
    return plain, dims_frame, len(other)


def with_terms(frame: pl.DataFrame, contracts: Contracts, parties: bool = True) -> pl.DataFrame:
    """The contract's basis and dispute treatment per pair, the amounts on that basis (a line
    without an amount on its basis has 0 excl. and no incl. VAT: ``payable`` is false), and whether
    the CDR is plain (else why it takes the record path)."""
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
    frame = frame.with_columns(pl.col("currency").str.to_uppercase().alias("cur"))
    frame = frame.join(by_pair, on=["cpo", "emsp"], how="left", maintain_order="left")
    reported = pl.col("basis") == "reported"
    amt_x = pl.when(reported).then("rep_excl").otherwise("rec_excl")
    amt_i = pl.when(reported).then("rep_incl").otherwise("rec_incl")
    frame = frame.with_columns(amt_x.is_not_null().alias("payable"))
    payable = pl.col("payable")
    frame = frame.with_columns(
        pl.when(payable).then(amt_x).otherwise(0).alias("amt_excl"),
        pl.when(payable).then(amt_i).otherwise(None).alias("amt_incl"),
    )
    unknown = ((pl.col("cpo") == UNKNOWN_PARTY) | (pl.col("emsp") == UNKNOWN_PARTY)) & parties
    why = (
        pl.when(unknown)
        .then(pl.lit("party unknown"))
        .when("special")
        .then(pl.lit("duplicate id"))
        .when("late")
        .then(pl.lit("late CDR"))
        .when("settled")
        .then(pl.lit("already settled"))
        .when("credit")
        .then(pl.lit("credit"))
        .when("multi")
        .then(pl.lit("several tariffs"))
        .when("tot_bad")
        .then(pl.lit("reported totals inconsistent"))
        .when("qty_bad")
        .then(pl.lit("reported quantities inconsistent"))
        .when("energy_frac")
        .then(pl.lit("total energy beyond 4 decimals"))
        .otherwise(pl.lit(None, pl.String))
    )
    return frame.with_columns(why.alias("record_path")).with_columns(
        pl.col("record_path").is_null().alias("plain")
    )


CATEGORIES = [
    "code",
    "message",
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
    "dispute_reason",
]


def plain_rows(
    frame: pl.DataFrame, pt: Any, res: dict[str, Any], tol: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The plain CDRs with their VAT bucket, status and the code of its finding, and the
    (sess, src) straddling periods."""
    buckets = [tariffs_vat_bucket((tf,)) for tf in pt.tariffs]  # one tariff per plain CDR
    buckets_of = {-1: tariffs_vat_bucket(()), **dict(enumerate(buckets))}  # not priced: no tariff
    plain = frame.filter("plain").with_columns(
        pl.when(pl.col("amt_incl").is_null())
        .then(pl.lit("unknown"))
        .otherwise(mapped(pl.col("primary"), buckets_of, pl.String))
        .alias("vat_rate"),
        line_status_expr(pl.col("priced"), pl.col("worst"), tol).alias("status"),
    )
    plain = plain.with_columns(status_code_expr(pl.col("status"), pl.col("refusal")).alias("code"))
    plain = plain.with_columns(
        pl.when(pl.col("status") == NOT_PRICED)
        .then(pl.col("message").fill_null(NOT_COMPARABLE_MESSAGE))
        .otherwise(None)
        .alias("message")
    )
    no = np.zeros(0, np.int64)
    straddles = pl.DataFrame(
        {"sess": res.get("straddle_sess", no), "src": res.get("straddle_src", no)},
        schema={"sess": pl.Int64, "src": pl.Int64},
    )
    return plain, straddles


def finish_plain(plain: pl.DataFrame, straddles: pl.DataFrame) -> pl.DataFrame:
    """Finding codes, dispute and inclusion of the plain CDRs; small categorical columns."""
    plain = plain.with_columns(pl.col("sess").is_in(straddles["sess"].implode()).alias("straddles"))
    plain = plain.with_columns(line_reasons_expr(pl.col("code"), pl.col("straddles")).alias("reasons"))
    reason = dispute_reason_expr(pl.col("status"), pl.col("reasons"), pl.col("basis"), pl.lit(False))
    # a line without an amount on its basis is disputed (at least for that) and never included
    reason = pl.when(pl.col("payable") | (reason != "")).then(reason).otherwise(pl.lit(NO_AMOUNT))
    plain = plain.with_columns(reason.alias("dispute_reason"))
    disputed = pl.col("dispute_reason") != ""
    plain = plain.with_columns(
        disputed.alias("disputed"),
        (pl.col("payable") & (~disputed | ~pl.col("exclude_disputed"))).alias("included"),
    )
    return plain.with_columns(  # few distinct values: keep them small in memory
        pl.col(CATEGORIES).cast(pl.Categorical)
    ).drop(
        "exclude_disputed",
        "special",
        "settled",
        "credit",
        "multi",
        "record_path",
        "plain",
        "primary",
        "refusal",
        "priced",
        "contract_id",
        "country_code",
        "party_id",
        "emsp_country_code",
        "emsp_party_id",
        "tot_bad",
        "qty_bad",
        "energy_frac",
        "rep_energy",
        *DIMS,
    )


def plain_taxes(res: dict[str, Any], plain: pl.DataFrame, table: Any, first_row: np.ndarray) -> pl.DataFrame:
    """The 2.3.0 tax lines of plain CDRs on their basis, (ord, name, pct, amount6 in 1e-6): the
    recomputed ones (basis ``recomputed``) and the CPO's own (``reported_taxes``, basis
    ``reported``), as :func:`settlement.statement.build_line` takes them."""
    tax = pl.DataFrame(
        {"sess": res["tax_sess"], "rate_e2": res["tax_rate_e2"], "amount": res["tax_amount_e4"]},
        schema={"sess": pl.Int64, "rate_e2": pl.Int64, "amount": pl.Int64},
    )
    rates = {r: percentage(r) for r in tax["rate_e2"].unique().to_list()}
    recomputed = tax.join(
        plain.filter(pl.col("basis") == "recomputed").select("sess", "ord"), on="sess", how="inner"
    ).select(
        "ord",
        pl.lit("VAT").alias("name"),
        mapped(pl.col("rate_e2"), rates, pl.String).alias("pct"),
        (pl.col("amount") * E6_PER_E4).alias("amount6"),
    )
    mine = plain.filter(pl.col("basis") == "reported").select("rec", "ord")
    if "reported_taxes" not in table.column_names or not mine.height:
        return recomputed
    lists = table.column("reported_taxes").take(pa.array(first_row[mine["rec"].to_numpy()], pa.int64()))
    lists = lists.combine_chunks() if isinstance(lists, pa.ChunkedArray) else lists
    items = lists.flatten()
    if not len(items):
        return recomputed
    parent = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    pct, pct_ok = decimal_e6(items.field("percentage"))
    amount, _ = decimal_e6(items.field("amount"))
    texts = {v: f"{plain_decimal(v):f}" for v in np.unique(pct[pct_ok]).tolist()}
    reported = pl.DataFrame(
        {
            "ord": mine["ord"].to_numpy()[parent],
            "name": pl.from_arrow(items.field("name")),
            "pct": mapped(pl.Series(pct), texts, pl.String, or_null=True).set(pl.Series(~pct_ok), None),
            "amount6": amount,
        },
        schema=TAX_SCHEMA,
    )
    return pl.concat([recomputed, reported]).sort("ord", maintain_order=True)
