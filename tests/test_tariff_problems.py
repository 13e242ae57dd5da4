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
