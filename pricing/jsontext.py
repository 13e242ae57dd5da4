"""What a JSON text must be before its records are read: nested no deeper than
:data:`MAX_JSON_DEPTH`, and Unicode text (no lone surrogate escape).

Python's ``json`` reader recurses once per level and stops near 1000 levels with a
``RecursionError`` (how deep it gets depends on the caller's stack); a lone ``\\ud800`` escape
decodes to a string that cannot be written as UTF-8. Neither is an OCPI record: the readers of
:mod:`pricing.io` reject such a line (``BAD_JSON``) or such a record (``INVALID_VALUE``) with
the messages made here, the same wherever it is read.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from pricing import errors as E
from pricing.errors import Finding

MAX_JSON_DEPTH = 512  # objects and arrays nested in each other; an OCPI record needs about 10

_STEP = np.zeros(256, np.int8)
_STEP[[ord("{"), ord("[")]] = 1
_STEP[[ord("}"), ord("]")]] = -1
_STRUCTURAL = np.zeros(256, bool)
_STRUCTURAL[[ord(c) for c in "{}[],:"]] = True


def structure(data: bytes, chars: np.ndarray = _STRUCTURAL) -> tuple[np.ndarray, np.ndarray]:
    """The positions of the bytes of ``chars`` (a 256-entry mask) outside strings in the JSON text
    ``data``, and the nesting depth after each (an opening bracket counts at itself, a closing one
    after itself). Works on those positions and the quotes only (few next to the bytes)."""
    buf = np.frombuffer(data, np.uint8)
    pos = np.flatnonzero(chars[buf])
    quotes = np.flatnonzero(buf == 34)
    if len(quotes) and len(pos):
        # a quote opens or closes a string unless an odd run of backslashes comes before it
        back = np.flatnonzero(buf == 92)
        if len(back):
            new_run = np.r_[True, back[1:] != back[:-1] + 1]
            run_start = np.maximum.accumulate(np.where(new_run, back, 0))
            k = np.searchsorted(back, quotes - 1)  # the backslash just before a quote, if any
            k = np.minimum(k, len(back) - 1)
            escaped = (back[k] == quotes - 1) & ((quotes - run_start[k]) % 2 == 1)
            quotes = quotes[~escaped]
        pos = pos[np.searchsorted(quotes, pos) % 2 == 0]  # an even number of quotes before it
    depth = np.cumsum(_STEP[buf[pos]].astype(np.int64))
    return pos, depth


def too_deep(data: bytes) -> bool:
    """Whether ``data`` nests objects/arrays deeper than :data:`MAX_JSON_DEPTH` (a count of the
    brackets first: most texts have too few to be that deep)."""
    if data.count(b"{") + data.count(b"[") <= MAX_JSON_DEPTH:
        return False
    _pos, depth = structure(data, _BRACKETS)
    return bool(depth.max(initial=0) > MAX_JSON_DEPTH)


_BRACKETS = _STEP != 0


def too_deep_finding(source: str, line: int | None, what: str = "the line") -> Finding:
    msg = (
        f"{what} is not readable JSON: it nests objects and arrays deeper than {MAX_JSON_DEPTH} "
        "levels. Hint: an OCPI record nests about 10 levels; remove the deeply nested value"
    )
    return Finding(E.BAD_JSON, msg, source, line)


def split_deep(data: bytes) -> list[bytes] | None:
    """The items of a too-deep JSON document, found from its brackets without decoding it: those
    of a top-level array, or of the ``data`` array of a top-level OCPI envelope (an object with
    ``data`` and ``status_code`` or ``timestamp``). None when the document is one object."""
    pos, depth = structure(data)
    buf = np.frombuffer(data, np.uint8)
    start = len(data) - len(data.lstrip())
    first = data[start : start + 1]
    if first == b"[":
        return [data[a:b] for a, b in _items(data, pos, depth, start)]
    if first != b"{":
        return None
    keys: dict[str, tuple[int, int]] = {}
    for a, b in _items(data, pos, depth, start):
        lo, hi = np.searchsorted(pos, [a, b])
        colon = np.flatnonzero((buf[pos[lo:hi]] == 58) & (depth[lo:hi] == 1))  # after the key
        if not len(colon):
            return None
        at = int(pos[lo + colon[0]])
        try:
            key = json.loads(data[a:at])
        except ValueError:
            return None
        if isinstance(key, str):
            keys.setdefault(key, (at + 1, b))
    if "data" in keys and ("status_code" in keys or "timestamp" in keys):
        a, b = keys["data"]
        at = a + len(data[a:b]) - len(data[a:b].lstrip())
        if data[at : at + 1] == b"[":
            return [data[x:y] for x, y in _items(data, pos, depth, at)]
    return None


def _items(data: bytes, pos: np.ndarray, depth: np.ndarray, open_at: int) -> list[tuple[int, int]]:
    """(start, end) of each comma-separated item of the array or object opened at byte
    ``open_at`` (one of ``pos``), blanks around it left out; none for an empty one."""
    k = int(np.searchsorted(pos, open_at))
    level = depth[k]
    after = np.flatnonzero(depth[k + 1 :] < level)
    close = int(pos[k + 1 + after[0]]) if len(after) else len(data)
    end_k = k + 1 + int(after[0]) if len(after) else len(pos)
    inner = slice(k + 1, end_k)
    cuts = pos[inner][(np.frombuffer(data, np.uint8)[pos[inner]] == 44) & (depth[inner] == level)].tolist()
    spans = []
    for a, b in zip([open_at + 1, *(c + 1 for c in cuts)], [*cuts, close], strict=True):
        text = data[a:b]
        a += len(text) - len(text.lstrip())
        b -= len(text) - len(text.rstrip())
        spans.append((a, max(a, b)))
    return [] if len(spans) == 1 and spans[0][0] == spans[0][1] else spans


def single_value(data: bytes) -> bool:
    """Whether ``data`` holds one JSON value and blanks after it (not one value per line)."""
    pos, depth = structure(data, _BRACKETS)
    closed = np.flatnonzero(depth == 0)
    return not len(closed) or not data[int(pos[closed[0]]) + 1 :].strip()


# ---- lone surrogates ----------------------------------------------------------------------------

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def may_hold_surrogate(data: bytes) -> bool:
    """Whether the JSON text has a ``\\uD800``–``\\uDFFF`` escape (a pair, as for an emoji, or a
    lone one): only then can a decoded string hold a lone surrogate."""
    return _SURROGATE_ESCAPE.search(data) is not None


def lone_surrogate(value: Any) -> tuple[str, str] | None:
    """(JSON path, the string) of the first key or string of a decoded value, in document order,
    that holds a lone surrogate (not Unicode text: it cannot be written as UTF-8), or None. A
    loop, not recursion: an object of the Python API may be nested deeper than the stack goes."""
    todo: list[tuple[Any, str]] = [(value, "$")]
    while todo:
        v, path = todo.pop()
        if isinstance(v, str):
            if not v.isascii() and _SURROGATE.search(v):
                return path, v
        elif isinstance(v, dict):
            items = []
            for k, x in v.items():
                if isinstance(k, str) and not k.isascii() and _SURROGATE.search(k):
                    here = f"{path}.{k.encode('utf-8', 'backslashreplace').decode()}"  # writable
                    items.append((k, here))  # the key itself (before its value)
                else:
                    here = f"{path}.{k}"
                items.append((x, here))
            todo.extend(reversed(items))
        elif isinstance(v, (list, tuple)):
            todo.extend(reversed([(x, f"{path}[{i}]") for i, x in enumerate(v)]))
    return None


def surrogate_finding(found: tuple[str, str], source: str, line: int | None) -> Finding:
    path, text = found
    shown = text if len(text) <= 40 else text[:39] + "…"
    where = path[2:] if path.startswith("$.") else path
    msg = (
        f"{where}: {shown!a} holds a lone UTF-16 surrogate escape, which is not Unicode text "
        "and cannot be written as UTF-8. Hint: write the text as UTF-8, or escape a character "
        "above U+FFFF as a surrogate pair (\\ud83d\\ude00); remove the stray \\uD800-\\uDFFF escape"
    )
    return Finding(E.INVALID_VALUE, msg, source, line, None, path)
