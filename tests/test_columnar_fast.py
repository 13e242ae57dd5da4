"""The columnar reader's vectorized checks give exactly what their plain forms give."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa

from pricing.flat_columns import RowStrings, valid_mask
from pricing.ocpi.columnar_lines import _KEY_NULL, NULL_KEYS, key_null_hits, object_bounds


def test_key_null_hits_equal_the_pattern():
    """Every ``"key": null`` of NULL_KEYS, at the position and with the key the pattern finds."""
    rnd = random.Random(7)
    keys = [*NULL_KEYS, "remark", "xtaxes", "_taxes", "party", "id"]
    spaces = ["", " ", "\t", " \r ", "  "]
    lines = []
    for i in range(3000):
        parts = [f'"id":"C{i}"']
        for _ in range(rnd.randrange(4)):
            key = rnd.choice(keys)
            value = rnd.choice(["null", '"null"', "1", '{"taxes":null}', "nullx"])
            parts.append(f'"{key}"{rnd.choice(spaces)}:{rnd.choice(spaces)}{value}')
        line = "{" + ",".join(parts) + "}"
        if rnd.random() < 0.02:
            line = rnd.choice(["null", ":null", '"taxes":null', ""])
        lines.append(line)
    block = ("\n".join(lines) + "\n").encode()
    buf = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts = np.r_[0, ends[:-1] + 1]
    pos, key = key_null_hits(block, buf, starts, ends)
    want = [(m.start(), NULL_KEYS.index(m.group(1).decode())) for m in _KEY_NULL.finditer(block)]
    assert len(want) > 300  # the check sees many
    assert list(zip(pos.tolist(), key.tolist(), strict=True)) == want


def test_object_bounds_equal_strip():
    """First and last byte of each line that is no JSON whitespace (space, tab, \\r), as
    bytes.strip gives them, for runs of blanks short and long (past the vector steps)."""
    rnd = random.Random(3)
    lines = []
    for _ in range(2000):
        pad = [rnd.choice([" ", "\t", "\r", "x", "{", "}"]) * rnd.choice([0, 1, 2, 5, 70]) for _ in range(3)]
        lines.append(
            pad[0] + rnd.choice(["", "{}", " ", "{ }", "a\tb", "\f"]) + pad[1] + rnd.choice(["", "\r"])
        )
    block = ("\n".join(lines) + "\n").encode()
    buf = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts = np.r_[0, ends[:-1] + 1]
    first, last = object_bounds(buf, starts, ends)
    for i, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        raw = block[s:e]
        if raw.strip(b" \t\r"):
            assert (first[i] - s, last[i] - s + 1) == (
                len(raw) - len(raw.lstrip(b" \t\r")),
                len(raw.rstrip(b" \t\r")),
            )
        else:
            assert first[i] > last[i]


def test_blank_row_strings_like_python_strip():
    values = ["a", "", " ", "\t\n", "\u3000", "\u00a0x", None, "\x1c", " b ", "\u2028"]
    got = RowStrings(pa.array(values, pa.string())).blank().tolist()
    assert got == [v is not None and not v.strip() for v in values]


def test_valid_mask_equals_is_valid():
    arrays = [
        pa.array([1, None, 3]),
        pa.array([1, 2, 3]),
        pa.nulls(3),
        pa.nulls(3, pa.string()),
        pa.array([None, None], pa.int64()),
        pa.array([1, None, 3, None, 5]).slice(1, 3),
        pa.array([{"x": 1}, None, {"x": None}]).field("x"),
    ]
    for arr in arrays:
        assert valid_mask(arr).tolist() == arr.is_valid().to_pylist()
