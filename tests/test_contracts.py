"""The contracts file (settlement.contracts): pydantic-validated, errors name the field and value."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from pricing.errors import InputError
from settlement.contracts import load_contracts

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "contracts.json"


def write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "contracts.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_pairs_override_the_default_field_by_field() -> None:
    c = load_contracts(SAMPLE)
    pair = c.terms("NL*ECO", "DE*MSP")
    assert pair.roaming_fee_per_session == Decimal("0.15") and pair.payment_terms_days == 14
    assert pair.tolerance == c.default.tolerance == Decimal("0.01")
    assert pair.reporting_currency == "EUR"  # inherited
    assert c.terms("NL*ECO", "FR*EMO").basis == "recomputed"
    assert c.fx("GBP", "EUR") == Decimal("1.1650")
    assert c.cpo_by_location["LOC-ECO-0001"] == "NL*ECO"


def test_basis_flag_overrides_every_pair() -> None:
    c = load_contracts(SAMPLE, basis="recomputed")
    assert c.default.basis == "recomputed"
    assert all(t.basis == "recomputed" for t in c.pairs.values())


def test_a_bad_decimal_names_the_field_and_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, {"pairs": {"NL*ECO/DE*MSP": {"tolerance": "abc"}}})
    with pytest.raises(InputError) as err:
        load_contracts(path)
    assert str(err.value).startswith(
        "contracts.json: pairs.NL*ECO/DE*MSP.tolerance: 'abc' is not a decimal number"
    )


def test_every_problem_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"default": {"basis": "paid", "tolerance": "NaN", "fee": "1"}, "fx_rates": {"GBP/EUR": "1,16"}},
    )
    with pytest.raises(InputError) as err:
        load_contracts(path)
    lines = str(err.value).splitlines()
    assert "contracts.json: default.basis: 'paid': Input should be 'reported' or 'recomputed'" in lines
    assert any(
        ln.startswith("contracts.json: default.tolerance: 'NaN' is not a decimal number") for ln in lines
    )
    assert any(ln.startswith("contracts.json: default.fee: unknown contract term") for ln in lines)
    assert any(
        ln.startswith("contracts.json: fx_rates.GBP/EUR: '1,16' is not a decimal number") for ln in lines
    )


def test_not_json_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "contracts.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(InputError, match="it must be a JSON object"):
        load_contracts(path)


@pytest.mark.parametrize(
    ("doc", "said"),
    [
        (
            {"pairs": {"NL-ABC/DE-MSP": {"roaming_fee_per_session": "0.15"}}},
            "pairs.NL-ABC/DE-MSP: not CPO/EMSP",
        ),
        ({"parties": {"NL ABC": {"name": "ABC"}}}, "parties.NL ABC: not COUNTRY*PARTY"),
        (
            {"defualt": {"roaming_fee_per_session": "0.15"}},
            "unknown section 'defualt'. Hint: did you mean 'default'?",
        ),
        ({"id": "T1", "currency": "EUR", "elements": []}, "this is an OCPI object, not contract terms"),
        ({"parties_211": {"cpo_by_location": {"L1": "NLECO"}}}, "'NLECO' is not COUNTRY*PARTY"),
        ({"vat_rates": {"NLD": "21"}}, "vat_rates.NLD: not a country code"),
        ([{"default": {}}], "holds a JSON list, not an object"),
    ],
)
def test_a_section_or_code_written_another_way_is_refused(tmp_path: Path, doc: object, said: str) -> None:
    """Typos the model alone would ignore (the terms then silently not applied) are refused."""
    with pytest.raises(InputError) as err:
        load_contracts(write(tmp_path, doc))
    assert str(err.value).startswith("contracts.json: ") and said in str(err.value)


def test_notes_and_well_formed_codes_are_accepted(tmp_path: Path) -> None:
    doc = {"_comment": "n", "_by": "me", "pairs": {"NL*ECO/DE*MSP": {"payment_terms_days": 14}}}
    assert load_contracts(write(tmp_path, doc)).terms("NL*ECO", "DE*MSP").payment_terms_days == 14
