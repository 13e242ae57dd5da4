"""Tariff lint: mistakes a CPO can make in an OCPI tariff that still parses, each with a JSON path
into the tariff and a fix.

What is checked (codes are stable strings; severity ``error`` = the tariff cannot mean what it says,
``warning`` = probably not what was meant, ``info`` = worth knowing):

* ``NOT_A_TARIFF`` (error): an object without ``elements`` that is no tariff at all (a CDR, or
  neither ``currency`` nor ``elements``): said so, not reported as a tariff missing fields.
* ``INVALID_TARIFF`` (error): the tariff does not parse; the parser's code, path and hint.
* ``UNKNOWN_FIELD`` (warning): a key OCPI does not define (for the tariff's version) in the tariff,
  an element, a price component or restrictions — the parser ignores it, so e.g. a misspelled
  ``start_tme`` leaves the element unrestricted; the fix names the closest known key.
* ``MIN_ABOVE_MAX`` (error): min_price above max_price (excl. or incl. VAT).
* ``NEVER_MATCHES`` (error): restrictions that can never hold together (start_time = end_time,
  min ≥ max for kWh/power/current/duration, start_date ≥ end_date, weekdays outside a short date
  range) — the element is dead.
* ``RESERVATION_DIMENSION`` (warning): an ENERGY or PARKING_TIME component on a reservation element
  (reservations are priced by TIME and FLAT only), never used.
* ``UNREACHABLE_ELEMENT`` / ``UNREACHABLE_COMPONENT`` (warning): every (or one) component of an
  element is shadowed: an earlier element prices the same dimension whenever this one applies.
* ``OVERLAPPING_WINDOWS`` (info): two elements price one dimension in overlapping time windows on
  a common weekday; the earlier one wins in the overlap.
* ``NO_FALLBACK`` (warning): a dimension the tariff prices at some hours is unpriced (free) at
  others, by weekday and time of day (only elements without kWh/power/current/duration/date
  conditions count as a fallback).
* ``STEP_SIZE_UNUSUAL`` (warning): a step_size beyond common national billing rules (time billed
  in steps over 15 minutes, energy in steps over 1 kWh).
* ``MISSING_VAT`` (warning): a 2.2.1/2.3.0 component without ``vat`` beside components with one,
  or in a tariff whose prices include taxes; ``VAT_UNKNOWN`` (info) for 2.1.1, which carries none.
* ``CURRENCY_COUNTRY_MISMATCH`` (warning): the currency is not one the tariff's country uses.
* Parser warnings (e.g. ``MISSING_TAX_INCLUDED``) are passed on.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from babel.core import UnknownLocaleError
from babel.numbers import get_territory_currencies

from pricing.errors import RecordRejected
from pricing.model import Dimension, Element, Restrictions, Tariff, TaxIncluded
from pricing.ocpi import parse_tariff

__all__ = ["LintFinding", "LintReport", "lint_tariff"]

MAX_TIME_STEP_S = 900  # 15 minutes: beyond it a driver pays for time not used
MAX_ENERGY_STEP_WH = 1000  # 1 kWh
DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
# Canonical bound → OCPI field (the same names in 2.1.1, 2.2.1 and 2.3.0).
BOUNDS = (
    ("min_kwh_mwh", "max_kwh_mwh", "min_kwh", "max_kwh"),
    ("min_power_w", "max_power_w", "min_power", "max_power"),
    ("min_current_ma", "max_current_ma", "min_current", "max_current"),
    ("min_duration_s", "max_duration_s", "min_duration", "max_duration"),
)


# The keys OCPI defines per object, by version (2.3.0 has the 2.2.1 ones).
_TARIFF_211 = "id currency tariff_alt_text tariff_alt_url elements energy_mix last_updated"
_TARIFF_221 = "country_code party_id type min_price max_price start_date_time end_date_time"
TARIFF_KEYS = {
    "2.1.1": frozenset(_TARIFF_211.split()),
    "2.2.1": frozenset(f"{_TARIFF_211} {_TARIFF_221}".split()),
    # preauthorize_amount: only in the tag v2.3.0 (the Payments module), not in later editions
    "2.3.0": frozenset(f"{_TARIFF_211} {_TARIFF_221} tax_included preauthorize_amount".split()),
}
ELEMENT_KEYS = frozenset({"price_components", "restrictions"})
COMPONENT_KEYS = {
    "2.1.1": frozenset({"type", "price", "step_size"}),
    "2.2.1": frozenset({"type", "price", "vat", "step_size"}),
}
RESTRICTION_KEYS = {
    "2.1.1": frozenset(
        "start_time end_time start_date end_date min_kwh max_kwh min_power max_power min_duration "
        "max_duration day_of_week".split()
    )
}
RESTRICTION_KEYS["2.2.1"] = RESTRICTION_KEYS["2.1.1"] | {"min_current", "max_current", "reservation"}
CDR_KEYS = ("charging_periods", "cdr_token", "cdr_location", "total_cost", "total_energy", "auth_id")


@dataclass(frozen=True, slots=True)
class LintFinding:
    code: str
    severity: str  # error | warning | info
    path: str  # JSON path into the tariff, e.g. $.elements[2].restrictions.end_time
    message: str
    fix: str


@dataclass(frozen=True, slots=True)
class LintReport:
    tariff_id: str | None
    ocpi_version: str | None
    findings: tuple[LintFinding, ...]

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        counts = {s: sum(f.severity == s for f in self.findings) for s in ("error", "warning", "info")}
        return {
            "tariff_id": self.tariff_id,
            "ocpi_version": self.ocpi_version,
            "counts": counts,
            "findings": [asdict(f) for f in self.findings],
        }


def lint_tariff(obj: Any, ocpi_version: str | None = None) -> LintReport:
    """Lint one OCPI tariff (decoded JSON, any version). Never raises for a bad tariff."""
    stranger = not_a_tariff(obj)
    if stranger is not None:
        return LintReport(None, None, (stranger,))
    try:
        tariff, warnings = parse_tariff(obj, ocpi_version)
    except RecordRejected as exc:
        message, _, hint = exc.message.partition(" Hint: ")
        tid = obj.get("id") if isinstance(obj, dict) else None
        finding = LintFinding(
            "INVALID_TARIFF", "error", exc.path or "$", sentence(f"{exc.code}: {message}"), sentence(hint)
        )
        return LintReport(tid if isinstance(tid, str) else None, None, (finding,))
    found: list[LintFinding] = []
    for w in warnings:
        message, _, hint = w.message.partition(" Hint: ")
        found.append(LintFinding(w.code, w.severity, w.path or "$", sentence(message), sentence(hint)))
    found += unknown_fields(obj, tariff.version)
    found += limits(tariff)
    for i, el in enumerate(tariff.elements):
        found += never_matches(i, el)
        found += reservation_dimensions(i, el)
        found += step_sizes(i, el)
    found += shadowed(tariff)
    found += overlaps(tariff)
    found += fallbacks(tariff)
    found += vat(tariff)
    found += currency(tariff)
    return LintReport(tariff.id, tariff.version, tuple(found))


def sentence(text: str) -> str:
    """A message or fix without its final full stop: a reader joins them (``message. Fix: fix``)."""
    return text.strip().removesuffix(".")


# ---- checks -------------------------------------------------------------------------------------


def not_a_tariff(obj: Any) -> LintFinding | None:
    """An object without ``elements`` that is no tariff at all: a CDR, or one with neither
    ``elements`` nor ``currency`` (a tariff missing only ``elements`` is INVALID_TARIFF)."""
    if not isinstance(obj, dict) or "elements" in obj:
        return None
    cdr = [k for k in CDR_KEYS if k in obj]
    if cdr:
        why = f"it looks like a CDR or a Session (it has {', '.join(cdr)})"
        fix = "lint tariffs only: keep CDRs and Sessions out of the folders and files given to lint"
    elif "currency" not in obj:
        why = "it has neither elements nor currency"
        fix = "give lint OCPI Tariff objects (a file with one, an array, or an OCPI response envelope)"
    else:
        return None
    return LintFinding("NOT_A_TARIFF", "error", "$", f"not an OCPI tariff (no elements): {why}", fix)


def unknown_fields(obj: Any, version: str) -> list[LintFinding]:
    """Keys OCPI does not define in the tariff, its elements, price components and restrictions
    (the parser ignores them: a misspelled restriction silently does not restrict, a misspelled
    ``max_price`` silently does not cap)."""
    v = "2.1.1" if version == "2.1.1" else "2.2.1"
    out: list[LintFinding] = []

    def check(value: Any, known: frozenset[str], path: str, what: str) -> None:
        if not isinstance(value, dict):
            return
        for key in sorted(value, key=str):
            if key in known:
                continue
            near = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
            fix = (
                f"did you mean `{near[0]}`? Rename it"
                if near
                else f"remove it (known: {', '.join(sorted(known))})"
            )
            out.append(
                LintFinding(
                    "UNKNOWN_FIELD",
                    "warning",
                    f"{path}.{key}",
                    f"`{key}` is not a field of OCPI {version} {what}: it is ignored",
                    fix,
                )
            )

    check(obj, TARIFF_KEYS.get(version, TARIFF_KEYS["2.2.1"]), "$", "tariffs")
    elements = obj.get("elements") if isinstance(obj, dict) else None
    for i, el in enumerate(elements if isinstance(elements, list) else []):
        here = f"$.elements[{i}]"
        check(el, ELEMENT_KEYS, here, "tariff elements")
        if not isinstance(el, dict):
            continue
        check(el.get("restrictions"), RESTRICTION_KEYS[v], f"{here}.restrictions", "restrictions")
        comps = el.get("price_components")
        for j, comp in enumerate(comps if isinstance(comps, list) else []):
            check(comp, COMPONENT_KEYS[v], f"{here}.price_components[{j}]", "price components")
    return out


def limits(t: Tariff) -> list[LintFinding]:
    lo, hi = t.min_price, t.max_price
    out = []
    for kind in ("excl", "incl"):
        low = getattr(lo, kind) if lo else None
        high = getattr(hi, kind) if hi else None
        if low is not None and high is not None and low > high:
            out.append(
                LintFinding(
                    "MIN_ABOVE_MAX",
                    "error",
                    f"$.min_price.{kind}_vat",
                    f"min_price {low} is above max_price {high} ({kind}. VAT): every session costs "
                    "one or the other",
                    "swap the two, or correct the one that is wrong",
                )
            )
    return out


def never_matches(i: int, el: Element) -> list[LintFinding]:
    r = el.restrictions
    here = f"$.elements[{i}].restrictions"
    out = []

    def dead(field: str, why: str, fix: str) -> None:
        out.append(
            LintFinding(
                "NEVER_MATCHES", "error", f"{here}.{field}", f"elements[{i}] never applies: {why}", fix
            )
        )

    if r.start_time_min is not None and r.end_time_min is not None and r.start_time_min == r.end_time_min:
        dead("end_time", "start_time equals end_time", "for all day leave both out; else correct one of them")
    for lo_name, hi_name, lo_field, hi_field in BOUNDS:
        lo, hi = getattr(r, lo_name), getattr(r, hi_name)
        if lo is not None and hi is not None and lo >= hi:
            dead(hi_field, f"{lo_field} is not below {hi_field}", f"make {hi_field} larger than {lo_field}")
    if r.start_date is not None and r.end_date is not None:
        if r.start_date >= r.end_date:
            dead("end_date", "start_date is not before end_date (end_date is exclusive)", "correct the dates")
        elif r.days and (r.end_date - r.start_date).days < 7:
            span = {
                (r.start_date + timedelta(days=k)).isoweekday()
                for k in range((r.end_date - r.start_date).days)
            }
            if not span & r.days:
                dead(
                    "day_of_week",
                    "none of its weekdays falls between start_date and end_date",
                    "correct day_of_week",
                )
    return out


def reservation_dimensions(i: int, el: Element) -> list[LintFinding]:
    if el.restrictions.reservation is None:
        return []
    return [
        LintFinding(
            "RESERVATION_DIMENSION",
            "warning",
            f"$.elements[{i}].price_components[{j}].type",
            f"a {c.dimension.value} component on a reservation element is never used: reservations are "
            "priced by TIME and FLAT only",
            "move the component to an element without the reservation restriction",
        )
        for j, c in enumerate(el.components)
        if c.dimension in (Dimension.ENERGY, Dimension.PARKING_TIME)
    ]


def step_sizes(i: int, el: Element) -> list[LintFinding]:
    out = []
    for j, c in enumerate(el.components):
        path = f"$.elements[{i}].price_components[{j}].step_size"
        if c.dimension in (Dimension.TIME, Dimension.PARKING_TIME) and c.step_size > MAX_TIME_STEP_S:
            out.append(
                LintFinding(
                    "STEP_SIZE_UNUSUAL",
                    "warning",
                    path,
                    f"time billed in steps of {c.step_size} s ({c.step_size / 60:g} min): beyond the 15 "
                    "minutes that national price rules commonly allow, a driver pays for time not used",
                    "bill time per minute (step_size 60) or at most per 15 minutes (900)",
                )
            )
        elif c.dimension is Dimension.ENERGY and c.step_size > MAX_ENERGY_STEP_WH:
            out.append(
                LintFinding(
                    "STEP_SIZE_UNUSUAL",
                    "warning",
                    path,
                    f"energy billed in steps of {c.step_size} Wh: beyond 1 kWh a driver pays for energy "
                    "not received",
                    "bill energy per Wh (step_size 1) or at most per kWh (1000)",
                )
            )
    return out


# ---- shadowing and overlaps ---------------------------------------------------------------------


def window(r: Restrictions) -> frozenset[int] | None:
    """The local minutes of the day in which the element may apply (None = all day)."""
    if not r.has_time_of_day:
        return None
    start, end = r.start_time_min or 0, r.end_time_min if r.end_time_min is not None else 1440
    if start < end:
        return frozenset(range(start, end))
    if start > end:
        return frozenset(range(start, 1440)) | frozenset(range(end))
    return frozenset()


def implies(rj: Restrictions, ri: Restrictions) -> bool:
    """Whenever ``rj`` holds, ``ri`` holds too (so an earlier ``ri`` element shadows ``rj``)."""
    if rj.reservation is not ri.reservation:
        return False
    if ri.days and not (rj.days and rj.days <= ri.days):
        return False
    wi, wj = window(ri), window(rj)
    if wi is not None and (wj is None or not wj <= wi):
        return False
    if ri.start_date is not None and (rj.start_date is None or rj.start_date < ri.start_date):
        return False
    if ri.end_date is not None and (rj.end_date is None or rj.end_date > ri.end_date):
        return False
    for lo_name, hi_name, _, _ in BOUNDS:
        lo_i, lo_j = getattr(ri, lo_name), getattr(rj, lo_name)
        hi_i, hi_j = getattr(ri, hi_name), getattr(rj, hi_name)
        if lo_i is not None and (lo_j is None or lo_j < lo_i):
            return False
        if hi_i is not None and (hi_j is None or hi_j > hi_i):
            return False
    return True


def live(t: Tariff) -> list[int]:
    """Elements that can apply outside reservations (no NEVER_MATCHES, no reservation restriction)."""
    return [
        i for i, e in enumerate(t.elements) if e.restrictions.reservation is None and not never_matches(i, e)
    ]


def shadowed(t: Tariff) -> list[LintFinding]:
    out: list[LintFinding] = []
    alive = live(t)
    for pos, j in enumerate(alive):
        el = t.elements[j]
        dead: list[tuple[int, str]] = []
        for k, comp in enumerate(el.components):
            first = el.component(comp.dimension)
            if first is not None and first[0] != k:
                dead.append(
                    (k, f"component {first[0]} of the same element prices {comp.dimension.value} first")
                )
                continue
            for i in alive[:pos]:
                if t.elements[i].component(comp.dimension) and implies(
                    el.restrictions, t.elements[i].restrictions
                ):
                    dead.append(
                        (k, f"elements[{i}] prices {comp.dimension.value} whenever this element applies")
                    )
                    break
        if dead and len(dead) == len(el.components):
            out.append(
                LintFinding(
                    "UNREACHABLE_ELEMENT",
                    "warning",
                    f"$.elements[{j}]",
                    f"elements[{j}] is never used: {'; '.join(why for _, why in dead)}",
                    "move it before the element that shadows it, or remove it",
                )
            )
        else:
            out += [
                LintFinding(
                    "UNREACHABLE_COMPONENT",
                    "warning",
                    f"$.elements[{j}].price_components[{k}]",
                    f"this component is never used: {why}",
                    "move the element earlier, narrow the earlier one's restrictions, or remove it",
                )
                for k, why in dead
            ]
    return out


def overlaps(t: Tariff) -> list[LintFinding]:
    out: list[LintFinding] = []
    alive = live(t)
    for pos, j in enumerate(alive):
        rj = t.elements[j].restrictions
        wj = window(rj)
        if wj is None:
            continue
        for i in alive[:pos]:
            ri = t.elements[i].restrictions
            wi = window(ri)
            if wi is None or implies(rj, ri):
                continue
            days = (ri.days or frozenset(range(1, 8))) & (rj.days or frozenset(range(1, 8)))
            common = wi & wj
            dims = [
                c.dimension.value for c in t.elements[j].components if t.elements[i].component(c.dimension)
            ]
            if days and common and dims:
                out.append(
                    LintFinding(
                        "OVERLAPPING_WINDOWS",
                        "info",
                        f"$.elements[{j}].restrictions.start_time",
                        f"elements[{i}] and elements[{j}] both price {', '.join(sorted(set(dims)))} on "
                        f"{day_names(days)} {ranges_text(common)}; elements[{i}] wins there",
                        "make the windows meet without overlapping if that is not intended",
                    )
                )
    return out


def day_names(days: frozenset[int] | set[int]) -> str:
    return ", ".join(DAYS[d - 1].title()[:3] for d in sorted(days))


def ranges_text(minutes: frozenset[int] | set[int]) -> str:
    """Minutes of the day as ``HH:MM–HH:MM`` ranges."""
    parts, run = [], None
    for m in range(1441):
        if m < 1440 and m in minutes:
            run = m if run is None else run
        elif run is not None:
            parts.append(f"{run // 60:02d}:{run % 60:02d}–{m // 60:02d}:{m % 60:02d}")
            run = None
    return ", ".join(parts)


# ---- fallbacks, VAT, currency -------------------------------------------------------------------

CONDITIONS = (
    "start_date",
    "end_date",
    "min_kwh_mwh",
    "max_kwh_mwh",
    "min_power_w",
    "max_power_w",
    "min_current_ma",
    "max_current_ma",
    "min_duration_s",
    "max_duration_s",
)


def fallbacks(t: Tariff) -> list[LintFinding]:
    out: list[LintFinding] = []
    alive = live(t)
    dims = {c.dimension for i in alive for c in t.elements[i].components} - {Dimension.FLAT}
    for dim in sorted(dims, key=lambda d: d.value):
        gaps = gaps_of(t, [i for i in alive if t.elements[i].component(dim)])
        if not gaps:
            continue
        where = "; ".join(f"{day_names(set(days))} {ranges_text(m)}" for m, days in gaps.items())
        out.append(
            LintFinding(
                "NO_FALLBACK",
                "warning",
                "$.elements",
                f"{dim.value} is priced by some elements but by none on {where} (there it is free, or "
                "priced only under a date condition or kWh/power/current/duration bounds that leave gaps)",
                f"add a last element without restrictions pricing {dim.value} (price 0 if free on purpose)",
            )
        )
    return out


def gaps_of(t: Tariff, elements: list[int]) -> dict[frozenset[int], list[int]]:
    """Per weekday, the minutes no element covers, grouped: {minutes: [weekdays]}.

    An element covers a (weekday, minute) when its day/time restrictions hold there and its other
    conditions cover every session: none, or bounds of one family (kWh, power, current, duration)
    whose [min, max) intervals, joined with the other such elements there, cover 0 to infinity —
    e.g. ``max_power 32`` and ``min_power 32`` together. Date restrictions never count.
    """
    family: dict[int, str | None] = {}
    for i in elements:
        r = t.elements[i].restrictions
        if r.start_date is not None or r.end_date is not None:
            continue
        used = [lo for lo, hi, _, _ in BOUNDS if getattr(r, lo) is not None or getattr(r, hi) is not None]
        if len(used) <= 1:
            family[i] = used[0] if used else None
    gaps: dict[frozenset[int], list[int]] = {}
    memo: dict[tuple[int, ...], bool] = {}
    for day in range(1, 8):
        active = [i for i in family if day in (t.elements[i].restrictions.days or range(1, 8))]
        windows = {i: window(t.elements[i].restrictions) for i in active}
        missing = set()
        for minute in range(1440):
            here = tuple(i for i in active if windows[i] is None or minute in windows[i])
            if here not in memo:
                memo[here] = covers(t, here, family)
            if not memo[here]:
                missing.add(minute)
        if missing:
            gaps.setdefault(frozenset(missing), []).append(day)
    return gaps


def covers(t: Tariff, here: tuple[int, ...], family: dict[int, str | None]) -> bool:
    by_family: dict[str, list[tuple[int, float | int]]] = {}
    for i in here:
        fam = family[i]
        if fam is None:
            return True
        r = t.elements[i].restrictions
        hi_name = next(hi for lo, hi, _, _ in BOUNDS if lo == fam)
        lo, hi = getattr(r, fam) or 0, getattr(r, hi_name)
        by_family.setdefault(fam, []).append((lo, float("inf") if hi is None else hi))
    for spans in by_family.values():
        reach = 0
        for lo, hi in sorted(spans):
            if lo > reach:
                break
            reach = max(reach, hi)
        if reach == float("inf"):
            return True
    return False


def vat(t: Tariff) -> list[LintFinding]:
    if t.tax_included is TaxIncluded.UNKNOWN:
        return [
            LintFinding(
                "VAT_UNKNOWN",
                "info",
                "$",
                f"OCPI {t.version} tariffs carry no VAT: amounts incl. VAT are unknown",
                "publish the tariff as OCPI 2.2.1 or 2.3.0 with vat on each price component",
            )
        ]
    comps = [(i, j, c) for i, e in enumerate(t.elements) for j, c in enumerate(e.components)]
    without = [(i, j) for i, j, c in comps if c.vat is None and c.price != 0]
    if not without or t.tax_included is TaxIncluded.NOT_APPLICABLE:
        return []
    if len(without) == sum(c.price != 0 for _, _, c in comps) and t.tax_included is TaxIncluded.NO:
        if t.version.startswith("2.3"):
            return []  # taxes added later by jurisdiction (North-American style): deliberate
        return [
            LintFinding(
                "MISSING_VAT",
                "warning",
                "$.elements",
                "no price component states vat: OCPI 2.2.1 reads that as 'no VAT applies', rarely true",
                "add vat (e.g. 21.0) to every price component, or 0 where no VAT applies",
            )
        ]
    why = (
        "the prices include taxes but this rate is unknown, so the amount excl. VAT cannot be computed"
        if t.tax_included is TaxIncluded.YES
        else "other components state vat, so this one is read as 'no VAT applies'"
    )
    return [
        LintFinding(
            "MISSING_VAT",
            "warning",
            f"$.elements[{i}].price_components[{j}].vat",
            f"no vat on this component: {why}",
            "add the vat percentage (0 where no VAT applies)",
        )
        for i, j in without
    ]


def currency(t: Tariff) -> list[LintFinding]:
    cc = (t.country_code or "").upper()
    if len(cc) != 2:
        return []
    try:
        used = get_territory_currencies(cc)
    except (UnknownLocaleError, KeyError, ValueError):
        return []
    if not used or t.currency.upper() in used:
        return []
    return [
        LintFinding(
            "CURRENCY_COUNTRY_MISMATCH",
            "warning",
            "$.currency",
            f"currency {t.currency} is not a currency of {cc} ({', '.join(used)})",
            f"check currency and country_code; a tariff of a {cc} CPO is usually in {used[0]}",
        )
    ]
