"""The record plan of a block: originals, credits, re-issues, duplicates, malformed records."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from benchmarks.workload.config import Config
from benchmarks.workload.sessions import Block
from benchmarks.workload.specs import FLAT_MALFORMED_KINDS, MALFORMED_KINDS, VERSIONS
from benchmarks.workload.world import World

# ---- the record plan of a block: originals, credits, re-issues, duplicates, malformed ------------


@dataclass
class Entry:
    send: int  # send time (UTC s): the stream is ordered by it
    order: int  # tie-breaker
    i: int  # session index in the block
    kind: str  # orig | credit | reissue | dup | conflict | malformed
    malformed: str | None = None
    over: bool = False  # an original priced with the wrong tariff
    delta: Decimal = Decimal(0)
    version: str = ""  # version of the file the record goes to
    render: str = ""  # version the record is written in


KINDS = ("orig", "credit", "reissue", "dup", "conflict", "malformed")
ORIG, CREDIT, REISSUE, DUP, CONFLICT, MALFORMED = range(6)


@dataclass
class Plan:
    """The records of a block in stream order (columns; one row per record)."""

    send: np.ndarray  # send time (UTC s)
    i: np.ndarray  # session index in the block
    kind: np.ndarray  # index into KINDS
    malformed: np.ndarray  # index into MALFORMED_KINDS, -1 = well-formed
    over: np.ndarray  # the session's original was priced with the wrong tariff
    delta_cents: np.ndarray  # conflicting resend: total_cost + delta
    version: np.ndarray  # index into VERSIONS: the file the record goes to
    render: np.ndarray  # index into VERSIONS: the version the record is written in

    def __len__(self) -> int:
        return len(self.i)

    def entries(self) -> list[Entry]:
        return [
            Entry(
                send=int(self.send[k]),
                order=k,
                i=int(self.i[k]),
                kind=KINDS[self.kind[k]],
                malformed=MALFORMED_KINDS[self.malformed[k]] if self.malformed[k] >= 0 else None,
                over=bool(self.over[k]) and self.kind[k] == ORIG,
                delta=Decimal(int(self.delta_cents[k])) / 100,
                version=VERSIONS[self.version[k]],
                render=VERSIONS[self.render[k]],
            )
            for k in range(len(self))
        ]


def choose_malformed(cfg: Config) -> dict[int, str]:
    """Global session number → malformed kind (K distinct sessions, kinds in rotation)."""
    total = cfg.cdrs + cfg.malformed
    if not cfg.malformed:
        return {}
    rng = np.random.default_rng([cfg.seed, 4])
    picked: list[int] = []
    seen: set[int] = set()
    while len(picked) < cfg.malformed:
        for x in rng.integers(0, total, 2 * cfg.malformed).tolist():
            if x not in seen and len(picked) < cfg.malformed:
                seen.add(x)
                picked.append(x)
    kinds = MALFORMED_KINDS if cfg.fmt == "ndjson" else FLAT_MALFORMED_KINDS
    return {g: kinds[k % len(kinds)] for k, g in enumerate(sorted(picked))}


def plan_block(world: World, blk: Block, block_idx: int, malformed: dict[int, str]) -> Plan:
    """Originals, credits, re-issues, duplicates and malformed records of a block, by send time."""
    cfg = world.cfg
    rng = np.random.default_rng([cfg.seed, 3, block_idx])
    n = blk.n
    u_over, u_credit, u_reissue, u_dup, u_conf = (rng.random(n) for _ in range(5))
    d_credit = rng.integers(2 * 86400, 12 * 86400, n)
    d_reissue = rng.integers(3600, 2 * 86400, n)
    d_dup = rng.integers(600, 3 * 86400, n)
    delta = rng.integers(10, 201, n)
    updated = blk.end + 60 + (blk.seq * 37) % 1800
    vmap = np.array([VERSIONS.index(v) for v in cfg.versions], dtype=np.int64)
    fv = vmap[blk.version]
    mal = np.full(n, -1, dtype=np.int64)
    g0 = int(blk.seq[0]) if n else 0
    for g, kind in malformed.items():
        if g0 <= g < g0 + n:
            mal[g - g0] = MALFORMED_KINDS.index(kind)
    later = [VERSIONS.index(v) for v in cfg.versions if v != "2.1.1"]
    if later:  # an unknown tariff id is only unambiguous where the CDR names its CPO
        fv = np.where((mal == MALFORMED_KINDS.index("unknown_tariff")) & (fv == 0), later[0], fv)
    render = np.where(mal == MALFORMED_KINDS.index("version_mismatch"), np.where(fv != 0, 0, 1), fv)
    clean = mal < 0
    over = clean & (u_over < cfg.overcharge_rate) if cfg.run_engine else np.zeros(n, dtype=bool)
    credit = clean & (fv != 0) & (u_credit < cfg.credit_rate * np.where(over, 25, 1))
    reissue = credit & (over | (u_reissue < 0.5))
    dup = clean & (u_dup < cfg.duplicate_rate)
    conflict = dup & (u_conf < 0.25)
    idx = np.arange(n, dtype=np.int64)
    parts = [
        (idx, updated, np.where(clean, ORIG, MALFORMED), 0),
        (idx[credit], (updated + d_credit)[credit], np.full(int(credit.sum()), CREDIT), 1),
        (idx[reissue], (updated + d_credit + d_reissue)[reissue], np.full(int(reissue.sum()), REISSUE), 2),
        (idx[dup], (updated + d_dup)[dup], np.where(conflict[dup], CONFLICT, DUP), 3),
    ]
    i = np.concatenate([p[0] for p in parts])
    send = np.concatenate([p[1] for p in parts])
    kind = np.concatenate([p[2] for p in parts])
    sub = np.concatenate([np.full(len(p[0]), p[3]) for p in parts])
    o = np.lexsort((i * 4 + sub, send))
    i, send, kind = i[o], send[o], kind[o]
    return Plan(
        send=send,
        i=i,
        kind=kind.astype(np.int64),
        malformed=np.where(kind == MALFORMED, mal[i], -1),
        over=over[i],
        delta_cents=np.where(kind == CONFLICT, delta[i], 0),
        version=fv[i],
        render=render[i],
    )


def is_overcharged(en: Entry) -> bool:
    return en.kind == "orig" and en.over
