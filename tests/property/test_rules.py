"""Each settlement rule's scalar form (record engine) and column form (columnar engine) agree.

The inputs are random; money is drawn as whole 1e-4 units, the only amounts the columnar engine
holds (reported totals with more decimals are rejected before a rule sees them).
"""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from settlement import rules

E4S = st.integers(min_value=-(10**12), max_value=10**12)
SMALL = st.integers(min_value=-300, max_value=300)  # near the tolerance, where the status changes
AMOUNTS = st.one_of(SMALL, E4S)
TOLERANCES = st.decimals(min_value=0, max_value=Decimal("0.05"), places=5, allow_nan=False)
# zones whose clock changes are not at midnight (see test_month_window)
ZONES = st.sampled_from(
    ["UTC", "Europe/Amsterdam", "Europe/London", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
)


def column(frame: dict, expr: pl.Expr) -> list:
    return pl.DataFrame(frame).select(expr.alias("out"))["out"].to_list()


@given(st.lists(AMOUNTS, min_size=1, max_size=30), TOLERANCES)
def test_status(worsts: list[int], tolerance: Decimal) -> None:
    got = column({"w": worsts}, rules.status_expr(pl.col("w"), rules.tolerance_e4(tolerance)))
    assert got == [rules.status_of(rules.d4(w), tolerance) for w in worsts]


@given(st.lists(st.tuples(st.none() | AMOUNTS, st.none() | AMOUNTS), min_size=1, max_size=30))
def test_worst_difference(pairs: list[tuple[int | None, int | None]]) -> None:
    frame = {"x": [x for x, _ in pairs], "i": [i for _, i in pairs]}
    frame = pl.DataFrame(frame, schema={"x": pl.Int64, "i": pl.Int64})
    got = frame.select(
        rules.worst_expr(pl.col("x"), pl.col("i")).alias("w"),
        rules.worst_is_excl_expr(pl.col("x"), pl.col("i")).alias("is_x"),
    ).rows()
    for (x, i), (w, is_x) in zip(pairs, got, strict=True):
        dx = None if x is None else rules.d4(x)
        di = None if i is None else rules.d4(i)
        want = rules.worst_difference(dx, di)
        assert (None if w is None else rules.d4(w)) == want
        if want is not None:  # which one was picked matters for the finding's words (a tie: excl.)
            assert is_x == (dx is not None and want is dx)


CODES = st.sets(
    st.sampled_from(
        [
            "CREDIT_WITHOUT_ORIGINAL",
            "CREDIT_AMOUNT_MISMATCH",
            "DUPLICATE_CDR",
            "PERIOD_STRADDLES_BOUNDARY",
            "ROUNDING",
            "OVERCHARGED",
            "UNDERCHARGED",
            "TOTALS_INCONSISTENT",
            "NOT_PRICED",
            "UNKNOWN_TARIFF",
        ]
    )
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(rules.STATUSES), CODES, st.sampled_from(["reported", "recomputed"]), st.booleans()
        ),
        min_size=1,
        max_size=20,
    )
)
def test_dispute_reason(rows: list[tuple[str, set[str], str, bool]]) -> None:
    frame = {
        "status": [r[0] for r in rows],
        "reasons": [",".join(sorted(r[1])) or None for r in rows],
        "basis": [r[2] for r in rows],
        "conflicting": [r[3] for r in rows],
    }
    expr = rules.dispute_reason_expr(
        pl.col("status"), pl.col("reasons"), pl.col("basis"), pl.col("conflicting")
    )
    got = pl.DataFrame(frame, schema_overrides={"reasons": pl.String}).select(expr.alias("r"))["r"].to_list()
    assert got == [rules.dispute_reason(*r) for r in rows]


@given(
    st.integers(min_value=2000, max_value=2037),
    st.integers(min_value=1, max_value=12),
    ZONES,
    st.lists(st.integers(min_value=-3 * 86_400_000, max_value=34 * 86_400_000), min_size=1, max_size=30),
)
def test_month_window(year: int, month_no: int, zone: str, offsets: list[int]) -> None:
    """Session ends around the month (offsets from its first UTC midnight, in ms). Zones with a clock
    change at local midnight (where 00:00 repeats or is skipped) are left out: there "the first
    instant of the day" and "the local date" part ways for the repeated hour."""
    month = f"{year}-{month_no:02d}"
    tz = ZoneInfo(zone)
    first, _ = rules.month_bounds(month)
    base = int(pl.Series([first]).cast(pl.Datetime("ms")).cast(pl.Int64)[0])
    ends = [base + o for o in offsets]
    got = column({"end": ends}, rules.in_month_expr(pl.col("end"), rules.month_window_ms(month, tz)))
    assert got == [rules.in_month(e, month, tz) for e in ends]


@given(
    st.integers(min_value=2000, max_value=2037),
    st.integers(min_value=1, max_value=12),
    ZONES,
    st.lists(
        st.tuples(st.integers(min_value=-40 * 86_400_000, max_value=70 * 86_400_000), st.booleans()),
        min_size=1,
        max_size=30,
    ),
)
def test_settles_in_with_late_cdrs(year: int, month_no: int, zone: str, ends: list[tuple[int, bool]]) -> None:
    """The month rule with late CDRs of closed months: a late CDR settles in the month it is given
    to, wherever its session ended; any other CDR by its session end, in both forms."""
    month = f"{year}-{month_no:02d}"
    tz = ZoneInfo(zone)
    first, _ = rules.month_bounds(month)
    base = int(pl.Series([first]).cast(pl.Datetime("ms")).cast(pl.Int64)[0])
    frame = {"end": [base + o for o, _ in ends], "late": [late for _, late in ends]}
    got = column(
        frame, rules.settles_in_expr(pl.col("end"), rules.month_window_ms(month, tz), pl.col("late"))
    )
    want = [rules.settles_in(base + o, month, tz, "1999-12" if late else None) for o, late in ends]
    assert got == want
    assert all(w for w, (_, late) in zip(want, ends, strict=True) if late)


@given(st.lists(AMOUNTS, min_size=1, max_size=30), st.sampled_from([0, 2, 3]))
def test_decimal_text(values: list[int], m: int) -> None:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.Int64})
    got = frame.select(rules.e4_text(pl.col("v")).alias("t"))["t"].to_list()
    assert got == [rules.e4(rules.d4(v)) for v in values]
    rounded = [v - v % 10 ** (4 - m) if v >= 0 else -((-v) - (-v) % 10 ** (4 - m)) for v in values]
    frame = pl.DataFrame({"v": rounded}, schema={"v": pl.Int64})
    got = frame.select(rules.minor_text(pl.col("v"), m).alias("t"))["t"].to_list()
    assert got == [str(rules.dm(v, m)) for v in rounded]


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=10))
def test_straddle_message(periods: list[int]) -> None:
    got = column({"p": periods}, rules.straddle_message_expr(pl.col("p")))
    assert got == [rules.straddle_message(p) for p in periods]


@given(st.lists(AMOUNTS, min_size=1, max_size=30), TOLERANCES)
def test_rounding_message(worsts: list[int], tolerance: Decimal) -> None:
    got = column({"w": worsts}, rules.rounding_message_expr(pl.col("w"), tolerance))
    assert got == [rules.rounding_message(rules.d4(w), tolerance) for w in worsts]


@given(
    st.lists(
        st.tuples(E4S, st.none() | SMALL, st.sampled_from(["EUR", "GBP", "huf"]), E4S, E4S, st.booleans()),
        min_size=1,
        max_size=20,
    ),
    TOLERANCES,
)
def test_charge_message(rows: list[tuple], tolerance: Decimal) -> None:
    worst, dx, cur, rep, ours, worst_is_x = (list(c) for c in zip(*rows, strict=True))
    frame = pl.DataFrame(
        {"w": worst, "dx": dx, "cur": cur, "rep": rep, "ours": ours, "wx": worst_is_x},
        schema={
            "w": pl.Int64,
            "dx": pl.Int64,
            "cur": pl.String,
            "rep": pl.Int64,
            "ours": pl.Int64,
            "wx": pl.Boolean,
        },
    )
    tol = rules.tolerance_e4(tolerance)
    use_x = rules.use_excl_expr(pl.col("dx"), tol)
    diff = pl.when(use_x).then(pl.col("dx")).otherwise(pl.col("w"))
    expr = rules.charge_message_expr(diff, pl.col("cur"), use_x | pl.col("wx"), pl.col("rep"), pl.col("ours"))
    got = frame.select(expr.alias("m"))["m"].to_list()
    want = []
    for w, x, c, r, o, wx in rows:
        excl = rules.use_excl(None if x is None else rules.d4(x), tolerance)
        d = rules.d4(x) if excl else rules.d4(w)
        want.append(rules.charge_message(d, c, excl or wx, rules.d4(r), rules.d4(o)))
    assert got == want


REFUSALS = st.none() | st.sampled_from(
    ["TARIFF_NOT_FOUND", "CURRENCY_MISMATCH", "NOT_PRICED", "TZ_UNRESOLVED"]
)


@given(st.lists(st.tuples(st.booleans(), st.none() | AMOUNTS, REFUSALS), min_size=1, max_size=30), TOLERANCES)
def test_line_status_and_its_code(rows: list[tuple], tolerance: Decimal) -> None:
    """A line's status (not priced, not comparable, or by its worst difference) and the code of
    its status finding."""
    frame = pl.DataFrame(
        {"p": [p for p, _, _ in rows], "w": [w for _, w, _ in rows], "r": [r for _, _, r in rows]},
        schema={"p": pl.Boolean, "w": pl.Int64, "r": pl.String},
    )
    status = rules.line_status_expr(pl.col("p"), pl.col("w"), rules.tolerance_e4(tolerance))
    got = frame.select(status.alias("s"))
    want_status = [rules.line_status(p, None if w is None else rules.d4(w), tolerance) for p, w, _ in rows]
    assert got["s"].to_list() == want_status
    # a refusal is there exactly when the CDR could not be priced
    refusal = [r if not p else None for (p, _, r) in rows]
    got = pl.DataFrame({"s": want_status, "r": refusal}, schema={"s": pl.String, "r": pl.String}).select(
        rules.status_code_expr(pl.col("s"), pl.col("r")).alias("c")
    )
    assert got["c"].to_list() == [rules.status_code(s, r) for s, r in zip(want_status, refusal, strict=True)]


@given(
    st.lists(
        st.tuples(
            st.none() | st.sampled_from([*rules.STATUSES[1:4], "NOT_COMPARABLE", "TARIFF_NOT_FOUND", "ZZZ"]),
            st.booleans(),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_reasons(rows: list[tuple[str | None, bool]]) -> None:
    """The codes of a flat CDR's line: its status finding and its straddling periods."""
    frame = pl.DataFrame(
        {"code": [c for c, _ in rows], "straddles": [b for _, b in rows]},
        schema={"code": pl.String, "straddles": pl.Boolean},
    )
    got = frame.select(rules.line_reasons_expr(pl.col("code"), pl.col("straddles")).alias("r"))["r"].to_list()
    want = [
        rules.reasons_text([*([c] if c else []), *(["PERIOD_STRADDLES_BOUNDARY"] if b else [])])
        for c, b in rows
    ]
    assert got == want
    assert want == [rules.line_reasons(c, b) for c, b in rows]


@given(
    st.lists(
        st.tuples(AMOUNTS | st.integers(-60, 60), AMOUNTS | st.integers(-60, 60)), min_size=1, max_size=30
    ),
    st.sampled_from(["EUR", "JPY", "BHD"]),
)
def test_line_texts_keep_the_sign_of_zero(pairs: list[tuple[int, int]], currency: str) -> None:
    """A line's rounded excl., VAT and incl. texts are ``str`` of the record engine's Decimals,
    whose zeros keep a sign (``-0.00`` for an amount of -0.0040)."""
    m = rules.minor_unit(currency)
    unit = 10 ** (4 - m)
    frame = pl.DataFrame(
        {"x": [x for x, _ in pairs], "i": [i for _, i in pairs]}, schema={"x": pl.Int64, "i": pl.Int64}
    )
    frame = frame.with_columns(
        rules.round_e4_expr(pl.col("x"), unit).alias("xr"), rules.round_e4_expr(pl.col("i"), unit).alias("ir")
    )
    neg_x, neg_vat, neg_i = rules.line_negatives_expr(pl.col("x"), pl.col("i"), pl.col("xr"), pl.col("ir"))
    got = frame.select(
        rules.minor_text(pl.col("xr"), m, neg_x).alias("x"),
        rules.minor_text(pl.col("ir") - pl.col("xr"), m, neg_vat).alias("v"),
        rules.minor_text(pl.col("ir"), m, neg_i).alias("i"),
    ).rows()
    for (x, i), row in zip(pairs, got, strict=True):
        excl, incl = rules.round_money(rules.d4(x), currency), rules.round_money(rules.d4(i), currency)
        assert row == (str(excl), str(incl - excl), str(incl))


@given(st.lists(AMOUNTS, min_size=1, max_size=30), st.sampled_from(["EUR", "JPY", "BHD", "GBP", "HUF"]))
def test_line_rounding(values: list[int], currency: str) -> None:
    """A line's amount rounded half-up to the currency's minor unit."""
    m = rules.minor_unit(currency)
    frame = pl.DataFrame({"v": values}, schema={"v": pl.Int64})
    got = frame.select(rules.round_e4_expr(pl.col("v"), 10 ** (4 - m)).alias("r"))["r"].to_list()
    assert [rules.dm(r, m) for r in got] == [rules.round_money(rules.d4(v), currency) for v in values]


@given(
    st.lists(st.integers(min_value=0, max_value=4_102_444_800_000), min_size=1, max_size=30),
    ZONES | st.sampled_from(["America/Santiago", "Asia/Beirut", "Pacific/Chatham"]),
)
def test_local_time_text(instants: list[int], zone: str) -> None:
    got = column({"ms": instants}, rules.local_iso_expr(pl.col("ms"), zone))
    assert got == [rules.local_iso(ms, ZoneInfo(zone)) for ms in instants]
