"""``--tariffs`` checked before any work (``price``, ``reconcile``, ``settle``).

Apart from :mod:`api.cli.options` because it reads the tariffs (the pricing's modules): the options
are what parsing a command line loads, and that loads no numpy, polars or pyarrow.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from pricing.batch import load_tariffs
from pricing.errors import BAD_JSON, InputError


def check_tariffs(paths: Iterable[str] | None, limit: int = 10) -> None:
    """Before any work: every ``--tariffs`` path must hold a tariff (a path with none is an input
    error), a tariff file that is not JSON is an input error (the ids of its tariffs are unknown:
    their CDRs would all be rejected as TARIFF_NOT_FOUND), and every tariff that is JSON but cannot
    be read is named on stderr with its own error (its CDRs are rejected as TARIFF_INVALID)."""
    shown = 0
    for path in paths or []:
        store, findings = load_tariffs([path])
        errors = [f for f in findings if f.severity == "error"]
        for f in errors:  # a file that is not JSON: its tariffs (ids unknown) would be silently missing
            if f.code == BAD_JSON:
                line = f" line {f.line}" if f.line is not None else ""
                raise InputError(f"--tariffs {path}: {f.source}{line} cannot be read: {f.message}")
        for f in errors:
            if shown < limit:
                where = f"{f.source} line {f.line}" if f.line is not None else f.source
                print(f"tariff {f.record_id or '?'} ({where}) cannot be read: {f.message}", file=sys.stderr)
            shown += 1
        if not len(store):  # not one readable tariff: a wrong path, not a bad tariff among good ones
            first = f" (first problem: {errors[0].message})" if errors else ""
            raise InputError(
                f"--tariffs {path}: no tariff in it{first}. "
                "Hint: give OCPI tariffs (a file holding an object, an array or NDJSON, or a folder of them)"
            )
    if shown > limit:
        print(f"... {shown - limit} more tariffs cannot be read (see the findings file)", file=sys.stderr)
