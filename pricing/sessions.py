"""From a canonical CDR to a priceable :class:`~pricing.model.Session`.

Three decisions happen here, each with a reject code when it cannot be made:

* which tariff prices the CDR (``TARIFF_NOT_FOUND``, ``TARIFF_INVALID``, ``TARIFF_AMBIGUOUS``,
  ``TARIFF_NOT_VALID_AT_START``, ``CURRENCY_MISMATCH``);
* the local time zone (``TZ_UNRESOLVED``);
* how charging periods become phases (reservation / charging / parking) and durations
  (``policy.time_source``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from pricing import errors as E
from pricing.errors import RecordRejected, TimeZoneError
from pricing.model import Cdr, CdrPeriod, Period, Phase, Session, Tariff
from pricing.policy import PricingPolicy, TimeSource
from pricing.timezones import resolve_time_zone

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class TariffSet:
    """Tariffs by id, each id possibly with several versions (validity windows)."""

    by_id: dict[str, list[Tariff]] = field(default_factory=lambda: defaultdict(list))
    # ids of the tariffs given that could not be read, with their own error: a CDR naming one is
    # rejected as TARIFF_INVALID with that error, not as TARIFF_NOT_FOUND
    invalid: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, tariffs: Iterable[Tariff]) -> TariffSet:
        ts = cls()
        for t in tariffs:
            ts.by_id[t.id].append(t)
        return ts

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_id.values())

    def all(self) -> list[Tariff]:
        return [t for ts in self.by_id.values() for t in ts]

    def lookup(self, tariff_id: str, cdr: Cdr) -> list[Tariff]:
        """Tariffs with this id; of the CDR's CPO where both sides say who they belong to."""
        found = self.by_id.get(tariff_id, [])
        if cdr.country_code and cdr.party_id:
            same_party = [
                t
                for t in found
                if t.country_code is None
                or (
                    t.country_code.upper() == cdr.country_code.upper()
                    and (t.party_id or "").upper() == cdr.party_id.upper()
                )
            ]
            return same_party
        return list(found)


def choose_version(candidates: list[Tariff], tariff_id: str, start_ms: int) -> Tariff:
    if not candidates:
        raise RecordRejected(
            E.TARIFF_NOT_FOUND,
            f"tariff {tariff_id!r} is not among the tariffs given. "
            "Hint: pass the CPO's tariffs with --tariffs, or embed them in the CDR's 'tariffs'",
        )
    valid = [t for t in candidates if t.valid_at(start_ms)]
    if not valid:
        raise RecordRejected(
            E.TARIFF_NOT_VALID_AT_START,
            f"tariff {tariff_id!r} exists but none of its versions is valid at the session start "
            "(start_date_time/end_date_time). Hint: supply the tariff version that was in force "
            "when the session started",
        )
    # several valid versions of one id (a store keeps every version a CPO sent): the one in force at
    # the session start is the newest published by then; a session before every publication takes
    # the first version (the nearest to what was in force). Deterministic either way.
    published = [t for t in valid if (t.last_updated_ms or 0) <= start_ms]
    if published:
        return max(published, key=lambda t: (t.last_updated_ms or 0, t.start_ms or 0))
    return min(valid, key=lambda t: (t.last_updated_ms or 0, t.start_ms or 0))


def _candidates(store: TariffSet, tariff_id: str, cdr: Cdr) -> list[Tariff]:
    found = store.lookup(tariff_id, cdr)
    if not found and tariff_id in store.invalid:
        raise RecordRejected(
            E.TARIFF_INVALID,
            f"tariff {tariff_id!r} was given but could not be read: {store.invalid[tariff_id]}",
        )
    return found


def connector_tariff(ids: Sequence[str], known: Callable[[str], bool]) -> str:
    """The tariff an OCPI 2.1.1 CDR names through its connectors (``location.evses[].connectors[]
    .tariff_id``, distinct, in document order): the first that is ``known`` (among the tariffs
    given), else the first named: it is then looked up like any named tariff and the CDR rejected
    (``TARIFF_NOT_FOUND``, or ``TARIFF_INVALID`` for a tariff given that could not be read),
    never priced with some other tariff given (another CPO's, say)."""
    return next((i for i in ids if known(i)), ids[0])


def select_tariffs(cdr: Cdr, given: TariffSet | None) -> tuple[list[Tariff], list[int]]:
    """The tariffs of a CDR (primary first) and, per CDR period, the index of its tariff.

    Its periods' ``tariff_id``s; where they name none, with tariffs given, the tariff its
    connectors name (:func:`connector_tariff`); with none given, the CDR's own (embedded) tariffs,
    of which a connector's tariff_id picks one if there; else the only one that fits
    (:func:`implicit_tariff`)."""
    is_given = given is not None and bool(len(given) or given.invalid)
    store = given if given is not None and is_given else TariffSet.of(cdr.tariffs)
    period_ids = [p.tariff_id for p in cdr.periods]
    wanted = list(dict.fromkeys(i for i in period_ids if i))
    if not wanted and cdr.connector_tariff_ids:
        if is_given:
            wanted = [connector_tariff(cdr.connector_tariff_ids, lambda i: bool(store.lookup(i, cdr)))]
        else:  # the CDR's own tariffs: the one it lists applies even if its connector now names another
            wanted = [i for i in cdr.connector_tariff_ids if store.lookup(i, cdr)][:1]
    if wanted:
        tariffs = [choose_version(_candidates(store, i, cdr), i, cdr.start_ms) for i in wanted]
    else:
        tariffs = [implicit_tariff(cdr, store)]
    for t in tariffs:
        if t.currency.upper() != cdr.currency.upper():
            raise RecordRejected(
                E.CURRENCY_MISMATCH,
                f"CDR currency {cdr.currency} differs from tariff {t.id!r} currency {t.currency}. "
                "Hint: a CDR is priced in its tariff's currency; check the tariff reference",
            )
    index = {t.id: k for k, t in enumerate(tariffs)}
    return tariffs, [index.get(i, 0) if i else 0 for i in period_ids]


def implicit_tariff(cdr: Cdr, store: TariffSet) -> Tariff:
    """No period names a tariff: take the only one that fits (validity, regular type)."""
    pool = [
        t
        for t in store.all()
        if not (cdr.country_code and t.country_code)
        or (t.country_code.upper(), (t.party_id or "").upper())
        == (cdr.country_code.upper(), (cdr.party_id or "").upper())
    ]
    if not pool:
        raise RecordRejected(
            E.TARIFF_NOT_FOUND,
            "the CDR names no tariff and no tariff of its CPO was given. "
            "Hint: embed the tariff in the CDR, set charging_periods[].tariff_id, or pass --tariffs",
        )
    if len(pool) == 1:
        return choose_version(pool, pool[0].id, cdr.start_ms)
    valid = [t for t in pool if t.valid_at(cdr.start_ms)]
    regular = [t for t in valid if t.type in (None, "REGULAR")]
    if len(regular) == 1:
        return regular[0]
    if not valid:
        raise RecordRejected(
            E.TARIFF_NOT_VALID_AT_START,
            "none of the CPO's tariffs is valid at the session start. "
            "Hint: supply the tariff version in force when the session started",
        )
    raise RecordRejected(
        E.TARIFF_AMBIGUOUS,
        f"the CDR names no tariff and {len(regular) or len(valid)} tariffs of its CPO could apply "
        f"({', '.join(sorted(t.id for t in (regular or valid)))}). "
        "Hint: set charging_periods[].tariff_id or pass only the right tariff",
    )


class _ScalarOps:
    """The few operations of :func:`phase_durations` on Python ints and bools."""

    @staticmethod
    def where(cond: Any, a: Any, b: Any) -> Any:
        return a if cond else b

    maximum = staticmethod(max)
    minimum = staticmethod(min)

    @staticmethod
    def both(a: Any, b: Any) -> Any:
        return a and b

    @staticmethod
    def not_(a: Any) -> Any:
        return not a


class _ArrayOps:
    """The same operations element-wise on numpy arrays (:func:`pricing.periods.from_flat`)."""

    where = staticmethod(np.where)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    both = staticmethod(np.logical_and)
    not_ = staticmethod(np.logical_not)


SCALAR_OPS = _ScalarOps()
ARRAY_OPS = _ArrayOps()


def phase_durations(
    ops: Any,
    time_source: TimeSource,
    span: Any,
    energy: Any,
    e_has: Any,
    t_v: Any,
    t_has: Any,
    p_v: Any,
    p_has: Any,
    r_v: Any,
    r_has: Any,
) -> tuple[Any, Any, Any]:
    """(reservation, charging, parking) ms of CDR periods by ``policy.time_source``: the one
    statement of the rule, for one period (``SCALAR_OPS``, Python ints) or many at once
    (``ARRAY_OPS``, numpy arrays). ``*_has``: the CDR reports that volume; ``energy``: the
    ENERGY volume or 0; ``span``: from the period start to the next period (or the CDR end).

    ``dimension_volumes``: durations are the RESERVATION_TIME, TIME and PARKING_TIME volumes,
    laid out in that order from the period start. A period with no time volume lasts until the
    next period (charging if it reports ENERGY, else parking); one with ENERGY but no TIME charges
    for what the other volumes leave of the span. ``timestamps``: the period's span, all
    reservation if it reports RESERVATION_TIME, else shared between charging (at most the TIME
    volume) and parking when it reports PARKING_TIME, else all charging.
    """
    where, both, not_ = ops.where, ops.both, ops.not_
    if time_source is TimeSource.DIMENSION_VOLUMES:
        res = where(r_has, r_v, 0)
        park = where(p_has, p_v, 0)
        none = both(both(not_(t_has), not_(p_has)), not_(r_has))
        chg = where(t_has, t_v, 0)
        chg = where(both(none, e_has), span, chg)
        park = where(both(none, not_(e_has)), span, park)
        fill = both(both(not_(none), not_(t_has)), energy > 0)
        chg = where(fill, ops.maximum(0, span - res - park), chg)
        return res, chg, park
    res = where(r_has, span, 0)
    rest = span - res
    only_park = both(both(p_has, not_(t_has)), energy == 0)
    chg = where(p_has, ops.minimum(where(t_has, t_v, 0), rest), rest)
    chg = where(only_park, 0, chg)
    park = where(p_has, rest - chg, 0)
    return res, chg, park


def split_period(
    cp: CdrPeriod, span_ms: int, tariff_idx: int, source_index: int, policy: PricingPolicy
) -> list[Period]:
    """One CDR charging period → one period per phase (reservation, charging, parking), with the
    durations of :func:`phase_durations`."""
    energy = cp.energy_mwh or 0
    power = {
        "min_power_w": cp.min_power_w,
        "max_power_w": cp.max_power_w,
        "min_current_ma": cp.min_current_ma,
        "max_current_ma": cp.max_current_ma,
    }
    res, chg, park = phase_durations(
        SCALAR_OPS,
        policy.time_source,
        span_ms,
        energy,
        cp.energy_mwh is not None,
        cp.time_ms,
        cp.time_ms is not None,
        cp.parking_ms,
        cp.parking_ms is not None,
        cp.reservation_ms,
        cp.reservation_ms is not None,
    )
    parts: list[Period] = []
    t = cp.start_ms
    if res > 0:
        parts.append(Period(t, res, Phase.RESERVATION, 0, tariff_idx=tariff_idx, source_index=source_index))
        t += res
    if chg > 0 or energy > 0:
        parts.append(
            Period(t, chg, Phase.CHARGING, energy, **power, tariff_idx=tariff_idx, source_index=source_index)
        )
        t += chg
    if park > 0:
        parts.append(Period(t, park, Phase.PARKING, 0, tariff_idx=tariff_idx, source_index=source_index))
    return parts


# ---- the instants a session may reach ------------------------------------------------------------
# Pricing turns instants into local dates and times (a day either side included), which Python's
# datetime holds from year 1 to 9999 only: a CDR whose timestamps, or whose periods laid out by
# their time volumes, leave years 0002-9998 is an INVALID_VALUE reject (a TIME volume of 10^11
# hours reaches year 14 million), checked by build_session and, on columns, pricing.periods.
FIRST_MS = (datetime(2, 1, 1, tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)
LAST_MS = (datetime(9999, 1, 1, tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1) - 1
START, PERIOD_START, PERIOD_END, END = range(4)  # what is checked, in this order


def _instant(ms: int) -> str:
    try:
        t = EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        return f"{ms} ms after 1970-01-01"
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t:%H:%M:%S}.{t.microsecond // 1000:03d}Z"


def out_of_time(what: int, period: int, ms: int | None) -> RecordRejected:
    """The reject of a CDR whose ``what`` (START, PERIOD_START or END at instant ``ms``, or
    PERIOD_END of CDR period ``period``) lies outside :data:`FIRST_MS`..:data:`LAST_MS`."""
    last = _instant(LAST_MS)
    if what == PERIOD_END:
        return RecordRejected(
            E.INVALID_VALUE,
            f"charging_periods[{period}]: laid out from its start_date_time, its RESERVATION_TIME, TIME "
            f"and PARKING_TIME volumes end after {last}. Hint: time volumes are hours; check them",
            f"$.charging_periods[{period}].dimensions",
        )
    if what == START:
        name, path = "start_date_time", "$.start_date_time"
    elif what == PERIOD_START:
        name = f"charging_periods[{period}].start_date_time"
        path = f"$.{name}"
    else:
        name, path = "the CDR's end_date_time (stop_date_time in OCPI 2.1.1)", "$"
    return RecordRejected(
        E.INVALID_VALUE,
        f"{name} {_instant(ms or 0)} is outside the instants roamledger prices "
        f"({_instant(FIRST_MS)[:10]} to {last[:10]}). Hint: check the timestamp (OCPI timestamps are UTC)",
        path,
    )


def build_session(
    cdr: Cdr,
    tariffs: TariffSet | None = None,
    policy: PricingPolicy | None = None,
    tz: str | None = None,
    location_zones: dict[str, str] | None = None,
) -> Session:
    """A priceable session from a CDR; raises :class:`RecordRejected` with a reject code."""
    policy = policy or PricingPolicy()
    chosen, period_tariff = select_tariffs(cdr, tariffs)
    try:
        zone = resolve_time_zone(
            explicit=tz,
            location_zone=cdr.location_time_zone,
            country=cdr.location_country or (chosen[0].country_code if chosen else None),
            registry_zone=(location_zones or {}).get(cdr.location_id or ""),
        )
    except TimeZoneError as exc:
        raise RecordRejected(E.TZ_UNRESOLVED, str(exc)) from exc
    periods: list[Period] = []
    if not FIRST_MS <= cdr.start_ms <= LAST_MS:
        raise out_of_time(START, 0, cdr.start_ms)
    for i, cp in enumerate(cdr.periods):
        nxt = cdr.periods[i + 1].start_ms if i + 1 < len(cdr.periods) else cdr.end_ms
        if not FIRST_MS <= cp.start_ms <= LAST_MS:
            raise out_of_time(PERIOD_START, i, cp.start_ms)
        parts = split_period(cp, max(0, nxt - cp.start_ms), period_tariff[i], i, policy)
        if parts and parts[-1].start_ms + parts[-1].duration_ms > LAST_MS:
            raise out_of_time(PERIOD_END, i, None)
        periods.extend(parts)
    if cdr.end_ms > LAST_MS:
        raise out_of_time(END, 0, cdr.end_ms)
    if not periods:  # nothing measured: a zero-length charging period still pays FLAT fees
        periods.append(Period(cdr.start_ms, 0, Phase.CHARGING, 0))
    phases = {p.phase for p in periods}
    expired = Phase.RESERVATION in phases and not (phases - {Phase.RESERVATION})
    return Session(
        id=cdr.id,
        currency=cdr.currency.upper(),
        time_zone=zone,
        tariffs=tuple(chosen),
        periods=tuple(periods),
        start_ms=cdr.start_ms,
        reservation_expired=expired,
    )
