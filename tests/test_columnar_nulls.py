"""Explicit nulls in the keys that decide the OCPI version (``NULL_KEYS``), on the columnar reader:
a line stays columnar only with the version the per-record parser reads, and the result equals the
per-record path's (kernel and reference). Every subset of NULL_KEYS, written as nulls into each
kind of place (top level, total_cost, another money field, a nested object, an object in an
array, a total_cost deeper down), before or after the object's other keys, compact or spaced."""

from __future__ import annotations

import json
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from test_columnar_shapes import records, tariffs  # noqa: F401  (the fixture)

from pricing.batch import price_ndjson_columnar, price_records
from pricing.io import iter_sources, loads
from pricing.ocpi import detect_version
from pricing.ocpi.columnar import read_ndjson_flat
from pricing.ocpi.columnar_lines import NULL_KEYS, key_null_lines

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample"
NULL_REASON = "explicit null in a key that decides the OCPI version"


def dump(obj, spaced: bool) -> str:
    """JSON with exact numbers written as numbers; ``spaced``: ``", "`` and ``": "``."""
    seps = (", ", ": ") if spaced else (",", ":")
    text = json.dumps(obj, default=lambda d: f"@D{d}@D", separators=seps)
    return re.sub(r'"@D(.*?)@D"', r"\1", text)


def with_nulls(obj: dict, keys: tuple[str, ...], first: bool) -> dict:
    """``obj`` with ``keys`` set to null, before (``first``) or after its other keys."""
    nulls = dict.fromkeys(keys)
    return {**nulls, **obj} if first else {**obj, **nulls}


# another money field as each version writes it (2.1.1 has none: an empty object, which tells nothing)
OTHER_MONEY = {
    "2.2.1": {"excl_vat": Decimal("1.25")},
    "2.3.0": {"before_taxes": Decimal("1.25")},
    "2.1.1": {},
}
PLACES = ("top", "total_cost", "total_energy_cost", "nested", "in_array", "deep")


def variant(base: dict, version: str, place: str, keys: tuple[str, ...], k: int) -> dict:
    first, obj = bool(k & 1), dict(base)
    if place == "top":
        return with_nulls(obj, keys, first)
    if place == "total_cost":  # 2.1.1: a number there, so an object is another version's shape
        tc = obj["total_cost"] if isinstance(obj["total_cost"], dict) else {"excl_vat": obj["total_cost"]}
        obj["total_cost"] = with_nulls(tc, keys, first)
    elif place == "total_energy_cost":
        obj["total_energy_cost"] = with_nulls(OTHER_MONEY[version], keys, first)
    elif place == "nested":
        name = "location" if version == "2.1.1" else "cdr_token"
        obj[name] = with_nulls(obj[name], keys, first)
    elif place == "in_array":
        obj["x_vendor"] = [with_nulls({"note": "x"}, keys, first)]
    else:
        obj["x_vendor"] = {"total_cost": with_nulls({"excl_vat": 1}, keys, first)}
    return obj


def grid_lines(base: dict, version: str) -> list[str]:
    lines = []
    for place in PLACES:
        for k in range(1 << len(NULL_KEYS)):
            keys = tuple(key for b, key in enumerate(NULL_KEYS) if k >> b & 1)
            lines.append(dump(variant(base, version, place, keys, k), spaced=bool(k & 2)))
    return lines


@pytest.mark.parametrize(
    "version, name", [("2.2.1", "cdrs.ndjson"), ("2.3.0", "cdrs.v230.ndjson"), ("2.1.1", "cdrs.v211.ndjson")]
)
def test_nulls_in_every_place_keep_the_parsers_version(version, name, tariffs, tmp_path):  # noqa: F811
    clean, base = records(name, 2)
    lines = [dump(clean, False), *grid_lines(base, version)]
    path = tmp_path / "nulls.ndjson"
    path.write_bytes("".join(line + "\n" for line in lines).encode())
    reasons: Counter[str] = Counter()
    known = frozenset(k for k, v in tariffs.by_id.items() if v)
    table, fallback = read_ndjson_flat(path, reasons=reasons, known_tariffs=known)
    assert len(set(table.column("line").to_pylist())) + len(fallback) == len(lines)
    # the version of every columnar line is the parser's
    kept = dict(zip(table.column("line").to_pylist(), table.column("ocpi_version").to_pylist(), strict=True))
    for n, got in kept.items():
        assert got == detect_version(loads(lines[n - 1]), "cdr") == version, lines[n - 1]
    # the same result as the reference pricer, record by record
    a = price_ndjson_columnar(path, tariffs)
    ref = price_records(iter_sources([path]), tariffs, engine="reference")
    assert a.read == ref.read == len(lines)
    assert a.rows == ref.rows
    assert a.rejects == ref.rejects
    assert a.warnings == ref.warnings
    # not vacuous: lines with nulls stay columnar, and lines with a deciding one are priced
    # per record (the rejects say why)
    with_null = [n for n in kept if n > 1 and re.search(r":\s*null", lines[n - 1])]
    assert len(with_null) > {"2.2.1": 1900, "2.3.0": 2600, "2.1.1": 600}[version], len(with_null)
    assert reasons[NULL_REASON] > 100
    if version != "2.3.0":  # there a null Price key only ever says 2.3.0
        assert "VERSION_MISMATCH" in {f.code for f in a.rejects}


def test_an_incl_vat_null_beside_excl_vat_stays_columnar(tariffs, tmp_path):  # noqa: F811
    """The tester's file: every total_cost ``{"excl_vat": …, "incl_vat": null}`` (before: every
    line per record). A null before_taxes beside them still goes per record: the parser reads
    2.3.0 there (VERSION_MISMATCH in a 2.2.1 file)."""
    cdrs = records("cdrs.ndjson", 6)
    lines = [dump(dict(c, total_cost=dict(c["total_cost"], incl_vat=None)), False) for c in cdrs[:5]]
    lines.append(dump(dict(cdrs[5], total_cost=dict(cdrs[5]["total_cost"], before_taxes=None)), False))
    path = tmp_path / "incl.ndjson"
    path.write_bytes("".join(line + "\n" for line in lines).encode())
    reasons: Counter[str] = Counter()
    table, fallback = read_ndjson_flat(path, reasons=reasons, known_tariffs=frozenset(tariffs.by_id))
    assert sorted(set(table.column("line").to_pylist())) == [1, 2, 3, 4, 5]
    assert [r.line for r in fallback] == [6] and reasons == {NULL_REASON: 1}
    a = price_ndjson_columnar(path, tariffs)
    assert a.priced == 5 and [f.code for f in a.rejects] == ["VERSION_MISMATCH"]


def test_a_key_written_with_escapes_is_seen(tariffs, tmp_path):  # noqa: F811
    """``"\\u0062efore_taxes": null`` is ``before_taxes`` to the parser (2.3.0 in a 2.2.1 file:
    VERSION_MISMATCH), which no byte pattern of the key finds: such a line goes per record."""
    cdrs = records("cdrs.ndjson", 2)
    tc = dump(cdrs[1]["total_cost"], False)[:-1] + ',"\\u0062efore_taxes":null}'
    line = dump(dict(cdrs[1], total_cost="@TC"), False).replace('"@TC"', tc)
    path = tmp_path / "escaped.ndjson"
    path.write_bytes((dump(cdrs[0], False) + "\n" + line + "\n").encode())
    assert "before_taxes" in loads(line)["total_cost"]
    a = price_ndjson_columnar(path, tariffs)
    ref = price_records(iter_sources([path]), tariffs, engine="reference")
    assert (a.priced, [f.code for f in a.rejects]) == (1, ["VERSION_MISMATCH"])
    assert a.rows == ref.rows and a.rejects == ref.rejects


def _lines_of(text: bytes) -> list[int]:
    buf = np.frombuffer(text, np.uint8)
    ends = np.flatnonzero(buf == 10)
    return key_null_lines(text, buf, np.r_[0, ends[:-1] + 1], ends).tolist()


def test_what_the_bytes_cannot_prove_goes_per_record():
    lines = [
        b'{"total_cost":{"excl_vat":1,"incl_vat":null}}',  # 0 kept: beside a 2.2.1 key
        b'{"total_cost": {"excl_vat": 1, "incl_vat" : null}}',  # 1 kept: spaced
        b'{"total_cost":{"before_taxes":1,"taxes":null}}',  # 2 kept: before_taxes decides
        b'{"total_cost":{"taxes":null,"before_taxes":1}}',  # 3 per record: not proven
        b'{"total_cost":{"before_taxes":null,"excl_vat":1}}',  # 4 per record: the parser reads 2.3.0
        b'{"total_cost":{"before_taxes":1,"x":[1],"taxes":null}}',  # 5 per record: after an array
        b'{"party_id":null}',  # 6 per record: top level
        b'{"a":{"b":1},"party_id":null}',  # 7 per record: top level after an object
        b'{"cdr_token":{"party_id":null}}',  # 8 kept: nested
        b'{"total_energy_cost":{"excl_vat":1,"incl_vat":null}}',  # 9 kept: no auth_id
        b'{"auth_id":"A","total_energy_cost":{"excl_vat":1,"incl_vat":null}}',  # 10 per record
        b'{"remark":"\\"x\\":{","party_id":null}',  # 11 per record: the { is in a string
        b'{"a\\"total_cost":{"before_taxes":null}}',  # 12 per record: the key has an escape
        b'{"total_cost":{"excl_vat":1,"\\u0062efore_taxes":null}}',  # 13 per record: escaped key
        b'{"x":[{"party_id":null}]}',  # 14 per record: in an array
        b'{"total_cost":{"excl_vat":1,"' + b"x" * 3000 + b'":1,"incl_vat":null}}',  # 15 per record: far
        b'{"total_cost":{"excl_vat":1,"' + b"x" * 300 + b'":1,"incl_vat":null}}',  # 16 kept: farther look
    ]
    assert _lines_of(b"\n".join(lines) + b"\n") == [3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15]
