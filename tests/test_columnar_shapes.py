"""The columnar reader on every shape a CPO sends: only broken records leave the columnar path,
and the result equals the per-record path's (rows, rejects, warnings, written bytes)."""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

import pricing.ndjson_parallel
import pricing.workers
from benchmarks.workload import cli as gen
from pricing.batch import load_tariffs, price_ndjson_columnar, price_records
from pricing.io import iter_sources, ndjson_lines, write_table
from pricing.ndjson_parallel import (
    MIN_SPAN_BYTES,
    SPAN_BYTES,
    price_ndjson_spans,
    span_bytes,
    spans,
    tail_bytes,
)
from pricing.ocpi.columnar import read_ndjson_flat
from pricing.policy import CDR_POLICY
from pricing.report import COLUMNS, DECIMAL_COLUMNS, EXTRA_COLUMNS
from pricing.sessions import TariffSet
from pricing.workers import AUTO, MIN_SPLIT_BYTES, processes

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample"


@pytest.fixture(scope="module")
def tariffs():
    store, _ = load_tariffs([SAMPLE / "tariffs"])
    return store


def records(name: str, n: int) -> list[dict]:
    """The first ``n`` well-formed CDRs of a sample file (decoded exactly)."""
    out = []
    for raw in (SAMPLE / "cdrs" / name).read_bytes().splitlines():
        try:
            obj = json.loads(raw, parse_float=Decimal)
        except ValueError:
            continue
        if isinstance(obj, dict) and "currency" in obj:
            out.append(obj)
        if len(out) == n:
            break
    return out


def dump(obj) -> str:
    """JSON with exact numbers written as numbers (not strings)."""
    text = json.dumps(obj, default=lambda d: f"@D{d}@D", separators=(",", ":"))
    return re.sub(r'"@D(.*?)@D"', r"\1", text)


def check(path: Path, tariffs, tmp_path: Path, **kw) -> tuple[Counter[str], object]:
    """Columnar == per record on ``path``; returns the reader's fallback reasons and the result."""
    reasons: Counter[str] = Counter()
    known = frozenset(k for k, v in tariffs.by_id.items() if v)
    table, fallback = read_ndjson_flat(path, reasons=reasons, known_tariffs=known, **kw)
    n_lines = sum(1 for line in ndjson_lines(path.read_bytes()) if line.strip())
    assert len(set(table.column("line").to_pylist())) + len(fallback) == n_lines
    assert sum(reasons.values()) == len(fallback)
    a = price_ndjson_columnar(path, tariffs)
    b = price_records(iter_sources([path]), tariffs, engine="kernel")
    assert a.read == b.read == a.priced + a.rejected
    assert a.rows == b.rows
    assert a.rejects == b.rejects
    assert a.warnings == b.warnings
    cols = COLUMNS + EXTRA_COLUMNS
    write_table(tmp_path / "a.ndjson", a.rows, cols, DECIMAL_COLUMNS)
    write_table(tmp_path / "b.ndjson", b.rows, cols, DECIMAL_COLUMNS)
    assert (tmp_path / "a.ndjson").read_bytes() == (tmp_path / "b.ndjson").read_bytes()
    return reasons, a


def same_result(a, b) -> None:
    """Two BatchResults of one file: the same rows, rejects, warnings, count and fallbacks."""
    assert (a.read, list(a.rows), a.rejects, a.warnings) == (b.read, list(b.rows), b.rejects, b.warnings)
    assert a.fallbacks == b.fallbacks


def write(tmp_path: Path, lines: list[str], name: str = "cdrs.ndjson", end: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes("".join(line + end for line in lines).encode())
    return path


def test_explicit_nulls_and_unknown_fields_stay_columnar(tariffs, tmp_path):
    good = records("cdrs.ndjson", 12)
    lines = [
        dump(dict(good[0], remark=None, session_id=None, total_parking_time=None)),
        dump(dict(good[1], tariffs=None, credit=None, last_updated=None, total_energy_cost=None)),
        dump(dict(good[2], x_vendor={"nested": [1, {"a": None}], "s": "null"}, another=None)),
        dump(dict(good[3], cdr_location=dict(good[3]["cdr_location"], evse_uid=None))),
    ]
    # a null incl_vat beside excl_vat says 2.2.1 as excl_vat does: columnar; a null before_taxes
    # decides the version (the parser reads the key's presence: 2.3.0 in a 2.2.1 file)
    lines.append(dump(dict(good[4], total_cost=dict(good[4]["total_cost"], incl_vat=None))))
    lines.append(dump(dict(good[7], total_cost=dict(good[7]["total_cost"], before_taxes=None))))
    # a null where a value is required: the parser's reject
    lines.append(dump(dict(good[5], currency=None)))
    periods = json.loads(dump(good[6]["charging_periods"]), parse_float=Decimal)
    periods[0]["tariff_id"] = None
    lines.append(dump(dict(good[6], charging_periods=periods)))
    reasons, result = check(write(tmp_path, lines), tariffs, tmp_path)
    assert sum(reasons.values()) == 2  # the Price key and the required currency only
    assert reasons["explicit null in a key that decides the OCPI version"] == 1
    assert result.priced == 6 and {f.code for f in result.rejects} == {"WRONG_TYPE", "VERSION_MISMATCH"}


def test_empty_lists(tariffs, tmp_path):
    good = records("cdrs.ndjson", 6)
    v230 = records("cdrs.v230.ndjson", 2)
    no_periods = dict(good[1], charging_periods=[])
    periods = json.loads(dump(good[2]["charging_periods"]), parse_float=Decimal)
    periods[0]["dimensions"] = []
    lines = [
        dump(dict(good[0], tariffs=[])),
        dump(no_periods),
        dump(dict(good[2], charging_periods=periods)),
        dump(dict(good[3], tariffs=[])),
    ]
    reasons, result = check(write(tmp_path, lines), tariffs, tmp_path)
    assert result.priced == 2 and len(result.rejects) == 2
    assert sum(reasons.values()) == 2  # the two broken ones
    taxes = [dump(dict(v230[0], tariffs=[], total_cost=dict(v230[0]["total_cost"], taxes=[]))), dump(v230[1])]
    reasons, result = check(write(tmp_path, taxes, "v230.ndjson"), tariffs, tmp_path)
    assert not reasons and result.priced == 2


def test_credits_with_negative_money(tariffs, tmp_path):
    good = records("cdrs.ndjson", 4)
    credit = json.loads(dump(good[1]), parse_float=Decimal)
    for key in ("total_cost", "total_energy_cost", "total_time_cost"):
        if key in credit:
            credit[key] = {k: -v if isinstance(v, Decimal) else v for k, v in credit[key].items()}
    credit.update(id=good[1]["id"] + "-CR", credit=True, credit_reference_id=good[1]["id"])
    lines = [dump(good[0]), dump(good[1]), dump(credit), dump(dict(credit, id="X", credit_reference_id=None))]
    reasons, result = check(write(tmp_path, lines), tariffs, tmp_path)
    assert reasons == {"credit without credit_reference_id": 1}
    assert result.priced == 3


def test_crlf_and_bom(tariffs, tmp_path):
    good = [dump(r) for r in records("cdrs.v230.ndjson", 30)]
    path = tmp_path / "bom.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + "".join(g + "\r\n" for g in good).encode())
    reasons, result = check(path, tariffs, tmp_path)
    assert not reasons and result.priced == 30
    # a BOM alone on the first line is not a record: the per-record path rejects it, and so here
    path.write_bytes(b"\xef\xbb\xbf\n" + "".join(g + "\n" for g in good).encode())
    reasons, result = check(path, tariffs, tmp_path)
    assert sum(reasons.values()) == 1 and result.priced == 30


def test_a_lone_carriage_return_is_a_byte_of_its_line(tariffs, tmp_path):
    """Lines end at \\n, as grep, sed and editors count them: a \\r between JSON values is
    whitespace (the CDR is priced on the fast path), one in a broken line is part of that one
    reject, and every later line keeps the number ``grep -n`` shows."""
    good = [dump(r) for r in records("cdrs.ndjson", 6)]
    lines = [
        good[0],
        good[1].replace('",', '",\r', 1),  # whitespace between a value and the next key
        good[2][: len(good[2]) // 2] + "\r" + good[3][len(good[3]) // 2 :],  # broken, with a \r
        good[4],
        good[5] + "\r",  # a \r at the end of a line followed by \n: a CRLF line end
    ]
    path = write(tmp_path, lines)
    reasons, result = check(path, tariffs, tmp_path)
    assert result.read == 5 and result.priced == 4
    assert [(f.code, f.line) for f in result.rejects] == [("BAD_JSON", 3)]
    assert "carriage return" in result.rejects[0].message
    assert sorted(r["line"] for r in result.rows) == [1, 2, 4, 5]
    assert sum(reasons.values()) == 1  # the broken line only


def test_blanks_around_the_object(tariffs, tmp_path):
    """Spaces, tabs and \\r before ``{`` or after ``}`` are JSON's own blanks: such lines stay
    columnar (CRLF too) with their line numbers; a line of blanks is no record; a form feed (no
    JSON blank) or text after the object is the parser's BAD_JSON."""
    good = [dump(r) for r in records("cdrs.ndjson", 12)]
    pads = [(" ", ""), ("\t", " "), ("\r", " \t \r"), ("  \t ", "\t"), (" " * 100, " " * 70)]
    lines = [a + g + b for (a, b), g in zip(itertools.cycle(pads), good[:10])]
    lines[3:3] = ["   ", "\t"]
    lines += ["\f" + good[10], good[11] + " x"]
    for end in ("\n", "\r\n"):
        reasons, result = check(write(tmp_path, lines, end=end), tariffs, tmp_path)
        assert reasons == {"not one JSON object on the line": 2}
        assert result.priced == 10
        assert [(f.code, f.line) for f in result.rejects] == [("BAD_JSON", 13), ("BAD_JSON", 14)]


def test_timestamp_forms(tariffs, tmp_path):
    """OCPI DateTimes without Z (UTC), with 1-9 fraction digits (half-up to the ms), an offset,
    a lower-case t or z: columnar, with the parser's instants. Forms read only by the parser (no
    seconds, ten fraction digits) go per record."""
    good = records("cdrs.ndjson", 10)
    forms = ["", ".5Z", ".123456Z", ".9995", "+00:00", "-0130", ",25z", "Z"]
    lines = []
    for g, form in zip(good, forms, strict=False):
        stamps = {k: g[k].removesuffix("Z") + form for k in ("start_date_time", "end_date_time")}
        periods = [
            dict(p, start_date_time=p["start_date_time"].removesuffix("Z") + form)
            for p in g["charging_periods"]
        ]
        lines.append(dump(dict(g, **stamps, charging_periods=periods)))
    lines.append(dump(dict(good[8], start_date_time=good[8]["start_date_time"].replace("T", "t"))))
    lines.append(dump(dict(good[9], end_date_time=good[9]["end_date_time"][:16] + "Z")))  # no seconds
    lines.append(dump(dict(good[9], end_date_time=good[9]["end_date_time"][:19] + ".1234567891Z")))
    reasons, result = check(write(tmp_path, lines), tariffs, tmp_path)
    assert reasons == {"timestamp not in the columnar form": 2}
    assert result.priced == 11


def test_211_file_and_a_211_record_in_a_221_file(tariffs, tmp_path):
    v211 = [dump(r) for r in records("cdrs.v211.ndjson", 40)]
    v221 = [dump(r) for r in records("cdrs.ndjson", 20)]
    reasons, result = check(write(tmp_path, v211, "v211.ndjson"), tariffs, tmp_path)
    assert not reasons and result.priced == 40
    mixed = [*v221[:10], v211[0], *v221[10:]]
    reasons, result = check(write(tmp_path, mixed, "mixed.ndjson"), tariffs, tmp_path)
    assert sum(reasons.values()) == 1
    assert [f.code for f in result.rejects] == ["VERSION_MISMATCH"]
    back = [*v211[:10], v221[0], *v211[10:]]  # and a 2.2.1 record inside a 2.1.1 file
    reasons, result = check(write(tmp_path, back, "back.ndjson"), tariffs, tmp_path)
    assert sum(reasons.values()) == 1
    assert [f.code for f in result.rejects] == ["VERSION_MISMATCH"]


def test_211_connector_tariff_needs_the_known_ids(tmp_path):
    v211 = [dump(r) for r in records("cdrs.v211.ndjson", 5)]
    path = write(tmp_path, v211, "v211.ndjson")
    reasons: Counter[str] = Counter()
    table, fallback = read_ndjson_flat(path, reasons=reasons)  # no ids given: per record
    assert table.num_rows == 0 and len(fallback) == 5
    assert reasons == {"2.1.1 connector tariff_id and no tariff ids given": 5}


def test_211_cdrs_priced_with_their_own_tariffs(tmp_path):
    """No tariffs given: a 2.1.1 CDR is priced with the first of its connectors' tariff_ids that is
    one of its own embedded tariffs, on the columnar path; one whose connectors name none of them
    goes per record (the parser's "only one that fits")."""
    base = records("cdrs.v211.ndjson", 1)[0]
    own = json.loads((SAMPLE / "tariffs" / "ECO-AC-211.json").read_text(), parse_float=Decimal)
    other = copy.deepcopy(own)
    other["id"] = own["id"] + "-B"
    other["elements"] = [{"price_components": [{"type": "ENERGY", "price": "0.77", "step_size": 1}]}]

    def cdr(cdr_id: str, tariffs: list[dict], *names: str) -> str:
        c = copy.deepcopy(base)
        c["id"], c["tariffs"] = cdr_id, tariffs
        conns = [{"id": str(k), "tariff_id": i} for k, i in enumerate(names)]
        evses = [{"uid": "E1", "connectors": [{"id": "0"}]}, {"uid": "E2", "connectors": conns}]
        c["location"]["evses"] = evses
        return dump(c)

    lines = [
        cdr("one", [own], own["id"]),
        cdr("skip-unknown", [own], "NOT-OWN", own["id"]),
        cdr("second-of-two", [own, other], other["id"], own["id"]),
        cdr("first-of-two", [other, own], own["id"], other["id"]),
        cdr("none-named", [own], "NOT-OWN"),
    ]
    reasons, result = check(write(tmp_path, lines, "own211.ndjson"), TariffSet(), tmp_path)
    assert reasons == {"2.1.1 connectors name none of the CDR's own tariffs": 1}
    assert result.priced == 5
    by_cdr = {r["cdr_id"]: r["tariff_id"] for r in result.rows}
    assert by_cdr == {
        "one": own["id"],
        "skip-unknown": own["id"],
        "second-of-two": other["id"],
        "first-of-two": own["id"],
        "none-named": own["id"],
    }


def test_a_50_mb_line(tariffs, tmp_path):
    good = [dump(r) for r in records("cdrs.ndjson", 6)]
    big = json.loads(good[2])
    big["remark"] = "x" * (50 << 20)
    lines = [good[0], good[1], json.dumps(big, separators=(",", ":")), *good[3:]]
    path = write(tmp_path, lines)
    reasons, result = check(path, tariffs, tmp_path, block_bytes=1 << 20)
    assert not reasons and result.priced == 6


def _generate(out: Path, *extra: str) -> None:
    parser = argparse.ArgumentParser(prog="roamledger")
    gen.add_parser(parser.add_subparsers(dest="command", required=True))
    argv = [
        "--cdrs", "600", "--seed", "11", "--versions", "2.2.1:60,2.1.1:10,2.3.0:30", "--malformed", "8",
        "--credit-rate", "0.03", "--duplicate-rate", "0.03", "--out-of-month-rate", "0.02",
        "--quiet", "--out", str(out), *extra,
    ]  # fmt: skip
    args = parser.parse_args(["generate", *argv])
    assert args.func(args) == 0


@pytest.mark.parametrize("embed", [False, True])
def test_generated_month_of_three_versions(embed, tmp_path):
    """A generated month (credits, duplicates, malformed lines, out-of-month sessions, embedded
    tariffs or not): with the given tariffs only broken records leave the columnar path; with
    none given, the embedded ones price it. Columnar == per record in every case."""
    _generate(tmp_path / "m.ndjson", *(["--embed-tariffs"] if embed else []))
    given, _ = load_tariffs([tmp_path / "tariffs"])
    files = sorted(tmp_path.glob("m*.ndjson"))
    assert len(files) == 3
    off = total = 0
    for path in files:
        for store in [given, *([TariffSet()] if embed else [])]:
            reasons, result = check(path, store, tmp_path)
            if store is given:
                off += sum(reasons.values())
                total += result.read
                assert set(reasons) <= BROKEN, reasons
            else:  # 2.1.1 CDRs too: their connectors name one of their own tariffs
                assert set(reasons) <= BROKEN | EMBEDDED_ONLY, reasons
    assert off <= 8 and total > 600


# what keeps a CDR priced with its own embedded tariffs off the columnar path (one tariff set per file)
EMBEDDED_ONLY = {
    "embedded tariff differs from an earlier one with the same id",
    "a charging period names no embedded tariff",
}


# reasons that only broken records have (each ends as the parser's reject)
BROKEN = {
    "not one JSON object on the line",
    "pyarrow could not read the line",
    "missing currency",
    "charging period not in the columnar form",
    "not valid JSON",
    "invalid UTF-8",
}


@pytest.mark.parametrize("workers", [1, 2])
def test_spans_equal_one_piece(workers, tmp_path):
    """The file cut into ~64 KB spans priced on 2 processes, or one after the other in this
    process: the same rows, rejects, warnings and fallback counts as the whole file in one piece
    (lines renumbered across spans, malformed lines included)."""
    _generate(tmp_path / "m.ndjson")
    store, _ = load_tariffs([tmp_path / "tariffs"])
    for path in sorted(tmp_path.glob("m*.ndjson")):
        assert len(spans(str(path), 1 << 16)) > 1
        one = price_ndjson_columnar(path, store)
        two = price_ndjson_spans(price_ndjson_columnar, str(path), store, CDR_POLICY, None, workers, 1 << 16)
        same_result(two, one)


@pytest.mark.parametrize("workers", [1, 2])
def test_spans_with_embedded_tariffs_only(workers, tmp_path):
    """No tariffs given: the embedded ones price each span, and a span whose first tariff with an
    id differs from an earlier span's (one line changed) is priced again knowing it, so the
    rows, rejects and fallback counts equal the whole file in one piece."""
    _generate(tmp_path / "m.ndjson", "--embed-tariffs")
    path = tmp_path / "m.ndjson"  # the 2.2.1 part
    lines = path.read_bytes().splitlines(keepends=True)
    changed = 0
    for k in range(len(lines) * 2 // 3, len(lines)):  # one late line: its tariff's content changes
        marker = b'"tariffs":[{'
        if marker in lines[k] and not changed:
            lines[k] = lines[k].replace(marker, marker + b'"tariff_alt_url":"https://example.com/t",', 1)
            changed = k
    assert changed
    path.write_bytes(b"".join(lines))
    assert len(spans(str(path), 1 << 16)) > 2
    one = price_ndjson_columnar(path, None)
    assert one.fallbacks["columnar_reader: embedded tariff differs from an earlier one with the same id"]
    many = price_ndjson_spans(price_ndjson_columnar, str(path), None, CDR_POLICY, None, workers, 1 << 16)
    same_result(many, one)
    assert one.priced > 0.9 * one.read


def test_auto_workers_by_file_size(tmp_path, monkeypatch):
    """``AUTO``: one process below MIN_SPLIT_BYTES, one per core above; a count is kept; spans
    give every process several, within their bounds."""
    small, large = tmp_path / "s.ndjson", tmp_path / "l.ndjson"
    small.write_bytes(b"{}\n")
    with open(large, "wb") as fh:
        fh.truncate(MIN_SPLIT_BYTES)
    monkeypatch.setattr(pricing.workers, "cores", lambda: 2)
    assert (processes(str(small), AUTO), processes(str(large), AUTO)) == (1, 2)
    assert (processes(str(small), 3), processes(str(large), 1)) == (3, 1)
    assert span_bytes(10**9, 1) == SPAN_BYTES
    assert span_bytes(10**9, 2) == SPAN_BYTES
    assert span_bytes(64 << 20, 2) == 8 << 20  # 4 spans per process
    assert span_bytes(1 << 20, 2) == MIN_SPAN_BYTES


def test_spans_taper_at_the_end(tmp_path, monkeypatch):
    """The file's last ``tail`` bytes come in quarter spans (processes then end close together);
    the spans still cover the file end to end, each ending at a line end."""
    monkeypatch.setattr(pricing.ndjson_parallel, "MIN_SPAN_BYTES", 1 << 10)
    path = tmp_path / "l.ndjson"
    path.write_bytes(b"".join(b'{"id":"%d","pad":"%s"}\n' % (k, b"x" * (k % 90)) for k in range(20000)))
    size = 1 << 16
    plain, tapered = spans(str(path), size), spans(str(path), size, tail_bytes(size, 2))
    for cut in (plain, tapered):
        assert [a for a, _b in cut] == [0, *(b for _a, b in cut[:-1])]
        assert cut[-1][1] == path.stat().st_size
        assert all(path.read_bytes()[b - 1 : b] == b"\n" for _a, b in cut)
    width = [b - a for a, b in tapered]
    small = [w for w in width if w < size * 0.9]
    assert max(small) < size // 4 + 200 and len(small) >= 6 * 4 - 1  # 6 spans' worth in quarters
    assert width[: len(width) - len(small)] == [b - a for a, b in plain[: len(width) - len(small)]]
    assert tail_bytes(size, 1) == 0


@pytest.mark.parametrize("block", [1 << 12, 1 << 20])
def test_lines_pyarrow_refuses_anywhere_in_a_run(tariffs, tmp_path, block):
    """Lines pyarrow refuses (a Price given as a number: its error names the row; a volume with
    more decimals than the schema's scale: its error names none) first, last, side by side and
    in the middle of a run, in one block or many: each goes per record (the parser's reject),
    every other line stays columnar, and columnar == per record."""
    good = records("cdrs.ndjson", 40)
    as_number = dump(dict(good[0], total_cost=Decimal("1.5")))
    periods = json.loads(json.dumps(good[1]["charging_periods"], default=str))
    periods[0]["dimensions"][0]["volume"] = "1.0000000000000000001"  # 19 decimals
    too_fine = dump(dict(good[1], charging_periods=periods)).replace(
        '"1.0000000000000000001"', "1.0000000000000000001"
    )
    lines = [dump(g) for g in good]
    bad_at = {0, 1, 17, 18, 25, len(lines) + 4}
    for i in sorted(bad_at):
        lines.insert(i, as_number if i % 2 else too_fine)
    path = write(tmp_path, lines)
    reasons, result = check(path, tariffs, tmp_path, block_bytes=block)
    assert reasons == Counter({"pyarrow could not read the line": len(bad_at)})
    # a Price as a number is the parser's reject; a volume of 19 decimals it prices exactly
    assert sorted(f.line for f in result.rejects) == [i + 1 for i in sorted(bad_at) if i % 2]


def test_invalid_utf8_lines_go_per_record(tariffs, tmp_path):
    """Invalid UTF-8 (a stray byte, an encoded surrogate, a code point past U+10FFFF) in some
    lines: those lines only go per record (the reader's exact reject), the others stay
    columnar; a block of valid non-ASCII text stays columnar."""
    good = records("cdrs.ndjson", 12)
    text = "Straße €".encode()
    valid = [dump(dict(g, remark="@R")).encode().replace(b"@R", text) for g in good]
    lines = list(valid)
    for k, junk in ((2, b"\xff"), (5, b"\xed\xa0\x80"), (9, b"\xf4\x90\x80\x80")):
        lines[k] = lines[k].replace(text, b"Stra" + junk, 1)
    path = tmp_path / "cdrs.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    reasons, result = check(path, tariffs, tmp_path)
    assert reasons == Counter({"invalid UTF-8": 3})
    assert result.read == len(lines)  # (the per-record reader's own verdicts: check() compares)
    clean = tmp_path / "clean.ndjson"
    clean.write_bytes(b"\n".join(valid) + b"\n")
    assert check(clean, tariffs, tmp_path)[0] == Counter()
