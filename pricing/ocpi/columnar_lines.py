"""Byte checks of NDJSON lines for the columnar reader (:mod:`pricing.ocpi.columnar`): where each
line's JSON object is (blanks around it allowed, as ``json.loads`` allows them), and which explicit
nulls could make the per-record parser read another OCPI version than the columns say.

An explicit null is the same as an absent key for every optional field of the wire models, and
pyarrow reads both as null. Only version detection (:func:`pricing.ocpi.detect_version`) reads a
key's presence: the 2.2-only CDR keys at the top level, and the Price keys of the first top-level
money object that has one (``total_cost`` first). A row the columnar path keeps has a top-level
``total_cost`` object with a non-null Price key (2.2.x: that object decides), or a number
``total_cost`` and an ``auth_id`` (2.1.1: pyarrow refuses a ``total_cost`` object there).
Embedded tariffs never matter here: they count only when no money object tells, and a row's
tariffs are parsed in Python in the row's version (a 2.2+ shape in a 2.1.1 row is that tariff's
VERSION_MISMATCH: the row goes per record).

So a null of :data:`NULL_KEYS` leaves the version alone when the bytes prove which key ``P`` the
object it is directly in is the value of (``"P":{`` then no bracket up to it, :func:`_parents`),
and

* it is a 2.2-only CDR key (it is not at the top level);
* it is a Price key and ``P`` is no money field (for instance a tariff's ``min_price``);
* it is ``excl_vat`` / ``incl_vat`` and ``P`` is ``total_cost``: next to a non-null 2.2.1 key it
  says what that key says, and next to a 2.3.0 key that one decides;
* it is ``taxes`` / ``after_taxes``, ``P`` is ``total_cost`` and a non-null ``before_taxes``
  comes before it in that object (2.3.0 either way);
* it is a Price key, ``P`` is another money field, and the line has no ``"auth_id"`` (not a 2.1.1
  row, so ``total_cost`` decides).

Every other such null sends its line per record: at the top level, in an object of an array, after
a nested value, farther than :data:`FAR_BYTES` from its object's start, a 2.3.0 key that may be
the only one. A key written with a ``\\u`` escape of an ASCII character is invisible to the scan:
a line with such an escape and a ``null`` goes per record too.
"""

from __future__ import annotations

import re

import numpy as np

from pricing.ocpi import CDR_MONEY
from pricing.ocpi.columnar_values import positions

NULL_KEYS = (
    "before_taxes",
    "taxes",
    "after_taxes",
    "excl_vat",
    "incl_vat",
    "end_date_time",
    "cdr_token",
    "cdr_location",
    "country_code",
    "party_id",
)
V230_KEYS = 3  # NULL_KEYS[:3]: the Price keys that say 2.3.0
PRICE_KEYS = 5  # NULL_KEYS[:5]: Price keys; the others: the 2.2-only CDR keys
_KEY_NULL = re.compile(rb'"(' + "|".join(NULL_KEYS).encode() + rb')"\s*:\s*null')
_NULL = re.compile(rb"null")  # a literal: found by a fast scan, unlike _KEY_NULL's alternation
_AUTH_ID = re.compile(rb'"auth_id"')
_BEFORE_TAXES = re.compile(rb'"before_taxes"')


def _table(chars: bytes) -> np.ndarray:
    t = np.zeros(256, bool)
    t[list(chars)] = True
    return t


_SPACE = _table(b" \t\n\r\f\v")  # what \s matches in a bytes pattern
_BLANK = _table(b" \t\r")  # JSON whitespace within a line (json.loads skips it around a value)
_BRACKET = _table(b"{}[]")
_HEX = _table(b"0123456789abcdefABCDEF")
_PLAIN = _table(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_KEY_LAST = _table(bytes(ord(k[-1]) for k in NULL_KEYS))  # the last letter of each of NULL_KEYS
NEAR_BYTES = 64  # how far back the object's `{` is looked for (as one window of bytes),
FAR_BYTES = 2048  # and then, for the few not found there, at most (bytes.rfind)
NAME_BYTES = 32  # the longest key name P read before a `{`
CHUNK = 8192  # keys judged at a time
UNSURE, OTHER = -2, -1  # _parents: not proven; a key that is no money field


def object_bounds(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per line (``starts[i]:ends[i]``, ``ends[i]`` its ``\\n``): the first and last byte that is
    not a blank (space, tab, ``\\r``: JSON whitespace; a CRLF's ``\\r`` too); first > last for a
    blank line."""
    n = len(buf)
    first = starts.copy()
    last = ends - 1
    for pos, step in ((first, 1), (last, -1)):
        todo = np.flatnonzero((first <= last) & _BLANK[buf[np.clip(pos, 0, n - 1)]])
        for _ in range(64):  # a vector step per blank: lines open with a few at most
            if not len(todo):
                break
            pos[todo] += step
            todo = todo[(first[todo] <= last[todo]) & _BLANK[buf[pos[todo]]]]
        for i in todo.tolist():  # a long run of blanks: bytes.strip
            raw = buf[first[i] : last[i] + 1].tobytes()
            pos[i] += step * (len(raw) - len(raw.lstrip(b" \t\r") if step > 0 else raw.rstrip(b" \t\r")))
    return first, last


def key_null_hits(
    block: bytes, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, at: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every match of :data:`_KEY_NULL` in the block's lines: (position of the key's opening quote,
    index of the key in :data:`NULL_KEYS`), by position. Each ``null`` of the block (``at``, when
    found already) is found by a literal scan; one written ``"key":null`` (no space) is judged on
    the bytes before it, a line with a spaced one by the pattern itself."""
    at = _nulls(block) if at is None else at
    pos: list[np.ndarray] = [np.zeros(0, np.int64)]
    key: list[np.ndarray] = [np.zeros(0, np.int64)]
    if not len(at):
        return pos[0], key[0]
    tight = (buf[at - 1] == 58) & (buf[at - 2] == 34)  # '":null'
    tight &= _KEY_LAST[buf[np.maximum(at - 3, 0)]]  # most nulls belong to other keys: cheap to rule out
    for k, name in enumerate(NULL_KEYS):
        word = np.frombuffer(b'"' + name.encode(), np.uint8)
        first = at - 2 - len(word)
        sel = np.flatnonzero(tight & (first >= 0))
        if len(sel):
            window = buf[first[sel, None] + np.arange(len(word))]
            hit = first[sel[(window == word).all(axis=1)]]
            pos.append(hit)
            key.append(np.full(len(hit), k, np.int64))
    spaced = at[~tight & (_SPACE[buf[at - 1]] | ((buf[at - 1] == 58) & _SPACE[buf[at - 2]]))]
    for i in np.unique(np.searchsorted(ends, spaced)).tolist():
        found = list(_KEY_NULL.finditer(block, int(starts[i]), int(ends[i]) + 1))
        pos.append(np.array([m.start() for m in found], np.int64))
        key.append(np.array([NULL_KEYS.index(m.group(1).decode()) for m in found], np.int64))
    all_pos, all_key = np.concatenate(pos), np.concatenate(key)
    all_pos, first_of = np.unique(all_pos, return_index=True)  # a tight one may be found twice
    return all_pos, all_key[first_of]


def _starts(pattern: re.Pattern[bytes], block: bytes) -> np.ndarray:
    """Where each match of ``pattern`` in the block starts."""
    return np.fromiter(map(re.Match.start, pattern.finditer(block)), np.int64)


def _nulls(block: bytes) -> np.ndarray:
    """Where each ``null`` of the block starts (from byte 2: a key and a colon come first)."""
    at = _starts(_NULL, block)
    return at[at >= 2]


def key_null_lines(block: bytes, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The lines (indices, ascending) with a null that could change the OCPI version the
    per-record parser reads (the rules of this module's docstring)."""
    at = _nulls(block)
    pos, key = key_null_hits(block, buf, starts, ends, at)
    line = np.searchsorted(ends, pos)
    bad = [_escaped(buf, at, ends) if block.find(b"\\") >= 0 else np.zeros(0, np.int64)]  # few have one
    if len(pos):
        p, parent = _parents(block, buf, pos, starts[line])
        harmful = parent == UNSURE
        price = key < PRICE_KEYS
        tc = np.flatnonzero(price & (key < V230_KEYS) & (parent == 0))  # a 2.3.0 key in total_cost
        if len(tc):
            beside = _before_taxes_before(block, buf, p[tc], pos[tc])
            harmful[tc] = ~beside | (key[tc] == 0)  # a null before_taxes: its own 2.3.0 key only
        money = np.flatnonzero(price & (parent > 0))  # in another money field
        if len(money):
            auth = _starts(_AUTH_ID, block)
            harmful[money] = np.isin(line[money], np.searchsorted(ends, auth))
        bad.append(line[harmful])
    return np.unique(np.concatenate(bad))


def _escaped(buf: np.ndarray, nulls: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Lines with a ``null`` (``nulls``: where each starts) and a ``\\u00XX`` escape of an ASCII
    character (0x20-0x7f; a key name may hide behind it)."""
    if not len(nulls):
        return np.zeros(0, np.int64)
    at = positions(buf, 92)  # backslashes are rare
    at = at[at + 5 < len(buf)]
    u = (buf[at + 1] == 117) & (buf[at + 2] == 48) & (buf[at + 3] == 48)
    u &= (buf[at + 4] >= 50) & (buf[at + 4] <= 55) & _HEX[buf[at + 5]]
    return np.intersect1d(np.searchsorted(ends, at[u]), np.searchsorted(ends, nulls))


def _parents(block: bytes, buf: np.ndarray, pos: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per key (``pos``: its opening quote; ``lo``: its line's start): (position of the ``{`` of the
    object it is directly in, which key that object is the value of: an index in ``CDR_MONEY``,
    :data:`OTHER`, or :data:`UNSURE` when the bytes do not prove it).

    Proof: the bracket nearest before the key is a ``{`` (so it opens the key's object), written
    ``"P":{`` (blanks allowed around the colon) where P is plain letters, digits and ``_`` and the
    byte before its opening quote is no backslash. In valid JSON (other lines go per record), the
    quote after P cannot open a string (a letter before it), so it closes the string P: ``{`` is
    a value, not text in a string, and P is its key."""
    p = np.zeros(len(pos), np.int64)
    found = np.zeros(len(pos), bool)
    for a in range(0, len(pos), CHUNK):
        part = slice(a, a + CHUNK)
        p[part], found[part], cut = _nearest_bracket(buf, pos[part], lo[part])
        for i in (np.flatnonzero(~found[part] & cut) + a).tolist():  # the window ended inside the line
            s, e = max(int(lo[i]), int(pos[i]) - FAR_BYTES), int(pos[i])
            p[i] = max(block.rfind(c, s, e) for c in (b"{", b"}", b"[", b"]"))
            found[i] = p[i] >= 0
    parent = np.full(len(pos), UNSURE, np.int64)
    for a in range(0, len(pos), CHUNK):
        part = slice(a, a + CHUNK)
        parent[part] = np.where(found[part], _key_of(buf, p[part], lo[part]), UNSURE)
    return p, parent


def _nearest_bracket(buf: np.ndarray, pos: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, ...]:
    """(position of the nearest ``{}[]`` before each of ``pos`` in its line within
    :data:`NEAR_BYTES`, found, the window stopped after the line's start)."""
    width = min(NEAR_BYTES, len(buf))
    start = np.clip(pos - width, 0, len(buf) - width)
    win = np.lib.stride_tricks.sliding_window_view(buf, width)[start]  # (keys, width) bytes
    j = np.arange(width)
    br = _BRACKET[win] & (j >= (lo - start)[:, None]) & (j < (pos - start)[:, None])
    back = np.argmax(br[:, ::-1], axis=1)
    return start + width - 1 - back, br.any(axis=1), lo < start


def _key_of(buf: np.ndarray, brace: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Per ``{`` (``brace``), as :func:`_parents` gives it: the money field index, OTHER or UNSURE."""
    n = len(buf)
    ok = buf[brace] == 123
    colon = _skip_blanks_back(buf, brace - 1, lo)
    ok &= (colon >= lo) & (buf[np.maximum(colon, 0)] == 58)
    close = _skip_blanks_back(buf, colon - 1, lo)
    ok &= (close >= lo) & (buf[np.maximum(close, 0)] == 34)
    j = (close - 1)[:, None] - np.arange(NAME_BYTES + 1)
    plain = _PLAIN[buf[np.clip(j, 0, n - 1)]] & (j >= lo[:, None])
    length = np.argmin(plain, axis=1)  # plain bytes before the closing quote
    opening = close - 1 - length
    ok &= ~plain.all(axis=1) & (length >= 1) & (opening - 1 >= lo)
    ok &= (buf[np.maximum(opening, 0)] == 34) & (buf[np.maximum(opening - 1, 0)] != 92)
    out = np.where(ok, OTHER, UNSURE)
    for k, name in enumerate(CDR_MONEY):
        word = np.frombuffer(name.encode(), np.uint8)
        sel = np.flatnonzero(ok & (length == len(word)))
        if len(sel):
            window = buf[opening[sel, None] + 1 + np.arange(len(word))]
            out[sel[(window == word).all(axis=1)]] = k
    return out


def _skip_blanks_back(buf: np.ndarray, at: np.ndarray, lo: np.ndarray) -> np.ndarray:
    for _ in range(4):
        at = np.where((at >= lo) & _BLANK[buf[np.maximum(at, 0)]], at - 1, at)
    return at


def _before_taxes_before(block: bytes, buf: np.ndarray, brace: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Per key (``pos``) directly in the object opened at ``brace``: whether a non-null
    ``before_taxes`` key comes between them (no bracket between: same object, scalar value)."""
    at = _starts(_BEFORE_TAXES, block)
    if not len(at):
        return np.zeros(len(pos), bool)
    k = np.minimum(np.searchsorted(at, brace), len(at) - 1)
    r = at[k]
    ok = (r > brace) & (r < pos) & (buf[np.maximum(r - 1, 0)] != 92)
    colon = _skip_blanks_forward(buf, r + len(b'"before_taxes"'), pos)
    value = _skip_blanks_forward(buf, colon + 1, pos)
    return ok & (buf[colon] == 58) & (value < pos) & (buf[np.minimum(value, len(buf) - 1)] != 110)


def _skip_blanks_forward(buf: np.ndarray, at: np.ndarray, hi: np.ndarray) -> np.ndarray:
    for _ in range(4):
        at = np.where((at < hi) & _BLANK[buf[np.minimum(at, len(buf) - 1)]], at + 1, at)
    return at
