"""Local time, DST and the calendar part of tariff restrictions: one home for both pricers.

The reference pricer (:mod:`pricing.reference`) asks these questions one instant at a time; the
kernel's compiler (:mod:`pricing.compile`) asks the same ones to build its per (tariff, zone)
calendars. Both must get the same answers to the last millisecond, so the answers live here once:
IANA zones through ``zoneinfo`` (cached), UTC offset changes found by bisection to the second,
local clock/date/weekday of an instant, and whether an element's time / date / weekday
restrictions hold at a local time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from pricing.model import Restrictions, Tariff
from pricing.units import MS_PER_HOUR, MS_PER_MINUTE

MINUTES_PER_DAY = 1440


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def epoch_ms(dt: datetime) -> int:
    """An aware datetime as UTC epoch milliseconds (exact: no float on the way)."""
    delta = dt.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def offset_at(tz: ZoneInfo, instant_ms: int) -> timedelta | None:
    return datetime.fromtimestamp(instant_ms / 1000, tz).utcoffset()


@lru_cache(maxsize=8192)
def dst_transitions(time_zone: str, day: date) -> tuple[int, ...]:
    """UTC offset changes (epoch ms) between this local day's midnight and the next one."""
    tz = zone(time_zone)
    lo = epoch_ms(datetime(day.year, day.month, day.day, tzinfo=tz)) - 3 * MS_PER_HOUR
    hi = lo + 30 * MS_PER_HOUR
    if offset_at(tz, lo) == offset_at(tz, hi):
        return ()
    while hi - lo > 1000:  # transitions fall on whole seconds
        mid = (lo + hi) // 2 // 1000 * 1000
        if mid <= lo:
            mid = lo + 1000
        if offset_at(tz, mid) == offset_at(tz, lo):
            lo = mid
        else:
            hi = mid
    return (hi,)


def wall_instants(day: date, minute: int, tz: ZoneInfo) -> tuple[int, int]:
    """The UTC instants of local ``day`` + ``minute`` under both DST readings (fold 0 and 1; the
    same instant twice outside a fold or gap)."""
    naive = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)
    return epoch_ms(naive.replace(tzinfo=tz, fold=0)), epoch_ms(naive.replace(tzinfo=tz, fold=1))


@dataclass(frozen=True, slots=True)
class LocalTime:
    tod_ms: int  # local time of day
    day: date  # local date
    weekday: int  # ISO 1..7


def local_time(instant_ms: int, time_zone: str) -> LocalTime:
    dt = datetime.fromtimestamp(instant_ms // 1000, zone(time_zone))
    tod = ((dt.hour * 60 + dt.minute) * 60 + dt.second) * 1000 + instant_ms % 1000
    return LocalTime(tod, dt.date(), dt.isoweekday())


def local_date(instant_ms: int, time_zone: str) -> date:
    return datetime.fromtimestamp(instant_ms / 1000, zone(time_zone)).date()


def clock_minutes(tariff: Tariff) -> frozenset[int]:
    """Local clock times (minutes after midnight) at which some element may switch: where the
    reference cuts a period."""
    minutes: set[int] = set()
    for el in tariff.elements:
        r = el.restrictions
        if r.days or r.start_date or r.end_date:
            minutes.add(0)
        for m in (r.start_time_min, r.end_time_min):
            if m is not None:
                minutes.add(m % MINUTES_PER_DAY)
    return frozenset(minutes)


def state_minutes(tariff: Tariff) -> frozenset[int]:
    """Every local clock time where a time / day / date restriction can switch."""
    minutes: set[int] = set(clock_minutes(tariff))
    for el in tariff.elements:
        r = el.restrictions
        if r.has_time_of_day:
            minutes.add((r.start_time_min or 0) % MINUTES_PER_DAY)
            minutes.add((r.end_time_min if r.end_time_min is not None else MINUTES_PER_DAY) % MINUTES_PER_DAY)
    return frozenset(minutes)


def calendar_holds(r: Restrictions, local: LocalTime) -> bool:
    """The time / date / weekday restrictions of an element at a local time (AND; §2.3)."""
    if r.start_time_min is not None or r.end_time_min is not None:
        start = (r.start_time_min or 0) * MS_PER_MINUTE
        end = (r.end_time_min if r.end_time_min is not None else MINUTES_PER_DAY) * MS_PER_MINUTE
        if start < end:
            if not start <= local.tod_ms < end:
                return False
        elif start > end:  # wraps past midnight
            if not (local.tod_ms >= start or local.tod_ms < end):
                return False
        else:  # start == end and not 00:00-00:00 (that is stored as 0..1440): undefined, no match
            return False
    if r.start_date is not None and local.day < r.start_date:
        return False
    if r.end_date is not None and local.day >= r.end_date:
        return False
    return not (r.days and local.weekday not in r.days)
