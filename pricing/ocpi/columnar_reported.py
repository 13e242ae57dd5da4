"""The flat layout's optional ``reported_*`` columns (:data:`pricing.flat.FLAT_REPORTED`) from the
nested OCPI columns of the columnar reader (:mod:`pricing.ocpi.columnar`): what the CPO reported
beyond the total — dimension costs excl. VAT, total energy and time, 2.3.0 tax lines — exact in
``decimal128(38, 6)``; a row with a value of more decimals goes per record (counted).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pricing.flat import TAXES_TYPE
from pricing.ocpi.columnar_values import Checks, convert, dec6, list_parts, per_parent_all, valid_mask


def _exact6(a: pa.Array, ck: Checks) -> pa.Array:
    """A decimal column as ``decimal128(38, 6)``; a row with a value of more decimals goes per record."""
    v, ok = convert(a, "e6")
    has = valid_mask(a)
    ck.require(~has | ok, "reported value with more than 6 decimals")
    return dec6(v, has & ok)


def reported(col: dict[str, pa.Array], ck: Checks, v230: np.ndarray | None) -> dict[str, pa.Array]:
    """The flat layout's ``reported_*`` columns (:data:`pricing.flat.FLAT_OPTIONAL`): dimension
    costs excl. VAT (2.2.1 ``excl_vat``, 2.3.0 ``before_taxes``), total energy and time, and the
    2.3.0 tax lines of ``total_cost``. ``v230`` None: a 2.1.1 row (no dimension costs, no taxes)."""
    n = len(col["id"])
    out = {
        "reported_total_energy": _exact6(col["total_energy"], ck),
        "reported_total_time": _exact6(col["total_time"], ck),
    }
    for dim in ("fixed", "energy", "time", "parking", "reservation"):
        name = f"reported_{dim}_cost_excl"
        if v230 is None:
            out[name] = pa.nulls(n, pa.decimal128(38, 6))
            continue
        p = col[f"total_{dim}_cost"]
        out[name] = _exact6(pc.if_else(pa.array(v230), p.field("before_taxes"), p.field("excl_vat")), ck)
    if v230 is None:
        out["reported_taxes"] = pa.nulls(n, TAXES_TYPE)
        return out
    taxes = col["total_cost"].field("taxes")
    items, parent, lengths = list_parts(taxes)
    sub = Checks(len(items))
    item = pa.StructArray.from_arrays(
        [items.field("name"), _exact6(items.field("percentage"), sub), _exact6(items.field("amount"), sub)],
        fields=list(TAXES_TYPE.value_type),
    )
    ck.require(~v230 | per_parent_all(sub.ok, parent, n), "reported value with more than 6 decimals")
    has = valid_mask(taxes) & v230
    offsets = pa.array(np.r_[0, np.cumsum(np.where(has, lengths, 0))].astype(np.int32))
    keep = np.repeat(has, lengths)  # the tax lines of 2.3.0 rows (a 2.2.1 Price has none)
    out["reported_taxes"] = pa.ListArray.from_arrays(
        offsets, item.filter(pa.array(keep)), type=TAXES_TYPE, mask=pa.array(~has)
    )
    return out
