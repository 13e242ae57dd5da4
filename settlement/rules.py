"""The settlement rules, each in one place, in its scalar and its column form side by side.

The record engine (:mod:`settlement.jobs`, :mod:`settlement.reconcile`) applies a rule to one CDR
with ``Decimal`` values; the columnar engine (:mod:`settlement.columnar`) applies the same rule to
a whole piece as a polars expression over integer columns in units of 1e-4 (``*_e4``). Both forms
live next to each other so a change to a rule is made once, and ``tests/property/test_rules.py``
checks with hypothesis that both forms give the same answer on random inputs.

Rules: line status, worst difference, dispute reason, month window (and late CDRs of closed
months) and local times, line rounding, 4-decimal and minor-unit text, finding wording and codes.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import polars as pl
from babel.numbers import get_currency_precision

from pricing.errors import InputError

E4 = 10_000  # units of 1e-4 per currency unit: OCPI's 4 decimals

# ---- line status --------------------------------------------------------------------------------

MATCH, ROUNDING, OVERCHARGED, UNDERCHARGED, NOT_PRICED = (
    "MATCH",
    "ROUNDING",
    "OVERCHARGED",
    "UNDERCHARGED",
    "NOT_PRICED",
)
STATUSES = (MATCH, ROUNDING, OVERCHARGED, UNDERCHARGED, NOT_PRICED)
AGREED = (MATCH, ROUNDING)  # the recomputed total agrees with the reported one (within tolerance)


def not_agreed(by_status: dict[str, int]) -> int:
    """How many CDRs of a ``{status: count}`` summary do not agree with what the CPO reported
    (``--fail-on findings``)."""
    return sum(n for status, n in by_status.items() if status not in AGREED)


def status_of(diff: Decimal, tolerance: Decimal) -> str:
    """MATCH when equal, ROUNDING within the tolerance, else OVER/UNDERCHARGED by the sign of the
    difference (reported − recomputed)."""
    if diff == 0:
        return MATCH
    if abs(diff) <= tolerance:
        return ROUNDING
    return OVERCHARGED if diff > 0 else UNDERCHARGED


def tolerance_e4(tolerance: Decimal) -> int:
    """The tolerance in 1e-4 units, rounded down: for a difference that is a whole number of 1e-4
    units, ``|d| <= tolerance`` exactly when ``|d_e4| <= tolerance_e4``."""
    return int((tolerance * E4).to_integral_value(rounding=ROUND_FLOOR))


def status_expr(worst_e4: pl.Expr, tol_e4: int) -> pl.Expr:
    """:func:`status_of` on a column of differences in 1e-4 units."""
    return (
        pl.when(worst_e4 == 0)
        .then(pl.lit(MATCH))
        .when(worst_e4.abs() <= tol_e4)
        .then(pl.lit(ROUNDING))
        .when(worst_e4 > 0)
        .then(pl.lit(OVERCHARGED))
        .otherwise(pl.lit(UNDERCHARGED))
    )


NOT_COMPARABLE = "NOT_COMPARABLE"
NOT_RECOMPUTED = "could not be recomputed: "  # the dispute reason of a line not priced, before its codes
NOT_COMPARABLE_MESSAGE = "neither the excl. nor the incl. VAT total can be compared"


def line_status(priced: bool, worst: Decimal | None, tolerance: Decimal) -> str:
    """The status of a line: NOT_PRICED when the CDR could not be recomputed, or was but neither
    total can be compared (``worst`` is None); else :func:`status_of` its worst difference."""
    if not priced or worst is None:
        return NOT_PRICED
    return status_of(worst, tolerance)


def line_status_expr(priced: pl.Expr, worst_e4: pl.Expr, tol_e4: int) -> pl.Expr:
    """:func:`line_status` on columns (``worst_e4`` null where nothing can be compared)."""
    return (
        pl.when(~priced | worst_e4.is_null())
        .then(pl.lit(NOT_PRICED))
        .otherwise(status_expr(worst_e4, tol_e4))
    )


def status_code(status: str, refusal: str | None) -> str | None:
    """The code of a line's own status finding: none for MATCH, the status itself for ROUNDING and
    OVER/UNDERCHARGED; for NOT_PRICED the pricing's refusal code (``refusal``: no tariff, tariff not
    found, currency mismatch, …) when the CDR could not be recomputed, else NOT_COMPARABLE."""
    if status == MATCH:
        return None
    if status == NOT_PRICED:
        return refusal or NOT_COMPARABLE
    return status


def status_code_expr(status: pl.Expr, refusal: pl.Expr) -> pl.Expr:
    """:func:`status_code` on columns (``refusal`` null where the CDR was recomputed)."""
    return (
        pl.when(status == MATCH)
        .then(pl.lit(None, pl.String))
        .when(status == NOT_PRICED)
        .then(refusal.fill_null(NOT_COMPARABLE))
        .otherwise(status)
    )


# ---- worst difference ---------------------------------------------------------------------------


def worst_difference(diff_excl: Decimal | None, diff_incl: Decimal | None) -> Decimal | None:
    """The larger of the two differences by size; excl. VAT on a tie (``max`` keeps the first);
    None when neither total can be compared."""
    diffs = [d for d in (diff_excl, diff_incl) if d is not None]
    return max(diffs, key=abs) if diffs else None


def worst_is_excl_expr(dx: pl.Expr, di: pl.Expr) -> pl.Expr:
    """True where :func:`worst_difference` picks the excl. VAT difference."""
    return dx.is_not_null() & (di.is_null() | (dx.abs() >= di.abs()))


def worst_expr(dx: pl.Expr, di: pl.Expr) -> pl.Expr:
    """:func:`worst_difference` on columns (null where neither is comparable)."""
    return pl.when(worst_is_excl_expr(dx, di)).then(dx).otherwise(di)


# ---- dispute reason -----------------------------------------------------------------------------

# the words of a DUPLICATE_CDR dispute: the same CDR id sent again with other content
CONFLICTING_DUPLICATE = "conflicting re-send (same CDR id, other content)"
DISPUTE_CODES = {"CREDIT_WITHOUT_ORIGINAL", "CREDIT_AMOUNT_MISMATCH", "CREDIT_DUPLICATE", "DUPLICATE_CDR"}
# the words a statement page shows for a dispute's codes (translated by the catalogs; the CSV and
# JSON keep the codes)
DISPUTE_WORDS = {
    "CREDIT_WITHOUT_ORIGINAL": "credit of a CDR that is neither in this month nor in the settled history",
    "CREDIT_AMOUNT_MISMATCH": "credit that does not net its original",
    "CREDIT_DUPLICATE": "second credit of a CDR already credited",
    "DUPLICATE_CDR": CONFLICTING_DUPLICATE,
}
# disputes a contract that includes disputed lines still never pays: a second credit of an original
# already credited (paying it would credit the original twice)
NEVER_PAID = frozenset({"CREDIT_DUPLICATE"})


def never_paid(codes: Iterable[str]) -> bool:
    """A line with one of these finding codes is excluded whatever the contract says (``NEVER_PAID``)."""
    return not NEVER_PAID.isdisjoint(codes)


def dispute_reason(status: str, codes: Iterable[str], basis: str, conflicting_duplicate: bool) -> str:
    """Why a statement line is disputed ("" when it is not). ``codes``: the line's finding codes;
    ``conflicting_duplicate``: a DUPLICATE_CDR finding says the copy differs (an identical copy is
    no dispute). What the record is (a conflicting re-send, a credit problem) is named before
    what it costs (over/under-charged beyond tolerance, which a changed re-send usually also is)."""
    codes = set(codes)
    if status == NOT_PRICED:
        return NOT_RECOMPUTED + reasons_text(codes)
    bad = sorted(codes & DISPUTE_CODES)
    if "DUPLICATE_CDR" in bad and not conflicting_duplicate:
        bad.remove("DUPLICATE_CDR")
    if bad:  # what the record is (a conflicting re-send, a credit problem) before what it costs
        return ",".join(bad).replace("DUPLICATE_CDR", CONFLICTING_DUPLICATE)
    if basis == "reported" and status in (OVERCHARGED, UNDERCHARGED):
        return status.lower() + " beyond tolerance"
    return ""


def dispute_reason_expr(status: pl.Expr, reasons: pl.Expr, basis: pl.Expr, conflicting: pl.Expr) -> pl.Expr:
    """:func:`dispute_reason` on columns; ``reasons`` is the comma-joined sorted codes (null or ""
    for none), as in ``reconciliation.ndjson``."""
    codes = (
        reasons.fill_null("").str.split(",").list.eval(pl.element().filter(pl.element() != "")).list.unique()
    )

    def only(allowed: set[str]) -> pl.Expr:
        return codes.list.eval(pl.element().filter(pl.element().is_in(sorted(allowed)))).list.sort()

    bad = pl.when(conflicting).then(only(DISPUTE_CODES)).otherwise(only(DISPUTE_CODES - {"DUPLICATE_CDR"}))
    return (
        pl.when(status == NOT_PRICED)
        .then(pl.lit(NOT_RECOMPUTED) + codes.list.sort().list.join(","))
        .when(bad.list.len() > 0)
        .then(bad.list.join(",").str.replace("DUPLICATE_CDR", CONFLICTING_DUPLICATE, literal=True))
        .when((basis == "reported") & status.is_in([OVERCHARGED, UNDERCHARGED]))
        .then(status.str.to_lowercase() + pl.lit(" beyond tolerance"))
        .otherwise(pl.lit(""))
    )


# ---- month window -------------------------------------------------------------------------------


MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"  # the API's request models validate with it too


def parse_month(month: str) -> tuple[int, int]:
    """``YYYY-MM`` → (year, month): the one reader of a month (command line, API and store agree)."""
    if not re.fullmatch(MONTH_PATTERN, month) or month.startswith("0000"):  # no year 0
        raise InputError(
            f"month {month!r} is not YYYY-MM. Hint: a four-digit year and a two-digit month, e.g. 2026-10"
        )
    return int(month[:4]), int(month[5:])


def month_bounds(month: str) -> tuple[date, date]:
    """First and last day of ``YYYY-MM`` (an InputError, a ValueError, when it is not a month)."""
    y, m = parse_month(month)
    return date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1])


def local_time(ms: int, zone: ZoneInfo) -> datetime:
    """An instant (whole seconds) in the statement zone; in UTC where its local time is past
    9999-12-31, the last day Python's dates hold (an end of 9999-12-31T23:59:59Z east of UTC: a
    CDR of no month one can settle, shown as it was sent rather than a crash)."""
    try:
        return datetime.fromtimestamp(ms // 1000, zone)
    except (OverflowError, ValueError, OSError):
        return datetime.fromtimestamp(ms // 1000, UTC)


def local_end_date(end_ms: int, zone: ZoneInfo) -> date:
    """The local date of a session end (whole seconds) in the statement zone."""
    return local_time(end_ms, zone).date()


def in_month(end_ms: int, month: str, zone: ZoneInfo) -> bool:
    """A CDR belongs to the month its session ended in, in the statement zone."""
    first, last = month_bounds(month)
    return first <= local_end_date(end_ms, zone) <= last


def month_window_ms(month: str, zone: ZoneInfo) -> tuple[int, int]:
    """[first instant, first instant of the next month) of the month in the zone, epoch ms."""
    first, last = month_bounds(month)
    lo = datetime(first.year, first.month, first.day, tzinfo=zone)
    nxt = last + timedelta(days=1)
    hi = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)
    return int(lo.timestamp()) * 1000, int(hi.timestamp()) * 1000


def in_month_expr(end_ms: pl.Expr, window: tuple[int, int]) -> pl.Expr:
    """:func:`in_month` on a column of session ends (epoch ms), with the month's
    :func:`month_window_ms`."""
    lo, hi = window
    end_s = (end_ms // 1000) * 1000
    return (end_s >= lo) & (end_s < hi)


LATE_CDR = "LATE_CDR"


def settles_in(end_ms: int, month: str, zone: ZoneInfo, late_of: str | None) -> bool:
    """The month rule with closed months: a CDR settles in the month its session ended in, in the
    statement zone, unless it is a late CDR (``late_of``: the closed month its session ended in,
    None for every other CDR), which settles in the month it is given to (the next open month) —
    whatever its session end."""
    return late_of is not None or in_month(end_ms, month, zone)


def settles_in_expr(end_ms: pl.Expr, window: tuple[int, int], late: pl.Expr) -> pl.Expr:
    """:func:`settles_in` on columns (``late``: true where the CDR is a late CDR of this run)."""
    return late | in_month_expr(end_ms, window)


@dataclass(frozen=True)
class PaidMonths:
    """Months already settled by earlier runs given as history (file mode, ``--history``): month →
    (its window in this run's statement zone, epoch ms [from, to); the CDR ids that run read).

    The file-mode late rule, the store's in other words: a CDR (credit or not) whose session ended
    in such a month and that its run did not read is a late CDR of that month — it settles in this
    month as a late line (LATE_CDR), a credit netting its original from the history. A CDR that run
    read (a re-send) stays out of month."""

    months: dict[str, tuple[tuple[int, int], frozenset[str]]]

    def late_of(self, cdr_id: str, end_ms: int) -> str | None:
        """The paid month ``cdr_id`` is a late CDR of, or None."""
        for month, ((lo, hi), read) in sorted(self.months.items()):
            if lo <= end_ms < hi and cdr_id not in read:
                return month
        return None

    def late_expr(self, cdr_id: pl.Expr, end_ms: pl.Expr) -> pl.Expr:
        """:meth:`late_of` is not None, on columns."""
        out = pl.lit(False)
        for _, ((lo, hi), read) in sorted(self.months.items()):
            ids = pl.Series(sorted(read), dtype=pl.String).implode()
            out = out | ((end_ms >= lo) & (end_ms < hi) & ~cdr_id.cast(pl.String).is_in(ids))
        return out


def late_message(closed_month: str, month: str) -> str:
    """The finding of a late CDR: which closed month it belonged to and where it is settled."""
    return (
        f"late CDR: its session ended in {closed_month}, a month already closed (its statements "
        f"are final); settled on the {month} statement as a late line"
    )


ALREADY_SETTLED = "ALREADY_SETTLED"


def already_settled_message(closed_month: str, month: str) -> str:
    """The finding of a stored CDR that a closed month's final statements carry, read again by a
    run of another month (its session ended in both months' windows: their statement zones differ):
    excluded, never settled twice."""
    return (
        f"already settled: this CDR is on the final statement of {closed_month} (a closed month); "
        f"excluded from {month}, never settled twice"
    )


def local_iso(ms: int, zone: ZoneInfo) -> str:
    """Local date-time text (whole seconds) of an instant in the statement zone, with its UTC offset
    (``2026-10-25T02:30:00+02:00``): a time of the DST fold is unambiguous and a reader in another
    zone knows what it means."""
    return local_time(ms, zone).isoformat(timespec="seconds")


def local_iso_expr(ms: pl.Expr, zone: str) -> pl.Expr:
    """:func:`local_iso` of a column of epoch ms."""
    return (
        pl.from_epoch(ms // 1000, time_unit="s")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(zone)
        .dt.strftime("%Y-%m-%dT%H:%M:%S%:z")
    )


# ---- line rounding ------------------------------------------------------------------------------


def minor_unit(currency: str) -> int:
    """Decimals of the currency's minor unit (babel: EUR 2, JPY 0, BHD 3)."""
    return int(get_currency_precision(currency))


def round_money(value: Decimal, currency: str) -> Decimal:
    """Half-up (away from zero) to the currency's minor unit."""
    return round_minor(value, minor_unit(currency))


def round_minor(value: Decimal, m: int) -> Decimal:
    """Half-up (away from zero) to ``m`` decimals."""
    return value.quantize(Decimal(1).scaleb(-m), rounding=ROUND_HALF_UP)


def round_e4_expr(expr: pl.Expr, unit: pl.Expr | int) -> pl.Expr:
    """:func:`round_minor` on a column of 1e-4 integers: half-up to a multiple of ``unit``
    (``10 ** (4 - m)``), still in 1e-4 units."""
    q = (expr.abs() + unit // 2) // unit * unit
    return pl.when(expr < 0).then(-q).otherwise(q)


# ---- 4-decimal and minor-unit text --------------------------------------------------------------


def e4(value: Decimal | None) -> str | None:
    """OCPI 4-decimal text of an amount (None stays None)."""
    return None if value is None else f"{value:.4f}"


def d4(v: int) -> Decimal:
    """A 1e-4 integer as a Decimal with 4 decimals."""
    return Decimal(int(v)).scaleb(-4)


def dm(v: int, m: int) -> Decimal:
    """A 1e-4 integer rounded to m decimals, as a Decimal with exactly m decimals."""
    return Decimal(int(v)).scaleb(-4).quantize(Decimal(1).scaleb(-m))


def e4_text(expr: pl.Expr) -> pl.Expr:
    """:func:`e4` of a column of 1e-4 integers (null stays null)."""
    a = expr.abs()
    sign = pl.when(expr < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    return sign + (a // E4).cast(pl.String) + "." + (a % E4).cast(pl.String).str.zfill(4)


def minor_text(expr: pl.Expr, m: int, negative: pl.Expr | None = None) -> pl.Expr:
    """``str(dm(v, m))`` of a column of 1e-4 integers already rounded to ``m`` decimals.

    ``negative``: where the Decimal the record engine holds is negative, for the sign of a zero —
    ``round_minor(Decimal("-0.0040"), 2)`` is ``-0.00`` and is written so (see
    :func:`line_negatives_expr`); by default the sign of the value."""
    a = expr.abs()
    neg = expr < 0 if negative is None else negative
    sign = pl.when(neg).then(pl.lit("-")).otherwise(pl.lit(""))
    whole = sign + (a // E4).cast(pl.String)
    if m == 0:
        return whole
    return whole + "." + ((a % E4) // 10 ** (4 - m)).cast(pl.String).str.zfill(m)


def line_negatives_expr(
    amt_excl: pl.Expr, amt_incl: pl.Expr, excl_r: pl.Expr, incl_r: pl.Expr
) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Where a line's rounded excl., VAT and incl. amounts are negative Decimals in the record
    engine (``round_minor`` keeps the sign of a value that rounds to zero; ``incl − excl`` of two
    zeros is ``-0`` only for ``-0 − +0``): the ``negative`` of :func:`minor_text`."""
    neg_x, neg_i = amt_excl < 0, amt_incl < 0
    vat = incl_r - excl_r
    neg_vat = (vat < 0) | ((vat == 0) & (incl_r == 0) & neg_i & ~neg_x)
    return neg_x, neg_vat, neg_i


def signed_e4_text(expr: pl.Expr) -> pl.Expr:
    """``f"{d:+.4f}"`` of a column of 1e-4 integers."""
    return pl.when(expr < 0).then(pl.lit("-")).otherwise(pl.lit("+")) + e4_text(expr.abs())


# ---- finding wording ----------------------------------------------------------------------------

STRADDLE_MESSAGE = (
    "charging period {} straddles a tariff restriction boundary (a price change inside the period); it "
    "was priced by its state at its start. The CPO must start a new period at every price change"
)


def straddle_message(period: int) -> str:
    """PERIOD_STRADDLES_BOUNDARY: a charging period with a price change inside it."""
    return STRADDLE_MESSAGE.format(period)


def straddle_message_expr(period: pl.Expr) -> pl.Expr:
    head, tail = STRADDLE_MESSAGE.split("{}")
    return pl.lit(head) + period.cast(pl.String) + pl.lit(tail)


def rounding_message(worst: Decimal, tolerance: Decimal) -> str:
    """ROUNDING: reported and recomputed totals differ within the tolerance."""
    return f"reported and recomputed totals differ by {worst:+.4f} (within tolerance {tolerance})"


def rounding_message_expr(worst_e4: pl.Expr, tolerance: Decimal) -> pl.Expr:
    return (
        pl.lit("reported and recomputed totals differ by ")
        + signed_e4_text(worst_e4)
        + pl.lit(f" (within tolerance {tolerance})")
    )


def use_excl(diff_excl: Decimal | None, tolerance: Decimal) -> bool:
    """An over/under-charge is said in excl. VAT terms when that differs beyond the tolerance (it is
    what the tariff prices)."""
    return diff_excl is not None and abs(diff_excl) > tolerance


def use_excl_expr(dx_e4: pl.Expr, tol_e4: int) -> pl.Expr:
    return dx_e4.is_not_null() & (dx_e4.abs() > tol_e4)


def charge_message(diff: Decimal, currency: str, excl: bool, reported: Decimal, ours: Decimal) -> str:
    """OVERCHARGED / UNDERCHARGED on the total: ``diff`` = reported − recomputed, in excl. VAT terms
    when ``excl``; ``reported`` and ``ours`` are the two totals compared (4-decimal amounts)."""
    verb = "more" if diff > 0 else "less"
    which = "excl. VAT" if excl else "incl. VAT"
    return (
        f"the CPO billed {abs(diff):.4f} {currency} {verb} than the tariff gives ({which}: "
        f"reported {reported}, recomputed {ours:.4f})"
    )


def charge_message_expr(
    diff_e4: pl.Expr,
    currency: pl.Expr,
    excl: pl.Expr,
    reported_e4: pl.Expr,
    ours_e4: pl.Expr,
    reported_text: pl.Expr | None = None,
) -> pl.Expr:
    """:func:`charge_message` on 1e-4 integer columns (the reported totals have 4 decimals);
    ``reported_text``, where not null, is the reported total as the CDR wrote it."""
    rep = e4_text(reported_e4) if reported_text is None else reported_text.fill_null(e4_text(reported_e4))
    return (
        pl.lit("the CPO billed ")
        + e4_text(diff_e4.abs())
        + " "
        + currency
        + pl.when(diff_e4 > 0).then(pl.lit(" more")).otherwise(pl.lit(" less"))
        + " than the tariff gives ("
        + pl.when(excl).then(pl.lit("excl. VAT")).otherwise(pl.lit("incl. VAT"))
        + ": reported "
        + rep
        + ", recomputed "
        + e4_text(ours_e4)
        + ")"
    )


def reasons_text(codes: Iterable[str]) -> str:
    """A line's finding codes as one text: sorted, distinct, comma-joined (``reasons``)."""
    return ",".join(sorted(set(codes)))


STRADDLE_CODE = "PERIOD_STRADDLES_BOUNDARY"


def line_reasons(code: str | None, straddles: bool) -> str:
    """The codes of a flat CDR's line (``ReconLine.codes``, comma-joined): its status finding's
    ``code`` (:func:`status_code`) and PERIOD_STRADDLES_BOUNDARY when a period straddles."""
    return reasons_text([*([code] if code else []), *([STRADDLE_CODE] if straddles else [])])


def line_reasons_expr(code: pl.Expr, straddles: pl.Expr) -> pl.Expr:
    """:func:`line_reasons` on columns (``code`` null for none)."""
    both = (
        pl.when(code < STRADDLE_CODE)
        .then(code + pl.lit("," + STRADDLE_CODE))
        .when(code == STRADDLE_CODE)
        .then(code)
        .otherwise(pl.lit(STRADDLE_CODE + ",") + code)
    )
    return (
        pl.when(code.is_null())
        .then(pl.when(straddles).then(pl.lit(STRADDLE_CODE)).otherwise(pl.lit("")))
        .when(straddles)
        .then(both)
        .otherwise(code)
    )
