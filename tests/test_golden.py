"""Golden spec cases: every worked example of the OCPI spec, priced through the CLI path.

``fixtures/golden/<case>/`` holds ``cdr.json`` (or ``session.json``), ``expected.json`` and
``case.toml``. A value in ``expected.json`` is compared with the precision the spec states it
with ("5.00" → ±0.005, "0.029" → ±0.0005); ``null`` must be null. Beside that, every amount must
equal ``exact_4dp`` to the last of its 4 decimals (the stated value, or — where the spec rounds — the
exact amount worked out in ``scripts/build_golden.py``). Cases whose spec text is
superseded or wrong assert the *correct* amount (see the folder's ``case.toml`` ``reason``).
"""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import ROOT

from api.cli import main
from pricing.units import decimals_of

GOLDEN = ROOT / "fixtures" / "golden"
SPEC_CASES = json.loads((ROOT / "fixtures" / "spec" / "spec_cases.json").read_text())
FOLDERS = sorted(p for p in GOLDEN.iterdir() if p.is_dir()) if GOLDEN.exists() else []


def case_toml(folder: Path) -> dict:
    return tomllib.loads((folder / "case.toml").read_text())


ASSERTED = [f for f in FOLDERS if case_toml(f).get("assert", True)]


def tolerance(text: str) -> Decimal:
    places = max(len(text.split(".")[1]) if "." in text else 0, decimals_of(Decimal(text)))
    return Decimal(5).scaleb(-(places + 1))


def price_folder(folder: Path, tmp_path: Path) -> dict:
    meta = case_toml(folder)
    out = tmp_path / "out.ndjson"
    args = ["price", "--out", str(out)]
    if meta.get("time_zone"):
        args += ["--tz", meta["time_zone"]]
    args.append(str(folder / "cdr.json"))
    assert main(args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    rejects = (tmp_path / "out.ndjson.rejects.ndjson").read_text()
    assert len(rows) == 1, f"{folder.name}: not priced; rejects: {rejects}"
    return rows[0]


@pytest.mark.parametrize("folder", ASSERTED, ids=[f.name for f in ASSERTED])
def test_golden_case(folder: Path, tmp_path: Path) -> None:
    doc = json.loads((folder / "expected.json").read_text())
    expected, exact = doc["expected"], doc["exact_4dp"]
    assert expected, f"{folder.name}: assert = true but nothing expected"
    row = price_folder(folder, tmp_path)
    problems = []
    for column, want in expected.items():
        got = row[column]
        if want is None or column == "min_max_applied":
            if got != want:
                problems.append(f"{column}: got {got!r}, want {want!r}")
            continue
        if got is None or abs(Decimal(got) - Decimal(want)) > tolerance(want):
            problems.append(f"{column}: got {got}, want {want} (±{tolerance(want)})")
        elif got != exact[column]:
            problems.append(f"{column}: got {got}, want exactly {exact[column]}")
    assert not problems, f"{folder.name}: " + "; ".join(problems)


def test_every_consistent_spec_case_has_an_asserting_folder() -> None:
    names = {f.name for f in ASSERTED}
    missing = [c["id"] for c in SPEC_CASES if c["status"] == "consistent" and c["id"] not in names]
    assert not missing, f"consistent spec cases without a golden folder: {missing}"


def test_every_spec_case_has_a_folder_and_every_folder_is_explained() -> None:
    names = {f.name for f in FOLDERS}
    assert {c["id"] for c in SPEC_CASES} <= names
    for folder in FOLDERS:
        meta = case_toml(folder)
        assert (folder / "expected.json").exists(), folder.name
        assert (folder / "cdr.json").exists() or (folder / "session.json").exists(), folder.name
        if not meta.get("assert", True) or meta.get("status") != "consistent":
            assert meta.get("reason"), f"{folder.name}: status {meta.get('status')} needs a reason"
        if meta.get("assert", True):
            assert (folder / "cdr.json").exists(), f"{folder.name}: asserting folder needs a cdr.json"


def test_tolerance_follows_the_stated_precision() -> None:
    assert tolerance("5.00") == Decimal("0.005")
    assert tolerance("0.029") == Decimal("0.0005")
    assert tolerance("4") == Decimal("0.5")


def test_golden_folders_are_what_the_build_script_writes(tmp_path: Path) -> None:
    out = tmp_path / "golden"
    script = ROOT / "scripts" / "build_golden.py"
    subprocess.run([sys.executable, str(script), "--out", str(out)], check=True, capture_output=True)

    def differences(cmp: filecmp.dircmp, where: str = "") -> list[str]:
        found = [f"{where}{n}" for n in cmp.left_only + cmp.right_only + cmp.diff_files + cmp.funny_files]
        for name, sub in cmp.subdirs.items():
            found += differences(sub, f"{where}{name}/")
        return found

    changed = differences(filecmp.dircmp(GOLDEN, out, ignore=[]))
    assert not changed, f"fixtures/golden differs from scripts/build_golden.py output: {changed}"
