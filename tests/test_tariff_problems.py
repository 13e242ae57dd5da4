"""Tariff problems are named (issue 10, item 3): a tariff that cannot be read is reported on the
console, and the CDRs that name it are rejected as TARIFF_INVALID with the tariff's own error (not
TARIFF_NOT_FOUND); a --tariffs path that holds no tariff is an input error (exit 2)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from test_price_cli import TARIFF
from test_settle import cdr, run_settle, write_month

from api.cli import main
from pricing.io import read_records


def bad_tariff_month(tmp: Path) -> tuple[Path, Path, Path]:
    """Two CDRs on T1 (good), one on T9 whose component type does not exist."""
    c9 = cdr("C9", day=7)
    c9["charging_periods"][0]["tariff_id"] = "T9"
    src, _, contracts = write_month(tmp, [cdr("C1"), cdr("C2", day=6), c9])
    bad = copy.deepcopy(TARIFF)
    bad["id"] = "T9"
    bad["elements"][0]["price_components"][0]["type"] = "BOGUS"
    folder = tmp / "tariffs"
    folder.mkdir()
    (folder / "good.json").write_text(json.dumps(TARIFF))
    (folder / "bad.json").write_text(json.dumps(bad))
    return src, folder, contracts


def test_price_names_the_invalid_tariff_and_rejects_its_cdrs(tmp_path: Path, capsys) -> None:
    src, tariffs, _ = bad_tariff_month(tmp_path)
    out = tmp_path / "p.ndjson"
    assert main(["price", "--tariffs", str(tariffs), "--out", str(out), str(src)]) == 0
    err = capsys.readouterr().err
    assert "tariff T9" in err and "bad.json" in err and "BOGUS" in err
    rejects = [json.loads(x) for x in Path(f"{out}.rejects.ndjson").read_text().splitlines()]
    assert [(r["record_id"], r["code"]) for r in rejects] == [("C9", "TARIFF_INVALID")]
    assert (
        "'T9' was given but could not be read" in rejects[0]["message"] and "BOGUS" in rejects[0]["message"]
    )
    assert len(out.read_text().splitlines()) == 2


def test_settle_rejects_the_cdrs_of_an_invalid_tariff(tmp_path: Path, capsys) -> None:
    src, tariffs, contracts = bad_tariff_month(tmp_path)
    out = tmp_path / "out"
    assert run_settle(tmp_path, src, tariffs, contracts, out) == 0
    assert "tariff T9" in capsys.readouterr().err
    # settle keeps an unpriceable CDR (not priced: it cannot be verified) with the tariff's error
    findings = [json.loads(x) for x in (out / "findings.ndjson").read_text().splitlines()]
    mine = [f for f in findings if f["cdr_id"] == "C9"]
    assert [f["code"] for f in mine] == ["TARIFF_INVALID"] and "BOGUS" in mine[0]["message"]
    recon = {
        r["cdr_id"]: r for r in map(json.loads, (out / "reconciliation.ndjson").read_text().splitlines())
    }
    assert (recon["C9"]["status"], recon["C9"]["reasons"]) == ("NOT_PRICED", "TARIFF_INVALID")


def test_a_tariffs_path_without_a_tariff_is_an_input_error(tmp_path: Path, capsys) -> None:
    src, _, contracts = write_month(tmp_path, [cdr("C1")])
    empty = tmp_path / "empty"
    empty.mkdir()
    for path in (empty, src):  # an empty folder; the CDR file given as tariffs by mistake
        code = main(["price", "--tariffs", str(path), "--out", str(tmp_path / "p.ndjson"), str(src)])
        assert code == 2
        assert f"--tariffs {path}: no tariff in it" in capsys.readouterr().err
        assert run_settle(tmp_path, src, path, contracts, tmp_path / "out") == 2
        assert not (tmp_path / "out").exists()


def broken_tariff_folder(tmp: Path) -> Path:
    """An indented tariff .json with one comma missing (after "currency"), next to a good one."""
    folder = tmp / "broken"
    folder.mkdir()
    text = json.dumps(TARIFF, indent=2).replace('"currency": "EUR",', '"currency": "EUR"')
    assert text != json.dumps(TARIFF, indent=2)
    (folder / "a.json").write_text(text, encoding="utf-8")
    good = copy.deepcopy(TARIFF)
    good["id"] = "T2"
    (folder / "b.json").write_text(json.dumps(good, indent=2), encoding="utf-8")
    return folder


def error_line(folder: Path) -> int:
    text = (folder / "a.json").read_text(encoding="utf-8")
    return 1 + text[: text.index('"currency": "EUR"')].count("\n") + 1  # the key after it


def test_a_json_file_with_a_syntax_error_is_one_error_where_it_is(tmp_path: Path) -> None:
    folder = broken_tariff_folder(tmp_path)
    records = list(read_records(folder / "a.json"))
    assert len(records) == 1 and records[0].error is not None
    assert records[0].line == error_line(folder)
    assert f"line {error_line(folder)} column" in records[0].error.message
    assert "each line must hold" not in records[0].error.message
    ndjson_named_json = tmp_path / "n.json"  # one object per line under a .json name: still read
    ndjson_named_json.write_text(json.dumps(TARIFF) + "\n" + json.dumps(TARIFF) + "\n", encoding="utf-8")
    assert [r.line for r in read_records(ndjson_named_json) if r.error is None] == [1, 2]


def test_price_refuses_a_tariff_file_that_is_not_json(tmp_path: Path, capsys) -> None:
    """Its tariffs' ids are unknown: every CDR on them would be rejected as TARIFF_NOT_FOUND, so the
    run stops before any work (exit 2), naming the file, line and column once."""
    folder = broken_tariff_folder(tmp_path)
    src, _, _ = write_month(tmp_path, [cdr("C1")])
    out = tmp_path / "p.ndjson"
    assert main(["price", "--tariffs", str(folder), "--out", str(out), str(src)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"a.json line {error_line(folder)} cannot be read" in err, err
    assert "column" in err and not out.exists()


def test_lint_quote_and_price_sheet_point_to_the_syntax_error(tmp_path: Path, capsys) -> None:
    folder = broken_tariff_folder(tmp_path)
    bad, n = folder / "a.json", error_line(folder)
    assert main(["lint", str(bad)]) == 2
    assert f"a.json:{n}: the file is not valid JSON" in capsys.readouterr().err
    quote = ["quote", "--start", "2026-10-05T10:00", "--tz", "Europe/Amsterdam", "--energy-kwh", "10"]
    for argv in ([*quote, "--tariff", str(bad)], ["price-sheet", "--tariff", str(bad)]):
        assert main(argv) == 2
        assert f"a.json line {n}: the file is not valid JSON" in capsys.readouterr().err
    for argv in ([*quote, "--tariff", str(folder)], ["price-sheet", "--tariff", str(folder)]):
        assert main(argv) == 2
        assert f"{folder} is a folder: give one file holding one OCPI tariff" in capsys.readouterr().err
