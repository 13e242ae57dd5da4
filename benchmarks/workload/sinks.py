"""Sinks: the NDJSON and flat Parquet writers, tariff and contracts files, counts and labels."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.workload.jsontext import dumps_indented
from benchmarks.workload.plan import CONFLICT, CREDIT, DUP, MALFORMED, ORIG, REISSUE, Plan
from benchmarks.workload.sessions import Block
from benchmarks.workload.specs import MALFORMED_CODES, MALFORMED_KINDS, VERSIONS
from benchmarks.workload.world import World
from pricing.flat import arrow_schema

# ---- writers ------------------------------------------------------------------------------------


class NdjsonSink:
    """One NDJSON file per OCPI version, written through temporary files (renamed at the end)."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files
        self.handles = {}
        self.first_written: dict[str, bool] = {}
        self.count: Counter[str] = Counter()
        for v, path in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            self.handles[v] = open(f"{path}.tmp", "wb")  # closed in close()/abort()
            self.first_written[v] = False

    def write(self, version: str, lines: list[tuple[bytes, bool, int]]) -> list[tuple[int, int]]:
        """``lines``: (bytes, clean, key); returns (key, 1-based line number) for each line.

        A file never starts with a broken record: its first record fixes the file's OCPI version.
        """
        if not lines:
            return []
        if not self.first_written[version]:
            k = next((j for j, (_, clean, _) in enumerate(lines) if clean), None)
            if k is not None and k > 0:
                lines = [lines[k], *lines[:k], *lines[k + 1 :]]
            self.first_written[version] = True
        self.handles[version].write(b"".join(raw + b"\n" for raw, _, _ in lines))
        first = self.count[version] + 1
        self.count[version] += len(lines)
        return [(key, first + j) for j, (_, _, key) in enumerate(lines)]

    def close(self) -> None:
        for v, fh in self.handles.items():
            fh.close()
            os.replace(f"{self.files[v]}.tmp", self.files[v])

    def abort(self) -> None:
        for v, fh in self.handles.items():
            fh.close()
            Path(f"{self.files[v]}.tmp").unlink(missing_ok=True)


class ParquetSink:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.schema = arrow_schema(optional=True)
        self.writer = pq.ParquetWriter(f"{path}.tmp", self.schema, compression="zstd")
        self.records = 0

    def write(self, table: Any, records: int) -> None:
        self.writer.write_table(table)
        self.records += records

    def close(self) -> None:
        self.writer.close()
        os.replace(f"{self.path}.tmp", self.path)

    def abort(self) -> None:
        self.writer.close()
        Path(f"{self.path}.tmp").unlink(missing_ok=True)


@dataclass
class FlatReported:
    """Reported totals per record of a block (cents; ``has_*`` False = null), and the records whose
    billed price hit the tariff's min/max (the ``min_max_applied`` label)."""

    excl_cents: np.ndarray
    incl_cents: np.ndarray
    has_excl: np.ndarray
    has_incl: np.ndarray
    minmax: list[int]


def _dict_strings(indices: np.ndarray, values: list[str | None]) -> Any:
    """A string column from small-integer codes into ``values`` (None → null)."""
    return pa.array(values, pa.string()).take(pa.array(np.asarray(indices, dtype=np.int32)))


def flat_table(
    world: World,
    blk: Block,
    plan: Plan,
    ids: Any,
    reported: FlatReported | None,
) -> Any:
    """The block's records in the flat layout of :mod:`pricing.flat` (vectorized over periods)."""
    ent_i = plan.i
    counts = blk.p_off[ent_i + 1] - blk.p_off[ent_i]
    row_ent = np.repeat(np.arange(len(plan)), counts)
    first = np.cumsum(counts) - counts
    period_idx = np.arange(len(row_ent)) - first[row_ent]
    prow = blk.p_off[ent_i][row_ent] + period_idx
    sess = ent_i[row_ent]
    vidx = plan.render[row_ent]
    is211 = vidx == 0
    cpo = blk.cpo[sess]
    ncpo = len(world.cpos)
    nem = len(world.emsps)
    ent_kind = plan.malformed[row_ent]

    def ms(x: np.ndarray) -> Any:
        return pa.array(x * 1000, pa.int64())

    def opt(values: np.ndarray, mask: np.ndarray) -> Any:
        return pa.array(values, pa.int64(), mask=mask)

    tariff_col = _tariff_ids(world, cpo, blk.is_dc[sess], vidx, ent_kind)
    currency_col = _currencies(world, cpo, ent_kind)

    energy = blk.p_energy_wh[prow] * 1000
    neg_first = (ent_kind == MALFORMED_KINDS.index("negative_volume")) & (period_idx == 0)
    energy = np.where(neg_first, -np.maximum(energy, 1000), energy)
    park = blk.p_park[prow]
    dur = blk.p_dur[prow] * 1000
    has_power = (blk.p_pmax_w[prow] >= 0) & ~is211

    take = pa.array(row_ent)
    id_arr = ids.take(take)
    dec = pa.decimal128(38, 6)
    n = len(row_ent)
    if reported is None:
        rep_excl = rep_incl = pa.nulls(n, dec)
    else:
        rep_excl = _decimals(reported.excl_cents, reported.has_excl).take(take)
        rep_incl = _decimals(reported.incl_cents, reported.has_incl).take(take)
    columns = {
        "cdr_id": id_arr,
        "ocpi_version": _dict_strings(vidx, list(VERSIONS)),
        "country_code": _dict_strings(np.where(is211, ncpo, cpo), [cp.country for cp in world.cpos] + [None]),
        "party_id": _dict_strings(np.where(is211, ncpo, cpo), [cp.party for cp in world.cpos] + [None]),
        "emsp_country_code": _dict_strings(
            np.where(is211, nem, blk.emsp[sess]), [em.country for em in world.emsps] + [None]
        ),
        "emsp_party_id": _dict_strings(
            np.where(is211, nem, blk.emsp[sess]), [em.party for em in world.emsps] + [None]
        ),
        "cdr_start_ms": ms(blk.start[sess]),
        "cdr_end_ms": ms(blk.end[sess]),
        "currency": currency_col,
        "time_zone": _dict_strings(cpo, [cp.zone for cp in world.cpos]),
        "location_country": _dict_strings(cpo, [cp.country3 for cp in world.cpos]),
        "period_idx": pa.array(period_idx.astype(np.int32), pa.int32()),
        "period_start_ms": ms(blk.p_start[prow]),
        "tariff_id": tariff_col,
        "energy_mwh": opt(energy, park),
        "time_ms": opt(dur, park),
        "parking_ms": opt(dur, ~park),
        "reservation_ms": pa.nulls(n, pa.int64()),
        "min_power_w": opt(blk.p_pmin_w[prow], ~has_power),
        "max_power_w": opt(blk.p_pmax_w[prow], ~has_power),
        "min_current_ma": pa.nulls(n, pa.int64()),
        "max_current_ma": pa.nulls(n, pa.int64()),
        "reported_total_excl": rep_excl,
        "reported_total_incl": rep_incl,
        **settlement_columns(world, blk, plan, ids, row_ent, is211),
    }
    return pa.Table.from_arrays(list(columns.values()), schema=_flat_schema())


def _decimals(cents: np.ndarray, valid: np.ndarray) -> Any:
    """Cents as a decimal128(38, 6) column (null where not ``valid``), built from exact integers."""
    e6 = np.where(valid, cents, 0).astype(np.int64) * 10_000
    words = np.stack([e6, e6 >> 63], axis=1).astype(np.int64)  # little-endian 128-bit two's complement
    mask = pa.array(valid, pa.bool_())
    dec = pa.decimal128(38, 6)
    return pa.Array.from_buffers(dec, len(e6), [mask.buffers()[1], pa.py_buffer(words.tobytes())])


def _tariff_ids(
    world: World, cpo: np.ndarray, is_dc: np.ndarray, vidx: np.ndarray, ent_kind: np.ndarray
) -> Any:
    """Tariff ids: (cpo, is_dc, version) plus one unknown id per CPO for the malformed records."""
    tariff_vals: list[str | None] = []
    for c in range(len(world.cpos)):
        for dc in (0, 1):
            for v in VERSIONS:
                tariff_vals.append(world.tariffs[(c, dc, v)]["id"])
    unknown_base = len(tariff_vals)
    tariff_vals += [f"{cp.party}-XX-221" for cp in world.cpos]
    t_idx = (cpo * 2 + is_dc) * 3 + vidx
    t_idx = np.where(ent_kind == MALFORMED_KINDS.index("unknown_tariff"), unknown_base + cpo, t_idx)
    return _dict_strings(t_idx, tariff_vals)


def _currencies(world: World, cpo: np.ndarray, ent_kind: np.ndarray) -> Any:
    """The CPO's currency; the other one for a wrong-currency record, null for a missing one."""
    currencies = sorted({cp.currency for cp in world.cpos} | {"EUR", "GBP"})
    cur = np.array([currencies.index(cp.currency) for cp in world.cpos])[cpo]
    wrong = np.array([currencies.index("EUR" if cp.currency != "EUR" else "GBP") for cp in world.cpos])[cpo]
    cur = np.where(ent_kind == MALFORMED_KINDS.index("wrong_currency"), wrong, cur)
    cur_vals: list[str | None] = [*currencies, None]
    cur = np.where(ent_kind == MALFORMED_KINDS.index("missing_field"), len(currencies), cur)
    return _dict_strings(cur, cur_vals)


def settlement_columns(
    world: World, blk: Block, plan: Plan, ids: Any, row_ent: np.ndarray, is211: np.ndarray
) -> dict[str, Any]:
    """The optional settlement columns of the flat layout: location, contract, credit flags."""
    n = len(plan)
    sess = plan.i

    def strings(keys: np.ndarray, make: Any) -> Any:  # one Python call per distinct key
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        return pa.array([make(*map(int, u)) for u in uniq], pa.string()).take(pa.array(inv.reshape(-1)))

    locations = strings(np.stack([blk.cpo[sess], blk.loc[sess]], 1), world.location_id)
    contracts = strings(np.stack([blk.emsp[sess], blk.contract[sess]], 1), lambda e, c: world.token(e, c)[1])
    credit = plan.kind == CREDIT
    # a credit's id is its original's id + "-C"
    ref = pc.utf8_slice_codeunits(ids, 0, -2)
    take = pa.array(row_ent)
    contract = contracts.take(take)
    # 2.1.1 records carry the eMAID without separators (auth_id), as in the NDJSON rendering
    contract = pc.if_else(pa.array(is211), pc.replace_substring(contract, "-", ""), contract)
    return {
        "location_id": locations.take(take),
        "contract_id": contract,
        "credit": pa.array(credit, pa.bool_()).take(take),
        "credit_reference_id": pc.if_else(pa.array(credit), ref, pa.nulls(n, pa.string())).take(take),
    }


def _flat_schema() -> Any:
    return arrow_schema(optional=True)


def flat_ids(world: World, blk: Block, plan: Plan, width: int) -> Any:
    """CDR ids of the records (``<PARTY>-<yymm>-<number>``, credits ``-C``, re-issues ``-R``)."""
    yymm = world.cfg.month[2:4] + world.cfg.month[5:7]
    prefixes = pa.array([f"{cp.party}-{yymm}-" for cp in world.cpos]).take(pa.array(blk.cpo[plan.i]))
    numbers = pc.utf8_lpad(pc.cast(pa.array(blk.seq[plan.i]), pa.string()), width, "0")
    suffix = np.where(plan.kind == CREDIT, 1, np.where(plan.kind == REISSUE, 2, 0))
    suffixes = pa.array(["", "-C", "-R"]).take(pa.array(suffix))
    return pc.binary_join_element_wise(prefixes, numbers, suffixes, "")


# ---- the run ------------------------------------------------------------------------------------


def write_tariffs(world: World, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    wanted = set(world.cfg.versions)
    for (_, _, v), tariff in sorted(world.tariffs.items(), key=lambda kv: kv[1]["id"]):
        if v not in wanted:
            continue
        path = directory / f"{tariff['id']}.json"
        text = dumps_indented(tariff)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        paths.append(path)
    return paths


def hash_text(text: str) -> int:
    """A stable number of a text (Python's hash() changes per process)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def contracts_json(world: World) -> dict[str, Any]:
    """A contracts file for the generated parties (schema: :mod:`settlement.contracts`)."""
    cpos = {c.key for c in world.cpos}
    emsps = {e.key for e in world.emsps}
    pairs: dict[str, dict[str, Any]] = {}
    for cpo, emsp, terms in (
        ("NL*ECO", "DE*MSP", {"roaming_fee_per_session": "0.15", "payment_terms_days": 14}),
        ("DE*VLT", "NL*TNM", {"roaming_fee_percent": "1.5", "hub_fee_per_session": "0.05"}),
        ("GB*PLG", "GB*DRV", {"reporting_currency": "GBP", "payment_terms_days": 45}),
        ("NL*ECO", "FR*EMO", {"basis": "recomputed", "disputed": "include"}),
    ):
        if cpo in cpos and emsp in emsps:
            pairs[f"{cpo}/{emsp}"] = terms
    locations = {
        world.location_id(c, loc): cpo.key for c, cpo in enumerate(world.cpos) for loc in range(world.n_loc)
    }
    out: dict[str, Any] = {
        "_comment": (
            "Generated by roamledger generate. Pair keys are CPO/EMSP as country*party. OCPI 2.1.1 CDRs "
            "carry no party ids: parties_211 maps every location id to its CPO, and the eMSP is found by "
            "contract prefix: the first five characters of the auth_id (the eMAID without separators: "
            "country code + provider id, e.g. NLTNMC123456789 -> NLTNM)."
        ),
        "statement_time_zone": "Europe/Amsterdam",
        "default": {
            "basis": "reported",
            "tolerance": "0.01",
            "disputed": "exclude",
            "roaming_fee_per_session": "0.00",
            "roaming_fee_percent": "0",
            "hub_fee_per_session": "0.00",
            "payment_terms_days": 30,
            "reporting_currency": "EUR",
        },
        "fx_rates": {"GBP/EUR": "1.1650"} if any(c.currency == "GBP" for c in world.cpos) else {},
        # the CPOs' VAT rates by country: 2.1.1 CDRs carry none, the statement takes these
        "vat_rates": {c.country: c.vat for c in sorted(world.cpos, key=lambda c: c.country)},
        # invoice header of each CPO (generated, not real): legal name, address, VAT id
        "parties": {
            c.key: {
                "name": c.name,
                "address": f"{c.streets[0]} 1, {c.cities[0][1]} {c.cities[0][0]}",
                "vat_id": f"{c.country}{abs(hash_text(c.key)) % 10**9:09d}",
            }
            for c in sorted(world.cpos, key=lambda c: c.key)
        },
        "pairs": pairs,
        "parties_211": {
            "emsp_by_contract_prefix": {e.prefix: e.key for e in world.emsps},
            "cpo_by_location": locations,
        },
    }
    return out


@dataclass
class Stats:
    sessions: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    expected_rejects: Counter[str] = field(default_factory=Counter)
    credits: int = 0
    reissues: int = 0
    duplicates_identical: int = 0
    duplicates_conflicting: int = 0
    overcharged: int = 0
    straddling: int = 0
    min_max_applied: int = 0
    dst_night_sessions: int = 0
    sessions_ending_before_month: int = 0
    sessions_ending_after_month: int = 0
    lines_ending_before_month: int = 0
    lines_ending_after_month: int = 0
    lines: Counter[str] = field(default_factory=Counter)
    lines_by_version: Counter[str] = field(default_factory=Counter)
    periods: int = 0

    def as_dict(self, world: World, files: dict[str, Path]) -> dict[str, Any]:
        read = sum(self.lines.values())
        rejected = sum(self.expected_rejects.values())
        return {
            "month": world.cfg.month,
            "seed": world.cfg.seed,
            "statement_time_zone": "Europe/Amsterdam",
            "files": {str(path): (read if v == "*" else self.lines[v]) for v, path in files.items()},
            "lines_by_ocpi_version": dict(sorted(self.lines_by_version.items())),
            "read": read,
            "expected_priced": read - rejected,
            "expected_rejected": rejected,
            "expected_rejects_by_code": dict(sorted(self.expected_rejects.items())),
            "sessions": self.sessions,
            "charging_periods": self.periods,
            "malformed": sum(self.malformed.values()),
            "malformed_by_kind": dict(sorted(self.malformed.items())),
            "credits": self.credits,
            "reissues": self.reissues,
            "duplicates_identical": self.duplicates_identical,
            "duplicates_conflicting": self.duplicates_conflicting,
            "overcharged": self.overcharged,
            "straddling_sessions": self.straddling,
            "min_max_applied": self.min_max_applied,
            "dst_night_sessions": self.dst_night_sessions,
            "out_of_month_sessions": {
                "before": self.sessions_ending_before_month,
                "after": self.sessions_ending_after_month,
            },
            "out_of_month_lines": {
                "before": self.lines_ending_before_month,
                "after": self.lines_ending_after_month,
            },
        }


def expected_code(kind: str, version: str) -> str:
    """The reject code ``roamledger price`` gives a malformed record of this kind and version."""
    if kind == "unknown_tariff" and version == "2.1.1":
        return "TARIFF_AMBIGUOUS"  # 2.1.1 CDRs name no CPO: the tariff is guessed from all given
    return MALFORMED_CODES[kind]


def count_and_label(
    stats: Stats, world: World, blk: Block, plan: Plan, lo: int, hi: int, want_labels: bool
) -> dict[int, list[str]]:
    """Update the counts; the labels of the special records (ground truth for tests/reconciliation)."""
    kind, i = plan.kind, plan.i
    mal = kind == MALFORMED
    orig = kind == ORIG
    end = blk.end[i]
    before = ~mal & (end <= lo)
    after = ~mal & (end > hi)
    dst = np.zeros(blk.n, dtype=bool)
    for c, days in enumerate(world.dst_days):
        z = world.zones[c]
        for day in days:
            local_start = z.to_local(blk.start)
            local_end = z.to_local(blk.end)
            dst |= (blk.cpo == c) & (local_start < day + 3 * 3600) & (local_end > day + 2 * 3600)
    straddles = blk.straddles[i]
    over = plan.over & ~mal
    for v, count in zip(*np.unique(plan.version, return_counts=True), strict=True):
        stats.lines[VERSIONS[v]] += int(count)
    for v, count in zip(*np.unique(plan.render, return_counts=True), strict=True):
        stats.lines_by_version[VERSIONS[v]] += int(count)
    for m, count in zip(*np.unique(plan.malformed[mal], return_counts=True), strict=True):
        name = MALFORMED_KINDS[m]
        stats.malformed[name] += int(count)
    for k in np.nonzero(mal)[0]:
        stats.expected_rejects[
            expected_code(MALFORMED_KINDS[plan.malformed[k]], VERSIONS[plan.render[k]])
        ] += 1
    stats.sessions += int(orig.sum())
    stats.periods += int((blk.p_off[i + 1] - blk.p_off[i])[orig].sum())
    stats.overcharged += int((over & orig).sum())
    stats.straddling += int((straddles & orig).sum())
    stats.dst_night_sessions += int((dst[i] & orig).sum())
    stats.sessions_ending_before_month += int((before & orig).sum())
    stats.sessions_ending_after_month += int((after & orig).sum())
    stats.lines_ending_before_month += int(before.sum())
    stats.lines_ending_after_month += int(after.sum())
    stats.credits += int((kind == CREDIT).sum())
    stats.reissues += int((kind == REISSUE).sum())
    stats.duplicates_identical += int((kind == DUP).sum())
    stats.duplicates_conflicting += int((kind == CONFLICT).sum())
    if not want_labels:
        return {}
    billed = kind != REISSUE
    special = mal | before | after | ~orig | (over & billed) | straddles | dst[i]
    names = {CREDIT: "credit", REISSUE: "reissue", DUP: "duplicate", CONFLICT: "conflicting_duplicate"}
    out: dict[int, list[str]] = {}
    for k in np.nonzero(special)[0].tolist():
        if mal[k]:
            out[k] = [f"malformed:{MALFORMED_KINDS[plan.malformed[k]]}"]
            continue
        labels = out.setdefault(k, [])
        if before[k]:
            labels.append("out_of_month_before")
        if after[k]:
            labels.append("out_of_month_after")
        if kind[k] in names:
            labels.append(names[kind[k]])
        if over[k] and billed[k]:
            labels.append("overcharged")
        if straddles[k]:
            labels.append("straddling")
        if dst[i[k]]:
            labels.append("dst_night")
    return out
