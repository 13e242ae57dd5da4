"""Step 1 of the columnar engine: one piece of whole CDRs, priced and reconciled on columns.

The vectorized kernel prices the piece; every line status (match, rounding, over/under, not
comparable, not priced), parties, month membership, line amounts, dispute and inclusion and VAT
buckets are computed on columns (the rules of :mod:`settlement.rules`), and the piece leaves only
integer and categorical columns behind ("plain" CDRs), whatever share of them is disputed. Only
the CDRs that are judged against other records — credits, duplicate ids — and those priced by
several tariffs go to the record path (:mod:`settlement.jobs`, the same functions as the record
engine), each counted with its reason (:data:`RECORD_PATH_REASONS`); so does a whole piece the
kernel refuses (counted as ``kernel refused``: the reference pricer decides record by record).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from pricing.compile import compile_tariffs
from pricing.errors import Finding, KernelRefusal
from pricing.fixed_point import half_up_div
from pricing.flat import E6_PER_E4, optional_column, piece_cdrs, record_id, record_lines, split_piece
from pricing.flat_columns import decimal_e6
from pricing.io import Record
from pricing.kernel import price_table
from pricing.periods import from_flat
from pricing.policy import PricingPolicy
from pricing.sessions import TariffSet
from settlement.contracts import Contracts
from settlement.jobs import NO_AMOUNT, UNKNOWN_PARTY, parties
from settlement.rules import (
    NOT_COMPARABLE_MESSAGE,
    NOT_PRICED,
    dispute_reason_expr,
    in_month_expr,
    line_reasons_expr,
    line_status_expr,
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
    "credit",  # credits net their originals
    "several tariffs",  # the VAT bucket of a line priced by several tariffs
)


def special_ids(files: Sequence[Path]) -> set[str]:
    """CDR ids seen on more than one record across the run: duplicates are judged record by
    record (identical or conflicting copies)."""
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


PieceResult = tuple[
    int, list[Finding], pl.DataFrame, pl.DataFrame, pl.DataFrame, list[tuple[int, Record, Any]], Counter[str]
]


def process_piece(piece: Any, job: PieceJob) -> PieceResult:
    """One piece: (records read, rejects, plain CDR columns, their tax lines, their straddling
    periods, the records for the record path, how many took it by reason)."""
    fr, rejects = split_piece(piece)
    fr.rejects = rejects
    first_row = fr.first_row
    line_of = record_lines(piece, first_row)
    found: list[Finding] = []
    for k, (code, message, path) in sorted(rejects.items()):
        found.append(Finding(code, message, piece.source, int(line_of[k]), record_id(fr, k), path))
    ord_of = piece.base + first_row.astype(np.int64)  # input order across files
    todo = np.ones(fr.n_records, bool)  # the records that are no reject
    todo[list(rejects)] = False
    pt, refused, rec_ok = from_flat(fr, job.tariffs, job.policy, job.tz)
    try:
        ct = compile_tariffs(pt.tariffs, pt.zones, pt.group_ranges())
        res = price_table(pt, job.policy, ct)
    except KernelRefusal:  # a counted fallback: the reference pricer decides, record by record
        detail_k = np.flatnonzero(todo).tolist()
        why = Counter({"kernel refused": len(detail_k)})
        return fr.n_records, found, *_nothing_plain(), _detail(piece, fr, detail_k, ord_of, line_of), +why

    frame = record_frame(piece, fr, pt, res, rec_ok, np.flatnonzero(todo), refused, job.special)
    frame = with_terms(with_parties(frame, job.contracts), job.contracts)
    frame = frame.with_columns(in_month_expr(pl.col("end_ms"), job.window).alias("in_month"))
    plain, straddles = plain_rows(frame, pt, res, tolerance_e4(job.contracts.default.tolerance))
    rec_of_plain = plain["rec"].to_numpy()
    plain = plain.with_columns(
        pl.Series("ord", ord_of[rec_of_plain]),
        pl.Series("line", line_of[rec_of_plain]),
        pl.lit(piece.source).alias("source"),
    )
    straddles = straddles.join(plain.select("sess", "ord"), on="sess", how="inner")
    plain = finish_plain(plain, straddles)
    tax = plain_taxes(res, plain)
    plain = plain.drop("rec", "sess")

    # -- the records that need the record path (not rejected, not plain), counted by reason
    todo[rec_of_plain] = False
    detail_k = np.flatnonzero(todo).tolist()
    why: Counter[str] = Counter(
        dict(frame.filter(~pl.col("plain")).group_by("record_path").len().iter_rows())
    )
    assert sum(why.values()) == len(detail_k)
    detail = _detail(piece, fr, detail_k, ord_of, line_of)
    return fr.n_records, found, plain, tax, straddles.select("ord", "src"), detail, +why


def _detail(
    piece: Any, fr: Any, ks: list[int], ord_of: np.ndarray, line_of: np.ndarray
) -> list[tuple[int, Record, Any]]:
    """Records ``ks`` as (input order, record, canonical CDR) for the record path."""
    cdrs = piece_cdrs(piece, fr, ks)
    return [
        (int(ord_of[k]), Record(piece.source, int(line_of[k])), cdr) for k, cdr in zip(ks, cdrs, strict=True)
    ]


def _nothing_plain() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(plain, tax, straddles) of a piece without plain CDRs."""
    tax = pl.DataFrame(schema={"ord": pl.Int64, "rate_e2": pl.Int64, "amount": pl.Int64})
    return pl.DataFrame(), tax, pl.DataFrame(schema={"ord": pl.Int64, "src": pl.Int64})


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
    dx, di = pl.col("diff_excl"), pl.col("diff_incl")
    return frame.with_columns(
        worst_expr(dx, di).alias("worst"),
        worst_is_excl_expr(dx, di).alias("worst_is_x"),
    )


def with_terms(frame: pl.DataFrame, contracts: Contracts) -> pl.DataFrame:
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
    unknown = (pl.col("cpo") == UNKNOWN_PARTY) | (pl.col("emsp") == UNKNOWN_PARTY)
    why = (
        pl.when(unknown)
        .then(pl.lit("party unknown"))
        .when("special")
        .then(pl.lit("duplicate id"))
        .when("credit")
        .then(pl.lit("credit"))
        .when("multi")
        .then(pl.lit("several tariffs"))
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
        .otherwise(pl.col("primary").replace_strict(buckets_of, return_dtype=pl.String))
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
    )


def plain_taxes(res: dict[str, Any], plain: pl.DataFrame) -> pl.DataFrame:
    """Recomputed 2.3.0 tax lines of plain CDRs on the recomputed basis: (ord, rate_e2, amount)."""
    tax = pl.DataFrame(
        {"sess": res["tax_sess"], "rate_e2": res["tax_rate_e2"], "amount": res["tax_amount_e4"]},
        schema={"sess": pl.Int64, "rate_e2": pl.Int64, "amount": pl.Int64},
    )
    return tax.join(
        plain.filter(pl.col("basis") == "recomputed").select("sess", "ord"), on="sess", how="inner"
    ).select("ord", "rate_e2", "amount")
