"""The columnar settlement engine's entry point: a month of flat Parquet files
(:mod:`pricing.flat`) settled at scale, one piece of whole CDRs at a time.

The pipeline, one module per step:

1. :mod:`settlement.columnar.piece` — price and reconcile a piece on columns (the plain CDRs); the
   CDRs that need judgement go to the record path, counted by reason;
2. :mod:`settlement.columnar.run` — every piece (threads or Dask), then the run-wide duplicate and
   credit checks;
3. :mod:`settlement.columnar.statements` — statements and their totals from columns;
4. :mod:`settlement.columnar.files` — the run folder, through the writers of
   :mod:`settlement.output`.

The files are byte-identical to the record engine on the same input (tested, except the
``record_path`` counts the columnar manifest adds); :func:`settlement.jobs.flat_lines` is its
oracle. Money is exact: reported totals are read as 128-bit decimals into int64 units of 1e-4 (a
reported total with more than 4 decimals is rejected, ``UNSUPPORTED_PRECISION``), recomputed
totals come from the kernel in the same units, line roundings are integer arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pricing.batch import expand_inputs, load_tariffs
from pricing.errors import InputError
from pricing.flat import is_flat_file
from pricing.policy import PricingPolicy
from pricing.sessions import TariffSet
from pricing.timezones import validate_zone
from settlement.columnar.files import write_columnar
from settlement.columnar.run import PieceSource, run_columnar
from settlement.contracts import load_contracts
from settlement.jobs import DEFAULT_POLICY, read_history, store_tariffs
from settlement.rules import month_bounds, month_window_ms
from settlement.statement import Statement
from settlement.store import Store
from settlement.store.read import month_pieces, raw_records, special_ids

HELD_RAW = "held without kernel columns"


def store_source(store: Store, window: tuple[int, int], tariffs: TariffSet) -> PieceSource:
    """A store's month as a piece source: kernel CDRs in flat pieces, the others as records."""
    lo, hi = window
    known = frozenset(k for k, v in tariffs.by_id.items() if v)
    return PieceSource(
        lambda n: month_pieces(store.engine, lo, hi, n, known),
        special_ids(store.engine, lo, hi),
        raw_records(store.engine, lo, hi),
        HELD_RAW,
    )


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
    store: Store | None = None,
) -> tuple[Path, dict[str, int], list[Statement]]:
    """Settle a month of flat-layout Parquet files, or of a ``store`` (its tariff versions and the
    CDRs whose session ended in the month, read in flat pieces), and write the run into ``out_dir``.

    Same outputs as :func:`settlement.jobs.settle` + :func:`settlement.jobs.write_run` on the
    same files, in bounded memory per piece. Returns (folder, counts, statements)."""
    try:
        month_bounds(month)
    except ValueError as exc:
        raise InputError(f"--month {month!r}: {exc}. Hint: use YYYY-MM, e.g. 2026-10") from exc
    files = expand_inputs(cdrs)
    other = [str(f) for f in files if not is_flat_file(f)]
    if store is not None and files:
        raise InputError(
            "the columnar engine settles --store alone. Hint: leave out --cdrs, or use --engine local"
        )
    if other:
        raise InputError(
            "the columnar engine reads flat-layout Parquet only (pricing.flat); not flat: "
            f"{', '.join(other)}. Hint: use --engine local for OCPI JSON/NDJSON"
        )
    contracts = load_contracts(contracts_path, basis)
    zone = ZoneInfo(validate_zone(tz or contracts.statement_time_zone or "UTC"))
    say = progress or (lambda _msg: None)
    say("reading tariffs")
    source: Any = files
    if store is not None:
        given, tariff_findings = store_tariffs(store)
        source = store_source(store, month_window_ms(month, zone), given)
    else:
        given, tariff_findings = load_tariffs(tariffs) if tariffs else (None, [])
    run = run_columnar(
        source,
        given,
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
