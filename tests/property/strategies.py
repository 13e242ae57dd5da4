"""Hypothesis strategies for canonical tariffs and sessions that hit the pricing rules' edges:
DST change days (incl. Lord Howe's 30-minute shift), local midnight, wrap-around and empty
windows, thresholds crossed inside a period, reservations, multi-tariff sessions."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from pricing.model import (
    Dimension,
    Element,
    Period,
    Phase,
    PriceComponent,
    PriceLimit,
    ReservationKind,
    Restrictions,
    Session,
    Tariff,
    TaxIncluded,
)
from pricing.policy import (
    FlatFee,
    MissingMeasurement,
    PeriodBoundaries,
    PricingPolicy,
    StepRoundingScope,
    TimeStepRounding,
)

ZONES = ("Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "UTC")
# local dates where the zones change their offset (2024), and two ordinary days
SPECIAL_DAYS = (
    date(2024, 3, 31),
    date(2024, 10, 27),
    date(2024, 3, 10),
    date(2024, 11, 3),
    date(2024, 4, 7),
    date(2024, 10, 6),
    date(2024, 6, 3),
    date(2024, 12, 31),
)
CLOCK = (0, 60, 120, 150, 165, 180, 360, 420, 600, 1020, 1200, 1320, 1380, 1439)
KWH = 1_000_000


def decimal(places: int, hi: int) -> st.SearchStrategy[Decimal]:
    return st.integers(0, hi * 10**places).map(lambda n: Decimal(n).scaleb(-places))


prices = st.one_of(
    st.sampled_from([Decimal(x) for x in ("0", "0.25", "0.5", "1.20", "2.40", "0.333333", "6.00")]),
    decimal(6, 50),
    decimal(2, 20),
)
vats = st.one_of(
    st.none(),
    st.sampled_from([Decimal(x) for x in ("0", "10", "19", "20", "21", "7.7", "5.5", "19.99")]),
    decimal(2, 40),
)
steps = st.sampled_from([0, 1, 5, 60, 300, 500, 600, 900, 1000])
clock = st.one_of(st.sampled_from(CLOCK), st.integers(0, 1439))
days_st = st.frozensets(st.integers(1, 7), max_size=7)


@st.composite
def restrictions(draw) -> Restrictions:
    kw: dict = {}
    if draw(st.booleans()):
        start = draw(st.one_of(st.none(), clock))
        end = draw(st.one_of(st.none(), clock, st.just(1440), st.just(start if start is not None else 0)))
        kw["start_time_min"], kw["end_time_min"] = start, end
    if draw(st.integers(0, 4)) == 0:
        base = draw(st.sampled_from(SPECIAL_DAYS))
        kw["start_date"] = draw(st.one_of(st.none(), st.just(base), st.just(base + timedelta(days=1))))
        kw["end_date"] = draw(st.one_of(st.none(), st.just(base + timedelta(days=1)), st.just(base)))
    if draw(st.integers(0, 3)) == 0:
        kw["days"] = draw(days_st)
    if draw(st.integers(0, 2)) == 0:
        kw["min_kwh_mwh"] = draw(st.one_of(st.none(), st.integers(0, 40).map(lambda k: k * KWH // 2)))
        kw["max_kwh_mwh"] = draw(
            st.one_of(st.none(), st.integers(0, 60).map(lambda k: k * KWH // 2), st.integers(0, 30 * KWH))
        )
    if draw(st.integers(0, 2)) == 0:
        kw["min_duration_s"] = draw(
            st.one_of(st.none(), st.sampled_from([0, 900, 1800, 3600]), st.integers(0, 14_400))
        )
        kw["max_duration_s"] = draw(
            st.one_of(st.none(), st.sampled_from([1800, 3600, 7200]), st.integers(0, 14_400))
        )
    if draw(st.integers(0, 4)) == 0:
        kw["min_power_w"] = draw(st.one_of(st.none(), st.sampled_from([3_700, 11_000, 16_000])))
        kw["max_power_w"] = draw(st.one_of(st.none(), st.sampled_from([11_000, 16_000, 22_000, 50_000])))
    if draw(st.integers(0, 5)) == 0:
        kw["min_current_ma"] = draw(st.one_of(st.none(), st.sampled_from([16_000, 32_000])))
        kw["max_current_ma"] = draw(st.one_of(st.none(), st.sampled_from([16_000, 32_000, 63_000])))
    kw["reservation"] = draw(
        st.sampled_from([None, None, None, ReservationKind.RESERVATION, ReservationKind.RESERVATION_EXPIRES])
    )
    return Restrictions(**kw)


@st.composite
def elements(draw, vat_allowed: bool) -> Element:
    r = draw(restrictions())
    dims = (
        [Dimension.TIME, Dimension.FLAT]
        if r.reservation is not None
        else [Dimension.ENERGY, Dimension.TIME, Dimension.PARKING_TIME, Dimension.FLAT]
    )
    comps = draw(
        st.lists(
            st.builds(
                PriceComponent,
                st.sampled_from(dims),
                prices,
                vats if vat_allowed else st.none(),
                steps,
            ),
            min_size=1,
            max_size=4,
        )
    )
    return Element(tuple(comps), r)


limits = st.one_of(
    st.none(),
    st.builds(PriceLimit, st.one_of(st.none(), decimal(2, 30)), st.one_of(st.none(), decimal(4, 35))),
)


@st.composite
def tariffs(draw, tariff_id: str = "T") -> Tariff:
    version = draw(st.sampled_from(["2.1.1", "2.2.1", "2.3.0"]))
    if version == "2.1.1":
        tax = TaxIncluded.UNKNOWN
    elif version == "2.2.1":
        tax = TaxIncluded.NO
    else:
        tax = draw(st.sampled_from([TaxIncluded.YES, TaxIncluded.NO, TaxIncluded.NOT_APPLICABLE]))
    els = draw(st.lists(elements(version != "2.1.1"), min_size=1, max_size=6))
    return Tariff(
        tariff_id,
        "EUR",
        tuple(els),
        version=version,
        tax_included=tax,
        min_price=draw(limits) if version != "2.1.1" else None,
        max_price=draw(limits) if version != "2.1.1" else None,
    )


@st.composite
def session_starts(draw, tz: str) -> int:
    day = draw(st.one_of(st.sampled_from(SPECIAL_DAYS), st.dates(date(2024, 1, 1), date(2025, 12, 31))))
    minute = draw(
        st.one_of(
            st.sampled_from([0, 30, 90, 119, 120, 125, 135, 150, 1319, 1410, 1439]), st.integers(0, 1439)
        )
    )
    local = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)
    fold = draw(st.integers(0, 1))
    ms = int(local.replace(tzinfo=ZoneInfo(tz), fold=fold).timestamp()) * 1000
    return ms + draw(st.sampled_from([0, 0, 0, 1, 999, 30_000, 59_999]))


durations = st.one_of(
    st.sampled_from([0, 60_000, 15 * 60_000, 30 * 60_000, 3_600_000, 2 * 3_600_000]),
    st.integers(0, 5 * 3_600_000),
    st.integers(0, 600).map(lambda m: m * 60_000),
)
energies = st.one_of(st.sampled_from([0, 1, KWH, 10 * KWH, 20 * KWH]), st.integers(0, 60 * KWH))


@st.composite
def sessions(draw, pool: list[Tariff] | None = None, sid: str = "S") -> Session:
    tz = draw(st.sampled_from(ZONES))
    if pool:
        k = draw(st.integers(1, min(3, len(pool))))
        ts = tuple(draw(st.permutations(pool))[:k])
    else:
        ts = tuple(draw(st.lists(tariffs(), min_size=1, max_size=3)))
    start = draw(session_starts(tz))
    t = start
    periods: list[Period] = []
    reserve = draw(st.integers(0, 3)) == 0
    n_cdr = draw(st.integers(0 if reserve else 1, 5))
    src = 0
    if reserve:
        d = draw(durations)
        periods.append(
            Period(t, d, Phase.RESERVATION, 0, tariff_idx=draw(st.integers(0, len(ts) - 1)), source_index=0)
        )
        t += d
        src = 1 if draw(st.booleans()) else 0
    for _ in range(n_cdr):
        slot = draw(st.integers(0, len(ts) - 1))
        phases = draw(
            st.sampled_from(
                [
                    ["CHARGING"],
                    ["PARKING"],
                    ["CHARGING", "PARKING"],
                    ["CHARGING"],
                    ["RESERVATION", "CHARGING"],
                ]
            )
        )
        for ph in phases:
            d = draw(durations)
            power = {}
            if ph == "CHARGING" and draw(st.integers(0, 2)) == 0:
                power = {
                    "min_power_w": draw(st.one_of(st.none(), st.integers(0, 60_000))),
                    "max_power_w": draw(st.one_of(st.none(), st.integers(0, 60_000))),
                    "min_current_ma": draw(st.one_of(st.none(), st.integers(0, 80_000))),
                    "max_current_ma": draw(st.one_of(st.none(), st.integers(0, 80_000))),
                }
            e = draw(energies) if ph == "CHARGING" else draw(st.sampled_from([0, 0, 0, 5]))
            periods.append(Period(t, d, Phase(ph), e, tariff_idx=slot, source_index=src, **power))
            t += d
        t += draw(st.sampled_from([0, 0, 0, 60_000, 3_600_000]))
        src += 1
    phases_seen = {p.phase for p in periods}
    expired = Phase.RESERVATION in phases_seen and not (phases_seen - {Phase.RESERVATION})
    if draw(st.integers(0, 9)) == 0:
        expired = not expired
    s_start = start - draw(st.sampled_from([0, 0, 60_000, 1_800_000]))
    return Session(sid, "EUR", tz, ts, tuple(periods), s_start, reservation_expired=expired)


policies = st.builds(
    PricingPolicy,
    period_boundaries=st.sampled_from(list(PeriodBoundaries)),
    flat_fee=st.sampled_from(list(FlatFee)),
    missing_measurement=st.sampled_from(list(MissingMeasurement)),
    time_step_rounding=st.sampled_from(list(TimeStepRounding)),
    step_exact_multiple=st.booleans(),
    step_rounding_scope=st.sampled_from(list(StepRoundingScope)),
)


@st.composite
def batches(draw) -> list[Session]:
    """1-4 sessions; some share a tariff pool so one batch mixes tariffs, zones and slots."""
    pool = draw(st.lists(tariffs(), min_size=1, max_size=3)) if draw(st.booleans()) else None
    n = draw(st.integers(1, 4))
    return [draw(sessions(pool, f"S{i}")) for i in range(n)]
