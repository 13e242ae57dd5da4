"""From a canonical CDR to a priceable :class:`~pricing.model.Session`.

Three decisions happen here, each with a reject code when it cannot be made:

* which tariff prices the CDR (``TARIFF_NOT_FOUND``, ``TARIFF_AMBIGUOUS``,
  ``TARIFF_NOT_VALID_AT_START``, ``CURRENCY_MISMATCH``);
* the local time zone (``TZ_UNRESOLVED``);
* how charging periods become phases (reservation / charging / parking) and durations
  (``policy.time_source``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from pricing import errors as E
from pricing.errors import RecordRejected, TimeZoneError
from pricing.model import Cdr, CdrPeriod, Period, Phase, Session, Tariff
from pricing.policy import PricingPolicy, TimeSource
from pricing.timezones import resolve_time_zone


@dataclass
class TariffSet:
    """Tariffs by id, each id possibly with several versions (validity windows)."""

    by_id: dict[str, list[Tariff]] = field(default_factory=lambda: defaultdict(list))

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
    # several valid versions of one id: the most recently updated wins (deterministic)
    return max(valid, key=lambda t: (t.last_updated_ms or 0, t.start_ms or 0))


def select_tariffs(cdr: Cdr, given: TariffSet | None) -> tuple[list[Tariff], list[int]]:
    """The tariffs of a CDR (primary first) and, per CDR period, the index of its tariff."""
    store = given if given is not None and len(given) else TariffSet.of(cdr.tariffs)
    period_ids = [p.tariff_id for p in cdr.periods]
    wanted = list(dict.fromkeys(i for i in period_ids if i))
    if not wanted and cdr.connector_tariff_ids:
        wanted = [i for i in cdr.connector_tariff_ids if store.lookup(i, cdr)][:1]
    if wanted:
        tariffs = [choose_version(store.lookup(i, cdr), i, cdr.start_ms) for i in wanted]
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


def split_period(
    cp: CdrPeriod, span_ms: int, tariff_idx: int, source_index: int, policy: PricingPolicy
) -> list[Period]:
    """One CDR charging period → one period per phase (reservation, charging, parking).

    ``dimension_volumes``: durations are the RESERVATION_TIME, TIME and PARKING_TIME volumes,
    laid out in that order from the period start. A period with no time volume lasts until the
    next period (charging if it reports ENERGY, else parking). ``timestamps``: the period's span,
    shared between charging (at most the TIME volume) and parking.
    """
    energy = cp.energy_mwh or 0
    power = {
        "min_power_w": cp.min_power_w,
        "max_power_w": cp.max_power_w,
        "min_current_ma": cp.min_current_ma,
        "max_current_ma": cp.max_current_ma,
    }
    if policy.time_source is TimeSource.DIMENSION_VOLUMES:
        res = cp.reservation_ms or 0
        chg = cp.time_ms
        park = cp.parking_ms or 0
        if cp.time_ms is None and cp.parking_ms is None and cp.reservation_ms is None:
            if cp.energy_mwh is not None:
                chg = span_ms
            else:
                park = span_ms
        elif chg is None and energy > 0:
            chg = max(0, span_ms - res - park)
        chg = chg or 0
    else:
        res = span_ms if cp.reservation_ms is not None else 0
        rest = span_ms - res
        if cp.parking_ms is not None and cp.time_ms is None and energy == 0:
            chg, park = 0, rest
        elif cp.parking_ms is not None:
            chg = min(cp.time_ms or 0, rest)
            park = rest - chg
        else:
            chg, park = rest, 0
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
    for i, cp in enumerate(cdr.periods):
        nxt = cdr.periods[i + 1].start_ms if i + 1 < len(cdr.periods) else cdr.end_ms
        periods.extend(split_period(cp, max(0, nxt - cp.start_ms), period_tariff[i], i, policy))
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
