"""CDRs the per-record parser refuses are never priced by the columnar reader: each such line goes
per record (counted in meta.json "fallbacks"), so ``roamledger price`` (the default engine, the
columnar reader) writes the same files as ``--engine reference``."""

from __future__ import annotations

import copy
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_columnar_shapes import SAMPLE, dump, records, write

from api.cli import main
from pricing.jsontext import MAX_JSON_DEPTH as MAX_DEPTH
from pricing.ocpi.columnar_values import deep_lines

TARIFFS = SAMPLE / "tariffs"


def engines(tmp_path: Path, lines: list[str], tariffs: Path | None = TARIFFS) -> dict[str, Any]:
    """``roamledger price`` on these NDJSON lines with the default engine and with ``--engine
    reference``: every output file (rows, rejects, findings) byte for byte the same. Returns the
    default run's meta.json (its ``fallbacks``) and its rejects."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = write(tmp_path, lines)
    given = ["--tariffs", str(tariffs)] if tariffs is not None else []
    files: dict[str, dict[str, bytes]] = {}
    for engine in ("default", "reference"):
        out = tmp_path / engine / "out.ndjson"
        out.parent.mkdir()
        chosen = ["--engine", "reference"] if engine == "reference" else []
        assert main(["price", *chosen, *given, "--out", str(out), str(src)]) == 0
        files[engine] = {
            p.name: p.read_bytes() for p in out.parent.iterdir() if not p.name.endswith(".meta.json")
        }
    assert files["default"] == files["reference"]
    out = tmp_path / "default" / "out.ndjson"
    meta = json.loads(Path(f"{out}.meta.json").read_text())
    rejects_file = Path(f"{out}.rejects.ndjson")
    rejects = [json.loads(x) for x in rejects_file.read_text().splitlines()] if rejects_file.exists() else []
    return {"fallbacks": meta["fallbacks"], "rejects": rejects}


def v22(k: int = 0) -> dict[str, Any]:
    return copy.deepcopy(records("cdrs.ndjson", k + 1)[k])


def v211(k: int = 0) -> dict[str, Any]:
    return copy.deepcopy(records("cdrs.v211.ndjson", k + 1)[k])


def codes(run: dict[str, Any]) -> list[str]:
    return [r["code"] for r in run["rejects"]]


def fallen(run: dict[str, Any]) -> int:
    return sum(v for k, v in run["fallbacks"].items() if k.startswith("columnar_reader: "))


def with_dims(cdr: dict[str, Any], *dims: dict[str, Any]) -> str:
    cdr["charging_periods"][0]["dimensions"].extend(dims)
    return dump(cdr)


@pytest.mark.parametrize(
    "kind", ["ENERGY", "TIME", "PARKING_TIME", "RESERVATION_TIME", "MAX_POWER", "MIN_CURRENT"]
)
@pytest.mark.parametrize("volume", ["null", "missing"])
def test_repeated_dimension_without_a_volume(kind, volume, tmp_path):
    """Two dimensions of one type in a period, one with a null or missing volume: the reader sums
    (or takes the extreme of) same-type volumes, and crashed on the None (exit 70, whole run
    lost); the line goes per record, where the parser rejects it."""
    bad = {"type": kind} if volume == "missing" else {"type": kind, "volume": None}
    lines = [dump(v22(0)), with_dims(v22(1), {"type": kind, "volume": 1}, bad), dump(v22(2))]
    run = engines(tmp_path, lines)
    assert codes(run) == ["MISSING_FIELD" if volume == "missing" else "WRONG_TYPE"]
    assert fallen(run) == 1


SESSION_ONLY = ["CURRENT", "ENERGY_EXPORT", "ENERGY_IMPORT", "POWER", "STATE_OF_CHARGE"]


@pytest.mark.parametrize("kind", [*SESSION_ONLY, "MAX_CURRENT", "MIN_CURRENT", "MIN_POWER"])
def test_negative_volume_of_every_dimension_type(kind, tmp_path):
    """The parser refuses a negative volume of every type but MIN_CURRENT / MIN_POWER
    (NEGATIVE_VOLUME); the reader checked only the types it prices, and priced the others."""
    lines = [dump(v22(0)), with_dims(v22(1), {"type": kind, "volume": -1}), dump(v22(2))]
    run = engines(tmp_path, lines)
    assert codes(run) == ([] if kind.startswith("MIN_") else ["NEGATIVE_VOLUME"])


@pytest.mark.parametrize("kind", ["FLAT", "MAX_CURRENT"])
def test_negative_volume_211(kind, tmp_path):
    lines = [dump(v211(0)), with_dims(v211(1), {"type": kind, "volume": Decimal("-0.5")}), dump(v211(2))]
    run = engines(tmp_path, lines)
    assert codes(run) == ["NEGATIVE_VOLUME"]


def _null_evse(cdr: dict[str, Any]) -> None:
    cdr["location"]["evses"] = [None]


def _null_evse_after(cdr: dict[str, Any]) -> None:
    cdr["location"]["evses"].append(None)


def _null_connector(cdr: dict[str, Any]) -> None:
    cdr["location"]["evses"][0]["connectors"].insert(0, None)


@pytest.mark.parametrize("tariffs", [TARIFFS, TARIFFS / "ECO-AC-211.json"], ids=["folder", "one"])
@pytest.mark.parametrize("change", [_null_evse, _null_evse_after, _null_connector])
def test_null_evse_or_connector_211(change, tariffs, tmp_path):
    """A null item in a 2.1.1 location's evses or connectors is the parser's WRONG_TYPE; the reader
    skipped it and priced the CDR (with one tariff given), or gave another reject (a folder)."""
    bad = v211(1)
    change(bad)
    run = engines(tmp_path, [dump(v211(0)), dump(bad), dump(v211(2))], tariffs)
    assert codes(run)[:1] == ["WRONG_TYPE"]
    assert run["rejects"][0]["line"] == 2


def test_null_items_of_the_other_lists(tmp_path):
    """A null period, dimension, embedded tariff or tax line: the parser's WRONG_TYPE, per record."""
    period, dim, tariff = v22(1), v22(2), v22(3)
    period["charging_periods"].append(None)
    dim["charging_periods"][0]["dimensions"].append(None)
    tariff["tariffs"] = [None]
    run = engines(tmp_path, [dump(v22(0)), dump(period), dump(dim), dump(tariff)])
    assert codes(run) == ["WRONG_TYPE"] * 3 and fallen(run) == 3
    taxed = copy.deepcopy(records("cdrs.v230.ndjson", 2))
    taxed[1]["total_cost"]["taxes"] = [*taxed[1]["total_cost"].get("taxes", []), None]
    run = engines(tmp_path / "v230", [dump(t) for t in taxed])
    assert codes(run) == ["WRONG_TYPE"] and fallen(run) == 1


@pytest.mark.parametrize("ref", ["", None, " "])
def test_credit_reference_id_empty(ref, tmp_path):
    """A credit CDR needs a credit_reference_id: the parser refuses an empty one like a missing one
    (MISSING_FIELD); the reader saw only null. A blank one is a value to both."""
    credit = dict(v22(1), id="CR-1", credit=True, credit_reference_id=ref)
    run = engines(tmp_path, [dump(v22(0)), dump(credit)])
    assert codes(run) == ([] if ref else ["MISSING_FIELD"])


@pytest.mark.parametrize(
    "cost",
    [
        {"total_energy_cost": {"excl_vat": 1}},
        {"total_time_cost": {"before_taxes": 1, "taxes": []}},
        {"total_fixed_cost": {"incl_vat": Decimal("1.5")}},
        {"total_parking_cost": {"taxes": []}},
    ],
)
def test_211_cdr_with_a_22_cost_field(cost, tmp_path):
    """A 2.2-style Price among a 2.1.1 CDR's fields is strong evidence of another version: the
    parser rejects VERSION_MISMATCH; the reader read no cost field but total_cost and priced it."""
    run = engines(tmp_path, [dump(v211(0)), dump(dict(v211(1), **cost)), dump(v211(2))])
    assert codes(run) == ["VERSION_MISMATCH"] and fallen(run) == 1
    message = run["rejects"][0]["message"]
    assert "mixes OCPI versions" in message and "`stop_date_time`" in message


def test_cdr_with_fields_named_like_an_envelope(tmp_path):
    """``data`` + ``timestamp`` / ``status_code`` on a CDR (vendor fields): the per-record reader
    took the line for an OCPI response envelope and rejected its ``data`` ("got int"), the
    reader priced the CDR. One rule (pricing.io.unwrap_envelope): an object with an ``id`` is a
    record, and an envelope's ``data`` is an object or an array; a real envelope line is read
    through, an error envelope (``data`` null) is a BAD_RECORD naming its keys."""
    stamp = "2026-10-01T00:00:00Z"
    lines = [
        dump(dict(v22(0), data=1, timestamp=stamp)),
        dump(dict(v22(1), data="x", status_code=1000)),
        dump(dict(v22(2), data={"vendor": 1}, timestamp=stamp, status_code=1000)),
        dump({"data": v22(3), "status_code": 1000, "timestamp": stamp}),
        dump({"data": None, "status_code": 2001, "status_message": "Invalid", "timestamp": stamp}),
    ]
    run = engines(tmp_path, lines)
    assert [(r["line"], r["code"]) for r in run["rejects"]] == [(5, "BAD_RECORD")]
    assert "data, status_code, status_message, timestamp" in run["rejects"][0]["message"]


@pytest.mark.parametrize("tariffs", [TARIFFS, TARIFFS / "ECO-AC-211.json"], ids=["folder", "one"])
def test_211_connector_tariffs_none_given(tariffs, tmp_path):
    """A 2.1.1 CDR whose connectors name tariff ids none of which was given: the reader priced it
    with "the only tariff given" (even another one's); it goes per record, where the per-record
    rule (pricing.sessions.select_tariffs) decides. A CDR naming an unknown and then a known id
    stays columnar: the first known one prices it, as per record."""
    unknown, mixed = v211(1), v211(2)
    unknown["location"]["evses"][0]["connectors"][0]["tariff_id"] = "NOT-GIVEN"
    connectors = mixed["location"]["evses"][0]["connectors"]
    connectors.insert(0, dict(connectors[0], tariff_id="NOT-GIVEN"))
    connectors[1]["tariff_id"] = "ECO-AC-211"
    run = engines(tmp_path, [dump(v211(0)), dump(unknown), dump(mixed)], tariffs)
    assert run["fallbacks"] == {"columnar_reader: 2.1.1 connector tariff_ids none of the given tariffs": 1}


def _nested(depth: int, kind: str) -> str:
    return '{"a":' * depth + "1" + "}" * depth if kind == "object" else "[" * depth + "]" * depth


@pytest.mark.parametrize("kind", ["object", "array"])
def test_deeply_nested_line_goes_per_record(kind, tmp_path):
    """An unknown field nested deeper than MAX_JSON_DEPTH: pyarrow ignores it, Python's json may
    not read it at all (RecursionError near 1000 levels, depending on the stack), so the reader
    rejects it (BAD_JSON) and the fast path sends it per record for that reject; one nested a
    little less is priced by both engines."""
    deep = dump(v22(1))[:-1] + f',"x_vendor":{_nested(MAX_DEPTH + 1, kind)}}}'
    shallow = dump(v22(2))[:-1] + f',"x_vendor":{_nested(MAX_DEPTH - 10, kind)}}}'
    run = engines(tmp_path, [dump(v22(0)), deep, shallow])
    assert run["fallbacks"] == {f"columnar_reader: JSON nested deeper than {MAX_DEPTH} levels": 1}
    assert codes(run) == ["BAD_JSON"]


def test_too_deep_for_json_is_one_reject_on_both_paths(tmp_path):
    """1,200 levels: json cannot read the line; both engines reject it the same way (once the
    per-record reader rejects a line deeper than MAX_JSON_DEPTH BAD_JSON before json sees it)."""
    deep = dump(v22(1))[:-1] + f',"x":{_nested(1200, "object")}}}'
    run = engines(tmp_path, [dump(v22(0)), deep])
    assert codes(run) == ["BAD_JSON"] and fallen(run) == 1


def _depth_by_hand(line: str) -> int:
    depth = most = 0
    in_string = escaped = False
    for ch in line:
        if in_string:
            escaped, in_string = (False, in_string) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
            most = max(most, depth)
        elif ch in "}]":
            depth -= 1
    return most


def test_deep_lines_equal_a_plain_scan():
    """The vectorized bound and exact depth give the lines a plain scan finds deeper than
    MAX_DEPTH: brackets and escaped quotes inside strings, lines across the counted pieces."""
    rnd = random.Random(5)
    lines = []
    for i in range(400):
        depth = rnd.choice([0, 3, 40, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 900])
        noise = json.dumps(rnd.choice(["", "[[[{{", "]]}}" * 300, '\\"[{', "x" * rnd.randrange(3000)]))
        inner = _nested(depth, rnd.choice(["object", "array"])) if depth else "0"
        lines.append(f'{{"id":"C{i}","s":{noise},"n":{inner},"t":{noise}}}')
    block = ("\n".join(lines) + "\n").encode()
    buf = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts = np.r_[0, ends[:-1] + 1]
    want = [i for i, line in enumerate(lines) if _depth_by_hand(line) > MAX_DEPTH]
    assert len(want) > 50
    assert deep_lines(block, buf, starts, ends).tolist() == want
