"""The run: blocks built in order (optionally in worker processes) and written to the sinks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.workload.config import Config
from benchmarks.workload.jsontext import dumps
from benchmarks.workload.plan import KINDS, MALFORMED, ORIG, Plan, choose_malformed, plan_block
from benchmarks.workload.render import Renderer, render_block
from benchmarks.workload.reported import Engine, flat_reported
from benchmarks.workload.sessions import Block, generate_block
from benchmarks.workload.sinks import (
    FlatReported,
    NdjsonSink,
    ParquetSink,
    Stats,
    contracts_json,
    count_and_label,
    expected_code,
    flat_ids,
    flat_table,
    write_tariffs,
)
from benchmarks.workload.specs import BLOCK, MALFORMED_KINDS, VERSIONS
from benchmarks.workload.world import World, build_world


def _month_bounds_utc(world: World) -> tuple[int, int]:
    z = world.statement_zone
    lo = int(z.to_utc(np.array([world.month_start_naive]))[0])
    hi = int(z.to_utc(np.array([world.next_month_start_naive]))[0])
    return lo, hi


@dataclass
class BlockResult:
    """What one block contributes: sessions, the record plan and (when rendered) the records."""

    blk: Block
    plan: Plan
    lines: list[tuple[str, bytes, bool]]
    reported: FlatReported | None
    minmax: list[int]


_WORKER: dict[str, Any] = {}


def build_block(cfg: Config, block_idx: int, malformed: dict[int, str]) -> BlockResult:
    """Generate, render and price one block (in this process or a worker; pure given ``cfg``)."""
    if _WORKER.get("cfg") != cfg:
        world = build_world(cfg)
        _WORKER.update(cfg=cfg, world=world, engine=Engine(world) if cfg.run_engine else None)
    world, engine = _WORKER["world"], _WORKER["engine"]
    total = cfg.cdrs + cfg.malformed
    g0 = block_idx * BLOCK
    blk = generate_block(world, block_idx, g0, min(BLOCK, total - g0))
    plan = plan_block(world, blk, block_idx, malformed)
    if cfg.fmt == "parquet":
        if engine is None:
            return BlockResult(blk, plan, [], None, [])
        reported = flat_reported(engine, world, blk, plan, id_width(cfg))
        return BlockResult(blk, plan, [], reported, reported.minmax)
    lines, minmax = render_block(world, Renderer(world, id_width(cfg)), engine, blk, plan.entries())
    return BlockResult(blk, plan, lines, None, minmax)


def id_width(cfg: Config) -> int:
    return max(7, len(str(max(cfg.cdrs + cfg.malformed - 1, 0))))


def iter_block_results(cfg: Config, malformed: dict[int, str], jobs: int) -> Iterator[BlockResult]:
    """Blocks in order; with ``jobs > 1`` a process pool works a few blocks ahead."""
    n_blocks = -(-(cfg.cdrs + cfg.malformed) // BLOCK)
    if jobs <= 1 or n_blocks <= 1:
        for b in range(n_blocks):
            yield build_block(cfg, b, malformed)
        return

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        pending = []
        nxt = 0
        while nxt < n_blocks or pending:
            while nxt < n_blocks and len(pending) < 2 * jobs:
                pending.append(pool.submit(build_block, cfg, nxt, malformed))
                nxt += 1
            yield pending.pop(0).result()


def generate(cfg: Config, progress: Any = None, jobs: int = 1) -> dict[str, Any]:
    """Write the CDR file(s) and tariffs of ``cfg``; return the summary (counts).

    ``jobs`` worker processes build blocks ahead (the output does not depend on it).
    """
    world = build_world(cfg)
    files = cfg.version_paths() if cfg.fmt == "ndjson" else {"*": cfg.out}
    tariff_dir = cfg.tariffs_out if cfg.tariffs_out is not None else cfg.out.parent / "tariffs"
    write_tariffs(world, tariff_dir)
    if cfg.contracts_out is not None:
        cfg.contracts_out.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(contracts_json(world), indent=2, ensure_ascii=False) + "\n"
        cfg.contracts_out.write_text(text, encoding="utf-8")
    malformed = choose_malformed(cfg)
    total = cfg.cdrs + cfg.malformed
    width = id_width(cfg)
    stats = Stats()
    lo, hi = _month_bounds_utc(world)
    sink: Any = NdjsonSink(files) if cfg.fmt == "ndjson" else ParquetSink(cfg.out)
    labels_out: list[tuple[str, int, bytes]] = []
    done = 0
    try:
        for res in iter_block_results(cfg, malformed, jobs):
            blk, plan = res.blk, res.plan
            labels = count_and_label(stats, world, blk, plan, lo, hi, cfg.labels is not None)
            ids = flat_ids(world, blk, plan, width)
            for k in res.minmax:
                labels.setdefault(k, []).append("min_max_applied")
            stats.min_max_applied += sum(1 for k in res.minmax if plan.kind[k] == ORIG)
            if cfg.fmt == "ndjson":
                where: dict[int, tuple[Path, int]] = {}
                for v in cfg.versions:
                    mine = [(raw, clean, k) for k, (fv, raw, clean) in enumerate(res.lines) if fv == v]
                    for k, line_no in sink.write(v, mine):
                        where[k] = (files[v], line_no)
            else:
                first = sink.records + 1
                sink.write(flat_table(world, blk, plan, ids, res.reported), len(plan))
                where = {k: (cfg.out, first + k) for k in labels}
            for k in sorted(labels):
                row: dict[str, Any] = {
                    "file": str(where[k][0]),
                    "line": where[k][1],
                    "cdr_id": ids[k].as_py(),
                }
                row["kind"] = KINDS[plan.kind[k]]
                row["labels"] = labels[k]
                if plan.kind[k] == MALFORMED:
                    row["expected_code"] = expected_code(
                        MALFORMED_KINDS[plan.malformed[k]], VERSIONS[plan.render[k]]
                    )
                labels_out.append((row["file"], row["line"], dumps(row)))
            done += blk.n
            if progress:
                progress(done, total)
    except BaseException:
        sink.abort()
        raise
    sink.close()
    summary = stats.as_dict(world, files)
    summary["tariffs"] = str(tariff_dir)
    summary["format"] = cfg.fmt
    summary["reported_totals"] = cfg.run_engine
    if cfg.labels is not None:
        cfg.labels.parent.mkdir(parents=True, exist_ok=True)
        labels_out.sort(key=lambda t: (t[0], t[1]))
        cfg.labels.write_bytes(b"".join(raw + b"\n" for _, _, raw in labels_out))
        summary["labels"] = str(cfg.labels)
    if cfg.summary is not None:
        cfg.summary.parent.mkdir(parents=True, exist_ok=True)
        cfg.summary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def iter_blocks(cfg: Config) -> Iterator[tuple[World, Block]]:
    """The generated sessions block by block (for benchmarks that want arrays, not files)."""
    world = build_world(cfg)
    total = cfg.cdrs + cfg.malformed
    for block_idx, g0 in enumerate(range(0, total, BLOCK)):
        yield world, generate_block(world, block_idx, g0, min(BLOCK, total - g0))
