"""pricing.ocpi.columnar: the columnar NDJSON reader prices exactly like the per-record kernel path."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from pricing.batch import load_tariffs, price_ndjson_columnar, price_records
from pricing.flat import arrow_schema
from pricing.io import iter_sources, write_table
from pricing.ocpi.columnar import read_ndjson_flat
from pricing.report import COLUMNS, DECIMAL_COLUMNS, EXTRA_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample"


@pytest.fixture(scope="module")
def tariffs():
    store, _ = load_tariffs([SAMPLE / "tariffs"])
    return store


def both(path: Path, tariffs):
    a = price_ndjson_columnar(path, tariffs)
    b = price_records(iter_sources([path]), tariffs, engine="kernel")
    return a, b


def kernel_refusals(result) -> dict[str, int]:
    return {k: v for k, v in result.fallbacks.items() if "kernel_refused" in k}


def assert_same(a, b, tmp_path: Path) -> None:
    assert kernel_refusals(a) == {} and kernel_refusals(b) == {}  # a crashing kernel would show here
    assert a.read == b.read
    assert a.rows == b.rows
    assert a.rejects == b.rejects
    assert a.warnings == b.warnings
    assert a.read == a.priced + a.rejected
    cols = COLUMNS + EXTRA_COLUMNS
    write_table(tmp_path / "a.ndjson", a.rows, cols, DECIMAL_COLUMNS)
    write_table(tmp_path / "b.ndjson", b.rows, cols, DECIMAL_COLUMNS)
    assert (tmp_path / "a.ndjson").read_bytes() == (tmp_path / "b.ndjson").read_bytes()


@pytest.mark.parametrize("name", ["cdrs.ndjson", "cdrs.v230.ndjson"])
def test_sample_equals_per_record(name, tariffs, tmp_path):
    path = SAMPLE / "cdrs" / name
    table, fallback = read_ndjson_flat(path)
    n_lines = sum(1 for line in path.read_bytes().splitlines() if line.strip())
    n_columnar = len(set(table.column("line").to_pylist()))
    assert n_columnar + len(fallback) == n_lines
    assert n_columnar > 0.9 * n_lines  # the common case really goes columnar
    assert table.schema.names[:-1] == arrow_schema(optional=True, reported=True).names
    a, b = both(path, tariffs)
    assert_same(a, b, tmp_path)


def _good_lines() -> list[dict]:
    lines = (SAMPLE / "cdrs" / "cdrs.ndjson").read_bytes().splitlines()[:40]
    out = []
    for raw in lines:
        try:
            out.append(json.loads(raw, parse_float=Decimal))
        except ValueError:
            continue
    return out


def _dump(obj) -> str:
    return json.dumps(obj, default=str, separators=(",", ":"))


def test_odd_records_match_per_record(tariffs, tmp_path):
    good = _good_lines()
    missing = dict(good[3])
    del missing["cdr_token"]
    negative = json.loads(_dump(good[4]), parse_float=Decimal)
    negative["charging_periods"][0]["dimensions"][0]["volume"] = Decimal("-1.5")
    credit = dict(good[5], credit=True, credit_reference_id="X-1", id=good[5]["id"] + "-C")
    embedded = dict(good[6], tariffs=[json.loads((SAMPLE / "tariffs" / "ECO-AC-221.json").read_text())])
    summed = json.loads(_dump(good[7]), parse_float=Decimal)
    summed["charging_periods"][0]["dimensions"].append({"type": "ENERGY", "volume": Decimal("0.0000005")})
    summed["charging_periods"][0]["dimensions"].append({"type": "ENERGY", "volume": Decimal("0.0000004")})
    bad_time = dict(good[8], start_date_time="2026-13-01T00:00:00Z")
    offset_time = dict(good[9], end_date_time=good[9]["end_date_time"].replace("Z", ".25-00:30"))
    text = [
        _dump(good[0]),
        '{"id": "broken", "country_code": ',  # not JSON
        _dump(good[1]),
        "",
        _dump(missing),
        _dump(negative),
        _dump(credit),
        _dump(embedded),
        _dump(summed),
        _dump(bad_time),
        _dump(offset_time),
        _dump(dict(good[10], remark=None)),  # explicit null
        _dump(good[11]) + _dump(good[12]),  # two objects on one line
        "[1, 2]",
        _dump(dict(good[13], currency="EURO")),
        _dump(dict(good[14], total_cost={"before_taxes": "1.00"})),  # 2.3.0 in a 2.2.1 file
        _dump(good[15]),
        _dump(good[15]),  # the same id twice in a row
        *(_dump(g) for g in good[16:]),
    ]
    path = tmp_path / "odd.ndjson"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    table, fallback = read_ndjson_flat(path)
    n_lines = sum(1 for t in text if t.strip())
    assert len(set(table.column("line").to_pylist())) + len(fallback) == n_lines
    # per record: not JSON, no cdr_token, a negative volume, embedded tariffs (no tariff ids given
    # to the reader), a bad timestamp, two objects, an array, "EURO", a 2.3.0 CDR; the rest is
    # columnar (an offset timestamp with a fraction, and the repeated id too: the line column
    # keeps the two records apart)
    assert len(fallback) == 9
    a, b = both(path, tariffs)
    codes = {f.code for f in b.rejects}
    assert {"BAD_JSON", "MISSING_FIELD", "NEGATIVE_VOLUME"} <= codes
    assert_same(a, b, tmp_path)


def test_small_blocks_and_crlf(tariffs, tmp_path):
    text = (SAMPLE / "cdrs" / "cdrs.v230.ndjson").read_bytes()
    path = tmp_path / "crlf.ndjson"
    path.write_bytes(text.replace(b"\n", b"\r\n"))
    table, fallback = read_ndjson_flat(path, block_bytes=1 << 16)
    n_lines = sum(1 for line in text.splitlines() if line.strip())
    assert len(set(table.column("line").to_pylist())) + len(fallback) == n_lines
    a, b = both(path, tariffs)
    assert_same(a, b, tmp_path)


def test_units_round_half_up():
    import pyarrow as pa

    from pricing.ocpi.columnar import convert
    from pricing.units import hours_to_ms, kwh_to_mwh, round_scaled

    vals = [
        "0",
        "0.5825",
        "4.077",
        "0.0000005",
        "0.0000004999",
        "123456.123456789012345678",
        "0.000000138888888889",
    ]
    arr = pa.array([Decimal(v) for v in vals], pa.decimal128(38, 18))
    mwh, ok = convert(arr, "mwh")
    ms, _ = convert(arr, "ms")
    w, _ = convert(arr, "milli")
    assert ok.all()
    assert mwh.tolist() == [kwh_to_mwh(Decimal(v)) for v in vals]
    assert ms.tolist() == [hours_to_ms(Decimal(v)) for v in vals]
    assert w.tolist() == [round_scaled(Decimal(v), 1000) for v in vals]


def test_fallback_records_are_counted_with_their_reason(tariffs, tmp_path):
    """Every record the columnar reader leaves to the per-record parser is counted, by reason."""
    path = SAMPLE / "cdrs" / "cdrs.ndjson"
    reasons: Counter[str] = Counter()
    _table, fallback = read_ndjson_flat(path, reasons=reasons)
    assert sum(reasons.values()) == len(fallback) >= 1
    assert "first record (fixes the file's OCPI version)" not in reasons  # decoded, not sent away
    result = price_ndjson_columnar(path, tariffs)
    assert {k.removeprefix("columnar_reader: "): v for k, v in result.fallbacks.items()} == reasons
    credit = tmp_path / "credit.ndjson"
    lines = path.read_text().splitlines()
    first, second = json.loads(lines[0]), json.loads(lines[1])
    second["credit"] = True  # no credit_reference_id: the parser's reject, so per record
    third = dict(second, id=second["id"] + "-C2", credit_reference_id=first["id"])
    credit.write_text("".join(json.dumps(o) + "\n" for o in (first, second, third)))
    result = price_ndjson_columnar(credit, tariffs)
    assert result.fallbacks == {"columnar_reader: credit without credit_reference_id": 1}
    assert [f.code for f in result.rejects] == ["MISSING_FIELD"]
    assert result.priced == 2
