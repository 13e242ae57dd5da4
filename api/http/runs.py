"""The service's settlement worker: runs queued by ``POST /v1/settlements`` are settled one at a
time on a background thread that outlives the request (a month of 10^6 CDRs takes about a minute,
longer than a client should hold a request open). While a run is queued or running, a heartbeat
thread marks it alive in the store every :data:`BEAT_S` seconds (or a quarter of the
``run_stale_s`` setting); a run whose server stopped stops
beating and is reported ``failed`` (:func:`settlement.store.months.mark_interrupted`), also by
the next server that opens the store. A server that stops (SIGINT, SIGTERM: the app's shutdown)
marks its queued and running runs interrupted at once (:func:`settlement.store.months.stop_runs`);
the running one stops at its next step (:class:`settlement.runs.RunInterrupted`) and writes
nothing more — no traceback, no "internal error".
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from settlement.runs import RunInterrupted, execute_run
from settlement.store import Store
from settlement.store.months import beat, mark_interrupted, stop_runs

BEAT_S = 15.0  # at most; a quarter of the service's run_stale_s when that is shorter
LOG = logging.getLogger("roamledger.http")


class Runner:
    """One worker thread for runs, one heartbeat thread for the runs it holds."""

    def __init__(self, store: Store, stale_s: int) -> None:
        self.store = store
        self.every_s = min(BEAT_S, stale_s / 4)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roamledger-settle")
        self.held: set[int] = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.beater: threading.Thread | None = None
        mark_interrupted(store, stale_ms=stale_s * 1000)

    def submit(self, run_id: int) -> Future[str]:
        with self.lock:
            self.held.add(run_id)
            if self.beater is None:
                self.beater = threading.Thread(target=self._beat, name="roamledger-heartbeat", daemon=True)
                self.beater.start()
        future = self.pool.submit(execute_run, self.store, run_id, self._progress, self.stop.is_set)
        future.add_done_callback(lambda _f: self._release(run_id))
        return future

    def _progress(self, _message: str) -> None:
        if self.stop.is_set():
            raise RunInterrupted

    def _release(self, run_id: int) -> None:
        with self.lock:
            self.held.discard(run_id)

    def _beat(self) -> None:
        while not self.stop.wait(self.every_s):
            with self.lock:
                ids = sorted(self.held)
            try:
                beat(self.store, ids)
            except Exception:  # the store is unreachable for a moment: the next beat tries again
                LOG.warning("heartbeat of settlement runs %s failed", ids, exc_info=True)

    def shutdown(self) -> None:
        self.stop.set()
        with self.lock:  # before the queued ones are cancelled (and released)
            ids = sorted(self.held)
        self.pool.shutdown(wait=False, cancel_futures=True)
        try:
            stop_runs(self.store, ids)
        except Exception:  # the store is unreachable: the next server reports them (mark_interrupted)
            LOG.warning("could not mark settlement runs %s interrupted", ids, exc_info=True)
