"""roamledger quote, price-sheet and lint on the command line: output and exit status."""

from __future__ import annotations

import json

from conftest import ROOT

from api.cli import main

EX = ROOT / "fixtures" / "spec" / "examples"
COMPLEX = str(EX / "2.2.1" / "tariff_4_complex.json")


def test_quote_text_and_json(capsys, tmp_path):
    args = ["quote", "--tariff", COMPLEX, "--start", "2025-03-04T18:30", "--tz", "Europe/Amsterdam"]
    assert main([*args, "--energy-kwh", "20", "--power-kw", "11", "--parking-minutes", "30"]) == 0
    out = capsys.readouterr().out
    assert "Total: €5.28 (incl. VAT)" in out and "exact: excl. VAT 4.5000, incl. VAT 5.2750" in out
    target = tmp_path / "q.json"
    assert (
        main([*args, "--energy-kwh", "20", "--power-kw", "11", "--format", "json", "--out", str(target)]) == 0
    )
    assert json.loads(target.read_text())["total"]["excl_vat"] == "4.5000"


def test_quote_with_a_profile_and_a_session(capsys, tmp_path):
    profile = tmp_path / "profile.json"
    profile.write_text('[{"minutes": 30, "power_kw": 50}, {"minutes": 60, "power_kw": 20}]')
    args = ["quote", "--tariff", COMPLEX, "--start", "2025-03-04T18:30Z", "--profile", str(profile)]
    assert main([*args, "--energy-kwh", "30", "--format", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["quantities"]["total_energy_kwh"] == "30.0000"
    session = str(EX / "2.2.1" / "session_example_2_short_finished.json")
    tariff = str(EX / "2.2.1" / "tariff_1_simple_2hour.json")
    assert main(["quote", "--tariff", tariff, "--session", session, "--tz", "Europe/Brussels"]) == 0
    assert capsys.readouterr().out.startswith("session so far: tariff 12")


def test_quote_input_errors_exit_2(capsys):
    assert main(["quote", "--tariff", COMPLEX, "--start", "2025-03-04T18:30Z", "--energy-kwh", "5"]) == 2
    assert "Hint: add power_kw" in capsys.readouterr().err
    assert main(["quote", "--tariff", "/nonexistent.json", "--start", "2025-03-04T18:30Z"]) == 2


def test_quote_numbers_out_of_range_exit_2(capsys):
    """A number the decimal module cannot scale (1E+999999), or a power that is less than a watt,
    is an input error, not an internal one."""
    args = ["quote", "--tariff", COMPLEX, "--start", "2025-03-04T18:30", "--tz", "Europe/Amsterdam"]
    huge = ["--energy-kwh", "1E+999999", "--power-kw", "11"]
    tiny = ["--energy-kwh", "2", "--power-kw", "1E-9"]
    for bad in (huge, tiny):
        assert main([*args, *bad]) == 2
        err = capsys.readouterr().err
        assert "internal error" not in err and ("out of range" in err or "at least 0.001" in err), err


def test_price_sheet(capsys):
    assert main(["price-sheet", "--tariff", COMPLEX, "--locale", "de_DE"]) == 0
    out = capsys.readouterr().out
    assert "jederzeit: 2,875\u00a0€ pro Ladevorgang" in out
    assert main(["price-sheet", "--tariff", COMPLEX, "--locale", "klingon_XX"]) == 2


def test_lint_exit_status(capsys):
    clean = str(EX / "2.2.1" / "tariff_1_simple_2hour.json")
    assert main(["lint", clean, COMPLEX]) == 0
    assert "warning NO_FALLBACK $.elements" in capsys.readouterr().out
    assert main(["lint", "--fail-on", "findings", clean]) == 0
    assert main(["lint", "--fail-on", "findings", COMPLEX]) == 1
    capsys.readouterr()
    assert main(["lint", "--format", "json", str(EX / "2.3.0")]) == 0
    reports = json.loads(capsys.readouterr().out)["reports"]
    assert len(reports) == len(list((EX / "2.3.0").glob("*.json")))  # sessions, CDRs too: INVALID_TARIFF
