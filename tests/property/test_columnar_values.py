"""Column helpers of the columnar reader against plain Python: the timestamp parser (``parse_ts``)
reads its forms exactly as the per-record parser (``parse_datetime``) reads them, and calls every
other string "not ok" (the per-record parser decides those records); byte positions and counts
are those of the bytes."""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np
import pyarrow as pa
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

import pricing.ocpi.columnar_values
from pricing.ocpi._common import epoch_ms, parse_datetime
from pricing.ocpi.columnar_values import count_of, parse_ts, positions

# the forms parse_ts reads (the parser reads these and a few more: no seconds, one-digit months,
# blanks around, any number of fraction digits, non-ASCII digits)
FORM = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:[Zz]|[+-]\d\d:?\d\d)?")


def parser_ms(text: str | None) -> int | None:
    """Epoch ms of ``text`` as the per-record parser reads it (None: it refuses the text)."""
    if text is None:
        return None
    try:
        return epoch_ms(parse_datetime(text))
    except (PydanticCustomError, OverflowError):
        return None


def expected(text: str | None) -> int | None:
    """What parse_ts must give: the parser's reading of the forms it reads, else None."""
    if text is None or not text.isascii() or not FORM.fullmatch(text):
        return None
    return parser_ms(text)


stamps = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))


@st.composite
def texts(draw: st.DrawFn) -> str | None:
    """Stamps of every form (separators, 0–12 fraction digits, zones with hours and minutes out
    of range too), and the same with one byte changed, cut or lengthened."""
    kind = draw(st.sampled_from(["valid", "valid", "byte", "cut", "null", "empty"]))
    if kind == "null":
        return None
    if kind == "empty":
        return ""
    t = draw(stamps)
    sep = draw(st.sampled_from("TTt "))
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}{sep}{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    digits = draw(st.sampled_from([0, 0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10, 12]))
    if digits:
        text += draw(st.sampled_from(".,")) + "".join(
            draw(st.sampled_from("0123456789")) for _ in range(digits)
        )
    hh = draw(st.sampled_from(["00", "01", "05", "13", "23", "24", "99"]))
    mm = draw(st.sampled_from(["00", "30", "59", "60", "99"]))
    text += draw(
        st.sampled_from(["", "Z", "Z", "z", f"+{hh}:{mm}", f"-{hh}:{mm}", f"+{hh}{mm}", f"-{hh}{mm}"])
    )
    if kind == "byte":
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(st.sampled_from("09/:-.,TZ+ a\x00\u00e9\u0663")) + text[at + 1 :]
    elif kind == "cut":
        text = text[: draw(st.integers(0, len(text)))] + draw(st.sampled_from(["", "Z", "0Z", "+01:00"]))
    return text


EDGES = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+00:01",  # before datetime.min: the parser refuses it
    "0001-01-01T00:59:00-00:01",
    "9999-12-31T23:59:59.999Z",
    "9999-12-31T23:59:59.9995Z",  # rounds past datetime.max
    "9999-12-31T23:59:59-00:01",
    "2024-02-29T23:59:59.9995+01:00",
    "2023-02-29T00:00:00Z",
    "2024-06-12T08:00:00.12345678",
    "2024-06-12 08:00:00,5z",
    "2024-06-12\x0008:00:00Z",  # a NUL (\u0000 in the JSON) where the T goes
]


@given(st.lists(texts(), max_size=40), st.integers(0, 5))
@example(EDGES, 0)
def test_parse_ts_reads_as_the_parser(values, cut):
    arr = pa.array(values, pa.string())
    arr = arr.slice(min(cut, len(values)))  # an offset into Arrow's buffers, as a column slice has
    ms, ok = parse_ts(arr)
    want = [expected(v) for v in values[min(cut, len(values)) :]]
    assert ok.tolist() == [w is not None for w in want]
    assert ms.tolist() == [w if w is not None else 0 for w in want]


def test_parse_ts_one_form_columns_and_leap_days():
    """A column of one form (one width) is read as a view of Arrow's bytes: each form alone."""
    values = ["2024-02-29T23:59:59Z", "2023-02-28T00:00:00Z", "2000-02-29T12:00:00Z", "1900-02-29T00:00:00Z"]
    for suffix in ("", "Z", ".5", ".123456789", "+02:00", "-0130"):
        column = [v.removesuffix("Z") + suffix for v in values]
        ms, ok = parse_ts(pa.array(column))
        assert ok.tolist() == [True, True, True, False]
        assert ms.tolist()[:3] == [parser_ms(v) for v in column[:3]]
    assert [parser_ms(v) for v in EDGES].count(None) == 5  # the edges the parser refuses


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
