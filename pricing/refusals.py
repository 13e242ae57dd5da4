"""A table of CDRs that the kernel refuses, cut down to the CDRs it refuses.

The kernel declines some inputs (:class:`~pricing.errors.KernelRefusal`): a tariff its fixed
point cannot hold, a value that would leave int64. The per-record path prices those exactly (same
output), one CDR at a time. So that only the refused CDRs take it, a refused table (the columnar
reader's: rows of one CDR share its ``line``) is cut: first the CDRs with a period priced with a
tariff that does not compile on its own, then halves at CDR boundaries, until each piece is priced
or is one refused CDR. The refused CDRs are then the same whatever table they came in (one file,
spans of any size), so their count does not depend on how many processes priced the file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pricing.compile import compile_tariffs
from pricing.errors import KernelRefusal
from pricing.sessions import TariffSet

T = TypeVar("T")


def kernel_parts(
    table: pa.Table, price: Callable[[pa.Table], T], tariffs: TariffSet | None
) -> tuple[list[T], list[tuple[np.ndarray, KernelRefusal]]]:
    """(``price`` of each piece of ``table`` the kernel accepts, in table order; per refusal, the
    lines of the CDRs refused, and why). ``table`` has ``line`` (one value per CDR, rows of a CDR
    together) and ``tariff_id``; ``tariffs``: the set it is priced with."""
    done: list[T] = []
    refused: list[tuple[np.ndarray, KernelRefusal]] = []
    verdicts: dict[str, KernelRefusal | None] = {}
    todo = [table]
    while todo:
        piece = todo.pop()
        try:
            done.append(price(piece))
            continue
        except KernelRefusal as exc:
            refusal = exc
        lines = piece.column("line").to_numpy()
        first = np.flatnonzero(np.r_[True, lines[1:] != lines[:-1]])  # each CDR's first row
        if len(first) == 1:
            refused.append((lines[:1], refusal))
            continue
        bad, why = _tariff_refusals(piece, tariffs, verdicts)
        if why is not None:  # CDRs with a period priced with such a tariff: per record; again without
            cdr_bad = np.logical_or.reduceat(bad, first)
            rows_bad = np.repeat(cdr_bad, np.diff(np.r_[first, len(lines)]))
            refused.append((lines[first[cdr_bad]], why))
            if not cdr_bad.all():
                todo.append(piece.filter(pa.array(~rows_bad)))
            continue
        cut = int(first[len(first) // 2])
        todo += [piece.slice(cut), piece.slice(0, cut)]  # the first half next: table order is kept
    return done, refused


def _tariff_refusals(
    piece: pa.Table, tariffs: TariffSet | None, verdicts: dict[str, KernelRefusal | None]
) -> tuple[np.ndarray, KernelRefusal | None]:
    """(per row, whether its tariff id names a tariff the kernel does not compile on its own;
    the first such refusal, None for none). ``verdicts`` caches each id's."""
    ids = piece.column("tariff_id")
    names = [i for i in pc.unique(ids).to_pylist() if i is not None]
    for tid in names:
        if tid not in verdicts:
            verdicts[tid] = _compiles_alone(tariffs.by_id.get(tid, []) if tariffs is not None else [])
    bad_ids = [t for t in names if verdicts[t] is not None]
    if not bad_ids:
        return np.zeros(piece.num_rows, bool), None
    bad = pc.fill_null(pc.is_in(ids, value_set=pa.array(bad_ids, ids.type)), False)
    return bad.to_numpy(zero_copy_only=False), verdicts[bad_ids[0]]


def _compiles_alone(versions: Any) -> KernelRefusal | None:
    """Why the kernel refuses one of these tariffs on its own (None: it compiles them all)."""
    for tariff in versions:
        try:
            compile_tariffs([tariff], (), {})
        except KernelRefusal as exc:
            return exc
    return None
