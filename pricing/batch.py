"""Pricing many CDRs: parse → choose tariff and zone → price → rows, with every reject kept.

The invariant ``read == priced + rejected`` holds for every run: each input record ends up either
as exactly one result row or as exactly one reject row (with its source, line, code and a message
that says how to fix it). Warnings about priced records are kept apart (``warnings``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
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

ENGINES = ("reference",)


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
) -> BatchResult:
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
