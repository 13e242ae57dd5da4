"""Step 4 of the columnar engine: the run folder. Statement files from line tables, run files
(``reconciliation.ndjson``, ``findings.ndjson``) from the plain CDRs' columns with the record-path
rows merged in input order, all through the writers of :mod:`settlement.output` — the files are
byte-identical to the record engine's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from pricing.io import dumps
from settlement.columnar.piece import no_dims
from settlement.columnar.run import ColumnarRun
from settlement.columnar.statements import Built, build
from settlement.contracts import Contracts
from settlement.jobs import RunResult
from settlement.output import (
    SLICE,
    atomic_output,
    json_value,
    lines_json,
    out_of_month_finding,
    statement_entry,
    write_document,
    write_items,
    write_lines_csv,
    write_manifest,
    write_ndjson_rows,
    write_rejects,
    write_text,
)
from settlement.reconcile import FINDING_COLUMNS, RECON_COLUMNS, ReconLine, summarize
from settlement.render import (
    HTML_MAX_LINES,
    daily_sums,
    invoice_reconciliation_record,
    statement_document,
    statement_html,
)
from settlement.rules import (
    STATUSES,
    charge_message_expr,
    d4,
    e4,
    e4_text,
    rounding_message_expr,
    straddle_message_expr,
    tolerance_e4,
    use_excl_expr,
)
from settlement.statement import Line, Statement


def write_statement(b: Built, folder: Path, locale: str) -> None:
    """The files of one statement, from its line tables (the writers of the record engine)."""
    folder.mkdir(parents=True, exist_ok=True)
    st = b.st
    lines, disputed = b.tables()
    n = lines.height
    doc = statement_document(st)  # (no lines yet) the lists are streamed in below
    doc.pop("lines")
    doc.pop("disputed")
    with open(folder / "statement.json", "wb") as fh:
        write_document(doc, {"lines": lines_json(lines), "disputed": lines_json(disputed)}, fh)
    with open(folder / "lines.csv", "wb") as fh:
        write_lines_csv(fh, lines)

    def ids(fh: Any) -> None:
        write_items(fh, lines, json_value("cdr_id"))

    with open(folder / "invoice_reconciliation_record.json", "wb") as fh:
        write_document(invoice_reconciliation_record(st), {"cdrs": (n, ids)}, fh)
    st.lines = [Line.from_row(r) for r in lines.head(HTML_MAX_LINES).iter_rows(named=True)]
    shown = [(Line.from_row(r), r["included"]) for r in disputed.head(HTML_MAX_LINES).iter_rows(named=True)]
    st.disputed = [ln for ln, _ in shown]
    members = [ln for ln, included in shown if included]
    html = statement_html(st, locale, daily_sums(lines), n, members, disputed.height)
    (folder / "statement.html").write_text(html, encoding="utf-8")


def recon_columns() -> dict[str, pl.Expr]:
    """``ReconLine.as_row`` of plain CDRs, column by column (``RECON_COLUMNS`` order)."""
    cols = {
        "cdr_id": pl.col("cdr_id"),
        "status": pl.col("status").cast(pl.String),
        "reasons": pl.col("reasons").cast(pl.String),
        "currency": pl.col("currency").cast(pl.String),
        "credit": pl.lit(False),
        "reported_total_excl_vat": e4_text(pl.col("rep_excl")),
        "recomputed_total_excl_vat": e4_text(pl.col("rec_excl")),
        "diff_excl_vat": e4_text(pl.col("diff_excl")),
        "reported_total_incl_vat": e4_text(pl.col("rep_incl")),
        "recomputed_total_incl_vat": e4_text(pl.col("rec_incl")),
        "diff_incl_vat": e4_text(pl.col("diff_incl")),
        "source": pl.col("source").cast(pl.String),
        "line": pl.col("line"),
    }
    assert list(cols) == RECON_COLUMNS
    return cols


def _recon_text(part: pl.DataFrame) -> pl.DataFrame:
    """reconciliation.ndjson rows of plain CDRs: (ord, seq, text)."""
    return part.select(
        "ord",
        pl.lit(0, pl.Int64).alias("seq"),
        pl.struct(**recon_columns()).struct.json_encode().alias("text"),
    )


def _finding_text(**cols: pl.Expr) -> pl.Expr:
    """A findings.ndjson row (``ReconFinding.as_row``, ``FINDING_COLUMNS`` order) as JSON text."""
    base = {
        "dimension": pl.lit(None, pl.String),
        "period": pl.lit(None, pl.Int64),
        "amount": pl.lit(None, pl.String),
    }
    row = {"cdr_id": pl.col("cdr_id"), "code": cols["code"], **base}
    row.update({k: v for k, v in cols.items() if k != "code"})
    row.update({"source": pl.col("source"), "line": pl.col("line")})
    return pl.struct(**{k: row[k] for k in FINDING_COLUMNS}).struct.json_encode()


def finding_texts(
    part: pl.DataFrame, straddles: pl.DataFrame, dims: pl.DataFrame, tolerance: Decimal
) -> pl.DataFrame:
    """The findings of plain CDRs as reconcile_one words them, (ord, seq, text): straddling
    periods (in period order), then the status finding (ROUNDING, OVER/UNDERCHARGED, or why it is
    NOT_PRICED: NOT_COMPARABLE or the pricing's refusal), then the dimension findings (``dims``)."""
    keys = part.select("ord", "cdr_id", "source", "line")
    explained = dims.join(keys.select("ord"), on="ord", how="inner").select("ord", "seq", "text")
    straddle = (
        straddles.join(keys, on="ord", how="inner")
        .sort(["ord", "src"])
        .select(
            "ord",
            pl.col("src").alias("seq"),
            _finding_text(
                code=pl.lit("PERIOD_STRADDLES_BOUNDARY"),
                period=pl.col("src"),
                message=straddle_message_expr(pl.col("src")),
            ).alias("text"),
        )
    )
    last = pl.lit(1 << 40, pl.Int64).alias("seq")  # after the straddles of the same CDR
    w = pl.col("worst")

    def total_finding(status: pl.Expr, code: pl.Expr, amount: pl.Expr, message: pl.Expr) -> pl.DataFrame:
        text = _finding_text(code=code, dimension=pl.lit("total"), amount=e4_text(amount), message=message)
        return part.filter(status).select("ord", last, text.alias("text"))

    rounding = total_finding(
        pl.col("status") == "ROUNDING", pl.lit("ROUNDING"), w, rounding_message_expr(w, tolerance)
    )
    # OVER/UNDER: said in excl. VAT terms when that differs beyond the tolerance
    dx = pl.col("diff_excl")
    use_x = use_excl_expr(dx, tolerance_e4(tolerance))
    which_x = use_x | pl.col("worst_is_x")
    diff = pl.when(use_x).then(dx).otherwise(w)
    rep = pl.when(which_x).then(pl.col("rep_excl")).otherwise(pl.col("rep_incl"))
    ours = pl.when(which_x).then(pl.col("rec_excl")).otherwise(pl.col("rec_incl"))
    rep_text = pl.when(which_x).then(pl.col("rep_x_text")).otherwise(pl.col("rep_i_text"))
    over = total_finding(
        pl.col("status").is_in(["OVERCHARGED", "UNDERCHARGED"]),
        pl.col("status"),
        diff,
        charge_message_expr(diff, pl.col("currency"), which_x, rep, ours, rep_text),
    )
    not_priced = part.filter(pl.col("status") == "NOT_PRICED").select(
        "ord",
        last,
        _finding_text(code=pl.col("code").cast(pl.String), message=pl.col("message").cast(pl.String)).alias(
            "text"
        ),
    )
    return pl.concat([straddle, rounding, over, not_priced, explained]).sort(["ord", "seq"])


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
    keep: Callable[[Statement], bool] | None = None,
) -> tuple[Path, dict[str, int], list[Statement]]:
    """Build the statements of a columnar run and write the run folder (in one rename); ``keep``:
    the statements written (all when None)."""
    say("building statements")
    built, meta, plain, sub = build(run, contracts, month, zone)
    if keep is not None:
        built = [b for b in built if keep(b.st)]
    ord_of = dict(zip(map(id, run.detail), run.detail_ord, strict=True))
    straddles = pl.concat(run.straddles).sort("ord") if run.straddles else pl.DataFrame()
    dims = pl.concat(run.dims).sort("ord", "seq") if run.dims else no_dims()

    def run_files(tmp: Path) -> None:
        write_reconciliation(tmp, plain, run, ord_of)
        say("reconciliation.ndjson ready")
        write_findings(
            tmp,
            plain,
            run,
            ord_of,
            straddles,
            dims,
            sub,
            month,
            zone,
            contracts.default.tolerance,
            meta["extra"],
        )
        say("findings.ndjson ready")
        write_rejects(tmp, run.rejects)
        entries = [statement_entry(b.st, b.n_lines) for b in built]
        summary = summary_of(plain, straddles, dims, run.detail)
        record_path = dict(run.record_path)
        write_manifest(tmp, month, inputs, settings, contracts, meta["counts"], summary, entries, record_path)
        say("manifest.json ready")

    out = atomic_output(out_dir, lambda tmp: fill_in_parallel(tmp, built, run_files, locale, say))
    return out, meta["counts"], [b.st for b in built]


def fill_in_parallel(
    tmp: Path, built: list[Built], run_files: Callable[[Path], None], locale: str, say: Callable[[str], None]
) -> None:
    """Two writers at once (most of the work is in polars, outside the GIL): one starts on the
    run files (written in bounded slices), the other on the statements, biggest first (a
    statement's line text is the largest thing in memory); whoever is free takes the next
    statement."""
    done: list[str] = []

    def statement(b: Built) -> None:
        write_statement(b, tmp / b.st.folder, locale)
        done.append(b.st.folder)
        say(f"statement {len(done)}/{len(built)} ready ({b.st.folder})")

    tasks: list[Callable[[], None]] = [lambda: run_files(tmp)]
    tasks += [lambda b=b: statement(b) for b in sorted(built, key=lambda b: -b.n_lines)]
    with ThreadPoolExecutor(2) as pool:
        for fut in [pool.submit(t) for t in tasks]:
            fut.result()


def detail_texts(
    lines: Sequence[ReconLine], ord_of: dict[int, int], make: Callable[[ReconLine], list[dict[str, Any]]]
) -> pl.DataFrame:
    """NDJSON texts of record-path rows: (ord, seq, text), ``make`` gives a line's rows."""
    data = [(ord_of[id(ln)], seq, dumps(r)) for ln in lines for seq, r in enumerate(make(ln))]
    return pl.DataFrame(data, schema={"ord": pl.Int64, "seq": pl.Int64, "text": pl.String}, orient="row")


def write_reconciliation(tmp: Path, plain: pl.DataFrame, run: ColumnarRun, ord_of: dict[int, int]) -> None:
    """``reconciliation.ndjson``: plain rows from columns, record-path rows merged in input order."""
    with open(tmp / "reconciliation.ndjson", "wb") as fh:
        _write_in_order(fh, plain, _recon_text, detail_texts(run.detail, ord_of, lambda ln: [ln.as_row()]))


def write_findings(
    tmp: Path,
    plain: pl.DataFrame,
    run: ColumnarRun,
    ord_of: dict[int, int],
    straddles: pl.DataFrame,
    dims: pl.DataFrame,
    sub: RunResult,
    month: str,
    zone: ZoneInfo,
    tolerance: Decimal,
    extra: list[dict[str, Any]],
) -> None:
    """``findings.ndjson``: per CDR in input order, then the out-of-month findings in input order,
    then the run's own findings (tariffs, mixed currencies)."""
    with open(tmp / "findings.ndjson", "wb") as fh:
        _write_in_order(
            fh,
            plain,
            lambda part: finding_texts(part, straddles, dims, tolerance),
            detail_texts(run.detail, ord_of, lambda ln: [f.as_row() for f in ln.findings]),
        )
        outside = plain.filter(~pl.col("in_month")) if plain.height else plain
        oom = [
            (o, out_of_month_finding(cid, end, month, src, line, zone))
            for o, cid, src, line, end in (
                outside.select(
                    "ord", "cdr_id", pl.col("source").cast(pl.String), "line", "end_ms"
                ).iter_rows()
                if outside.height
                else []
            )
        ]
        oom += [
            (ord_of[id(ln)], out_of_month_finding(ln.cdr.id, ln.cdr.end_ms, month, ln.source, ln.line, zone))
            for ln in sub.out_of_month
        ]
        oom.sort(key=lambda r: r[0])
        write_ndjson_rows(fh, (r for _, r in oom))
        write_ndjson_rows(fh, extra)


def summary_of(
    plain: pl.DataFrame, straddles: pl.DataFrame, dims: pl.DataFrame, detail: list[ReconLine]
) -> dict[str, Any]:
    """``summarize`` of the whole run: the record-path lines' summary plus the plain rows'."""
    s = summarize(detail)
    by_status = Counter(s["by_status"])
    by_code = Counter(s["findings_by_code"])
    diff = Decimal(s["net_difference_excl_vat"])
    if plain.height:
        for status, n in plain.group_by("status").len().iter_rows():
            by_status[status] += n
        for code, n in plain.filter(pl.col("code").is_not_null()).group_by("code").len().iter_rows():
            by_code[code] += n
        by_code["PERIOD_STRADDLES_BOUNDARY"] += straddles.height
        for code, n in dims.group_by("code").len().iter_rows():
            by_code[code] += n
        diff += d4(plain["diff_excl"].sum() or 0)
    return {
        "cdrs": len(detail) + plain.height,
        "by_status": {st: by_status.get(st, 0) for st in STATUSES},
        "findings_by_code": dict(sorted((k, v) for k, v in by_code.items() if v)),
        "net_difference_excl_vat": e4(diff),
    }
