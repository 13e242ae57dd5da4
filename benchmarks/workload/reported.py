"""Reported totals: what the CPO billed, computed by the pricing engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks.workload.jsontext import dumps, loads
from benchmarks.workload.world import World
from pricing.batch import as_records, price_records
from pricing.ocpi import parse_tariff
from pricing.policy import PeriodBoundaries, PricingPolicy
from pricing.sessions import TariffSet

# ---- the engine pass ----------------------------------------------------------------------------


@dataclass
class Engine:
    """Prices generated CDR dicts with :func:`pricing.batch.price_batch` (right and wrong tariffs)."""

    world: World
    right: Any = None
    wrong: Any = None

    def __post_init__(self) -> None:
        def tset(tariffs: dict[tuple[int, int, str], dict[str, Any]]) -> Any:
            out = []
            for key in sorted(tariffs):
                tariff, _ = parse_tariff(loads(dumps(tariffs[key])), key[2])
                out.append(tariff)
            return TariffSet.of(out)

        self.right = tset(self.world.tariffs)
        self.wrong = tset(self.world.wrong_tariffs)

    def price(
        self, recs: list[dict[str, Any]], versions: list[str], start_policy: list[bool], wrong: list[bool]
    ) -> list[dict[str, Any]]:
        groups: dict[tuple[str, bool, bool], list[int]] = {}
        for i, key in enumerate(zip(versions, start_policy, wrong, strict=True)):
            groups.setdefault(key, []).append(i)
        out: list[dict[str, Any] | None] = [None] * len(recs)
        for (version, start, bad), idx in sorted(groups.items()):
            policy = PricingPolicy(period_boundaries=PeriodBoundaries.START) if start else PricingPolicy()
            res = price_records(
                as_records([loads(dumps(recs[i])) for i in idx]),  # what a reader of the line gets
                self.wrong if bad else self.right,
                policy,
                version=version,
                engine="kernel",
            )
            if res.rejects:
                f = res.rejects[0]
                raise RuntimeError(
                    f"generated CDR {f.record_id} was rejected by the engine: {f.code} {f.message}"
                )
            for row in res.rows:
                out[idx[row["line"] - 1]] = row
        assert all(r is not None for r in out)
        return out  # type: ignore[return-value]
