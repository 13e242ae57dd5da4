"""Price quotes: what a session will cost, before it starts (or so far, while it runs).

A quote builds the canonical :class:`~pricing.model.Session` of a *planned* session (or of an OCPI
Session object) and prices it with the reference pricer, one session, scalar Python, no numpy: a
single request must not pay for building column tables. The result rows come from
:func:`pricing.report.result_row`, so a quote carries exactly the numbers ``roamledger price`` writes
for the CDR of the same session (:func:`planned_cdr` writes that CDR; a hypothesis test checks the
equality through the kernel).

How a planned session is laid out in time (our reading; the issue leaves it open):

* ``start`` is when the session begins. ``reservation_minutes`` of reservation come first, then
  charging, then ``parking_minutes`` of parking (connected, not charging).
* Charging lasts ``duration``, or ``energy_kwh / power_kw`` rounded *up* to a whole second. With a
  ``profile`` (steps of ``minutes`` at ``power_kw``, optionally ``current_a``) charging follows the
  steps; with ``energy_kwh`` too it stops when that energy is delivered (the last step shortened,
  up to a whole second).
* A planned power (``power_kw`` or a profile step) is the period's measured MIN/MAX power, so power
  restrictions see it; without one, the policy's ``missing_measurement`` decides (``derive``: the
  average power).
* As in the CDR path, a charging stretch with neither time nor energy is dropped, and a session
  with nothing at all still pays its FLAT fees (one zero-length charging period at the start).

An OCPI Session (2.1.1/2.2.1/2.3.0) is priced *so far* (its charging periods up to ``now``, by
default its end or last update) and, with ``project_to``, *projected*: charging continues at
``power_kw`` (default: the session's average power so far) until ``project_to``, stopping at
``energy_kwh`` if given, the rest of the time parked.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from babel import Locale

from pricing import display
from pricing.errors import Finding, InputError, TariffError
from pricing.model import COST_CATEGORIES, QUANTITY_COLUMNS, Period, Phase, Session, Tariff
from pricing.ocpi import parse_session, parse_tariff
from pricing.policy import PricingPolicy
from pricing.reference import PricedSession, price_session
from pricing.report import result_row, trace_rows
from pricing.sessions import split_period
from pricing.timezones import resolve_time_zone
from pricing.units import (
    MS_PER_HOUR,
    MS_PER_MINUTE,
    MS_PER_SECOND,
    NUMBER_DIGITS,
    W_PER_KW,
    kwh_to_mwh,
    round_half_up,
    to_decimal,
)

__all__ = ["Quote", "TariffKey", "plan_session", "planned_cdr", "quote"]

EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)  # instants as epoch ms; far years overflow datetime
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
MAX_SESSION_MS = 31 * 24 * MS_PER_HOUR  # a quote for more than a month is a typo, not a session


@dataclass(frozen=True, slots=True)
class TariffKey:
    """A stored tariff: resolved by the ``store`` callable given to :func:`quote`."""

    country_code: str
    party_id: str
    tariff_id: str


TariffStore = Callable[[TariffKey], Any]


@dataclass(frozen=True, slots=True)
class Quote:
    """A priced planned (or running) session: the exact result and its report form."""

    kind: str  # planned | session_so_far | session_projected
    priced: PricedSession
    row: dict[str, Any]
    locale: str
    display: dict[str, Any]
    warnings: tuple[Finding, ...] = ()
    projected: Quote | None = None
    end_ms: int = 0
    trace: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total_excl_vat(self) -> Decimal | None:
        value = self.row["total_cost_excl_vat"]
        return None if value is None else Decimal(value)

    @property
    def total_incl_vat(self) -> Decimal | None:
        value = self.row["total_cost_incl_vat"]
        return None if value is None else Decimal(value)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: every amount and quantity a decimal string (4 places, half-up) or None."""
        s = self.priced.session
        row = self.row
        out: dict[str, Any] = {
            "kind": self.kind,
            "tariff_id": row["tariff_id"],
            "ocpi_version": s.tariffs[0].version,
            "currency": row["currency"],
            "time_zone": row["time_zone"],
            "start": iso_utc(s.start_ms),
            "end": iso_utc(self.end_ms),
            "total": {"excl_vat": row["total_cost_excl_vat"], "incl_vat": row["total_cost_incl_vat"]},
            "costs": {
                c: {"excl_vat": row[f"{c}_cost_excl_vat"], "incl_vat": row[f"{c}_cost_incl_vat"]}
                for c in COST_CATEGORIES
            },
            "quantities": {k: row[k] for k in QUANTITY_COLUMNS},
            "min_max_applied": row["min_max_applied"],
            "taxes": row["taxes"],
            "periods": self.trace,
            "display": self.display,
            "policy": policy_dict(self.priced.policy),
            "warnings": [{"code": w.code, "message": w.message, "path": w.path} for w in self.warnings],
        }
        if self.projected is not None:
            out["projected"] = self.projected.as_dict()
        return out


@lru_cache(maxsize=64)
def _policy_items(policy: PricingPolicy) -> tuple[tuple[str, Any], ...]:
    return tuple(policy.as_dict().items())  # dataclasses.asdict is slow; a service sees few policies


def policy_dict(policy: PricingPolicy) -> dict[str, Any]:
    return dict(_policy_items(policy))


# ---- inputs -------------------------------------------------------------------------------------


def resolve_tariff(
    tariff: Any, store: TariffStore | None = None, version: str | None = None
) -> tuple[Tariff, list[Finding]]:
    """An inline OCPI tariff (any version), a canonical Tariff, or a stored one by key."""
    if isinstance(tariff, Tariff):
        return tariff, []
    if isinstance(tariff, Mapping) and "elements" not in tariff and "tariff_id" in tariff:
        tariff = TariffKey(
            str(tariff.get("country_code", "")), str(tariff.get("party_id", "")), str(tariff["tariff_id"])
        )
    if isinstance(tariff, TariffKey):
        if store is None:
            raise InputError(
                f"tariff {tariff.country_code}/{tariff.party_id}/{tariff.tariff_id} is a stored tariff, "
                "but no tariff store is configured. Hint: send the tariff inline (an OCPI Tariff object)"
            )
        found = store(tariff)
        if found is None:
            raise InputError(
                f"no stored tariff {tariff.country_code}/{tariff.party_id}/{tariff.tariff_id}. "
                "Hint: check country_code, party_id and tariff_id, or send the tariff inline"
            )
        return resolve_tariff(found, None, version)
    return parsed_tariff(tariff, version)


def parsed_tariff(obj: Any, version: str | None) -> tuple[Tariff, list[Finding]]:
    """parse_tariff, remembered for the last few distinct tariffs (by their sorted JSON text).

    A quote service sees the same few tariffs over and over; validating one with pydantic costs
    more than pricing a simple session. Canonical tariffs are immutable, so sharing one is safe.
    Objects orjson cannot write (Decimals from a Decimal-parsing JSON decoder) are parsed each time.
    """
    try:
        key = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return parse_tariff(obj, version)
    tariff, findings = _parsed(key, version)
    return tariff, list(findings)


@lru_cache(maxsize=256)
def _parsed(key: bytes, version: str | None) -> tuple[Tariff, tuple[Finding, ...]]:
    tariff, findings = parse_tariff(orjson.loads(key), version)
    return tariff, tuple(findings)


def instant_ms(value: datetime | str, zone: str, what: str) -> int:
    """An instant from an aware datetime / ISO 8601 text; a naive one is local time in ``zone``."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError as exc:
            raise InputError(
                f"{what} {value!r} is not an ISO 8601 date-time. Hint: write e.g. 2025-03-04T18:30:00+01:00"
            ) from exc
    if not isinstance(value, datetime):
        raise InputError(f"{what} must be a date-time, not {type(value).__name__}")
    if value.tzinfo is None:
        value = local_instant(value, ZoneInfo(zone), what)
    if not EARLIEST <= value <= LATEST:
        raise InputError(f"{what} {value.isoformat()} is outside 1970–2199. Hint: check the year")
    delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return delta // timedelta(milliseconds=1)


def local_instant(value: datetime, zone: ZoneInfo, what: str) -> datetime:
    """A naive local time in ``zone``; refused where the zone's clocks skip it (a DST gap) or show
    it twice (the hour after a DST end): no instant is guessed for the caller."""
    first, second = value.replace(tzinfo=zone, fold=0), value.replace(tzinfo=zone, fold=1)
    shown = value.replace(microsecond=0).isoformat()
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != value:
        raise InputError(
            f"{what} {shown} does not exist in {zone.key}: the clocks go forward over it. "
            f"Hint: give a time outside the gap, or an offset (e.g. {offset_text(first.utcoffset())})"
        )
    a, b = first.utcoffset(), second.utcoffset()
    if a != b and a is not None and b is not None:
        raise InputError(
            f"{what} {shown} happens twice in {zone.key} (the clocks go back). Hint: give an offset: "
            f"{offset_text(a)} for the first, {offset_text(b)} for the second"
        )
    return first


def offset_text(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def iso_utc(ms: int) -> str:
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else f"{text}Z"


def positive(value: Any, what: str, allow_zero: bool = True) -> Decimal:
    try:
        d = to_decimal(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be a number, not {value!r}") from exc
    if d < 0 or (d == 0 and not allow_zero):
        raise InputError(f"{what} must be {'zero or more' if allow_zero else 'more than zero'}, not {d}")
    if d.adjusted() >= NUMBER_DIGITS:  # as for OCPI numbers: no unit of ours holds it
        raise InputError(f"{what} {d} is out of range. Hint: the value is implausibly large; check it")
    return d


def minutes_ms(value: Any, what: str) -> int:
    return int((positive(value, what) * MS_PER_MINUTE).to_integral_value())


def duration_ms(value: Any, what: str) -> int:
    """A timedelta, or minutes as a number."""
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise InputError(f"{what} must not be negative")
        return value // timedelta(milliseconds=1)
    return minutes_ms(value, f"{what} (minutes)")


def watts(power_kw: Any, what: str = "power_kw") -> int:
    w = int((positive(power_kw, what, allow_zero=False) * W_PER_KW).to_integral_value())
    if not w:  # charging at 0 W never ends
        raise InputError(f"{what} must be at least 0.001 (1 W), not {power_kw}")
    return w


def charge_ms(energy_mwh: int, power_w: int) -> int:
    """Time to deliver ``energy_mwh`` at ``power_w``, rounded up to a whole second."""
    ms = -(-energy_mwh * 3600 // power_w)  # mWh / W = 1/1000 h = 3.6 s = 3600 ms
    return -(-ms // MS_PER_SECOND) * MS_PER_SECOND


# ---- planned sessions ---------------------------------------------------------------------------


def charging_periods(
    t: int, energy_kwh: Any, power_kw: Any, duration: Any, profile: Sequence[Mapping[str, Any]] | None
) -> list[Period]:
    """The charging part of a planned session, from ``t`` (see the module docstring)."""
    if profile:
        return profile_periods(t, energy_kwh, profile)
    if energy_kwh is None:
        raise InputError(
            "a planned session needs energy_kwh. Hint: add energy_kwh (and power_kw or duration)"
        )
    energy = kwh_to_mwh(positive(energy_kwh, "energy_kwh"))
    power = watts(power_kw) if power_kw is not None else None
    if duration is not None:
        ms = duration_ms(duration, "duration")
    elif power is not None:
        ms = charge_ms(energy, power)
    else:
        raise InputError(
            "a planned session needs power_kw or duration to know how long it charges. "
            "Hint: add power_kw (e.g. 11) or duration (minutes)"
        )
    return [Period(t, ms, Phase.CHARGING, energy, min_power_w=power, max_power_w=power)]


def profile_periods(t: int, energy_kwh: Any, profile: Sequence[Mapping[str, Any]]) -> list[Period]:
    """One charging period per profile step; with ``energy_kwh``, stop when it is delivered."""
    target = None if energy_kwh is None else kwh_to_mwh(positive(energy_kwh, "energy_kwh"))
    out: list[Period] = []
    delivered = 0
    for i, step in enumerate(profile):
        if not isinstance(step, Mapping) or "minutes" not in step or "power_kw" not in step:
            raise InputError(
                f"profile[{i}] must have minutes and power_kw. Hint: e.g. "
                '{"minutes": 30, "power_kw": 50, "current_a": 125}'
            )
        ms = minutes_ms(step["minutes"], f"profile[{i}].minutes")
        power = watts(step["power_kw"], f"profile[{i}].power_kw")
        current = step.get("current_a")
        ma = None if current is None else int(positive(current, f"profile[{i}].current_a") * 1000)
        energy = power * ms // 3600  # W · ms / 3600 = mWh
        if target is not None and delivered + energy >= target:
            energy = target - delivered
            ms = min(ms, charge_ms(energy, power))
        meas = {"min_power_w": power, "max_power_w": power, "min_current_ma": ma, "max_current_ma": ma}
        out.append(Period(t, ms, Phase.CHARGING, energy, **meas))
        t += ms
        delivered += energy
        if target is not None and delivered >= target:
            return out
    if target is not None:
        raise InputError(
            f"the profile delivers only {Decimal(delivered).scaleb(-6).normalize():f} kWh of the "
            f"{energy_kwh} kWh asked for. Hint: lengthen the profile or lower energy_kwh"
        )
    return out


def finish(sid: str, tariff: Tariff, zone: str, start: int, periods: list[Period]) -> Session:
    """Drop empty charging stretches; nothing at all still pays FLAT fees (as the CDR path)."""
    kept = [p for p in periods if p.phase is not Phase.CHARGING or p.duration_ms > 0 or p.energy_mwh > 0]
    if not kept:
        kept = [Period(start, 0, Phase.CHARGING, 0)]
    end = kept[-1].start_ms + kept[-1].duration_ms
    if end - start > MAX_SESSION_MS:
        raise InputError("the session would last more than 31 days. Hint: check the durations and power")
    phases = {p.phase for p in kept}
    expired = Phase.RESERVATION in phases and not (phases - {Phase.RESERVATION})
    return Session(sid, tariff.currency.upper(), zone, (tariff,), tuple(kept), start, expired)


def plan_session(
    tariff: Tariff,
    zone: str,
    start_ms: int,
    *,
    energy_kwh: Any = None,
    power_kw: Any = None,
    duration: Any = None,
    profile: Sequence[Mapping[str, Any]] | None = None,
    parking_minutes: Any = 0,
    reservation_minutes: Any = 0,
    session_id: str = "quote",
) -> Session:
    """The canonical session of a planned charge (reservation → charging → parking)."""
    periods: list[Period] = []
    t = start_ms
    res = minutes_ms(reservation_minutes or 0, "reservation_minutes")
    if res:
        periods.append(Period(t, res, Phase.RESERVATION, 0))
        t += res
    charging = charging_periods(t, energy_kwh, power_kw, duration, profile)
    periods.extend(charging)
    t = charging[-1].start_ms + charging[-1].duration_ms if charging else t
    park = minutes_ms(parking_minutes or 0, "parking_minutes")
    if park:
        periods.append(Period(t, park, Phase.PARKING, 0))
    return finish(session_id, tariff, zone, start_ms, periods)


# ---- OCPI sessions ------------------------------------------------------------------------------


def session_so_far(
    obj: Mapping[str, Any],
    tariff: Tariff,
    zone: str | None,
    now: Any,
    policy: PricingPolicy,
    version: str | None,
) -> tuple[Session, str, int]:
    """An OCPI Session's charging periods up to ``now`` (default: its end, else its last update)."""
    wire = parse_session(obj, version)
    if wire.currency.upper() != tariff.currency.upper():
        raise InputError(
            f"the session is in {wire.currency} but the tariff in {tariff.currency}. "
            "Hint: quote the session with the tariff of its connector"
        )
    location = getattr(wire, "location", None)  # 2.1.1 embeds the Location
    zone = resolve_time_zone(
        explicit=zone,
        location_zone=getattr(location, "time_zone", None),
        country=getattr(location, "country", None)
        or getattr(wire, "country_code", None)
        or tariff.country_code,
    )
    cps = wire.canonical_periods()
    if now is not None:
        end = instant_ms(now, zone, "now")
    elif wire.end_ms is not None:
        end = wire.end_ms
    elif wire.last_updated is not None:
        end = instant_ms(wire.last_updated, zone, "last_updated")
    else:
        end = cps[-1].start_ms if cps else wire.start_ms
    end = max(end, cps[-1].start_ms if cps else wire.start_ms)
    periods: list[Period] = []
    for i, cp in enumerate(cps):
        nxt = cps[i + 1].start_ms if i + 1 < len(cps) else end
        periods.extend(split_period(cp, max(0, nxt - cp.start_ms), 0, i, policy))
    return finish(wire.id, tariff, zone, wire.start_ms, periods), zone, end


def projected(so_far: Session, end: int, project_to: int, power_kw: Any, energy_kwh: Any) -> Session:
    """The session continued from ``end`` to ``project_to``: charging, then parked when full."""
    if project_to < end:
        raise InputError(f"project_to ({iso_utc(project_to)}) is before the session so far ({iso_utc(end)})")
    done_mwh = sum(p.energy_mwh for p in so_far.periods)
    charged_ms = sum(p.duration_ms for p in so_far.periods if p.phase is Phase.CHARGING)
    if power_kw is not None:
        power = watts(power_kw)
    elif charged_ms > 0 and done_mwh > 0:
        power = max(1, done_mwh * 3600 // charged_ms)  # average W = mWh · 3600 / ms
    else:
        raise InputError("the session has no charging yet to project from. Hint: give power_kw")
    span = project_to - end
    energy = power * span // 3600
    target = None if energy_kwh is None else kwh_to_mwh(positive(energy_kwh, "energy_kwh"))
    chg = span
    if target is not None:
        energy = max(0, min(energy, target - done_mwh))
        chg = min(span, charge_ms(energy, power)) if energy else 0
    more = [Period(end, chg, Phase.CHARGING, energy, min_power_w=power, max_power_w=power)]
    if span - chg > 0:
        more.append(Period(end + chg, span - chg, Phase.PARKING, 0))
    real = [p for p in so_far.periods if p.duration_ms > 0 or p.energy_mwh > 0]
    return finish(so_far.id, so_far.tariffs[0], so_far.time_zone, so_far.start_ms, [*real, *more])


# ---- the quote ----------------------------------------------------------------------------------


def quote(
    tariff: Any,
    *,
    start: datetime | str | None = None,
    time_zone: str | None = None,
    location: Mapping[str, Any] | None = None,
    energy_kwh: Any = None,
    power_kw: Any = None,
    duration: Any = None,
    profile: Sequence[Mapping[str, Any]] | None = None,
    parking_minutes: Any = 0,
    reservation_minutes: Any = 0,
    session: Mapping[str, Any] | None = None,
    now: datetime | str | None = None,
    project_to: datetime | str | None = None,
    locale: str = "en",
    policy: PricingPolicy | None = None,
    ocpi_version: str | None = None,
    store: TariffStore | None = None,
    explain: bool = True,
) -> Quote:
    """Price a planned session, or an OCPI Session so far (and projected to ``project_to``).

    ``tariff``: an OCPI Tariff object of any version (detected), a canonical Tariff, or a stored one
    (``{"country_code", "party_id", "tariff_id"}`` or :class:`TariffKey`, looked up by ``store``).
    The zone: ``time_zone``, else ``location`` (its ``time_zone``, else its ``country``), else the
    tariff's country when it has a single zone. Numbers may be ints, Decimals or decimal strings.

    >>> q = quote(tariff_json, start="2025-03-04T18:30:00+01:00", energy_kwh=20, power_kw=11)
    >>> q.total_incl_vat, q.display["total_incl_vat"]
    """
    policy = policy or PricingPolicy()
    loc = display.locale_of(locale)
    canonical, warnings = resolve_tariff(tariff, store, ocpi_version)
    loc_zone = loc_country = None
    if location is not None:
        if not isinstance(location, Mapping):
            raise InputError("location must be an object with time_zone and/or country")
        loc_zone, loc_country = location.get("time_zone"), location.get("country")
    if session is not None:
        return quote_session(
            session, canonical, time_zone or loc_zone, now, project_to, power_kw, energy_kwh,
            loc, policy, ocpi_version, warnings, explain,
        )  # fmt: skip
    zone = resolve_time_zone(
        explicit=time_zone, location_zone=loc_zone, country=loc_country or canonical.country_code
    )
    if start is None:
        raise InputError(
            "a planned session needs start. Hint: add start (ISO 8601, e.g. 2025-03-04T18:30:00Z)"
        )
    start_ms = instant_ms(start, zone, "start")
    check_valid(canonical, start_ms)
    planned = plan_session(
        canonical,
        zone,
        start_ms,
        energy_kwh=energy_kwh,
        power_kw=power_kw,
        duration=duration,
        profile=profile,
        parking_minutes=parking_minutes,
        reservation_minutes=reservation_minutes,
    )
    return build_quote("planned", planned, policy, loc, warnings, explain)


def quote_session(
    obj: Mapping[str, Any],
    tariff: Tariff,
    zone: str | None,
    now: Any,
    project_to: Any,
    power_kw: Any,
    energy_kwh: Any,
    loc: Locale,
    policy: PricingPolicy,
    version: str | None,
    warnings: list[Finding],
    explain: bool,
) -> Quote:
    so_far, zone, end = session_so_far(obj, tariff, zone, now, policy, version)
    check_valid(tariff, so_far.start_ms)
    ahead = None
    if project_to is not None:
        later = projected(so_far, end, instant_ms(project_to, zone, "project_to"), power_kw, energy_kwh)
        ahead = build_quote("session_projected", later, policy, loc, warnings, explain)
    return build_quote("session_so_far", so_far, policy, loc, warnings, explain, ahead, end)


def check_valid(tariff: Tariff, start_ms: int) -> None:
    if not tariff.valid_at(start_ms):
        raise TariffError(
            f"tariff {tariff.id} is not valid at the session start {iso_utc(start_ms)}. "
            "Hint: check the tariff's start_date_time/end_date_time or the planned start"
        )


def build_quote(
    kind: str,
    session: Session,
    policy: PricingPolicy,
    loc: Locale,
    warnings: list[Finding],
    explain: bool,
    ahead: Quote | None = None,
    end_ms: int | None = None,
) -> Quote:
    priced = price_session(session, policy)
    row = result_row(priced)
    trace = [{k: v for k, v in r.items() if k != "cdr_id"} for r in trace_rows(priced)] if explain else []
    last = session.periods[-1]
    end = end_ms if end_ms is not None else last.start_ms + last.duration_ms
    return Quote(
        kind=kind,
        priced=priced,
        row=row,
        locale=str(loc),
        display=display_strings(priced, loc),
        warnings=tuple(warnings),
        projected=ahead,
        end_ms=end,
        trace=trace,
    )


def display_strings(priced: PricedSession, loc: Locale) -> dict[str, Any]:
    """Babel-formatted amounts and their labels; the lines add up to the total shown.

    The total is the exact total half-up to the currency's minor unit (the amount billed). The
    lines are rounded by largest remainder (:func:`pricing.display.shares`) so that they add up to
    it; when a minimum or maximum price applies, an adjustment line carries the difference. The
    exact amounts stay in the quote's JSON (``costs``, ``total``). The quote API shows these strings.
    """
    w = display.words(loc)
    cur = priced.session.currency
    cats = [cat for cat in COST_CATEGORIES if any(ln.category == cat for ln in priced.lines)]
    labels = [w[cat] for cat in cats]
    columns = {"excl_vat": [priced.category(cat)[0] for cat in cats]}
    columns["incl_vat"] = [priced.category(cat)[1] for cat in cats]
    totals = {"excl_vat": priced.total_excl, "incl_vat": priced.total_incl}
    gaps = {
        name: totals[name] - sum(amounts, Fraction(0))
        for name, amounts in columns.items()
        if totals[name] is not None and None not in amounts
    }
    if any(gaps.values()):
        cats.append("adjustment")
        labels.append(w[f"{priced.min_max_applied}_adjust" if priced.min_max_applied else "adjustment"])
        for name, amounts in columns.items():
            amounts.append(gaps.get(name))
    shown: dict[str, list[Any]] = {}
    for name, amounts in columns.items():
        total = totals[name]
        if total is not None and None not in amounts:
            shown[name] = display.shares(total, amounts, cur)  # type: ignore[arg-type]
        else:  # a column with an unknown amount: each line on its own, half-up
            shown[name] = amounts
    out: dict[str, Any] = {
        "locale": str(loc),
        "total_excl_vat": display.money(priced.total_excl, cur, loc),
        "total_incl_vat": display.money(priced.total_incl, cur, loc),
        "lines": [
            {
                "category": cat,
                "label": label,
                "excl_vat": display.money(shown["excl_vat"][i], cur, loc),
                "incl_vat": display.money(shown["incl_vat"][i], cur, loc),
            }
            for i, (cat, label) in enumerate(zip(cats, labels, strict=True))
        ],
        "rounding": "largest_remainder",
        "rounding_note": w["lines_rounded"],
    }
    total_shown = priced.total_incl if priced.total_incl is not None else priced.total_excl
    tag = w["incl_vat"] if priced.total_incl is not None else w["excl_vat"]
    out["summary"] = f"{w['total']}: {display.money(total_shown, cur, loc)} ({tag})"
    if priced.min_max_applied:
        out["note"] = w[f"{priced.min_max_applied}_applied"]
    return out


# ---- the CDR of a planned session ---------------------------------------------------------------


def hours_text(ms: int) -> str:
    """Hours with 10 decimals: read back half-up to the millisecond it came from."""
    return str(round_half_up(Fraction(ms, MS_PER_HOUR), 10))


def planned_cdr(q: Quote, country_code: str = "NL", party_id: str = "RLQ") -> dict[str, Any]:
    """An OCPI 2.2.1 CDR of the session a quote priced (its totals are the quote's).

    One charging period per canonical period; volumes written so that they read back to the same
    milliseconds and milliwatt-hours. Used to check that ``roamledger price`` charges the quote.
    """
    s = q.priced.session
    tariff = s.tariffs[0]
    periods = []
    for p in s.periods:
        dims: list[dict[str, Any]] = []
        if p.phase is Phase.RESERVATION:
            dims.append({"type": "RESERVATION_TIME", "volume": hours_text(p.duration_ms)})
        elif p.phase is Phase.PARKING:
            dims.append({"type": "PARKING_TIME", "volume": hours_text(p.duration_ms)})
        else:
            dims.append({"type": "ENERGY", "volume": str(Decimal(p.energy_mwh).scaleb(-6))})
            dims.append({"type": "TIME", "volume": hours_text(p.duration_ms)})
            for name, value, scale in (
                ("MIN_POWER", p.min_power_w, -3),
                ("MAX_POWER", p.max_power_w, -3),
                ("MIN_CURRENT", p.min_current_ma, -3),
                ("MAX_CURRENT", p.max_current_ma, -3),
            ):
                if value is not None:
                    dims.append({"type": name, "volume": str(Decimal(value).scaleb(scale))})
        periods.append({"start_date_time": iso_utc(p.start_ms), "dimensions": dims, "tariff_id": tariff.id})
    row = q.row
    total = {"excl_vat": row["total_cost_excl_vat"] or "0"}
    if row["total_cost_incl_vat"] is not None:
        total["incl_vat"] = row["total_cost_incl_vat"]
    return {
        "country_code": tariff.country_code or country_code,
        "party_id": tariff.party_id or party_id,
        "id": s.id,
        "start_date_time": iso_utc(s.start_ms),
        "end_date_time": iso_utc(q.end_ms),
        "cdr_token": {"uid": "QUOTE", "type": "OTHER", "contract_id": "QUOTE"},
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": "QUOTE",
            "address": "-",
            "city": "-",
            "country": "NLD",
            "coordinates": {"latitude": "52.0", "longitude": "4.0"},
            "evse_uid": "1",
            "evse_id": "NL*RLQ*E1",
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": s.currency,
        "charging_periods": periods,
        "total_cost": total,
        "total_energy": row["total_energy_kwh"],
        "total_time": row["total_time_h"],
        "last_updated": iso_utc(q.end_ms),
    }


class _CallableModule(ModuleType):
    """``pricing.quote(...)`` is the public API (DESIGN.md), and ``pricing.quote`` is also this module:
    once any code has imported the module, Python binds the package attribute to it, shadowing the
    lazily exported function. Calling the module calls :func:`quote`, so both spellings work."""

    def __call__(self, *args: Any, **kwargs: Any) -> Quote:
        return quote(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
