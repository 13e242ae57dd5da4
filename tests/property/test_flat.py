"""The flat Parquet path equals the object path: random flat records (nulls, empty and unknown
tariff ids, several tariff versions, CPOs and currencies, bad rows) read by
:func:`pricing.periods.from_flat` and priced by the kernel give the same rejects (code, message,
path) and the same rows as building each CDR and pricing it with the reference."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from pricing.compile import compile_tariffs
from pricing.errors import RecordRejected
from pricing.flat import arrow_schema, flat_cdr, split_flat
from pricing.kernel import price_table
from pricing.model import Dimension, Element, PriceComponent, Restrictions, Tariff, TaxIncluded
from pricing.periods import from_flat
from pricing.reference import price_session
from pricing.report import result_row, result_rows, straddling_lists
from pricing.sessions import TariffSet, build_session
from tests.property.strategies import policies

H = 3_600_000
T0 = int(datetime(2024, 3, 30, 20, 0).timestamp()) * 1000  # the night before a DST change
SWITCH = T0 + 30 * H  # a second version of T1 from here on


def comp(dim: str, price: str, vat: str | None = "21", step: int = 1) -> PriceComponent:
    return PriceComponent(Dimension(dim), Decimal(price), None if vat is None else Decimal(vat), step)


def tariff(tid: str, *elements: Element, **kw) -> Tariff:
    kw.setdefault("country_code", "NL")
    kw.setdefault("party_id", "CPO")
    return Tariff(tid, kw.pop("currency", "EUR"), tuple(elements), **kw)


PEAK = Element(
    (comp("ENERGY", "0.40"), comp("TIME", "1.20", step=300)),
    Restrictions(start_time_min=7 * 60, end_time_min=23 * 60),
)
TIERED = Element((comp("ENERGY", "0.30", step=500),), Restrictions(min_kwh_mwh=20_000_000))
BASE = Element((comp("FLAT", "0.50"), comp("ENERGY", "0.25"), comp("PARKING_TIME", "2.00", step=900)))
TARIFFS = TariffSet.of(
    [
        tariff("T1", PEAK, TIERED, BASE, end_ms=SWITCH, last_updated_ms=1),
        tariff("T1", BASE, start_ms=SWITCH, last_updated_ms=2),
        tariff("T2", TIERED, BASE, version="2.3.0", tax_included=TaxIncluded.YES, max_price=None),
        tariff("T3", PEAK, BASE, country_code="DE", party_id="OTH"),
        tariff("T4", BASE, country_code="GB", party_id="PLG", currency="GBP", type="REGULAR"),
        tariff("T5", BASE, type="AD_HOC_PAYMENT"),
        tariff("T6", TIERED, BASE, country_code=None, party_id=None),
    ]
)

opt = st.one_of  # readability
ms_volume = opt(st.none(), st.none(), st.integers(0, 3 * H), st.sampled_from([0, H]))
kwh_volume = opt(st.none(), st.integers(0, 40_000_000), st.sampled_from([0, 1000]))
DEFECTS = ("no_start", "no_currency", "negative", "back_in_time", "end_before_start", "after_end")


@st.composite
def record(draw, k: int) -> list[dict]:
    cpo = draw(st.sampled_from([("NL", "CPO"), ("NL", "CPO"), ("DE", "OTH"), ("GB", "PLG"), (None, None)]))
    start = T0 + draw(st.integers(0, 40 * H))
    defect = draw(st.sampled_from(DEFECTS)) if draw(st.integers(0, 5)) == 0 else None
    own = {"NL": ["T1", "T2", "T6"], "DE": ["T3", "T6"], "GB": ["T4"], None: ["T1", "T3", "T4", "T6"]}[cpo[0]]
    main = draw(st.sampled_from([*own, *own, None, "TX"]))
    common = {
        "cdr_id": f"C{k}",
        "ocpi_version": draw(st.sampled_from(["2.1.1", "2.2.1", "2.3.0"])),
        "country_code": cpo[0],
        "party_id": cpo[1],
        "emsp_country_code": None,
        "emsp_party_id": None,
        "cdr_start_ms": None if defect == "no_start" else start,
        "currency": None
        if defect == "no_currency"
        else draw(st.sampled_from(["EUR", "EUR", "EUR", "GBP", "eur"])),
        "time_zone": draw(st.sampled_from([None, None, "Europe/Amsterdam", "America/New_York"])),
        "location_country": draw(st.sampled_from([None, "NLD", "NLD", "US", "DEU", "GB"])),
        "reported_total_excl": None,
        "reported_total_incl": None,
    }
    rows = []
    t = start
    n = draw(st.integers(1, 4))
    bad_row = draw(st.integers(0, n - 1))
    for i in range(n):
        t += draw(st.sampled_from([0, 0, 15 * 60_000, H]))
        if defect == "back_in_time" and i == bad_row and i:
            t -= 60_000
        rows.append(
            {
                **common,
                "period_idx": i,
                "period_start_ms": t,
                "tariff_id": main if draw(st.integers(0, 3)) else draw(st.sampled_from([None, "", *own])),
                "energy_mwh": -1000 if defect == "negative" and i == bad_row else draw(kwh_volume),
                "time_ms": draw(ms_volume),
                "parking_ms": draw(ms_volume),
                "reservation_ms": draw(opt(st.none(), st.none(), st.none(), ms_volume)),
                "min_power_w": draw(opt(st.none(), st.integers(0, 50_000))),
                "max_power_w": draw(opt(st.none(), st.integers(0, 50_000))),
                "min_current_ma": None,
                "max_current_ma": draw(opt(st.none(), st.integers(0, 64_000))),
            }
        )
        t += draw(st.integers(0, 2 * H))
    end = t + draw(st.sampled_from([0, 60_000, H]))
    if defect == "end_before_start":
        end = start - 1
    elif defect == "after_end":
        end = rows[-1]["period_start_ms"] - 1
    for r in rows:
        r["cdr_end_ms"] = end
    return rows


@st.composite
def tables(draw) -> pa.Table:
    rows = [r for k in range(draw(st.integers(1, 6))) for r in draw(record(k))]
    schema = arrow_schema()
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)


@given(
    tables(),
    policies,
    st.sampled_from([None, "Europe/Amsterdam"]),
    st.sampled_from([True, True, True, False]),
)
def test_flat_kernel_equals_object_path(table, policy, tz, given_tariffs):
    store = TARIFFS if given_tariffs else None
    fr = split_flat(table)
    pt, rejects, rec_ok = from_flat(fr, store, policy, tz)
    ct = compile_tariffs(pt.tariffs, pt.zones, pt.group_ranges())
    res = price_table(pt, policy, ct, chunk=2)
    rows = dict(zip(rec_ok.tolist(), result_rows(res, pt, ct), strict=True))
    straddles = dict(zip(rec_ok.tolist(), straddling_lists(res, pt.n_sessions), strict=True))
    assert len(rows) + len(rejects) == fr.n_records
    for k in range(fr.n_records):
        if k in fr.rejects:
            assert rejects[k] == fr.rejects[k]
            continue
        cdr = flat_cdr(fr, k)
        try:
            session = build_session(cdr, store, policy, tz)
        except RecordRejected as exc:
            assert rejects[k] == (exc.code, exc.message, exc.path)
            continue
        assert k not in rejects, rejects[k]
        priced = price_session(session, policy)
        assert rows[k] == result_row(priced)
        assert straddles[k] == priced.straddling
        assert pt.meta["ocpi_version"][list(rec_ok).index(k)] == (cdr.version or None)
