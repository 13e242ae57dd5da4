"""Price sheets: the tariff in human terms, exact unit prices, localized words and numbers."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT
from test_quote import WINDOWED_TARIFF as WINDOWED

from pricing.pricesheet import price_sheet

EXAMPLES = ROOT / "fixtures" / "spec" / "examples"


def example(version: str, name: str) -> dict:
    return json.loads((EXAMPLES / version / name).read_text(encoding="utf-8"))


def test_complex_tariff_in_english():
    sheet = price_sheet(example("2.2.1", "tariff_4_complex.json"), "en").as_dict()
    assert sheet["summary"][0] == "at all times: €2.875 per session"  # 2.50 + 15 % VAT, every decimal kept
    assert (
        sheet["summary"][-1] == "Sat, 10:00–17:00: parking €0.11 per minute, €6.60 per hour, billed per 5 min"
    )
    weekday_parking = sheet["elements"][4]
    assert weekday_parking["when"] == {"days": [1, 2, 3, 4, 5], "start_time": "09:00", "end_time": "18:00"}
    (price,) = weekday_parking["prices"]
    assert (price["price_excl_vat"], price["price_incl_vat"], price["vat"]) == ("5", "5.5", "10")
    assert (price["per_minute"], price["per_minute_exact"]) == ("0.091667", False)
    assert sheet["vat_rates"] == ["10", "15", "20"]


@pytest.mark.parametrize(
    ("locale", "first"),
    [
        ("fr_FR", "à toute heure: 2,875\u00a0€ par session"),
        ("de_DE", "jederzeit: 2,875\u00a0€ pro Ladevorgang"),
        ("nl_NL", "altijd: €\u00a02,875 per sessie"),
    ],
)
def test_localized(locale, first):
    sheet = price_sheet(example("2.2.1", "tariff_4_complex.json"), locale).as_dict()
    assert sheet["summary"][0] == first


def test_caps_reservation_and_unknown_vat():
    capped = price_sheet(example("2.2.1", "tariff_6_025kwh_start_max_price.json")).as_dict()
    assert capped["max_price"]["excl_vat"] is not None and capped["summary"][-1].startswith("Maximum price: ")
    reserve = price_sheet(example("2.2.1", "tariff_16_reservation_2_euro_fee_5_euro_per_hour.json")).as_dict()
    assert reserve["reservation"] and all(e["when"].get("reservation") for e in reserve["reservation"])
    # reservation prices are said to be such (not "at all times … per session", read as a start fee
    # on every session), in the summary the CLI and the API show, after the charging prices
    assert reserve["summary"] == [
        "at all times: €0.60 per session",
        "at all times: €0.275 per kWh",
        "reservation, until charging starts: €2.40 per reservation",
        "reservation, until charging starts: €0.10 per minute, €6.00 per hour, billed per 5 min",
    ]
    tariff_16 = example("2.2.1", "tariff_16_reservation_2_euro_fee_5_euro_per_hour.json")
    nl = price_sheet(tariff_16, "nl").as_dict()
    assert nl["summary"][2] == "reservering, tot het laden begint: €\xa02,40 per reservering"
    old = price_sheet(example("2.1.1", "tariff_simple_2_euro_per_hour.json"), "nl").as_dict()
    assert old["vat_known"] is False and old["vat_text"] == "btw niet vermeld"
    assert old["elements"][0]["prices"][0]["price_incl_vat"] is None


def test_every_spec_tariff_has_a_sheet():
    for path in sorted(EXAMPLES.glob("*/tariff*.json")):
        if "patch" in path.name:
            continue
        sheet = price_sheet(json.loads(path.read_text(encoding="utf-8")), "de").as_dict()
        assert sheet["summary"], path


def test_parking_fallback_and_vat_label_in_english():
    sheet = price_sheet(WINDOWED, "en_GB").as_dict()
    assert sheet["summary"] == [
        "at all times: €0.605 per session",
        "09:00–18:00: €0.363 per kWh",
        "other times: €0.3025 per kWh",  # the 09:00–18:00 element takes precedence when it matches
        "at all times: parking €0.121 per minute, €7.26 per hour, billed per 5 min",
    ]
    # every price shown includes VAT, although the tariff states them excl. VAT
    assert sheet["vat_text"] == "prices incl. VAT (21 %)"
    assert [p["when_text"] for e in sheet["elements"] for p in e["prices"]][2] == "other times"


def test_fallback_is_per_dimension():
    """An unrestricted element is the fallback only for dimensions an earlier element prices."""
    tariff = json.loads(json.dumps(WINDOWED))
    tariff["elements"][2]["price_components"].append(
        {"type": "TIME", "price": 1.2, "vat": 21.0, "step_size": 60}
    )
    (element,) = [e for e in price_sheet(tariff, "en").as_dict()["elements"] if e["element"] == 2]
    assert [p["when_text"] for p in element["prices"]] == ["other times", "at all times"]


@pytest.mark.parametrize("locale", ["en", "fr", "de", "nl"])
def test_every_shipped_locale_has_every_word(locale):
    from pricing.display import TRANSLATED, WORDS

    assert locale in TRANSLATED and set(WORDS[locale]) == set(WORDS["en"])
    sheet = price_sheet(WINDOWED, locale).as_dict()
    words = WORDS[locale]
    parking = sheet["summary"][-1]
    assert parking.split(": ", 1)[1].startswith(words["parking_price"].format(x="").strip())
    assert sheet["summary"][2].startswith(words["other_times"] + ": ")
    assert sheet["vat_text"] == words["prices_incl_vat"].format(x="21 %")
