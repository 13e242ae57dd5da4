"""The settings of one ``roamledger generate`` run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.workload.specs import VERSIONS
from pricing.errors import InputError

# ---- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    cdrs: int
    seed: int = 0
    out: Path = Path("cdrs.ndjson")
    month: str = "2026-10"
    versions: tuple[str, ...] = ("2.2.1",)
    version_weights: tuple[float, ...] = (1.0,)
    cpos: int = 3
    emsps: int = 4
    malformed: int = 0
    overcharge_rate: float = 0.01
    credit_rate: float = 0.003
    duplicate_rate: float = 0.002
    out_of_month_rate: float = 0.002
    straddle_rate: float = 0.01
    dst_rate: float = 0.005
    dc_share: float = 0.3
    tariffs_out: Path | None = None
    embed_tariffs: bool = False
    reported: str = "yes"  # yes | no (the flat layout only: OCPI CDRs require total_cost)
    summary: Path | None = None
    labels: Path | None = None
    contracts_out: Path | None = None

    @property
    def fmt(self) -> str:
        suffix = self.out.suffix.lower()
        if suffix in (".ndjson", ".jsonl"):
            return "ndjson"
        if suffix == ".parquet":
            return "parquet"
        raise InputError(
            f"--out {self.out}: unknown format. Hint: end the name in .ndjson, .jsonl or .parquet"
        )

    @property
    def run_engine(self) -> bool:
        """Reported totals are computed (by the kernel, at any size) unless ``--no-reported``."""
        return self.reported != "no"

    def version_paths(self) -> dict[str, Path]:
        """NDJSON: the first version in ``FILE``, the others in ``<stem>.v<digits><suffix>``."""
        out = {self.versions[0]: self.out}
        for v in self.versions[1:]:
            out[v] = self.out.with_name(f"{self.out.stem}.v{v.replace('.', '')}{self.out.suffix}")
        return out


def parse_versions(text: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """``2.2.1:60,2.1.1:10`` → versions in order with weights (default weight 1)."""
    versions: list[str] = []
    weights: list[float] = []
    for part in text.split(","):
        name, _, weight = part.strip().partition(":")
        if name not in VERSIONS:
            raise InputError(f"--versions: unknown OCPI version {name!r}. Hint: use {', '.join(VERSIONS)}")
        if name in versions:
            raise InputError(f"--versions: {name} is listed twice")
        try:
            w = float(weight) if weight else 1.0
        except ValueError as exc:
            raise InputError(
                f"--versions: weight {weight!r} is not a number. Hint: 2.2.1:60,2.3.0:40"
            ) from exc
        if w <= 0:
            raise InputError(f"--versions: the weight of {name} must be positive")
        versions.append(name)
        weights.append(w)
    total = sum(weights)
    return tuple(versions), tuple(w / total for w in weights)
