"""A month settled from the store: the CDRs whose session ended in it plus the late CDRs of closed
months it takes (:func:`settlement.store.months.late_cdrs`), through the columnar engine (the
record engine on request: the oracle). ``roamledger settle --store``, ``roamledger close --settle``
and ``POST /v1/settlements`` all run :func:`settle_store_month`, so their statement files are
byte-identical.

:func:`execute_run` is one run kept in the store (the API's background worker calls it): the run
folder is written by :func:`settle_store_month` into a temporary folder and every file of it
is stored with the run (``run_files``); statements of a run are read back from there.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from pricing.errors import RoamledgerError
from pricing.policy import PricingPolicy
from pricing.timezones import validate_zone
from settlement.columnar.settle import settle_columnar
from settlement.contracts import load_contracts
from settlement.jobs import DEFAULT_POLICY, RunResult, settle, write_run
from settlement.statement import Statement
from settlement.store import Store
from settlement.store.months import (
    closed,
    create_run,
    finish_run,
    get_run,
    history_files,
    late_cdrs,
    refuse_closed,
    set_status,
)

LOG = logging.getLogger("roamledger.runs")
STORE_SOURCE = "store:cdrs/"  # the source of a record read from the store (its line: the row id)


def redacted(url: str) -> str:
    """The store URL as a manifest records it: without a password."""
    return make_url(url).render_as_string(hide_password=True)


def run_settings(
    month: str, store_url: str, basis: str | None, tz: str | None, locale: str, engine: str = "columnar"
) -> dict[str, Any]:
    """The manifest's ``settings`` of a month settled from the store (as ``settle --store`` writes)."""
    return {
        "engine": engine,
        "pricer": "kernel",
        "policy": DEFAULT_POLICY.as_dict(),
        "basis": basis,
        "tz": tz,
        "locale": locale,
        "month": month,
        "store": redacted(store_url),
    }


def read_rows(result: RunResult) -> list[int]:
    """The store rows a record-engine run read (every record is a reconciled line or a reject)."""
    rows = [ln.line for ln in result.lines if ln.source.startswith(STORE_SOURCE) and ln.line is not None]
    rows += [f.line for f in result.rejects if f.source.startswith(STORE_SOURCE) and f.line is not None]
    return rows


def settle_store_month(
    store: Store,
    month: str,
    out_dir: str | os.PathLike[str],
    settings: dict[str, Any],
    locale: str = "en_GB",
    keep: Callable[[Statement], bool] | None = None,
    tz: str | None = None,
    basis: str | None = None,
    contracts_path: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    policy: PricingPolicy | None = None,
    progress: Callable[[str], None] | None = None,
    pricer: str = "kernel",
    engine: str = "columnar",
    scheduler: str | None = None,
    history: Sequence[str | os.PathLike[str]] = (),
    piece_rows: int = 500_000,
) -> tuple[Path, dict[str, int], list[Statement], list[int]]:
    """Settle ``month`` from the store (refused when it is closed), with the late CDRs it takes,
    and write the run folder ``out_dir`` (``keep``: the statements written, all when None).
    ``engine``: ``columnar`` (default: the month in flat pieces), or the record engine (``local``,
    ``dask``: the oracle). Returns (folder, counts, statements, the store rows it read)."""
    with store.engine.connect() as conn:
        refuse_closed(conn, month)
    late, rows = late_cdrs(store, month)
    common: dict[str, Any] = {
        "tz": tz,
        "basis": basis,
        "contracts_path": contracts_path,
        "policy": policy,
        "progress": progress,
        "pricer": pricer,
        "late": late,
    }
    with tempfile.TemporaryDirectory(prefix="roamledger-history-") as tmp:
        past = [*history, *closed_history(store, set(late.values()), Path(tmp))]
        if engine == "columnar":
            read: list[int] = []
            out, counts, statements = settle_columnar(
                [],
                None,
                month,
                out_dir,
                history=past,
                settings=settings,
                locale=locale,
                inputs=[],
                piece_rows=piece_rows,
                store=store,
                late_rows=rows,
                keep=keep,
                rows_read=read,
                **common,
            )
            return out, counts, statements, read
        result, contracts = settle(
            [],
            None,
            month,
            engine=engine,
            scheduler=scheduler,
            history=past,
            store=store,
            late_rows=rows,
            **common,
        )
    if keep is not None:
        result.statements = [st for st in result.statements if keep(st)]
    (progress or (lambda _m: None))("writing")
    out = write_run(result, contracts, out_dir, month, [], settings, locale)
    return out, result.counts, result.statements, read_rows(result)


def closed_history(store: Store, months: set[str], root: Path) -> list[Path]:
    """The final runs of the closed months that late CDRs come from, as history folders: a late
    credit nets its original settled there (not CREDIT_WITHOUT_ORIGINAL)."""
    finals = closed(store)
    out = []
    for month in sorted(months):
        folder = root / month
        for path, content in history_files(store, finals[month][0]):
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(content.encode("utf-8"))
        out.append(folder)
    return out


def queue_run(
    store: Store,
    month: str,
    basis: str | None = None,
    tz: str | None = None,
    locale: str = "en_GB",
    cpo: str | None = None,
    emsp: str | None = None,
    contracts: Mapping[str, Any] | None = None,
) -> int:
    """A queued run of ``month`` in the store (refused when the month is closed). ``contracts``:
    the contract terms (the contracts file's document), validated now (InputError) and kept in
    the run's options, so the run settles with them and can be reproduced (*decision*: the
    document itself is stored with the run, not a path or a digest: a file may change or vanish)."""
    terms = load_contracts(contracts) if contracts is not None else None
    zone = validate_zone(tz or (terms and terms.statement_time_zone) or "UTC")
    options: dict[str, Any] = {
        "basis": basis,
        "tz": tz,
        "zone": zone,
        "locale": locale,
        "cpo": cpo,
        "emsp": emsp,
    }
    if contracts is not None:
        options["contracts"] = dict(contracts)
    return create_run(store, month, options)


class RunInterrupted(Exception):
    """Raised by a run's progress callback when its server is stopping (:func:`execute_run`)."""


def execute_run(
    store: Store,
    run_id: int,
    progress: Callable[[str], None] | None = None,
    stopping: Callable[[], bool] | None = None,
) -> str:
    """Settle a queued run and keep its files in the store; returns its final status. A failure
    is recorded with its sentence (``failed``), never raised. ``stopping``: true once the server
    is stopping — the run was then marked interrupted (:func:`settlement.store.months.stop_runs`)
    and whatever stops it (``progress`` raising :class:`RunInterrupted`, a pool that refuses work
    at interpreter exit, a closed store) is no failure of its own: nothing more is written."""
    run = get_run(store, run_id)
    if run is None:
        return "failed"
    o = run.options
    set_status(store, run_id, "running")
    try:
        settings = run_settings(run.month, store.url, o.get("basis"), o.get("tz"), o["locale"])

        def keep(st: Statement) -> bool:
            return o.get("cpo") in (None, st.cpo) and o.get("emsp") in (None, st.emsp)

        with tempfile.TemporaryDirectory(prefix="roamledger-run-") as tmp:
            out, _, _, rows = settle_store_month(
                store,
                run.month,
                Path(tmp) / "run",
                settings,
                o["locale"],
                keep,
                tz=o.get("tz"),
                basis=o.get("basis"),
                contracts_path=o.get("contracts"),
                progress=progress,
            )
            manifest = (out / "manifest.json").read_text(encoding="utf-8")
            files = (
                (p.relative_to(out).as_posix(), p.read_bytes().decode("utf-8"))
                for p in sorted(out.rglob("*"))
                if p.is_file()
            )
            finish_run(store, run_id, files, json.loads(manifest)["statements"], manifest, rows)
        return "done"
    except Exception as exc:
        if stopping is not None and stopping():
            LOG.info("settlement run %s interrupted: the server is stopping (%s)", run_id, type(exc).__name__)
            return "failed"
        if isinstance(exc, RoamledgerError):
            set_status(store, run_id, "failed", str(exc))
            return "failed"
        # a bug: recorded on the run (one sentence) and logged with its traceback
        LOG.exception("settlement run %s failed", run_id)
        set_status(
            store,
            run_id,
            "failed",
            f"internal error ({type(exc).__name__}: {exc}). This is a bug in roamledger: please report it",
        )
    return "failed"
