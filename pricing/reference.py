"""The reference pricer: OCPI pricing for one session, in plain exact arithmetic.

This module is the executable specification (digest §2, "our reading" where the spec is silent).
It favours being easy to follow over being fast; the vectorized kernel must give the same
results on every input. A session is priced in five steps, each a function below:

1. ``split_pieces``   cut every period where a restriction could change (time of day, local
                      midnight, DST change, kWh and duration thresholds); energy is spread
                      linearly inside a period with an exact integer rule.
2. ``select``         for every piece and every dimension, the first element (in tariff order)
                      that has a component of that dimension and whose restrictions all hold at
                      the start of the piece (reservation pieces see only reservation elements).
3. ``step_rounding``  round the session totals up to the step_size of the *last* component that
                      priced them (ENERGY; and the kind of time priced last).
4. ``cost_lines``     price × quantity per component, VAT per component, FLAT once per distinct
                      component.
5. ``clamp``          min_price / max_price on the pre-tax and post-tax totals separately.

Money is :class:`fractions.Fraction` throughout (time costs divide by 3600 exactly); rounding
happens only in :mod:`pricing.report`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

from pricing.calendar import (
    LocalTime,
    calendar_holds,
    clock_minutes,
    dst_transitions,
    local_date,
    local_time,
    wall_instants,
    zone,
)
from pricing.model import (
    COST_CATEGORIES,
    Dimension,
    Element,
    Period,
    Phase,
    PriceComponent,
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
from pricing.units import MS_PER_HOUR, MS_PER_SECOND, MWH_PER_KWH, MWH_PER_WH

# Which dimensions can be priced in which phase, in evaluation order.
PHASE_DIMENSIONS: dict[Phase, tuple[Dimension, ...]] = {
    Phase.CHARGING: (Dimension.ENERGY, Dimension.TIME, Dimension.FLAT),
    Phase.PARKING: (Dimension.PARKING_TIME, Dimension.FLAT),
    Phase.RESERVATION: (Dimension.TIME, Dimension.FLAT),
}

# Cost categories of the output (CDR total_*_cost fields).
ENERGY, TIME, PARKING, FIXED, RESERVATION = "energy", "time", "parking", "fixed", "reservation"
CATEGORIES = COST_CATEGORIES  # (ENERGY, TIME, PARKING, FIXED, RESERVATION), as in the model

# The kind of time a piece contributes (step rounding works per kind).
TIME_KIND = {Phase.CHARGING: TIME, Phase.PARKING: PARKING, Phase.RESERVATION: RESERVATION}


# ---- 1. pieces ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Piece:
    """A stretch of one period during which no restriction changes."""

    start_ms: int
    duration_ms: int
    energy_mwh: int
    cum_energy_mwh: int  # session energy consumed before this piece
    elapsed_ms: int  # session duration elapsed at the start of this piece
    period: Period

    @property
    def phase(self) -> Phase:
        return self.period.phase


def split_pieces(session: Session, policy: PricingPolicy) -> list[Piece]:
    """Cut each period into pieces of constant state (or keep it whole, per policy)."""
    pieces: list[Piece] = []
    cum = 0
    charging_start = session.charging_start_ms
    for period in session.periods:
        ref = session.start_ms if period.phase is Phase.RESERVATION else charging_start
        elapsed0 = period.start_ms - ref
        if policy.period_boundaries is PeriodBoundaries.SPLIT:
            cuts = cut_offsets(session, period, cum, elapsed0)
        else:
            cuts = []
        pieces.extend(pro_rata(period, cuts, cum, elapsed0))
        cum += period.energy_mwh
    return pieces


def pro_rata(period: Period, cuts: list[int], cum: int, elapsed0: int) -> Iterator[Piece]:
    """Pieces at the given offsets; piece [a, b) gets floor(E·b/d) − floor(E·a/d) of the energy.

    The floors telescope, so the pieces always add up to the period's energy exactly.
    """
    d, e = period.duration_ms, period.energy_mwh
    bounds = [0, *cuts, d] if d > 0 else [0, 0]
    for a, b in pairwise(bounds):
        ea = e * a // d if d else 0
        eb = e * b // d if d else e
        yield Piece(period.start_ms + a, b - a, eb - ea, cum + ea, elapsed0 + a, period)


def cut_offsets(session: Session, period: Period, cum: int, elapsed0: int) -> list[int]:
    """Offsets (ms, strictly inside the period) where some restriction may switch."""
    d = period.duration_ms
    if d <= 0:
        return []
    tariff = session.tariffs[period.tariff_idx]
    offsets: set[int] = set()
    for instant in calendar_cuts(tariff, session.time_zone, period.start_ms, period.start_ms + d):
        offsets.add(instant - period.start_ms)
    e = period.energy_mwh
    for threshold in kwh_thresholds(tariff):
        # first offset t with cum + floor(e·t/d) >= threshold
        if e > 0 and cum < threshold <= cum + e:
            offsets.add(-((-(threshold - cum) * d) // e))
    for limit_s in duration_thresholds(tariff):
        offsets.add(limit_s * MS_PER_SECOND - elapsed0)
    return sorted(o for o in offsets if 0 < o < d)


def kwh_thresholds(tariff: Tariff) -> set[int]:
    out: set[int] = set()
    for el in tariff.elements:
        r = el.restrictions
        out.update(v for v in (r.min_kwh_mwh, r.max_kwh_mwh) if v is not None)
    return out


def duration_thresholds(tariff: Tariff) -> set[int]:
    out: set[int] = set()
    for el in tariff.elements:
        r = el.restrictions
        out.update(v for v in (r.min_duration_s, r.max_duration_s) if v is not None)
    return out


def calendar_cuts(tariff: Tariff, time_zone: str, start_ms: int, end_ms: int) -> list[int]:
    """UTC instants in [start, end] where local clock/day restrictions may switch.

    For every local date touched: each restriction clock time under both DST readings (fold 0
    and 1), plus every DST transition. Extra cuts are harmless (the state is merely the same on
    both sides); a missing cut would be a pricing error, so we err on the side of more.
    """
    minutes = clock_minutes(tariff)
    if not minutes:
        return []
    tz = zone(time_zone)
    first = local_date(start_ms, time_zone) - timedelta(days=1)
    last = local_date(end_ms, time_zone) + timedelta(days=1)
    out: list[int] = []
    day = first
    while day <= last:
        for m in minutes:
            out.extend(wall_instants(day, m, tz))
        out.extend(dst_transitions(time_zone, day))
        day += timedelta(days=1)
    return sorted(i for i in set(out) if start_ms <= i <= end_ms)


# ---- 2. selection -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Choice:
    """The component that prices one dimension of one piece."""

    tariff_idx: int
    element_idx: int
    component_idx: int
    component: PriceComponent
    element: Element


def select(session: Session, piece: Piece, policy: PricingPolicy) -> dict[Dimension, Choice]:
    """First matching element per dimension (digest §2.2, §2.8)."""
    tariff = session.tariffs[piece.period.tariff_idx]
    local = local_time(piece.start_ms, session.time_zone)
    chosen: dict[Dimension, Choice] = {}
    for dim in PHASE_DIMENSIONS[piece.phase]:
        for e_idx in element_order(tariff, piece.phase, dim, session.reservation_expired):
            element = tariff.elements[e_idx]
            found = element.component(dim)
            if found is None:
                continue
            if restrictions_hold(element.restrictions, piece, local, policy):
                c_idx, comp = found
                chosen[dim] = Choice(piece.period.tariff_idx, e_idx, c_idx, comp, element)
                break
    return chosen


def element_order(tariff: Tariff, phase: Phase, dim: Dimension, expired: bool) -> list[int]:
    """Elements eligible for this phase, in the order they are tried.

    Reservation pieces see only elements with a ``reservation`` restriction; RESERVATION_EXPIRES
    elements only when the reservation expired, and then they take precedence for TIME (§2.8).
    Other pieces see only elements without a ``reservation`` restriction.
    """
    idx = range(len(tariff.elements))
    kinds = [tariff.elements[i].restrictions.reservation for i in idx]
    if phase is not Phase.RESERVATION:
        return [i for i in idx if kinds[i] is None]
    expires = [i for i in idx if kinds[i] is ReservationKind.RESERVATION_EXPIRES] if expired else []
    plain = [i for i in idx if kinds[i] is ReservationKind.RESERVATION]
    if dim is Dimension.TIME:
        return expires + plain
    return sorted(expires + plain)


def restrictions_hold(r: Restrictions, piece: Piece, local: LocalTime, policy: PricingPolicy) -> bool:
    """All restrictions of an element at the start of a piece (AND; §2.3)."""
    if not calendar_holds(r, local):
        return False
    if r.min_kwh_mwh is not None and piece.cum_energy_mwh < r.min_kwh_mwh:
        return False
    if r.max_kwh_mwh is not None and piece.cum_energy_mwh >= r.max_kwh_mwh:
        return False
    if r.min_duration_s is not None and piece.elapsed_ms < r.min_duration_s * MS_PER_SECOND:
        return False
    if r.max_duration_s is not None and piece.elapsed_ms >= r.max_duration_s * MS_PER_SECOND:
        return False
    return measurements_hold(r, piece.period, policy)


def measurements_hold(r: Restrictions, p: Period, policy: PricingPolicy) -> bool:
    """Power and current restrictions from the period's MIN_/MAX_ values (§2.3 reading).

    ``min_*`` holds when the period's minimum is at or above the limit, ``max_*`` when its maximum
    is below it. A missing measurement follows ``policy.missing_measurement``; ``derive`` uses
    the average power energy / duration (exact integer comparison), and matches for current.
    """
    checks = (
        (r.min_power_w, p.min_power_w, True, True),
        (r.max_power_w, p.max_power_w, False, True),
        (r.min_current_ma, p.min_current_ma, True, False),
        (r.max_current_ma, p.max_current_ma, False, False),
    )
    for limit, measured, is_min, is_power in checks:
        if limit is None:
            continue
        if measured is not None:
            ok = measured >= limit if is_min else measured < limit
        elif policy.missing_measurement is MissingMeasurement.MATCH:
            ok = True
        elif policy.missing_measurement is MissingMeasurement.NO_MATCH:
            ok = False
        elif is_power and p.duration_ms > 0:
            # average W = mWh · 3600 / ms; compare without dividing
            avg_num, den = p.energy_mwh * 3600, p.duration_ms
            ok = avg_num >= limit * den if is_min else avg_num < limit * den
        else:
            ok = True
        if not ok:
            return False
    return True


# ---- 3. step rounding ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rounding:
    """The quantity added by step_size rounding, billed at ``choice``'s price."""

    category: str  # energy | time | parking | reservation
    choice: Choice
    measured: int  # priced quantity before rounding (mWh or ms)
    extra: int  # added quantity (mWh or ms)


def round_up(quantity: int, step: int, exact_multiple_is_rounded: bool) -> int:
    if step <= 0 or quantity <= 0:
        return quantity
    if exact_multiple_is_rounded:
        return -(-quantity // step) * step
    return (quantity // step + 1) * step


def step_rounding(
    priced: list[tuple[Piece, dict[Dimension, Choice]]], policy: PricingPolicy
) -> list[Rounding]:
    """Digest §2.7: ENERGY once per session; of the time kinds, only the one priced last.

    Only pieces priced by the same tariff as the last relevant piece count (no carry-over
    between tariffs, S5); the step is that of the last relevant component (S3, S4).
    """
    out: list[Rounding] = []
    whole = policy.step_rounding_scope is StepRoundingScope.SESSION  # every piece of the session
    energy = [(p, c[Dimension.ENERGY]) for p, c in priced if Dimension.ENERGY in c]
    if energy:
        last = energy[-1][1]
        if whole:
            q = sum(p.energy_mwh for p, _c in priced)
        else:
            q = sum(p.energy_mwh for p, c in energy if c.tariff_idx == last.tariff_idx)
        step = last.component.step_size * MWH_PER_WH
        extra = round_up(q, step, policy.step_exact_multiple) - q
        if extra:
            out.append(Rounding(ENERGY, last, q, extra))
    timed = [(p, time_choice(p, c)) for p, c in priced]
    timed = [(p, c) for p, c in timed if c is not None]
    if timed:
        last_piece, last = timed[-1]
        kind = TIME_KIND[last_piece.phase]
        kinds = {kind}
        if policy.time_step_rounding is TimeStepRounding.COMBINED and kind != RESERVATION:
            kinds = {TIME, PARKING}
        if whole:
            q = sum(p.duration_ms for p, _c in priced if TIME_KIND[p.phase] in kinds)
        else:
            q = sum(
                p.duration_ms
                for p, c in timed
                if c is not None and c.tariff_idx == last.tariff_idx and TIME_KIND[p.phase] in kinds
            )
        step = last.component.step_size * MS_PER_SECOND
        extra = round_up(q, step, policy.step_exact_multiple) - q
        if extra:
            out.append(Rounding(kind, last, q, extra))
    return out


def time_choice(piece: Piece, chosen: dict[Dimension, Choice]) -> Choice | None:
    dim = Dimension.PARKING_TIME if piece.phase is Phase.PARKING else Dimension.TIME
    return chosen.get(dim)


# ---- 4. cost lines ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CostLine:
    """One component's contribution: quantity (mWh, ms or 1 for FLAT) and exact amounts."""

    category: str
    choice: Choice
    quantity: int
    excl: Fraction | None
    incl: Fraction | None


def amount(component: PriceComponent, quantity: int) -> Fraction:
    """price × quantity in currency units, exactly."""
    price = Fraction(component.price)
    if component.dimension is Dimension.ENERGY:
        return price * quantity / MWH_PER_KWH
    if component.dimension is Dimension.FLAT:
        return price * quantity
    return price * quantity / MS_PER_HOUR


def with_taxes(
    tariff: Tariff, component: PriceComponent, base: Fraction
) -> tuple[Fraction | None, Fraction | None]:
    """(excl, incl) of an amount computed from a component price (§2.9)."""
    vat = None if component.vat is None else 1 + Fraction(component.vat) / 100
    if tariff.tax_included is TaxIncluded.YES:  # the price already contains taxes
        return (base / vat if vat is not None else None), base
    if not tariff.taxes_known:
        return base, None
    if tariff.tax_included is TaxIncluded.NOT_APPLICABLE or vat is None:
        return base, base
    return base, base * vat


def category_of(piece_phase: Phase, choice: Choice) -> str:
    dim = choice.component.dimension
    if dim is Dimension.FLAT:
        return RESERVATION if choice.element.restrictions.reservation is not None else FIXED
    if dim is Dimension.ENERGY:
        return ENERGY
    if dim is Dimension.PARKING_TIME:
        return PARKING
    return RESERVATION if piece_phase is Phase.RESERVATION else TIME


def cost_lines(
    session: Session,
    priced: list[tuple[Piece, dict[Dimension, Choice]]],
    roundings: list[Rounding],
    policy: PricingPolicy,
) -> list[CostLine]:
    """Sum quantities per (category, component), add step rounding, price each once."""
    qty: dict[tuple[str, int, int, int], int] = {}
    choices: dict[tuple[str, int, int, int], Choice] = {}

    def add(category: str, choice: Choice, quantity: int) -> None:
        key = (category, choice.tariff_idx, choice.element_idx, choice.component_idx)
        choices.setdefault(key, choice)
        qty[key] = qty.get(key, 0) + quantity

    flats: list[tuple[str, Choice]] = []
    for piece, chosen in priced:
        for dim, choice in chosen.items():
            cat = category_of(piece.phase, choice)
            if dim is Dimension.FLAT:
                key = (cat, choice.tariff_idx, choice.element_idx, choice.component_idx)
                if key not in choices:
                    choices[key] = choice
                    flats.append((cat, choice))
            elif dim is Dimension.ENERGY:
                add(cat, choice, piece.energy_mwh)
            else:
                add(cat, choice, piece.duration_ms)
    for r in roundings:
        add(r.category, r.choice, r.extra)
    if policy.flat_fee is FlatFee.ONCE_PER_SESSION:
        flats = flats[:1]
    for cat, choice in flats:
        qty[(cat, choice.tariff_idx, choice.element_idx, choice.component_idx)] = 1

    lines = []
    for key in sorted(qty):
        choice = choices[key]
        base = amount(choice.component, qty[key])
        excl, incl = with_taxes(session.tariffs[choice.tariff_idx], choice.component, base)
        lines.append(CostLine(key[0], choice, qty[key], excl, incl))
    return lines


# ---- 5. totals and clamps -----------------------------------------------------------------------


def add_known(values: list[Fraction | None]) -> Fraction | None:
    """Sum, or None when any part is unknown."""
    total = Fraction(0)
    for v in values:
        if v is None:
            return None
        total += v
    return total


def clamp(
    total: Fraction | None, low: Decimal | None, high: Decimal | None
) -> tuple[Fraction | None, str | None]:
    if total is None:
        return None, None
    if low is not None and total < low:
        return Fraction(low), "min"
    if high is not None and total > high:
        return Fraction(high), "max"
    return total, None


@dataclass(frozen=True, slots=True)
class PricedSession:
    """The exact result for one session. Amounts are exact; :mod:`pricing.report` rounds them."""

    session: Session
    policy: PricingPolicy
    lines: tuple[CostLine, ...]
    roundings: tuple[Rounding, ...]
    pieces: tuple[tuple[Piece, dict[Dimension, Choice]], ...]
    total_excl: Fraction | None
    total_incl: Fraction | None
    min_max_applied: str | None
    taxes: tuple[tuple[str, Decimal, Fraction], ...]  # (name, percentage, amount)
    straddling: tuple[int, ...] = field(default=())  # source indices of straddling periods ("flag")

    def category(self, cat: str) -> tuple[Fraction | None, Fraction | None]:
        mine = [ln for ln in self.lines if ln.category == cat]
        return add_known([ln.excl for ln in mine]), add_known([ln.incl for ln in mine])

    def measured(self, phase: Phase) -> int:
        return sum(p.duration_ms for p, _ in self.pieces if p.phase is phase)

    def extra(self, category: str) -> int:
        return sum(r.extra for r in self.roundings if r.category == category)

    @property
    def energy_mwh(self) -> int:
        return sum(p.energy_mwh for p, _ in self.pieces)


def price_session(session: Session, policy: PricingPolicy | None = None) -> PricedSession:
    """Price one canonical session. See the module docstring for the steps."""
    policy = policy or PricingPolicy()
    priced = [(piece, select(session, piece, policy)) for piece in split_pieces(session, policy)]
    roundings = step_rounding(priced, policy)
    lines = cost_lines(session, priced, roundings, policy)

    raw_excl = add_known([ln.excl for ln in lines])
    raw_incl = add_known([ln.incl for ln in lines])
    primary = session.tariffs[0]
    lo, hi = primary.min_price, primary.max_price
    excl, how_excl = clamp(raw_excl, lo.excl if lo else None, hi.excl if hi else None)
    incl, how_incl = clamp(raw_incl, lo.incl if lo else None, hi.incl if hi else None)
    if incl is None and excl == 0:  # nothing to pay: 0 incl. VAT whatever the VAT (2.1.1 free)
        incl = Fraction(0)

    taxes = tax_lines(session, lines)
    if taxes and (how_excl or how_incl) and excl is not None and incl is not None:
        taxes = scale_taxes(taxes, incl - excl)

    straddling: tuple[int, ...] = ()
    if policy.period_boundaries is PeriodBoundaries.FLAG:
        straddling = straddling_periods(session, policy)
    return PricedSession(
        session=session,
        policy=policy,
        lines=tuple(lines),
        roundings=tuple(roundings),
        pieces=tuple(priced),
        total_excl=excl,
        total_incl=incl,
        min_max_applied=how_excl or how_incl,
        taxes=taxes,
        straddling=straddling,
    )


def tax_lines(session: Session, lines: list[CostLine]) -> tuple[tuple[str, Decimal, Fraction], ...]:
    """VAT per rate (2.3.0 TaxAmount lines), from the component amounts.

    Only components whose VAT actually applies: a rate on a ``tax_included = N/A`` tariff is ignored.
    """
    per_rate: dict[Decimal, Fraction] = {}
    for ln in lines:
        vat = ln.choice.component.vat
        if vat is None or ln.excl is None or ln.incl is None:
            continue
        if session.tariffs[ln.choice.tariff_idx].tax_included is TaxIncluded.NOT_APPLICABLE:
            continue
        per_rate[vat] = per_rate.get(vat, Fraction(0)) + (ln.incl - ln.excl)
    return tuple(("VAT", rate, per_rate[rate]) for rate in sorted(per_rate))


def scale_taxes(
    taxes: tuple[tuple[str, Decimal, Fraction], ...], target: Fraction
) -> tuple[tuple[str, Decimal, Fraction], ...]:
    """After a min/max clamp, the tax lines must add up to incl − excl: scale them pro rata."""
    total = sum((t[2] for t in taxes), Fraction(0))
    if total == 0:
        return taxes
    return tuple((name, rate, amt * target / total) for name, rate, amt in taxes)


def straddling_periods(session: Session, policy: PricingPolicy) -> tuple[int, ...]:
    """Periods whose pieces would be priced differently if split (the ``flag`` policy)."""
    split = PricingPolicy(
        period_boundaries=PeriodBoundaries.SPLIT,
        flat_fee=policy.flat_fee,
        missing_measurement=policy.missing_measurement,
        time_step_rounding=policy.time_step_rounding,
        step_exact_multiple=policy.step_exact_multiple,
        time_source=policy.time_source,
    )
    by_period: dict[tuple[int, str], set[tuple[tuple[str, int, int], ...]]] = {}
    for piece in split_pieces(session, split):
        chosen = select(session, piece, split)
        sig = tuple(sorted((d.value, c.element_idx, c.component_idx) for d, c in chosen.items()))
        by_period.setdefault((piece.period.source_index, piece.phase.value), set()).add(sig)
    return tuple(sorted({i for (i, _), sigs in by_period.items() if len(sigs) > 1}))
