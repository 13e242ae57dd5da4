"""The world of a month: parties, locations, tariffs and time zones (vectorized conversions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from benchmarks.workload.config import Config
from benchmarks.workload.specs import CPOS, EMSPS, GRID, INF, VERSIONS, Cpo, Emsp
from benchmarks.workload.tariffs import phase_boundaries, tariff_json, wrong_tariff_json

# ---- time zones (vectorized) --------------------------------------------------------------------


class ZoneTable:
    """UTC offsets of one IANA zone as a transition table, for vectorized conversions (seconds)."""

    def __init__(self, name: str, lo_s: int, hi_s: int) -> None:
        tz = ZoneInfo(name)
        self.name = name

        def off(t: int) -> int:
            o = datetime.fromtimestamp(t, tz).utcoffset()
            assert o is not None
            return int(o.total_seconds())

        hours = range(lo_s - lo_s % 3600, hi_s + 3600, 3600)
        trans, offs = [-INF], [off(hours[0])]
        prev = offs[0]
        for h in hours:
            o = off(h)
            if o != prev:
                lo, hi = h - 3600, h  # bisect to the second
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if off(mid) == prev:
                        lo = mid
                    else:
                        hi = mid
                trans.append(hi)
                offs.append(o)
                prev = o
        self.trans = np.array(trans, dtype=np.int64)
        self.offs = np.array(offs, dtype=np.int64)

    def offset(self, utc_s: np.ndarray) -> np.ndarray:
        return self.offs[np.searchsorted(self.trans, utc_s, side="right") - 1]

    def to_utc(self, naive_s: np.ndarray) -> np.ndarray:
        """Local wall time (seconds, as if UTC) → UTC; a DST fold takes the later, a gap shifts."""
        return naive_s - self.offset(naive_s - self.offset(naive_s))

    def to_local(self, utc_s: np.ndarray) -> np.ndarray:
        return utc_s + self.offset(utc_s)


def _naive(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


# ---- the world: parties, locations, tariffs, zones ----------------------------------------------


@dataclass
class World:
    cfg: Config
    cpos: tuple[Cpo, ...]
    emsps: tuple[Emsp, ...]
    zones: list[ZoneTable]
    month_start_naive: int
    month_days: int
    prev_month_start_naive: int
    next_month_start_naive: int
    n_loc: int
    n_contracts: int
    loc_is_dc: np.ndarray  # [cpo, loc] bool
    loc_pnom_w: np.ndarray  # [cpo, loc] nominal kW of the site
    loc_evses: np.ndarray  # [cpo, loc]
    loc_city: np.ndarray
    loc_street: np.ndarray
    loc_house: np.ndarray
    loc_lat_e6: np.ndarray
    loc_lon_e6: np.ndarray
    tariffs: dict[tuple[int, int, str], dict[str, Any]]  # (cpo, is_dc, version) → OCPI JSON
    wrong_tariffs: dict[tuple[int, int, str], dict[str, Any]]
    clock_min: np.ndarray  # [tariff, phase, 3] minutes, -1 = none
    dur_s: np.ndarray  # [tariff, phase] seconds, -1 = none
    kwh_wh: np.ndarray  # [tariff] Wh, -1 = none
    power_w: np.ndarray  # [tariff] W, -1 = none
    dst_days: list[list[int]]  # per CPO: naive local midnights of DST-change days in the month
    valid_from: str
    statement_zone: ZoneTable = field(init=False)

    def location_id(self, c: int, loc: int) -> str:
        return f"LOC-{self.cpos[c].party}-{loc + 1:04d}"

    def tariff_index(self, c: int | np.ndarray, is_dc: int | np.ndarray) -> Any:
        return c * 2 + is_dc

    def token(self, e: int, contract: int) -> tuple[str, str, str]:
        """(uid, contract_id, 2.1.1 auth_id) of an eMSP contract."""
        emsp = self.emsps[e]
        num = (contract * 7919 + e * 1_234_567 + 10_000_019) % 100_000_000
        check = sum(int(ch) for ch in f"{num:08d}") % 10
        contract_id = f"{emsp.country}-{emsp.party}-C{num:08d}-{check}"
        uid = f"{(num * 2654435761 + e) & 0xFFFFFFFF:08X}"
        return uid, contract_id, contract_id.replace("-", "")


def build_world(cfg: Config) -> World:
    year, month = (int(x) for x in cfg.month.split("-"))
    first = date(year, month, 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    prev = date(year - (month == 1), (month - 2) % 12 + 1, 1)
    ms = _naive(first)
    lo, hi = _naive(prev) - 40 * 86400, _naive(nxt) + 70 * 86400
    cpos = CPOS[: cfg.cpos]
    emsps = EMSPS[: cfg.emsps]
    zones = [ZoneTable(c.zone, lo, hi) for c in cpos]

    rng = np.random.default_rng([cfg.seed, 0])
    n = cfg.cdrs + cfg.malformed
    n_loc = int(min(400, max(12, n // 120 // max(1, cfg.cpos))))
    n_contracts = int(min(2_000_000, max(40, n // 6)))
    shape = (len(cpos), n_loc)
    loc_is_dc = rng.random(shape) < cfg.dc_share
    ac_kw = np.array([3700, 7400, 11000, 22000])
    dc_kw = np.array([50000, 100000, 150000])
    loc_pnom = np.where(
        loc_is_dc,
        dc_kw[rng.choice(3, size=shape, p=[0.35, 0.3, 0.35])],
        ac_kw[rng.choice(4, size=shape, p=[0.1, 0.2, 0.45, 0.25])],
    )
    loc_evses = rng.integers(1, 5, shape)
    loc_city = rng.integers(0, 5, shape)
    loc_street = rng.integers(0, 6, shape)
    loc_house = rng.integers(1, 180, shape)
    base_lat = np.array([[c.cities[i][2] for i in range(5)] for c in cpos])
    base_lon = np.array([[c.cities[i][3] for i in range(5)] for c in cpos])
    rows = np.arange(len(cpos))[:, None]
    lat = base_lat[rows, loc_city] + rng.uniform(-0.04, 0.04, shape)
    lon = base_lon[rows, loc_city] + rng.uniform(-0.06, 0.06, shape)

    valid_from = datetime.fromtimestamp(_naive(prev) - 62 * 86400, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    tariffs, wrong, clock, dur, kwh, power = _tariff_tables(cpos, valid_from)

    month_end = _naive(nxt)
    dst_days = _dst_days(zones, ms, month_end)
    world = World(
        cfg=cfg,
        cpos=cpos,
        emsps=emsps,
        zones=zones,
        month_start_naive=ms,
        month_days=(nxt - first).days,
        prev_month_start_naive=_naive(prev),
        next_month_start_naive=month_end,
        n_loc=n_loc,
        n_contracts=n_contracts,
        loc_is_dc=loc_is_dc,
        loc_pnom_w=loc_pnom,
        loc_evses=loc_evses,
        loc_city=loc_city,
        loc_street=loc_street,
        loc_house=loc_house,
        loc_lat_e6=np.round(lat * 1e6).astype(np.int64),
        loc_lon_e6=np.round(lon * 1e6).astype(np.int64),
        tariffs=tariffs,
        wrong_tariffs=wrong,
        clock_min=clock,
        dur_s=dur,
        kwh_wh=kwh,
        power_w=power,
        dst_days=dst_days,
        valid_from=valid_from,
    )
    world.statement_zone = ZoneTable("Europe/Amsterdam", lo, hi)
    return world


def _tariff_tables(cpos: tuple[Cpo, ...], valid_from: str) -> tuple[Any, ...]:
    """Tariff JSON (right and wrong) per (cpo, is_dc, version); where each tariff can switch, as arrays."""
    tariffs: dict[tuple[int, int, str], dict[str, Any]] = {}
    wrong: dict[tuple[int, int, str], dict[str, Any]] = {}
    n_t = 2 * len(cpos)
    clock = np.full((n_t, 2, 3), -1, dtype=np.int64)
    dur = np.full((n_t, 2), -1, dtype=np.int64)
    kwh = np.full(n_t, -1, dtype=np.int64)
    power = np.full(n_t, -1, dtype=np.int64)
    for ci, cpo in enumerate(cpos):
        for is_dc, spec in ((0, cpo.ac), (1, cpo.dc)):
            for v in VERSIONS:
                t = tariff_json(spec, cpo, v, valid_from)
                tariffs[(ci, is_dc, v)] = t
                wrong[(ci, is_dc, v)] = wrong_tariff_json(t)
            b = phase_boundaries(spec)
            ti = ci * 2 + is_dc
            for phase in (0, 1):
                mins = sorted(b["clock"][phase])
                assert len(mins) <= 3, spec
                clock[ti, phase, : len(mins)] = mins
                durs = sorted(b["duration"][phase])
                assert len(durs) <= 1 and all(d % GRID == 0 for d in durs), spec
                if durs:
                    dur[ti, phase] = durs[0]
            assert len(b["kwh_wh"]) <= 1 and len(b["power_w"]) <= 1, spec
            if b["kwh_wh"]:
                kwh[ti] = next(iter(b["kwh_wh"]))
            if b["power_w"]:
                power[ti] = next(iter(b["power_w"]))
    return tariffs, wrong, clock, dur, kwh, power


def _dst_days(zones: list[ZoneTable], ms: int, month_end: int) -> list[list[int]]:
    """Per zone: the naive local midnights of the DST-change days inside the month."""
    dst_days: list[list[int]] = []
    for z in zones:
        days = []
        for tr in z.trans[1:]:
            local = int(z.to_local(np.array([tr]))[0])
            local_day = local - local % 86400
            if ms <= local_day < month_end:
                days.append(local_day)
        dst_days.append(days)
    return dst_days
