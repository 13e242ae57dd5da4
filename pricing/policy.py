"""Pricing policies: explicit settings where the OCPI specification is silent or contradicts itself.

Every field has a default that reproduces every ``status: "consistent"`` worked example of the
specification. The policy in force is reported in the metadata of every output.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum

from pricing.errors import InputError


class PeriodBoundaries(StrEnum):
    SPLIT = "split"  # split straddling periods pro rata by time, energy linear within the period
    START = "start"  # price the whole period by its state at its start
    FLAG = "flag"  # as START, plus a PERIOD_STRADDLES_BOUNDARY finding


class FlatFee(StrEnum):
    PER_DISTINCT_COMPONENT = "per_distinct_component"
    ONCE_PER_SESSION = "once_per_session"


class MissingMeasurement(StrEnum):
    DERIVE = "derive"  # average power = energy / charging time where possible, else match
    MATCH = "match"
    NO_MATCH = "no_match"


class TimeStepRounding(StrEnum):
    LAST_TIME_KIND = "last_time_kind"  # round only the kind of time priced last (digest §2.7)
    COMBINED = "combined"  # round charging + parking together (tag 2.2.1's tariff_14 reading)


class StepRoundingScope(StrEnum):
    """What step_size rounds: ``priced`` (default, PRICING-SEMANTICS §2.7 step 4) the quantity the
    relevant tariff's components priced; ``session`` the whole session's energy / time of that
    kind, periods no component priced included, the difference billed at the last priced rate
    (the reading of the ``ocpi-tariffs`` library, to reproduce a CPO that computes with it)."""

    PRICED = "priced"
    SESSION = "session"


class TimeSource(StrEnum):
    DIMENSION_VOLUMES = "dimension_volumes"
    TIMESTAMPS = "timestamps"


@dataclass(frozen=True, slots=True)
class PricingPolicy:
    """All pricing choices in one immutable object.

    >>> PricingPolicy().period_boundaries
    <PeriodBoundaries.SPLIT: 'split'>
    >>> PricingPolicy.from_pairs(["flat_fee=once_per_session"]).flat_fee.value
    'once_per_session'
    """

    period_boundaries: PeriodBoundaries = PeriodBoundaries.SPLIT
    flat_fee: FlatFee = FlatFee.PER_DISTINCT_COMPONENT
    missing_measurement: MissingMeasurement = MissingMeasurement.DERIVE
    time_step_rounding: TimeStepRounding = TimeStepRounding.LAST_TIME_KIND
    step_exact_multiple: bool = True  # an exact multiple of step_size is already rounded
    time_source: TimeSource = TimeSource.DIMENSION_VOLUMES
    step_rounding_scope: StepRoundingScope = StepRoundingScope.PRICED

    def as_dict(self) -> dict[str, str | bool]:
        return {k: (v.value if isinstance(v, StrEnum) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_pairs(cls, pairs: Iterable[str], base: PricingPolicy | None = None) -> PricingPolicy:
        """Build a policy from ``NAME=VALUE`` strings (the CLI's ``--policy``), each replacing
        that field of ``base`` (default: the defaults)."""
        kinds = {f.name: f.type for f in fields(cls)}
        enums = {
            "period_boundaries": PeriodBoundaries,
            "flat_fee": FlatFee,
            "missing_measurement": MissingMeasurement,
            "time_step_rounding": TimeStepRounding,
            "time_source": TimeSource,
            "step_rounding_scope": StepRoundingScope,
        }
        values: dict[str, object] = {}
        for pair in pairs:
            name, sep, raw = pair.partition("=")
            name, raw = name.strip(), raw.strip()
            if not sep or name not in kinds:
                raise InputError(
                    f"unknown policy {pair!r}. Hint: use NAME=VALUE with NAME one of {', '.join(kinds)}"
                )
            if name in enums:
                choices = [e.value for e in enums[name]]
                if raw not in choices:
                    raise InputError(
                        f"policy {name} has no value {raw!r}. Hint: choose one of {', '.join(choices)}"
                    )
                values[name] = enums[name](raw)
            else:
                if raw.lower() not in ("true", "false"):
                    raise InputError(f"policy {name} takes true or false, not {raw!r}")
                values[name] = raw.lower() == "true"
        return replace(base, **values) if base is not None else cls(**values)  # type: ignore[arg-type]


CDR_POLICY = PricingPolicy(period_boundaries=PeriodBoundaries.FLAG)
"""The policy a CDR is priced with unless one is given (``price``, ``reconcile``, ``settle``, the
Python ``price_cdrs``): one truth for a CDR's recomputed cost whatever the command. A CDR is a
foreign record to verify, not one to build (PRICING-SEMANTICS §2.4 (b)): each charging period is
priced by its state at its start and a period that straddles a price change is a
PERIOD_STRADDLES_BOUNDARY finding, not silently split. Sessions (quotes) keep the defaults (split:
§2.4 (a))."""
