"""JSON text of generated records, with numbers written from exact decimal text.

The records hold numbers as ``int`` or :class:`~decimal.Decimal` (never a binary float). A decimal is
written in the shortest form a CPO's JSON encoder would give the same value — the form Python and
orjson print for a float (``0.3``, ``12.0``, ``-1.5``) — but from its own digits, so no value passes
through a float on its way out. For every number the generator makes (at most 15 significant digits)
the bytes are those of the float it used to write.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson


def number_text(d: Decimal) -> str:
    """``d`` as a JSON number: trailing zeros dropped, at least one decimal (``12.0``), and the exponent
    form below 1e-5 and from 1e16 on (``5e-6``, ``1.25e+16``) — the forms orjson writes for floats.
    """
    if not d.is_finite():
        raise ValueError(f"{d} is not a JSON number")
    t = d.normalize()
    if not t:
        return "-0.0" if t.is_signed() else "0.0"
    e = t.adjusted()
    if -5 <= e < 16:
        s = f"{t:f}"
        return s if "." in s else f"{s}.0"
    sign, digits, _ = t.as_tuple()
    m = "".join(map(str, digits))
    mantissa = m[0] + (f".{m[1:]}" if len(m) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'+' if e > 0 else ''}{e}"


def _fragment(obj: Any) -> orjson.Fragment:
    if isinstance(obj, Decimal):
        return orjson.Fragment(number_text(obj))
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def dumps(obj: Any) -> bytes:
    """Compact JSON (one NDJSON line); non-ASCII kept as UTF-8."""
    return orjson.dumps(obj, default=_fragment)


def dumps_indented(obj: Any) -> str:
    """JSON indented by 2, ``", "`` / ``": "`` separators, non-ASCII kept, final newline (tariff files)."""
    return orjson.dumps(obj, default=_fragment, option=orjson.OPT_INDENT_2).decode("utf-8") + "\n"


def loads(raw: bytes) -> Any:
    """JSON → Python with floats, as a CDR consumer reads the lines (what the engine is given)."""
    return orjson.loads(raw)
