"""Step 3 of the columnar engine: statements from the plain CDRs' columns and the record-path
lines, their totals summed on columns (:func:`group_aggregates`) and finished by the same
:func:`settlement.statement.finish` as the record engine.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from settlement.columnar.piece import mapped
from settlement.columnar.run import ColumnarRun
from settlement.contracts import Contracts
from settlement.jobs import RunResult, mixed_currency_findings, place_lines
from settlement.output import line_frame
from settlement.reconcile import ReconLine
from settlement.rules import (
    d4,
    dm,
    e4_text,
    line_negatives_expr,
    local_iso_expr,
    minor_text,
    minor_unit,
    round_e4_expr,
)
from settlement.statement import (
    LINE_COLUMNS,
    Aggregates,
    Statement,
    aggregate,
    contract_line_vat,
    finish,
    rate_text,
    vat_findings,
)


def plain_lines(p: pl.DataFrame, zone: str, m: int) -> pl.DataFrame:
    """Plain CDRs of one statement as the columns of its line table (+ integer columns). A line
    without an amount on its basis says ``0`` (``str(Decimal(0))``, as the record engine)."""
    # a line at the contract's VAT rate (no amount incl. VAT in the CDR) has the sign of its net
    amt_incl = pl.col("amt_incl").fill_null(pl.col("amt_excl"))
    neg_x, neg_vat, neg_i = line_negatives_expr(
        pl.col("amt_excl"), amt_incl, pl.col("excl_r"), pl.col("incl_r")
    )
    excl_text = minor_text(pl.col("excl_r"), m, neg_x)
    return p.select(
        pl.col("cdr_id"),
        local_iso_expr(pl.col("start_ms"), zone).alias("session_start"),
        local_iso_expr(pl.col("end_ms"), zone).alias("session_end"),
        pl.col("location_id").cast(pl.String).fill_null(""),
        e4_text(pl.col("energy")).alias("energy_kwh"),
        e4_text(pl.col("amt_excl")).alias("amount_excl_vat"),
        e4_text(pl.col("amt_incl")).alias("amount_incl_vat"),
        pl.when("payable").then(excl_text).otherwise(pl.lit("0")).alias("line_excl_vat"),
        minor_text(pl.col("incl_r") - pl.col("excl_r"), m, neg_vat).alias("line_vat"),
        minor_text(pl.col("incl_r"), m, neg_i).alias("line_incl_vat"),
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
        unknown_excl=x.unknown_excl + y.unknown_excl,
        unknown_unrounded_excl=x.unknown_unrounded_excl + y.unknown_unrounded_excl,
        contract_vat=x.contract_vat + y.contract_vat,
        unrounded_incl=x.unrounded_incl + y.unrounded_incl,
        sessions=x.sessions + y.sessions,
        credited=x.credited + y.credited,
    )
    for src in (x, y):
        for k, v in src.vat_by_rate.items():
            out.vat_by_rate[k] += v
        for k, v in src.base_by_rate.items():
            out.base_by_rate[k] += v
        for k, v in src.taxes.items():
            out.taxes[k] += v
    return out


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
    sub = RunResult()
    groups: dict[tuple[str, str, str], Statement] = {}
    pair_currencies: dict[tuple[str, str], set[str]] = defaultdict(set)
    origin: dict[int, ReconLine] = {}
    place_lines(
        run.detail, zone, month, contracts, sub, groups, pair_currencies, origin, run.late, run.settled
    )
    ord_of = {id(ln): o for ln, o in zip(run.detail, run.detail_ord, strict=True)}
    plain = pl.concat(run.plain, how="vertical_relaxed", rechunk=False) if run.plain else pl.DataFrame()
    run.plain.clear()
    taxes = pl.concat(run.taxes, how="vertical_relaxed") if run.taxes else pl.DataFrame()
    sums: dict[tuple[str, str, str], Aggregates] = {}
    n_in = excluded_plain = 0
    if plain.height:
        units = {c: 10 ** (4 - minor_unit(c)) for c in plain["cur"].cast(pl.String).unique().to_list()}
        unit = mapped(pl.col("cur").cast(pl.String), units, pl.Int64)
        plain = plain.with_columns(round_e4_expr(pl.col("amt_excl"), unit).alias("excl_r"))
        plain = plain.with_columns(round_e4_expr(pl.col("amt_incl"), unit).alias("incl_r"))
        plain = with_contract_vat_columns(plain, contracts)
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
        agg = add_aggregates(sums.get(key, Aggregates()), aggregate(det))
        st = Statement(cpo, emsp, cur, month, det.terms, time_zone=zone_name)
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
    extra = run.extra_findings + mixed_currency_findings(pair_currencies) + vat_findings(b.st for b in built)
    return built, {"counts": counts, "extra": extra}, plain, sub


def with_contract_vat_columns(plain: pl.DataFrame, contracts: Contracts) -> pl.DataFrame:
    """The plain lines whose CDR carries no VAT at the contract's rate of their pair, if it sets
    one: ``incl_r`` = net + :func:`settlement.statement.contract_line_vat` (computed once per
    distinct pair, currency and net), ``vat_rate`` = the rate."""
    keys = ["cpo", "emsp", "cur", "excl_r"]
    need = plain.filter(pl.col("payable") & pl.col("amt_incl").is_null()).select(keys).unique()
    if not need.height:
        return plain
    rates: dict[tuple[str, str], Decimal | None] = {}
    rows = []
    for cpo, emsp, cur, excl in need.iter_rows():
        pair = (str(cpo), str(emsp))
        if pair not in rates:
            rates[pair] = contracts.terms(*pair).vat_rate
        rate = rates[pair]
        if rate is not None:
            vat = contract_line_vat(dm(excl, minor_unit(str(cur))), rate, str(cur))
            rows.append((*pair, str(cur), excl, int(vat.scaleb(4)), rate_text(rate)))
    if not rows:
        return plain
    schema = {"_cpo": pl.String, "_emsp": pl.String, "_cur": pl.String, "excl_r": pl.Int64}
    found = pl.DataFrame(rows, schema={**schema, "_vat": pl.Int64, "_rate": pl.String}, orient="row")
    plain = plain.with_columns(
        pl.col("cpo").cast(pl.String).alias("_cpo"),
        pl.col("emsp").cast(pl.String).alias("_emsp"),
        pl.col("cur").cast(pl.String).alias("_cur"),
    ).join(found, on=list(schema), how="left", maintain_order="left")
    take = pl.col("_vat").is_not_null() & pl.col("amt_incl").is_null() & pl.col("payable")
    return plain.with_columns(
        pl.when(take).then(pl.col("excl_r") + pl.col("_vat")).otherwise(pl.col("incl_r")).alias("incl_r"),
        pl.when(take)
        .then(pl.col("_rate"))
        .otherwise(pl.col("vat_rate").cast(pl.String))
        .cast(pl.Categorical)
        .alias("vat_rate"),
    ).drop("_cpo", "_emsp", "_cur", "_vat", "_rate")


def group_aggregates(plain: pl.DataFrame, taxes: pl.DataFrame) -> dict[tuple[str, str, str], Aggregates]:
    """Per statement (CPO, eMSP, currency): the sums of its plain lines, in one pass."""
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
    known = inc & pl.col("amt_incl").is_not_null()  # VAT from the CDR
    no_vat = inc & pl.col("amt_incl").is_null()  # at the contract's rate (incl_r) or unknown
    main = rows.group_by(keys).agg(
        inc.sum().alias("n"),
        pl.col("energy").filter(inc).sum().alias("energy"),
        pl.col("amt_excl").filter(inc).sum().alias("amt_excl"),
        pl.col("excl_r").filter(inc).sum().alias("excl_r"),
        no_vat.sum().alias("unknown"),
        pl.col("excl_r").filter(no_vat).sum().alias("unknown_excl_r"),
        pl.col("amt_excl").filter(no_vat).sum().alias("unknown_amt_excl"),
        (pl.col("incl_r") - pl.col("excl_r")).filter(no_vat).sum().alias("contract_vat"),
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
            a.unknown_excl, a.unknown_unrounded_excl = dm(r["unknown_excl_r"], m), d4(r["unknown_amt_excl"])
            a.contract_vat = dm(r["contract_vat"], m)
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
            .group_by([*keys, "name", "pct"])
            .agg(pl.col("amount6").sum())
        )
        for cpo, emsp, cur, name, pct, amount in tax.iter_rows():
            out[(str(cpo), str(emsp), str(cur))].taxes[(name, pct)] += Decimal(int(amount)).scaleb(-6)
    return out


def _sorted_lines(frames: list[pl.DataFrame], detail: pl.DataFrame) -> pl.DataFrame:
    """Plain and detail lines of a statement by (session end, CDR id, input order): the stable
    sort of the record engine."""
    return pl.concat([*frames, detail], how="vertical_relaxed").sort(["session_end", "cdr_id", "ord"])
