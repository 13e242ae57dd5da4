"""The columnar reader's vectorized checks give exactly what their plain forms give."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa

from pricing.flat_columns import RowStrings, valid_mask
from pricing.ocpi.columnar import _KEY_NULL, NULL_KEYS, key_null_lines


def _lines_by_regex(block: bytes, ends: np.ndarray) -> np.ndarray:
    at = np.fromiter((m.start() for m in _KEY_NULL.finditer(block)), np.int64)
    return np.unique(np.searchsorted(ends, at))


def test_key_null_lines_equal_the_pattern():
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
    got = key_null_lines(block, buf, starts, ends)
    want = _lines_by_regex(block, ends)
    assert len(want) > 100  # the check sees many
    assert got.tolist() == want.tolist()


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
