"""Tariff lint: the findings on the spec's own example tariffs (a golden list) and one crafted bad
tariff per finding code, each finding with a JSON path into the tariff and a fix."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from conftest import ROOT

from pricing.lint import lint_tariff

EXAMPLES = ROOT / "fixtures" / "spec" / "examples"  # the same files as shared ocpi/examples
TARIFF_FILES = sorted(EXAMPLES.glob("*/tariff*.json"))

# Every spec example tariff with findings; all others must lint clean.
EXPECTED = {
    "2.1.1/tariff_alt_text.json": ["VAT_UNKNOWN"],
    "2.1.1/tariff_alt_url.json": ["VAT_UNKNOWN"],
    "2.1.1/tariff_complex.json": ["NO_FALLBACK", "VAT_UNKNOWN"],
    "2.1.1/tariff_free_of_charge.json": ["VAT_UNKNOWN"],
    "2.1.1/tariff_patch_example_2_50_per_hour.json": ["INVALID_TARIFF"],  # a PATCH body, not a tariff
    "2.1.1/tariff_put_example_2_euro_per_hour.json": ["VAT_UNKNOWN"],
    "2.1.1/tariff_simple_2_euro_per_hour.json": ["VAT_UNKNOWN"],
    "2.2.1/tariff_14_step_size.json": ["STEP_SIZE_UNUSUAL", "NO_FALLBACK", "MISSING_VAT"],
    "2.2.1/tariff_4_complex.json": ["NO_FALLBACK"],  # parking only 09:00–18:00 (Sat 10–17)
    "2.2.1/tariff_7_first_hour_kwh_free.json": ["MISSING_VAT"],
    "2.3.0/tariff_14_step_size.json": ["STEP_SIZE_UNUSUAL", "NO_FALLBACK"],
    "2.3.0/tariff_20_simple_north_american_inclusive.json": ["MISSING_VAT"],
    "2.3.0/tariff_4_complex.json": ["NO_FALLBACK"],
}


def rel(path: Path) -> str:
    return path.relative_to(EXAMPLES).as_posix()


def test_there_are_spec_examples():
    assert len(TARIFF_FILES) >= 45


@pytest.mark.parametrize("path", TARIFF_FILES, ids=rel)
def test_spec_example_tariffs(path: Path):
    report = lint_tariff(json.loads(path.read_text(encoding="utf-8")))
    assert [f.code for f in report.findings] == EXPECTED.get(rel(path), [])
    for f in report.findings:
        assert f.path.startswith("$") and f.message and f.fix
        assert not f.message.endswith(".") and not f.fix.endswith(".")  # readers add "message. Fix: fix"


def test_no_fallback_says_where():
    tariff = json.loads((EXAMPLES / "2.2.1" / "tariff_4_complex.json").read_text(encoding="utf-8"))
    (finding,) = lint_tariff(tariff).findings
    assert "PARKING_TIME" in finding.message
    assert (
        "Mon, Tue, Wed, Thu, Fri 00:00–09:00, 18:00–24:00; Sat 00:00–10:00, 17:00–24:00; Sun 00:00–24:00"
        in (finding.message)
    )


GOOD = {
    "country_code": "NL",
    "party_id": "RLG",
    "id": "G",
    "currency": "EUR",
    "elements": [
        {"price_components": [{"type": "ENERGY", "price": "0.30", "vat": "21", "step_size": 1}]},
        {"price_components": [{"type": "PARKING_TIME", "price": "2.00", "vat": "21", "step_size": 60}]},
    ],
    "last_updated": "2025-01-01T00:00:00Z",
}


TYPO = {"start_tme": "09:00", "end_time": "18:00"}  # a misspelled key: the element is not restricted


def with_changes(**changes) -> dict:
    t = copy.deepcopy(GOOD)
    t.update(changes)
    return t


def element(comp_type: str, restrictions: dict | None = None, step: int = 1, vat: str | None = "21") -> dict:
    comp = {"type": comp_type, "price": "1.00", "step_size": step}
    if vat is not None:
        comp["vat"] = vat
    return {"price_components": [comp], **({"restrictions": restrictions} if restrictions else {})}


CRAFTED = [
    ("clean", GOOD, [], None),
    (
        "min above max",
        with_changes(min_price={"excl_vat": "10"}, max_price={"excl_vat": "5"}),
        ["MIN_ABOVE_MAX"],
        "$.min_price.excl_vat",
    ),
    (
        "start_time equals end_time",
        with_changes(
            elements=[element("ENERGY", {"start_time": "10:00", "end_time": "10:00"}), *GOOD["elements"]]
        ),
        ["NEVER_MATCHES"],
        "$.elements[0].restrictions.end_time",
    ),
    (
        "min_kwh above max_kwh",
        with_changes(elements=[element("ENERGY", {"min_kwh": 20, "max_kwh": 10}), *GOOD["elements"]]),
        ["NEVER_MATCHES"],
        "$.elements[0].restrictions.max_kwh",
    ),
    (
        "weekday outside the dates",
        with_changes(
            elements=[
                element(
                    "ENERGY",
                    {"start_date": "2025-03-03", "end_date": "2025-03-05", "day_of_week": ["SATURDAY"]},
                ),
                *GOOD["elements"],
            ]
        ),
        ["NEVER_MATCHES"],
        "$.elements[0].restrictions.day_of_week",
    ),
    (
        "unreachable element",
        with_changes(elements=[*GOOD["elements"], element("ENERGY", {"day_of_week": ["MONDAY"]})]),
        ["UNREACHABLE_ELEMENT"],
        "$.elements[2]",
    ),
    (
        "second component of one dimension",
        with_changes(
            elements=[
                {
                    "price_components": [
                        GOOD["elements"][0]["price_components"][0],
                        element("ENERGY")["price_components"][0],
                    ]
                },
                GOOD["elements"][1],
            ]
        ),
        ["UNREACHABLE_COMPONENT"],
        "$.elements[0].price_components[1]",
    ),
    (
        "overlapping windows",
        with_changes(
            elements=[
                element("ENERGY", {"start_time": "08:00", "end_time": "18:00"}),
                element("ENERGY", {"start_time": "17:00", "end_time": "23:00"}),
                *GOOD["elements"],
            ]
        ),
        ["OVERLAPPING_WINDOWS"],
        "$.elements[1].restrictions.start_time",
    ),
    (
        "no fallback at night",
        with_changes(
            elements=[element("ENERGY", {"start_time": "06:00", "end_time": "22:00"}), GOOD["elements"][1]]
        ),
        ["NO_FALLBACK"],
        "$.elements",
    ),
    (
        "complementary power bounds are a fallback",
        with_changes(
            elements=[
                element("ENERGY", {"max_power": 50}),
                element("ENERGY", {"min_power": 50}),
                GOOD["elements"][1],
            ]
        ),
        [],
        None,
    ),
    (
        "30-minute parking steps",
        with_changes(elements=[GOOD["elements"][0], element("PARKING_TIME", step=1800)]),
        ["STEP_SIZE_UNUSUAL"],
        "$.elements[1].price_components[0].step_size",
    ),
    (
        "5 kWh energy steps",
        with_changes(elements=[element("ENERGY", step=5000), GOOD["elements"][1]]),
        ["STEP_SIZE_UNUSUAL"],
        "$.elements[0].price_components[0].step_size",
    ),
    (
        "one component without vat",
        with_changes(elements=[element("ENERGY", vat=None), GOOD["elements"][1]]),
        ["MISSING_VAT"],
        "$.elements[0].price_components[0].vat",
    ),
    (
        "energy on a reservation element",
        with_changes(elements=[*GOOD["elements"], element("ENERGY", {"reservation": "RESERVATION"})]),
        ["RESERVATION_DIMENSION"],
        "$.elements[2].price_components[0].type",
    ),
    (
        "currency of another country",
        with_changes(currency="GBP"),
        ["CURRENCY_COUNTRY_MISMATCH"],
        "$.currency",
    ),
    ("not a tariff", {"id": "X", "currency": "EUR"}, ["INVALID_TARIFF"], "$.elements"),
    (
        "misspelled restriction",
        with_changes(elements=[element("ENERGY", TYPO), element("ENERGY")]),
        ["UNKNOWN_FIELD"],
        "$.elements[0].restrictions.start_tme",
    ),
    (
        "unknown component and element keys",
        with_changes(
            elements=[
                {**element("ENERGY"), "restriction": {}},
                {
                    "price_components": [
                        {"type": "PARKING_TIME", "price": "2", "vat": "21", "step_size": 60, "step": 60}
                    ]
                },
            ]
        ),
        ["UNKNOWN_FIELD", "UNKNOWN_FIELD"],
        "$.elements[0].restriction",
    ),
    (
        "misspelled tariff key (the cap is ignored)",
        with_changes(max_prce={"excl_vat": "10.00", "incl_vat": "12.10"}),
        ["UNKNOWN_FIELD"],
        "$.max_prce",
    ),
    ("a CDR", {"id": "12345", "currency": "EUR", "charging_periods": []}, ["NOT_A_TARIFF"], "$"),
    ("an object of nothing known", {"foo": 1}, ["NOT_A_TARIFF"], "$"),
    ("not an object", ["nope"], ["INVALID_TARIFF"], "$"),
]


@pytest.mark.parametrize(("name", "tariff", "codes", "path"), CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_bad_tariffs(name, tariff, codes, path):
    report = lint_tariff(tariff)
    assert [f.code for f in report.findings] == codes, [(f.code, f.message) for f in report.findings]
    if path is not None:
        assert report.findings[0].path == path
        assert report.findings[0].fix
    body = report.as_dict()
    assert sum(body["counts"].values()) == len(codes)


def test_unknown_field_names_the_nearest_key():
    t = with_changes(elements=[element("ENERGY", TYPO), element("ENERGY")])
    (f,) = lint_tariff(t).findings
    assert f.severity == "warning" and "start_tme" in f.message and "`start_time`" in f.fix


def test_not_a_tariff_says_so(tmp_path, capsys):
    from api.cli import main

    (tmp_path / "cdr.json").write_text(json.dumps({"id": "12345", "currency": "EUR", "charging_periods": []}))
    (tmp_path / "foo.json").write_text(json.dumps({"foo": 1}))
    (tmp_path / "patch.json").write_text(json.dumps({"id": "X", "currency": "EUR"}))
    assert main(["lint", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "tariff 12345" not in out and "tariff None" not in out and ".." not in out
    assert "cdr.json [1] no tariff id: 1 findings" in out
    assert "not an OCPI tariff (no elements): it looks like a CDR" in out
    assert "foo.json [1] no tariff id" in out and "patch.json [1] tariff X: 1 findings" in out
