"""How many processes price an OCPI NDJSON file, and the helper processes started for it.

Light on purpose (the standard library only), like :mod:`pricing.files`: ``roamledger price``
decides here, from the input file's size, whether the file will be priced on several processes
and, if so, starts the helper processes (:func:`start_helpers`) before it loads the pricing's own
modules. A spawned helper imports numpy, polars, pyarrow and the pricing (about a second) while the
command does the same, on the other core, instead of after it: the file's first spans find it
ready. :mod:`pricing.ndjson_parallel` takes those helpers (:func:`take_helpers`) or, when none were
started, starts its own the same way (:func:`helper_pool`).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor

AUTO = 0  # workers: as many processes as cores when the file is large enough
MIN_SPLIT_BYTES = 32 << 20  # ~25k CDRs: below, one process

# loaded by name in a helper as it starts (this module loads none of them: it is loaded first)
HELPER_MODULES = ("pricing.batch",)  # the spans' pricing (pricing.batch.price_ndjson_columnar)
HELPER_INIT = ("pricing.ndjson_parallel", "init_worker")

_started: ProcessPoolExecutor | None = None
_started_size = 0


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the system says, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def processes(path: str, workers: int) -> int:
    """How many processes price the NDJSON file: ``workers``, or for :data:`AUTO` one per core
    (:func:`cores`) when the file has at least :data:`MIN_SPLIT_BYTES`, else one."""
    if workers != AUTO:
        return max(1, workers)
    if os.path.getsize(path) < MIN_SPLIT_BYTES:
        return 1
    return cores()


def _init_helper() -> None:
    """A helper process: the modules it prices with loaded now rather than at its first span
    (:data:`HELPER_MODULES`), then :data:`HELPER_INIT` (one Arrow thread, no pandas probe)."""
    for name in HELPER_MODULES:
        importlib.import_module(name)
    module, function = HELPER_INIT
    getattr(importlib.import_module(module), function)()


def _ready() -> None:
    """A task that does nothing: submitted once per helper so that each is started now."""


def helper_pool(helpers: int) -> ProcessPoolExecutor:
    """``helpers`` processes, started now (spawned, not forked: a forked child inherits pyarrow's
    and polars' thread pools mid-state and hangs), each loading the pricing's modules."""
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(helpers, mp_context=context, initializer=_init_helper)
    # Ctrl-C reaches the helpers too (one process group): they ignore it (a signal ignored when a
    # process starts stays ignored), the command stops them; else each prints a traceback
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        for _ in range(helpers):
            pool.submit(_ready)
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    return pool


def start_helpers(helpers: int) -> None:
    """Start ``helpers`` helper processes for a later :func:`take_helpers` (none for 0); the ones
    started before and not taken are stopped."""
    global _started, _started_size
    stop_helpers()
    if helpers > 0:
        _started, _started_size = helper_pool(helpers), helpers


def take_helpers(helpers: int) -> ProcessPoolExecutor | None:
    """The helpers :func:`start_helpers` started, if there are ``helpers`` of them (the caller
    owns them then: it shuts them down), else None (those started are stopped)."""
    global _started, _started_size
    pool, size = _started, _started_size
    _started, _started_size = None, 0
    if pool is not None and size != helpers:
        pool.shutdown(cancel_futures=True)
        return None
    return pool


def stop_helpers() -> None:
    """Stop the helpers :func:`start_helpers` started that no one took (the command is done)."""
    global _started, _started_size
    if _started is not None:
        _started.shutdown(cancel_futures=True)
    _started, _started_size = None, 0
