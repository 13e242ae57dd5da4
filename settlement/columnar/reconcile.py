"""``roamledger reconcile`` on the columnar engine: the per-CDR reconciliation of every input
(flat Parquet, OCPI NDJSON, OCPI JSON) through the pieces of :mod:`settlement.columnar.run`, with
the rows, findings and summary of the record engine (:func:`settlement.jobs.reconcile_all` +
:func:`settlement.reconcile.check_duplicates_and_credits`), in its order: by CDR id, source, line.

Only the reconciliation is used: no month (every CDR counts), no contract terms but the tolerance,
no party (a CDR whose party is unknown is reconciled like any other).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from pricing.errors import Finding
from pricing.files import expand_inputs
from pricing.io import dumps
from pricing.policy import PricingPolicy
from pricing.sessions import TariffSet
from settlement.columnar.files import finding_texts, recon_columns, summary_of
from settlement.columnar.piece import no_dims
from settlement.columnar.run import run_columnar
from settlement.contracts import Contracts, Terms


@dataclass
class Reconciled:
    """The reconciliation of a run: rows and finding texts in the record engine's order."""

    read: int = 0
    rejects: list[Finding] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # JSON texts (``ReconFinding.as_row``)
    summary: dict[str, Any] = field(default_factory=dict)
    record_path: dict[str, int] = field(default_factory=dict)


def reconcile_columnar(
    cdrs: Sequence[Any],
    tariffs: TariffSet | None,
    policy: PricingPolicy,
    tz: str | None,
    tolerance: Decimal,
    say: Callable[[str], None] | None = None,
    span_bytes: int | None = None,
) -> Reconciled:
    """Reconcile every CDR of ``cdrs`` (files or folders) on the columnar engine."""
    contracts = Contracts(default=Terms(tolerance=tolerance))
    extra: dict[str, Any] = {"parties": False} | ({} if span_bytes is None else {"span_bytes": span_bytes})
    files = expand_inputs(cdrs)
    run = run_columnar(
        files,
        tariffs,
        policy,
        tz,
        contracts,
        "2000-01",
        ZoneInfo("UTC"),
        {},
        say or (lambda _m: None),
        **extra,
    )
    plain = pl.concat(run.plain, how="vertical_relaxed") if run.plain else pl.DataFrame()
    straddles = pl.concat(run.straddles).sort("ord") if run.straddles else pl.DataFrame()
    dims = pl.concat(run.dims).sort("ord", "seq") if run.dims else no_dims()
    out = Reconciled(run.read, run.rejects, record_path=dict(run.record_path))
    entries: list[tuple[tuple[str, str, int], dict[str, Any], list[str]]] = []
    if plain.height:
        texts: dict[int, list[str]] = {}
        for o, text in finding_texts(plain, straddles, dims, tolerance).select("ord", "text").iter_rows():
            texts.setdefault(o, []).append(text)
        rows = plain.select(pl.col("ord"), **recon_columns()).to_dicts()
        for r in rows:
            o = r.pop("ord")
            entries.append(((r["cdr_id"], r["source"], r["line"] or 0), r, texts.get(o, [])))
    for ln in run.detail:
        texts_ln = [dumps(f.as_row()) for f in ln.findings]
        entries.append(((ln.cdr.id, ln.source, ln.line or 0), ln.as_row(), texts_ln))
    entries.sort(key=lambda e: e[0])
    out.rows = [r for _, r, _ in entries]
    out.findings = [t for _, _, ts in entries for t in ts]
    out.summary = summary_of(plain, straddles, dims, run.detail)
    return out
