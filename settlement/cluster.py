"""The Dask cluster of ``--engine dask``, loaded only when that engine is chosen.

``dask.distributed`` (with tornado) takes seconds to import: ``settle --help`` and every run of the
default engine must not pay for it, nor be interrupted inside it. It is therefore named here, in one
place, and imported through :func:`importlib.import_module` when :func:`dask_client` is entered; the
same explicit deferral as the command table of :mod:`api.cli` (the layout rule of no import
statements inside functions stays whole).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

DISTRIBUTED = "dask.distributed"


@contextmanager
def dask_client(scheduler: str | None) -> Iterator[Any]:
    """A ``dask.distributed.Client`` of ``scheduler``, else of a 2-worker ``LocalCluster`` (one
    thread per worker process); closed, with its cluster, on exit."""
    distributed = importlib.import_module(DISTRIBUTED)
    cluster = None
    if scheduler:
        client = distributed.Client(scheduler)
    else:
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
