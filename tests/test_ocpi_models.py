"""OCPI wire models: every spec example parses, converts to the canonical model, and bad records
are rejected with a stable code, a JSON path and a hint."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from pricing import errors as E
from pricing.errors import RecordRejected
from pricing.model import Dimension, Money, PriceLimit, ReservationKind, TaxIncluded
from pricing.ocpi import detect_version, parse_cdr, parse_session, parse_tariff, v211, v221, v230

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "fixtures" / "spec" / "examples"
VERSIONS = ("2.1.1", "2.2.1", "2.3.0")

# Partial PATCH bodies: not complete objects, so validation must reject them (MISSING_FIELD).
PATCH_PREFIXES = ("tariff_patch_example_", "session_patch_example_")
# Not a tariff although the name says so: a Location PATCH body that sets a connector's tariff_ids.
NOT_A_RECORD = {"location_patch_example_tariff.json"}


def load(version: str, name: str, *, floats: bool = False) -> dict[str, Any]:
    raw = (EXAMPLES / version / name).read_bytes()
    return orjson.loads(raw) if floats else json.loads(raw, parse_float=Decimal)


def kind_of(name: str) -> str | None:
    if name in NOT_A_RECORD:
        return None
    if name.startswith("tariff"):
        return "tariff"
    if name == "cdr_example.json":
        return "cdr"
    if name.startswith("session"):
        return "session"
    raise AssertionError(f"{name}: no test knows this example; classify it")


EXAMPLE_FILES = sorted((v, p.name) for v in VERSIONS for p in (EXAMPLES / v).glob("*.json"))
RECORDS = [(v, n) for v, n in EXAMPLE_FILES if kind_of(n) is not None]
PARSERS = {"tariff": parse_tariff, "cdr": parse_cdr, "session": parse_session}


def rejected(fn: Any, *args: Any) -> RecordRejected:
    with pytest.raises(RecordRejected) as info:
        fn(*args)
    return info.value


# ---- the spec's examples ------------------------------------------------------------------------


def test_every_example_folder_is_present() -> None:
    counts = {v: sum(1 for x, _ in EXAMPLE_FILES if x == v) for v in VERSIONS}
    assert all(n >= 5 for n in counts.values()), counts


@pytest.mark.parametrize(("version", "name"), RECORDS, ids=[f"{v}/{n}" for v, n in RECORDS])
def test_spec_example_parses(version: str, name: str) -> None:
    kind = kind_of(name)
    assert kind is not None
    obj = load(version, name)
    parse = PARSERS[kind]
    if name.startswith(PATCH_PREFIXES):
        for v in (version, None):
            err = rejected(parse, obj, v)
            assert err.code == E.MISSING_FIELD and err.path.startswith("$.") and "Hint:" in err.message
        return
    assert detect_version(obj, kind) == version
    for v in (version, None):
        result = parse(obj, v)
        if kind == "session":
            module = {"2.1.1": v211, "2.2.1": v221, "2.3.0": v230}[version]
            assert isinstance(result, module.Session)
        else:
            canonical, findings = result
            assert canonical.version == version
            # the spec's own 2.3.0 CDR example embeds a tariff without tax_included
            warned = name == "cdr_example.json" and version == "2.3.0"
            assert [f.code for f in findings] == ([E.MISSING_TAX_INCLUDED] if warned else [])


@pytest.mark.parametrize(("version", "name"), RECORDS, ids=[f"{v}/{n}" for v, n in RECORDS])
def test_float_input_gives_the_same_decimals(version: str, name: str) -> None:
    """orjson decodes 0.1 as a float; the result must equal the exact (parse_float=Decimal) one."""
    kind = kind_of(name)
    assert kind is not None
    if name.startswith(PATCH_PREFIXES):
        return
    exact = PARSERS[kind](load(version, name), version)
    floats = PARSERS[kind](load(version, name, floats=True), version)
    assert floats == exact


def test_cdr_example_221() -> None:
    cdr, findings = parse_cdr(load("2.2.1", "cdr_example.json"))
    assert findings == []
    assert cdr.version == "2.2.1"
    assert (cdr.country_code, cdr.party_id, cdr.id) == ("BE", "BEC", "12345")
    assert cdr.end_ms - cdr.start_ms == 7_103_000  # 21:39:09 → 23:37:32
    assert cdr.contract_id == "DE8ACC12E46L89"
    assert (cdr.emsp_country_code, cdr.emsp_party_id) == (None, None)  # 2.2.1 tag example has none
    assert (cdr.location_id, cdr.location_country, cdr.location_time_zone) == ("LOC1", "BEL", None)
    assert len(cdr.periods) == 1
    (p,) = cdr.periods
    assert p.start_ms == cdr.start_ms and p.time_ms == 7_102_800 and p.tariff_id == "12"
    assert p.energy_mwh is None and p.parking_ms is None
    (tariff,) = cdr.tariffs
    assert tariff.tax_included is TaxIncluded.NO and tariff.taxes_known
    (comp,) = tariff.elements[0].components
    assert (comp.dimension, comp.price, comp.vat, comp.step_size) == (
        Dimension.TIME,
        Decimal("2.00"),
        Decimal("10.0"),
        300,
    )
    assert cdr.total_cost == Money(excl=Decimal("4.00"), incl=Decimal("4.40"))
    assert cdr.total_time_cost == Money(excl=Decimal("4.00"), incl=Decimal("4.40"))
    assert cdr.total_energy_cost is None
    assert (cdr.total_energy, cdr.total_time, cdr.total_parking_time) == (
        Decimal("15.342"),
        Decimal("1.973"),
        None,
    )
    assert cdr.credit is False and cdr.home_charging_compensation is False
    assert cdr.last_updated_ms == cdr.start_ms + 1_324_000


def test_cdr_example_211() -> None:
    cdr, findings = parse_cdr(load("2.1.1", "cdr_example.json"))
    assert findings == []
    assert cdr.version == "2.1.1"
    assert (cdr.country_code, cdr.party_id) == (None, None)
    assert cdr.contract_id == "DE8ACC12E46L89"  # auth_id
    assert cdr.end_ms - cdr.start_ms == 7_103_000  # stop_date_time
    assert (cdr.location_id, cdr.location_country, cdr.location_time_zone) == ("LOC1", "BE", None)
    assert cdr.connector_tariff_ids == ("11",)
    (tariff,) = cdr.tariffs
    assert tariff.tax_included is TaxIncluded.UNKNOWN and not tariff.taxes_known
    assert (tariff.country_code, tariff.party_id) == (None, None)
    (comp,) = tariff.elements[0].components
    assert comp.price == Decimal("2.00") and str(comp.price) == "2.00"  # written as the string "2.00"
    assert comp.vat is None and comp.step_size == 300
    assert cdr.periods[0].time_ms == 7_102_800 and cdr.periods[0].tariff_id is None
    assert cdr.total_cost == Money(excl=Decimal("4.00"), incl=None)
    assert cdr.total_time_cost is None


def test_cdr_example_230_reports_missing_tax_included() -> None:
    cdr, findings = parse_cdr(load("2.3.0", "cdr_example.json"))
    assert cdr.version == "2.3.0"
    assert (cdr.emsp_country_code, cdr.emsp_party_id) == ("DE", "TNM")
    (f,) = findings
    assert (f.code, f.severity, f.path, f.record_id) == (
        E.MISSING_TAX_INCLUDED,
        "warning",
        "$.tariffs[0].tax_included",
        "12345",
    )
    assert "Hint:" in f.message
    assert cdr.warnings == (E.MISSING_TAX_INCLUDED,)
    assert cdr.tariffs[0].tax_included is TaxIncluded.NO
    assert cdr.periods[0].time_ms == 7_102_800
    vat = ("VAT", None, Decimal("0.40"))
    assert cdr.total_cost == Money(excl=Decimal("4.00"), incl=Decimal("4.40"), taxes=(vat,))
    assert cdr.total_time_cost == Money(excl=Decimal("4.00"), incl=Decimal("4.40"), taxes=(vat,))


def test_tariff_examples_convert() -> None:
    t14, _ = parse_tariff(load("2.2.1", "tariff_14_step_size.json"))
    windows = [(e.restrictions.start_time_min, e.restrictions.end_time_min) for e in t14.elements]
    assert windows[-1] == (20 * 60, 1440)  # end_time "00:00" = end of day
    assert windows[0] == (0, 17 * 60)

    complex211, _ = parse_tariff(load("2.1.1", "tariff_complex.json"))
    r = [e.restrictions for e in complex211.elements]
    assert r[1].max_power_w == 32_000 and r[2].min_power_w == 32_000
    assert r[2].days == frozenset({1, 2, 3, 4, 5}) and r[3].days == frozenset({6, 7})
    assert (r[4].start_time_min, r[4].end_time_min) == (540, 1080)

    complex221, _ = parse_tariff(load("2.2.1", "tariff_4_complex.json"))
    assert complex221.elements[1].restrictions.max_current_ma == 32_000
    assert complex221.type == "REGULAR"

    t17, _ = parse_tariff(load("2.2.1", "tariff_17_reservation_with_expire_fee.json"))
    kinds = [e.restrictions.reservation for e in t17.elements]
    assert kinds == [ReservationKind.RESERVATION_EXPIRES, ReservationKind.RESERVATION, None]

    t12_221, _ = parse_tariff(load("2.2.1", "tariff_12_025kwh_min_price.json"))
    t12_230, _ = parse_tariff(load("2.3.0", "tariff_12_025kwh_min_price.json"))
    assert t12_221.min_price == t12_230.min_price == PriceLimit(Decimal("0.50"), Decimal("0.55"))

    t6, _ = parse_tariff(load("2.2.1", "tariff_6_025kwh_start_max_price.json"))
    assert t6.max_price is not None and t6.max_price.incl is not None and t6.end_ms is not None

    na_excl, _ = parse_tariff(load("2.3.0", "tariff_19_simple_north_american_exclusive.json"))
    na_incl, _ = parse_tariff(load("2.3.0", "tariff_20_simple_north_american_inclusive.json"))
    assert na_excl.tax_included is TaxIncluded.NO and not na_excl.taxes_known
    assert na_incl.tax_included is TaxIncluded.YES


def test_session_examples() -> None:
    s211 = parse_session(load("2.1.1", "session_example_2_short_finished.json"))
    assert isinstance(s211, v211.Session)
    assert s211.kwh == Decimal("41.00") and s211.status == "COMPLETED"
    assert s211.total_cost_money() == Money(excl=Decimal("8.50"))
    periods = s211.canonical_periods()
    assert [p.energy_mwh for p in periods] == [120_000_000, 41_000_000_000, None]
    assert periods[0].max_current_ma == 30_000 and periods[1].min_current_ma == 34_000
    assert periods[2].parking_ms == 2_584_800  # 0.718 h

    s230 = parse_session(load("2.3.0", "session_example_2_short_finished.json"))
    assert isinstance(s230, v230.Session)
    assert s230.total_cost_money() == Money(
        Decimal("8.50"), Decimal("9.35"), (("VAT", None, Decimal("0.85")),)
    )
    s221 = parse_session(load("2.2.1", "session_example_1_simple_start.json"))
    assert isinstance(s221, v221.Session) and s221.end_ms is None


# ---- version detection --------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_detect_version_of_cdr_examples(version: str) -> None:
    assert detect_version(load(version, "cdr_example.json"), "cdr") == version


def test_detect_version_rules() -> None:
    assert detect_version({}, "cdr") == "2.2.1"  # nothing tells: default
    assert detect_version({"end_date_time": "2024-01-01T00:00:00Z"}, "cdr") == "2.2.1"
    assert detect_version({"total_cost": 4}, "cdr") == "2.1.1"
    assert detect_version({"total_cost": {"before_taxes": 4}}, "cdr") == "2.3.0"
    embedded = {"cdr_token": {}, "tariffs": [{"tax_included": "YES"}]}
    assert detect_version(embedded, "cdr") == "2.3.0"
    assert detect_version({"id": "1", "elements": []}, "tariff") == "2.1.1"  # no owner
    assert detect_version({"country_code": "DE", "party_id": "ALL"}, "tariff") == "2.2.1"
    assert detect_version({"min_price": {"before_taxes": 1}}, "tariff") == "2.3.0"
    assert detect_version({"start_datetime": "2024-01-01T00:00:00Z"}, "session") == "2.1.1"


def test_211_cdr_read_as_221_is_a_version_mismatch() -> None:
    err = rejected(parse_cdr, load("2.1.1", "cdr_example.json"), "2.2.1")
    assert err.code == E.VERSION_MISMATCH
    assert err.path == "$.stop_date_time"
    assert "2.1.1" in err.message and "Hint:" in err.message


def test_version_mismatch_names_the_evidence_that_conflicts() -> None:
    """A record whose own fields tell two versions: the message names both, not "looks like OCPI
    2.1.1 … but is read as OCPI 2.1.1"."""
    cdr = dict(load("2.1.1", "cdr_example.json"), total_energy_cost={"excl_vat": 1})
    err = rejected(parse_cdr, cdr, "2.1.1")
    assert err.code == E.VERSION_MISMATCH and err.path == "$.total_energy_cost.excl_vat"
    assert "mixes OCPI versions (read as OCPI 2.1.1)" in err.message
    assert "`stop_date_time`" in err.message and "`total_energy_cost.excl_vat`" in err.message
    assert "looks like" not in err.message
    # read as 2.2.1, the same record: still both pieces of evidence, at the one against 2.2.1
    err = rejected(parse_cdr, cdr, "2.2.1")
    assert err.path == "$.stop_date_time" and "mixes OCPI versions (read as OCPI 2.2.1)" in err.message
    # one version throughout, read as another: what it looks like, and the version to pass
    err = rejected(parse_cdr, load("2.2.1", "cdr_example.json"), "2.3.0")
    assert "looks like OCPI 2.2.1" in err.message and "--ocpi-version 2.2.1" in err.message


def test_other_version_mismatches() -> None:
    assert rejected(parse_cdr, load("2.2.1", "cdr_example.json"), "2.1.1").code == E.VERSION_MISMATCH
    assert rejected(parse_cdr, load("2.2.1", "cdr_example.json"), "2.3.0").code == E.VERSION_MISMATCH
    assert rejected(parse_cdr, load("2.3.0", "cdr_example.json"), "2.2.1").code == E.VERSION_MISMATCH
    tariff = load("2.3.0", "tariff_1_simple_2hour.json")
    assert rejected(parse_tariff, tariff, "2.2.1").code == E.VERSION_MISMATCH
    # a 2.2 tariff read as 2.3.0 is not "clearly" another version: NO is assumed, with a warning
    t, findings = parse_tariff(load("2.2.1", "tariff_1_simple_2hour.json"), "2.3.0")
    assert t.tax_included is TaxIncluded.NO and [f.code for f in findings] == [E.MISSING_TAX_INCLUDED]
    assert findings[0].path == "$.tax_included"


# ---- bad input ----------------------------------------------------------------------------------


def cdr221(**changes: Any) -> dict[str, Any]:
    c = load("2.2.1", "cdr_example.json")
    c.update(changes)
    return c


def period(start: str, *dims: tuple[str, Any], tariff_id: str | None = "12") -> dict[str, Any]:
    out: dict[str, Any] = {
        "start_date_time": start,
        "dimensions": [{"type": t, "volume": v} for t, v in dims],
    }
    if tariff_id is not None:
        out["tariff_id"] = tariff_id
    return out


def test_not_an_object_is_a_bad_record() -> None:
    for bad in ([], "cdr", None, 3):
        assert rejected(parse_cdr, bad).code == E.BAD_RECORD
        assert rejected(parse_tariff, bad, "2.2.1").code == E.BAD_RECORD


def test_a_tariff_given_as_a_cdr_is_named_a_tariff() -> None:
    """Not "end_date_time: required field is missing (6 more problems)": the record is a tariff."""
    for version in VERSIONS:
        tariff = load(version, sorted(p.name for p in (EXAMPLES / version).glob("tariff*.json"))[0])
        err = rejected(parse_cdr, tariff)
        assert (err.code, err.path) == (E.BAD_RECORD, "$")
        assert "an OCPI tariff" in err.message and "--tariffs" in err.message
    contracts = {"statement_time_zone": "Europe/Amsterdam", "default": {"basis": "reported"}}
    err = rejected(parse_cdr, contracts)
    assert (err.code, err.path) == (E.BAD_RECORD, "$")
    assert "not an OCPI CDR" in err.message and "default, statement_time_zone" in err.message


def test_missing_required_field_names_its_path() -> None:
    c = cdr221()
    del c["currency"]
    err = rejected(parse_cdr, c)
    assert (err.code, err.path) == (E.MISSING_FIELD, "$.currency")
    assert err.message.startswith("currency: ") and "Hint:" in err.message

    c = cdr221()
    del c["charging_periods"][0]["dimensions"][0]["volume"]
    err = rejected(parse_cdr, c)
    assert (err.code, err.path) == (E.MISSING_FIELD, "$.charging_periods[0].dimensions[0].volume")

    c = cdr221()
    del c["tariffs"][0]["elements"][0]["price_components"][0]["step_size"]
    err = rejected(parse_cdr, c)
    assert err.path == "$.tariffs[0].elements[0].price_components[0].step_size"


def test_wrong_type() -> None:
    c = cdr221()
    c["charging_periods"][0]["dimensions"][0]["volume"] = "a lot"
    err = rejected(parse_cdr, c)
    assert (err.code, err.path) == (E.WRONG_TYPE, "$.charging_periods[0].dimensions[0].volume")
    assert "'a lot'" in err.message and "Hint: write a JSON number" in err.message
    assert rejected(parse_cdr, cdr221(charging_periods={"a": 1})).code == E.WRONG_TYPE
    assert rejected(parse_cdr, cdr221(total_cost=4.0)).code == E.WRONG_TYPE
    assert rejected(parse_cdr, cdr221(start_date_time=1435613949)).code == E.WRONG_TYPE


def test_invalid_values() -> None:
    err = rejected(parse_cdr, cdr221(currency="EURO"))
    assert (err.code, err.path) == (E.INVALID_VALUE, "$.currency")
    err = rejected(parse_cdr, cdr221(end_date_time="2015-06-29T20:00:00Z"))
    assert (err.code, err.path) == (E.INVALID_VALUE, "$.end_date_time")
    assert rejected(parse_cdr, cdr221(end_date_time="29/06/2015")).code == E.INVALID_VALUE
    c = cdr221()
    c["tariffs"][0]["elements"][0]["price_components"][0]["type"] = "KWH"
    assert rejected(parse_cdr, c).code == E.INVALID_VALUE
    c = cdr221()
    c["tariffs"][0]["elements"][0]["price_components"][0]["step_size"] = Decimal("1.5")
    assert rejected(parse_cdr, c).code == E.INVALID_VALUE
    c = cdr221()
    c["tariffs"][0]["elements"][0]["restrictions"] = {"start_time": "25:00"}
    err = rejected(parse_cdr, c)
    assert (err.code, err.path) == (E.INVALID_VALUE, "$.tariffs[0].elements[0].restrictions.start_time")
    assert rejected(parse_cdr, cdr221(charging_periods=[])).code == E.INVALID_VALUE
    err = rejected(parse_cdr, cdr221(credit=True))
    assert (err.code, err.path) == (E.MISSING_FIELD, "$.credit_reference_id")


@pytest.mark.parametrize("dim", ["ENERGY", "TIME", "PARKING_TIME", "RESERVATION_TIME", "MAX_POWER"])
def test_negative_volume(dim: str) -> None:
    c = cdr221()
    c["charging_periods"][0]["dimensions"].append({"type": dim, "volume": Decimal("-1.5")})
    err = rejected(parse_cdr, c)
    assert (err.code, err.path) == (E.NEGATIVE_VOLUME, "$.charging_periods[0].dimensions[1].volume")
    assert err.message.startswith("charging_periods[0].dimensions[1].volume: -1.5 is negative")
    assert "Hint: volumes are non-negative" in err.message


def test_negative_minimum_current_and_power_are_allowed() -> None:
    c = cdr221()
    c["charging_periods"][0]["dimensions"] += [
        {"type": "MIN_CURRENT", "volume": -16},
        {"type": "MIN_POWER", "volume": Decimal("-3.5")},
    ]
    cdr, _ = parse_cdr(c)
    assert (cdr.periods[0].min_current_ma, cdr.periods[0].min_power_w) == (-16_000, -3_500)


def test_periods_out_of_order() -> None:
    c = cdr221()
    c["charging_periods"].append(period("2015-06-29T21:00:00Z", ("TIME", 1)))
    err = rejected(parse_cdr, c)
    assert (err.code, err.path) == (E.PERIODS_OUT_OF_ORDER, "$.charging_periods[1].start_date_time")


def test_period_after_end() -> None:
    c = cdr221()
    c["charging_periods"].append(period("2015-06-29T23:40:00Z", ("PARKING_TIME", 1)))
    err = rejected(parse_cdr, c)
    assert (err.code, err.path) == (E.PERIOD_AFTER_END, "$.charging_periods[1].start_date_time")
    c = cdr221()
    c["charging_periods"].append(period("2015-06-29T23:37:32Z", ("PARKING_TIME", 0)))
    assert len(parse_cdr(c)[0].periods) == 2  # starting exactly at the end is allowed


def test_too_many_decimals_is_unsupported_precision() -> None:
    c = cdr221()
    c["tariffs"][0]["elements"][0]["price_components"][0]["price"] = Decimal("0.1234567")
    err = rejected(parse_cdr, c)
    assert (err.code, err.path) == (
        E.UNSUPPORTED_PRECISION,
        "$.tariffs[0].elements[0].price_components[0].price",
    )
    assert "Hint:" in err.message
    six = cdr221()
    six["tariffs"][0]["elements"][0]["price_components"][0]["price"] = Decimal("0.123456")
    assert parse_cdr(six)[0].tariffs[0].elements[0].components[0].price == Decimal("0.123456")

    t = load("2.2.1", "tariff_1_simple_2hour.json")
    t["elements"][0]["price_components"][0]["vat"] = Decimal("19.125")
    assert rejected(parse_tariff, t).code == E.UNSUPPORTED_PRECISION
    t = load("2.2.1", "tariff_1_simple_2hour.json")
    t["elements"][0]["restrictions"] = {"min_kwh": Decimal("0.0000001")}
    err = rejected(parse_tariff, t)
    assert (err.code, err.path) == (E.UNSUPPORTED_PRECISION, "$.elements[0].restrictions.min_kwh")
    t["elements"][0]["restrictions"] = {"min_kwh": Decimal("0.000001"), "max_power": Decimal("7.4")}
    r = parse_tariff(t)[0].elements[0].restrictions
    assert (r.min_kwh_mwh, r.max_power_w) == (1, 7_400)


def test_unknown_fields_are_tolerated() -> None:
    c = cdr221(x_vendor={"anything": [1, 2]}, signed_data={"encoding_method": "OCMF"})
    c["charging_periods"][0]["x_meter"] = "abc"
    c["tariffs"][0]["elements"][0]["price_components"][0]["x_note"] = None
    cdr, findings = parse_cdr(c)
    assert findings == [] and cdr == parse_cdr(cdr221())[0]


def test_float_and_text_numbers_agree() -> None:
    text = parse_cdr(cdr221(total_energy=Decimal("0.1")))[0]
    as_float = parse_cdr(cdr221(total_energy=0.1))[0]
    as_string = parse_cdr(cdr221(total_energy="0.1"))[0]
    assert text.total_energy == as_float.total_energy == as_string.total_energy == Decimal("0.1")
    assert str(as_float.total_energy) == "0.1"
    raw = (EXAMPLES / "2.2.1" / "cdr_example.json").read_bytes()
    assert parse_cdr(orjson.loads(raw)) == parse_cdr(json.loads(raw, parse_float=Decimal))


# ---- conversion details -------------------------------------------------------------------------


def test_dimensions_of_one_type_are_combined() -> None:
    c = cdr221()
    c["charging_periods"] = [
        period(
            "2015-06-29T21:39:09Z",
            ("ENERGY", Decimal("1.5")),
            ("ENERGY", Decimal("2.25")),
            ("TIME", Decimal("0.5")),
            ("TIME", Decimal("0.25")),
            ("MAX_POWER", Decimal("11")),
            ("MAX_POWER", Decimal("7.4")),
            ("MIN_POWER", Decimal("3.7")),
            ("MIN_POWER", Decimal("1.2")),
            ("MAX_CURRENT", 16),
            ("STATE_OF_CHARGE", 80),  # Session only: ignored
            ("RESERVATION_TIME", Decimal("0.1")),
        )
    ]
    (p,) = parse_cdr(c)[0].periods
    assert (p.energy_mwh, p.time_ms, p.reservation_ms) == (3_750_000, 2_700_000, 360_000)
    assert (p.max_power_w, p.min_power_w, p.max_current_ma, p.min_current_ma) == (11_000, 1_200, 16_000, None)


def test_211_flat_dimension_is_ignored_and_time_zone_kept() -> None:
    c = load("2.1.1", "cdr_example.json")
    c["location"]["time_zone"] = "Europe/Brussels"
    c["location"]["evses"].append(
        {"uid": "2", "connectors": [{"id": "1", "tariff_id": "12"}, {"id": "2", "tariff_id": "11"}]}
    )
    c["charging_periods"][0]["dimensions"].append({"type": "FLAT", "volume": 1})
    cdr, _ = parse_cdr(c)
    assert cdr.location_time_zone == "Europe/Brussels"
    assert cdr.connector_tariff_ids == ("11", "12")
    assert cdr.periods[0].time_ms == 7_102_800 and cdr.periods[0].energy_mwh is None


@pytest.mark.parametrize(
    ("text", "ms_after_start"),
    [
        ("2015-06-29T21:39:09Z", 0),
        ("2015-06-29T21:39:09", 0),  # naive = UTC
        ("2015-06-29T23:39:09+02:00", 0),
        ("2015-06-29T21:39:09.5Z", 500),
        ("2015-06-29T21:39:09.0004Z", 0),
        ("2015-06-29T21:39:09.0005Z", 1),  # half-up to the millisecond
        ("2015-06-29t21:39:09.123456789z", 123),
    ],
)
def test_datetime_forms(text: str, ms_after_start: int) -> None:
    cdr, _ = parse_cdr(cdr221(start_date_time=text, charging_periods=[period(text, ("TIME", 1))]))
    assert cdr.start_ms == 1_435_613_949_000 + ms_after_start


def test_230_money_and_tax_included() -> None:
    c = load("2.3.0", "cdr_example.json")
    c["tariffs"][0]["tax_included"] = "N/A"
    c["total_cost"] = {"before_taxes": Decimal("4.00"), "taxes": []}
    c["total_energy_cost"] = {"before_taxes": Decimal("1.00")}
    c["total_parking_cost"] = {
        "before_taxes": Decimal("2.00"),
        "taxes": [
            {"name": "GST", "percentage": 5, "amount": Decimal("0.10"), "account_number": "X"},
            {"name": "QST", "percentage": Decimal("9.975"), "amount": Decimal("0.1995")},
        ],
    }
    cdr, findings = parse_cdr(c)
    assert findings == []
    assert cdr.tariffs[0].tax_included is TaxIncluded.NOT_APPLICABLE
    assert cdr.total_cost == Money(Decimal("4.00"), Decimal("4.00"))  # taxes present (empty)
    assert cdr.total_energy_cost == Money(Decimal("1.00"), None)  # no taxes list: unknown
    assert cdr.total_parking_cost == Money(
        Decimal("2.00"),
        Decimal("2.2995"),
        (("GST", Decimal(5), Decimal("0.10")), ("QST", Decimal("9.975"), Decimal("0.1995"))),
    )


def test_221_credit_cdr() -> None:
    c = cdr221(
        id="12345-C",
        credit=True,
        credit_reference_id="12345",
        invoice_reference_id="INV-1",
        session_id="S1",
        home_charging_compensation=False,
        total_cost={"excl_vat": Decimal("-4.00"), "incl_vat": Decimal("-4.40")},
    )
    cdr, _ = parse_cdr(c)
    assert (cdr.credit, cdr.credit_reference_id, cdr.invoice_reference_id) == (True, "12345", "INV-1")
    assert cdr.session_id == "S1" and cdr.total_cost == Money(Decimal("-4.00"), Decimal("-4.40"))


def test_tariff_validity_window_and_dates() -> None:
    t = load("2.2.1", "tariff_1_simple_2hour.json")
    t["start_date_time"] = "2024-01-01T00:00:00Z"
    t["end_date_time"] = "2024-02-01T00:00:00Z"
    t["elements"][0]["restrictions"] = {"start_date": "2024-01-05", "end_date": "2024-01-06"}
    tariff, _ = parse_tariff(t)
    assert tariff.valid_at(tariff.start_ms or 0) and not tariff.valid_at(tariff.end_ms or 0)
    r = tariff.elements[0].restrictions
    assert (r.start_date, r.end_date) == (date(2024, 1, 5), date(2024, 1, 6))
    t["end_date_time"] = "2023-12-31T00:00:00Z"
    err = rejected(parse_tariff, t)
    assert (err.code, err.path) == (E.INVALID_VALUE, "$.end_date_time")


def test_wire_models_are_usable_directly() -> None:
    wire = v221.Cdr.model_validate(load("2.2.1", "cdr_example.json"))
    assert wire.total_cost.excl_vat == Decimal("4.00")
    assert wire.to_canonical() == parse_cdr(load("2.2.1", "cdr_example.json"))[0]
    original = load("2.3.0", "cdr_example.json")
    kept = copy.deepcopy(original)
    parse_cdr(original)
    assert original == kept  # the caller's data is never mutated
