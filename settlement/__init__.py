"""Reconciliation and CPO–eMSP settlement on top of :mod:`pricing`.

* :func:`reconcile` — CDRs (paths) → one :class:`~settlement.reconcile.ReconLine` per CDR
  (status, findings in words) plus the rejects
* :func:`settle` — a month of CDRs → :class:`~settlement.jobs.RunResult` with typed
  :class:`~settlement.statement.Statement` objects (write them with :func:`settlement.jobs.write_run`)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from decimal import Decimal

from pricing.batch import load_tariffs
from pricing.errors import Finding
from pricing.files import expand_inputs
from pricing.flat import is_flat_file
from pricing.io import iter_sources
from pricing.policy import PricingPolicy
from settlement import jobs
from settlement import reconcile as _reconcile_module
from settlement.jobs import DEFAULT_POLICY, RunResult, compute_lines, flat_lines
from settlement.reconcile import ReconLine, check_duplicates_and_credits

__all__ = ["reconcile", "settle"]

# The submodule ``settlement.reconcile`` shares its name with the function below: the imports above
# bind the package attribute to the module first, the function definition then takes the name (the
# module stays reachable as ``reconcile_module``).
reconcile_module = _reconcile_module


def reconcile(
    cdrs: Sequence[str | os.PathLike[str]],
    tariffs: Sequence[str | os.PathLike[str]] | None = None,
    tz: str | None = None,
    tolerance: Decimal = Decimal("0.01"),
    policy: PricingPolicy | None = None,
) -> tuple[list[ReconLine], list[Finding]]:
    """Recompute every CDR and explain each difference; returns (lines, rejects)."""
    store, _ = load_tariffs(tariffs)
    result = RunResult()
    policy = policy or DEFAULT_POLICY
    files = expand_inputs(cdrs)
    flat = [f for f in files if is_flat_file(f)]  # flat Parquet months (pricing.flat)
    lines = compute_lines(
        list(iter_sources([f for f in files if f not in flat])), store, policy, tz, tolerance, result
    )
    lines += flat_lines(flat, store, policy, tz, tolerance, result) if flat else []
    check_duplicates_and_credits(lines)
    return lines, result.rejects


def settle(
    cdrs: Sequence[str | os.PathLike[str]],
    tariffs: Sequence[str | os.PathLike[str]] | None,
    month: str,
    *,
    contracts: str | os.PathLike[str] | None = None,
    tz: str | None = None,
    basis: str | None = None,
    policy: PricingPolicy | None = None,
    history: Sequence[str | os.PathLike[str]] = (),
    engine: str = "local",
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Run a monthly settlement in memory, with the names of ``roamledger settle``'s options
    (``contracts`` is ``--contracts``); write the result with :func:`settlement.jobs.write_run`."""
    result, _contracts = jobs.settle(
        cdrs,
        tariffs,
        month,
        tz=tz,
        basis=basis,
        contracts_path=contracts,
        policy=policy,
        history=history,
        progress=progress,
        engine=engine,
    )
    return result
