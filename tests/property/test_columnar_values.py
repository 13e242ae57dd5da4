"""Column helpers of the columnar reader against plain Python: the timestamp parser (``parse_ts``)
reads exactly the two forms Python reads here (every other string is "not ok": the per-record
parser decides those records); byte positions and counts are those of the bytes."""

from __future__ import annotations

import calendar
import re
from datetime import datetime

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

import pricing.ocpi.columnar_values
from pricing.ocpi.columnar_values import count_of, parse_ts, positions

FORM = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z")


def python_ms(text: str | None) -> int | None:
    """Epoch ms of ``YYYY-MM-DDTHH:MM:SSZ`` / ``…SS.mmmZ`` (ASCII digits only), else None."""
    if text is None or not FORM.fullmatch(text) or not text.isascii():
        return None
    try:
        t = datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    frac = int(text[20:23]) if len(text) == 24 else 0
    return calendar.timegm(t.timetuple()) * 1000 + frac


stamps = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)).map(
    lambda t: t.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0")
)


@st.composite
def texts(draw: st.DrawFn) -> str | None:
    """Valid stamps of both forms, and the same with one byte changed, cut or lengthened."""
    kind = draw(st.sampled_from(["valid", "byte", "cut", "null", "empty"]))
    if kind == "null":
        return None
    if kind == "empty":
        return ""
    text = draw(stamps) + draw(st.sampled_from(["Z", f".{draw(st.integers(0, 999)):03d}Z"]))
    if kind == "byte":
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(st.sampled_from("09/:-.TZ+ a\u00e9")) + text[at + 1 :]
    elif kind == "cut":
        text = text[: draw(st.integers(0, len(text)))] + draw(st.sampled_from(["", "Z", "0Z", "+01:00"]))
    return text


@given(st.lists(texts(), max_size=40), st.integers(0, 5))
def test_parse_ts_reads_exactly_the_two_forms(values, cut):
    arr = pa.array(values, pa.string())
    arr = arr.slice(min(cut, len(values)))  # an offset into Arrow's buffers, as a column slice has
    ms, ok = parse_ts(arr)
    want = [python_ms(v) for v in values[min(cut, len(values)) :]]
    assert ok.tolist() == [w is not None for w in want]
    assert ms.tolist() == [w if w is not None else 0 for w in want]


def test_parse_ts_one_form_column_and_leap_days():
    values = ["2024-02-29T23:59:59Z", "2023-02-28T00:00:00Z", "2000-02-29T12:00:00Z", "1900-02-29T00:00:00Z"]
    ms, ok = parse_ts(pa.array(values))
    assert ok.tolist() == [True, True, True, False]
    assert ms.tolist()[:3] == [python_ms(v) for v in values[:3]]


@given(st.binary(max_size=300), st.integers(1, 40))
def test_positions_and_counts_of_a_byte_in_pieces(data, step):
    saved = pricing.ocpi.columnar_values.SCAN_BYTES
    pricing.ocpi.columnar_values.SCAN_BYTES = step  # many pieces, and pieces cut anywhere
    try:
        buf = np.frombuffer(data, np.uint8)
        assert positions(buf, 10).tolist() == [i for i, b in enumerate(data) if b == 10]
        assert count_of(buf, 10) == data.count(b"\n")
    finally:
        pricing.ocpi.columnar_values.SCAN_BYTES = saved
