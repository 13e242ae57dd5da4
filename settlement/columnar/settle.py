"""The columnar settlement engine's entry point: a month of CDR files settled at scale, one piece
of whole CDRs at a time (flat Parquet, :mod:`pricing.flat`; OCPI NDJSON read into the same layout,
:mod:`pricing.ndjson_pieces`; other files record by record: :mod:`settlement.columnar.source`).

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

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pricing.batch import load_tariffs
from pricing.files import expand_inputs
from pricing.ndjson_pieces import SPAN_BYTES
from pricing.policy import PricingPolicy
from pricing.timezones import validate_zone
from settlement.columnar.files import write_columnar
from settlement.columnar.run import run_columnar
from settlement.columnar.stored import store_pieces
from settlement.contracts import load_contracts
from settlement.jobs import DEFAULT_POLICY, paid_months, read_history, read_history_credits, store_tariffs
from settlement.rules import month_window_ms, parse_month
from settlement.statement import Statement
from settlement.store import Store
from settlement.store.months import settled_elsewhere
from settlement.store.read import last_row, month_rows, special_ids


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
    span_bytes: int = SPAN_BYTES,
    late: Mapping[str, str] | None = None,
    store: Store | None = None,
    late_rows: Sequence[int] = (),
    keep: Callable[[Statement], bool] | None = None,
    rows_read: list[int] | None = None,
) -> tuple[Path, dict[str, int], list[Statement]]:
    """Settle a month of CDR files (flat Parquet, OCPI NDJSON, OCPI JSON) and write the run into
    ``out_dir``. ``span_bytes``: the size of an NDJSON piece.

    Same outputs as :func:`settlement.jobs.settle` + :func:`settlement.jobs.write_run` on the
    same files, in bounded memory per piece. Returns (folder, counts, statements). ``late``: the
    late CDRs the month takes (CDR id → closed month, as :func:`settlement.jobs.settle`).

    With a ``store`` (and no ``cdrs`` / ``tariffs``) the month is what parties sent: the store's
    tariff versions and its CDRs whose session ended in the month, plus the late CDRs of rows
    ``late_rows`` (:mod:`settlement.columnar.stored`), read under the highest row id held when the
    run began; ``rows_read`` receives the rows read. ``keep``: the statements written (all when
    None)."""
    parse_month(month)
    files = expand_inputs(cdrs)
    contracts = load_contracts(contracts_path, basis)
    zone = ZoneInfo(validate_zone(tz or contracts.statement_time_zone or "UTC"))
    say = progress or (lambda _msg: None)
    say("reading tariffs")
    pieces, special, settled = None, None, None
    if store is not None:
        given, tariff_findings = store_tariffs(store)
        window = month_window_ms(month, zone)
        bound = last_row(store.engine)
        known = frozenset(k for k, v in given.by_id.items() if v)
        pieces = store_pieces(store, window, max(1, piece_rows), known, bound, late_rows)
        special = special_ids(store.engine, *window, bound)
        settled = settled_elsewhere(store, *window)
        if rows_read is not None:
            rows_read += month_rows(store.engine, *window, bound) + [r for r in late_rows if r <= bound]
    else:
        given, tariff_findings = load_tariffs(tariffs) if tariffs else (None, [])
    paid = paid_months(history, month, zone) if store is None and history else None
    run = run_columnar(
        files,
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
        span_bytes,
        late=late,
        pieces=pieces,
        special=special,
        paid=paid,
        history_credits=read_history_credits(history),
        settled=settled,
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
        keep,
    )
