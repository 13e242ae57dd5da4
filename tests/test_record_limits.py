"""A record that Python's JSON reader, the decimal module or datetime cannot hold is one reject
(code, line, source, a message saying how to fix it), never an internal error that stops the run:
nesting deeper than the reader goes, a lone surrogate escape, a number like 1E+999999, time
volumes or timestamps beyond the years datetime holds."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_price_cli import CDR, TARIFF

from api.cli import main
from pricing.batch import price_batch
from pricing.errors import Finding
from pricing.io import write_ndjson
from pricing.jsontext import MAX_JSON_DEPTH, split_deep, structure

# per-record path with either engine (--explain keeps the kernel per record), and the default one
PER_RECORD = [["--engine", "reference"], ["--engine", "kernel", "--explain"]]
ALL = [*PER_RECORD, []]

# a tariff whose clock and weekday restrictions make pricing turn instants into local dates
CLOCK_TARIFF = copy.deepcopy(TARIFF)
CLOCK_TARIFF["elements"] += [
    {
        "price_components": [{"type": "PARKING_TIME", "price": 1, "vat": 21.0, "step_size": 1}],
        "restrictions": {"start_time": "20:00", "end_time": "06:00"},
    },
    {
        "price_components": [{"type": "TIME", "price": 1, "vat": 21.0, "step_size": 1}],
        "restrictions": {"day_of_week": ["MONDAY"]},
    },
]


def cdr(cdr_id: str, **changes: object) -> dict:
    c = copy.deepcopy(CDR)
    c["id"] = cdr_id
    c["tariffs"] = [CLOCK_TARIFF]
    c.update(changes)
    return c


def price(tmp_path: Path, lines: list[str], args: list[str], name: str = "in.ndjson") -> tuple[dict, dict]:
    """(priced rows by line, rejects by line) of ``roamledger price ARGS`` on the lines."""
    src = tmp_path / name
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / f"out{len(list(tmp_path.iterdir()))}.ndjson"
    assert main(["price", *args, "--out", str(out), str(src)]) == 0
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    rejects_file = Path(f"{out}.rejects.ndjson")
    rejects = [json.loads(x) for x in rejects_file.read_text(encoding="utf-8").splitlines()]
    for r in rejects:
        assert r["source"] == str(src) and "Hint:" in r["message"], r
    return {r["line"]: r for r in rows}, {r["line"]: r for r in rejects}


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def with_field(c: dict, key: str, raw_json: str) -> str:
    text = json.dumps(c)
    return text[:-1] + f', "{key}": {raw_json}}}'


# ---- JSON nested deeper than the reader goes ------------------------------------------------------


@pytest.mark.parametrize("args", PER_RECORD)
def test_a_line_nested_too_deep_is_bad_json(tmp_path: Path, args: list[str]) -> None:
    lines = [
        json.dumps(cdr("good")),
        with_field(cdr("deep"), "x", nested(1_200)),  # RecursionError in json.loads
        with_field(cdr("deeper-than-limit"), "x", nested(MAX_JSON_DEPTH)),  # json could, the limit says no
        with_field(cdr("deep-enough"), "x", nested(MAX_JSON_DEPTH - 1)),  # the record's own level + 511
    ]
    rows, rejects = price(tmp_path, lines, args)
    assert sorted(rows) == [1, 4]
    assert {n: r["code"] for n, r in rejects.items()} == {2: "BAD_JSON", 3: "BAD_JSON"}
    assert f"deeper than {MAX_JSON_DEPTH} levels" in rejects[2]["message"]


@pytest.mark.parametrize("envelope", [False, True])
@pytest.mark.parametrize("args", PER_RECORD)
def test_an_item_nested_too_deep_in_a_json_array_is_rejected_alone(
    tmp_path: Path, args: list[str], envelope: bool
) -> None:
    items = [
        json.dumps(cdr('a, [with] "brackets" {in} strings')),
        with_field(cdr("deep"), "x", nested(1_200)),
        json.dumps(cdr("c")),
    ]
    doc = "[" + ",\n".join(items) + "]"
    if envelope:
        doc = '{"status_code": 1000, "data": ' + doc + ', "timestamp": "2024-06-04T00:00:00Z"}'
    rows, rejects = price(tmp_path, [doc], args, name="cdrs.json")
    assert sorted(rows) == [1, 3]
    assert rows[1]["cdr_id"] == 'a, [with] "brackets" {in} strings'
    assert list(rejects) == [2] and rejects[2]["code"] == "BAD_JSON"
    assert "item 2 of the array" in rejects[2]["message"]


def test_one_json_object_too_deep_is_one_reject(tmp_path: Path) -> None:
    doc = with_field(cdr("deep"), "x", nested(1_200))
    src = tmp_path / "one.json"
    src.write_text(doc)
    res = price_batch([src])
    assert (res.read, res.priced, [(r.code, r.line) for r in res.rejects]) == (1, 0, [("BAD_JSON", 1)])


def test_ndjson_named_json_with_a_deep_line_is_read_line_by_line(tmp_path: Path) -> None:
    src = tmp_path / "lines.json"
    src.write_text(with_field(cdr("deep"), "x", nested(1_200)) + "\n" + json.dumps(cdr("ok")) + "\n")
    res = price_batch([src])
    assert [r["cdr_id"] for r in res.rows] == ["ok"]
    assert [(r.code, r.line) for r in res.rejects] == [("BAD_JSON", 1)]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='{}[],:"\\ ab\n\u00e9'),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet='{[":\\ab'), inner, max_size=4)
    ),
    max_leaves=30,
)


def depth_of(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


@given(st.lists(JSON_VALUES, max_size=5), st.sampled_from([", ", ",", " ,\n "]), st.booleans())
def test_the_byte_scan_sees_the_depth_and_items_json_sees(items: list, sep: str, indent: bool) -> None:
    text = sep.join(json.dumps(v, indent=1 if indent else None, ensure_ascii=False) for v in items)
    doc = f"[{text}]".encode()
    _pos, depth = structure(doc)
    assert depth.max(initial=0) == depth_of(items) and depth[-1] == 0
    assert [json.loads(x) for x in split_deep(doc)] == items
    envelope = b'{"status_code": 1000, "data": ' + doc + b', "x": {"data": 1}}'
    assert [json.loads(x) for x in split_deep(envelope)] == items


# ---- lone surrogates ----------------------------------------------------------------------------


@pytest.mark.parametrize("args", ALL)
def test_a_lone_surrogate_is_an_invalid_value(tmp_path: Path, args: list[str]) -> None:
    good = json.dumps(cdr("good"))
    lines = [
        good,
        good.replace('"id": "good"', '"id": "\\ud800"'),
        with_field(cdr("unknown-field"), "note", '"x\\udc00y"'),
        good.replace('"id": "good"', '"id": "smile-\\ud83d\\ude00"'),  # a pair: one character
    ]
    rows, rejects = price(tmp_path, lines, args)
    assert {n: r["cdr_id"] for n, r in rows.items()} == {1: "good", 4: "smile-\U0001f600"}
    assert {n: (r["code"], r["path"]) for n, r in rejects.items()} == {
        2: ("INVALID_VALUE", "$.id"),
        3: ("INVALID_VALUE", "$.note"),
    }
    assert "lone UTF-16 surrogate" in rejects[2]["message"]


def test_a_lone_surrogate_in_memory_and_in_a_reject_file(tmp_path: Path) -> None:
    odd_key = cdr("odd-key")
    odd_key["x\udc00"] = 1
    res = price_batch([cdr("\ud800"), cdr("fine"), odd_key])
    assert [r["cdr_id"] for r in res.rows] == ["fine"]
    assert [(r.code, r.path) for r in res.rejects] == [
        ("INVALID_VALUE", "$.id"),
        ("INVALID_VALUE", "$.x\\udc00"),
    ]
    # writing a reject that quotes such a string cannot fail: it is written as its JSON escape
    out = tmp_path / "rejects.ndjson"
    write_ndjson(out, [Finding("BAD_RECORD", "id \ud800 is odd", "x", 1, "\ud800").as_row()])
    assert json.loads(out.read_bytes())["record_id"] == "\ud800"


# ---- numbers beyond the decimal module's range -----------------------------------------------------


@pytest.mark.parametrize("args", ALL)
def test_a_huge_exponent_is_out_of_range_like_1e308(tmp_path: Path, args: list[str]) -> None:
    def energy(volume: str, cdr_id: str) -> str:
        return json.dumps(cdr(cdr_id)).replace('"volume": 10', f'"volume": {volume}')

    price_huge = copy.deepcopy(CLOCK_TARIFF)
    price_huge["elements"][0]["price_components"][0]["price"] = "HUGE"
    lines = [
        json.dumps(cdr("good")),
        energy("1E+999999", "huge"),
        energy("1e308", "big"),
        json.dumps(cdr("total", total_time="HUGE")).replace('"HUGE"', "-9.5E+999999"),
        json.dumps(cdr("price", tariffs=[price_huge])).replace('"HUGE"', "1E+999999"),
    ]
    rows, rejects = price(tmp_path, lines, args)
    assert list(rows) == [1]
    assert {n: (r["code"], r["path"]) for n, r in rejects.items()} == {
        2: ("INVALID_VALUE", "$.charging_periods[0].dimensions[0].volume"),
        3: ("INVALID_VALUE", "$.charging_periods[0].dimensions[0].volume"),
        4: ("INVALID_VALUE", "$.total_time"),
        5: ("INVALID_VALUE", "$.tariffs[0].elements[0].price_components[0].price"),
    }
    assert "out of range, got 1E+999999" in rejects[2]["message"]
    assert rejects[3]["message"] == rejects[2]["message"].replace("1E+999999", "1E+308")


# ---- instants beyond the years datetime holds ------------------------------------------------------


def timed(cdr_id: str, start: str, end: str) -> dict:
    c = cdr(cdr_id, start_date_time=start, end_date_time=end)
    c["charging_periods"][0]["start_date_time"] = start
    return c


@pytest.mark.parametrize("args", ALL)
def test_time_volumes_and_timestamps_beyond_the_years_priced_are_out_of_range(
    tmp_path: Path, args: list[str]
) -> None:
    parking = cdr("parking")
    parking["charging_periods"][0]["dimensions"].append({"type": "PARKING_TIME", "volume": 123456789012})
    charging = cdr("charging")
    charging["charging_periods"][0]["dimensions"][1]["volume"] = 123456789012
    second = cdr("second-period")
    second["charging_periods"].append(
        {"start_date_time": "2024-06-03T08:30:00Z", "dimensions": [{"type": "TIME", "volume": 9e7}]}
    )
    lines = [
        json.dumps(cdr("good")),
        json.dumps(parking),
        json.dumps(charging),
        json.dumps(timed("year-9999", "9999-12-31T08:00:00Z", "9999-12-31T09:00:00Z")),
        json.dumps(timed("year-1", "0001-01-01T08:00:00Z", "0001-01-01T09:00:00Z")),
        json.dumps(timed("end-9999", "9998-12-31T08:00:00Z", "9999-01-01T09:00:00Z")),
        json.dumps(second),
    ]
    rows, rejects = price(tmp_path, lines, args)
    assert list(rows) == [1]
    assert {n: (r["code"], r["path"]) for n, r in rejects.items()} == {
        2: ("INVALID_VALUE", "$.charging_periods[0].dimensions"),
        3: ("INVALID_VALUE", "$.charging_periods[0].dimensions"),
        4: ("INVALID_VALUE", "$.start_date_time"),
        5: ("INVALID_VALUE", "$.start_date_time"),
        6: ("INVALID_VALUE", "$"),
        7: ("INVALID_VALUE", "$.charging_periods[1].dimensions"),
    }
    assert "end after 9998-12-31T23:59:59.999Z" in rejects[2]["message"]
    assert "9999-12-31T08:00:00.000Z is outside" in rejects[4]["message"]


@pytest.mark.parametrize("args", ALL)
def test_the_first_and_last_years_priced(tmp_path: Path, args: list[str]) -> None:
    """One file each: the kernel's calendar spans the years of the sessions it prices together."""
    first = timed("first-monday", "0002-01-07T08:00:00Z", "0002-01-07T09:00:00Z")
    last = timed("last-hour", "9998-12-31T22:59:59Z", "9998-12-31T23:59:59Z")  # a Thursday
    totals = [price(tmp_path, [json.dumps(c)], args)[0][1]["total_cost_excl_vat"] for c in (first, last)]
    assert totals == ["4.5000", "3.5000"]  # 0.50 + 3.00 energy, + 1 h TIME on a Monday
