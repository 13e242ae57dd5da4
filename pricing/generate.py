"""``roamledger generate``: a realistic, deterministic workload of OCPI CDRs and tariffs.

Same arguments → byte-identical files (numpy ``PCG64`` streams keyed by ``(seed, block, purpose)``;
no clock, no hash randomisation, no dict-order dependence).

What a month looks like
-----------------------
* **Parties.** Up to 5 CPOs (NL*ECO Amsterdam, DE*VLT Berlin, GB*PLG London/GBP, BE*WAT Brussels,
  FR*REC Paris; ``--cpos`` takes the first k) with locations in their own country, and up to 6
  eMSPs (DE*MSP, NL*TNM, FR*EMO, GB*DRV, BE*MOB, NL*ROM; ``--emsps``). Contract ids are eMAIDs
  (``NL-TNM-C01234567-8``); a 2.1.1 ``auth_id`` is the eMAID without separators, so its first five
  characters (country + provider) name the eMSP.
* **Tariffs** (one OCPI tariff JSON file per tariff and version in ``--tariffs-out``; ids
  ``<PARTY>-<AC|DC>-<211|221|230>`` so the versions never collide): AC = start FLAT + a
  time-of-day peak ENERGY window + off-peak ENERGY + PARKING_TIME that only applies once the
  session is older than ``min_duration`` (DE: also only 08:00–20:00, Monday–Saturday); DC =
  ENERGY with a ``min_kwh`` volume tier + TIME while ``min_power`` holds + an idle fee
  (PARKING_TIME after ``min_duration``). NL DC has ``max_price``, DE AC ``min_price``; VAT in
  2.2.1/2.3.0; 2.3.0 ``tax_included`` is ``NO`` except GB AC (``YES``, prices incl. 20 % VAT).
  Step sizes 0, 1, 60, 100 Wh, 300 and 900 s are mixed.
* **Sessions.** AC 3.7–22 kW with constant power; DC 50–150 kW tapering over 2–3 stages
  (MIN_POWER/MAX_POWER per period, 2.2.1/2.3.0). The CPO opens a new charging period at every instant where
  the tariff could switch for that phase (local clock times of the windows, local midnight for
  ``day_of_week``, the ``min_kwh`` crossing, the ``min_power`` crossing, the ``min_duration``
  crossing during parking) — except for ``--straddle-rate`` of the sessions, whose periods
  straddle a clock-time price change (those CPOs priced each period by its state at its start).
  Parking follows charging in ~40 % of AC and ~10 % of DC sessions. Starts follow a daily profile
  in local time over ``--month``; ~0.5 % are forced into the night of a DST change inside the
  month; ``--out-of-month-rate`` of the sessions start and end in the previous / next month.
* **Exact volumes.** Every instant is a whole multiple of 9 s in UTC (9 s = 0.0025 h), so every
  TIME / PARKING_TIME volume is exact at 4 decimals and equals the difference of the
  timestamps; ENERGY is whole Wh (kWh with 3 decimals).
* **Reported totals** are computed by the engine (:func:`pricing.batch.price_batch`, default
  policy; straddling sessions with ``period_boundaries=start``) and rounded half-up to 2 decimals,
  as a CPO would (hence natural ROUNDING differences below 0.01). Overcharged CDRs
  (``--overcharge-rate``) were priced with a wrong tariff: parking step 3600 s and ENERGY +10 %.
* **Stream defects.** Credit CDRs (2.2.1/2.3.0 only; id + ``-C``, ``credit_reference_id``, money
  negated) — 25× likelier for overcharged CDRs, which are then always re-issued (id + ``-R``,
  correct totals); other credits are re-issued half of the time. Duplicates (``--duplicate-rate``):
  identical resends, and one in four a conflicting resend (same id, total_cost +0.10…2.00).
  ``--malformed K`` adds K broken records, rotating through: truncated JSON line (BAD_JSON),
  missing ``currency`` (MISSING_FIELD), negative ENERGY volume (NEGATIVE_VOLUME), unknown tariff
  id (TARIFF_NOT_FOUND), wrong currency (CURRENCY_MISMATCH), a CDR of another OCPI version in
  the stream (VERSION_MISMATCH). Malformed records are extra sessions: ``--cdrs`` counts the
  well-formed original sessions only. An unknown tariff id is put on a 2.2.1/2.3.0 CDR when
  those versions are generated (a 2.1.1 CDR names no CPO, so it would be TARIFF_AMBIGUOUS).
* **Side outputs.** ``--summary FILE`` (all counts, the expected reject codes),
  ``--labels FILE`` (one NDJSON row per special record: file, line, cdr_id, kind, labels such as
  ``overcharged``, ``straddling``, ``credit``, ``out_of_month_after``, ``malformed:<kind>`` with
  its ``expected_code``), ``--contracts-out FILE`` (a contracts file for ``roamledger settle``
  mapping every 2.1.1 location and contract prefix to its party).

Output by suffix
----------------
* ``.ndjson`` / ``.jsonl``: one nested OCPI CDR per line, one file per OCPI version: ``FILE``
  holds the first version of ``--versions``, each other version goes to the sibling
  ``<stem>.v<digits><suffix>`` (``cdrs.ndjson``, ``cdrs.v211.ndjson``, ``cdrs.v230.ndjson``).
  Written block by block (50,000 sessions), records sorted by send time within a block;
  ``--jobs J`` builds blocks in J processes (same bytes).
* ``.parquet``: the flat layout of :mod:`pricing.flat` (one row per charging period, all
  versions in one file, one row group per block). ``reported_total_*`` need the engine pass
  (~thousands of CDRs/s); ``--reported auto`` (default) runs it up to 100,000 sessions and
  leaves the columns null above, ``--no-reported`` never runs it. Malformed records that cannot
  exist in a typed table (truncated JSON, version mismatch) are replaced by the other kinds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from pricing.errors import InputError

try:  # optional speed-up; output bytes are identical with the stdlib encoder
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

EXAMPLE = """example:
  roamledger generate --cdrs 4800 --seed 2026 --month 2026-10 --cpos 3 --emsps 4 \\
      --versions 2.2.1:60,2.1.1:10,2.3.0:30 --malformed 10 --tariffs-out fixtures/sample/tariffs \\
      --contracts-out fixtures/sample/contracts.json --out fixtures/sample/cdrs/cdrs.ndjson
  roamledger generate --cdrs 4000000 --seed 1 --no-reported --out big.parquet
"""

VERSIONS = ("2.1.1", "2.2.1", "2.3.0")
BLOCK = 50_000  # sessions per generation block (fixed: part of the determinism contract)
GRID = 9  # seconds; 9 s = 0.0025 h, so hour volumes are exact at 4 decimals
AUTO_REPORTED_MAX = 100_000
INF = np.iinfo(np.int64).max // 4

MALFORMED_KINDS = (
    "truncated_json",
    "missing_field",
    "negative_volume",
    "unknown_tariff",
    "wrong_currency",
    "version_mismatch",
)
MALFORMED_CODES = {
    "truncated_json": "BAD_JSON",
    "missing_field": "MISSING_FIELD",
    "negative_volume": "NEGATIVE_VOLUME",
    "unknown_tariff": "TARIFF_NOT_FOUND",
    "wrong_currency": "CURRENCY_MISMATCH",
    "version_mismatch": "VERSION_MISMATCH",
}
FLAT_MALFORMED_KINDS = ("missing_field", "negative_volume", "unknown_tariff", "wrong_currency")

# ---- parties ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comp:
    dim: str
    price: str
    step: int


@dataclass(frozen=True)
class El:
    comps: tuple[Comp, ...]
    restrictions: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class TariffSpec:
    """A version-neutral tariff; :func:`tariff_json` renders it for one OCPI version."""

    party: str
    kind: str  # AC | DC
    elements: tuple[El, ...]
    min_price: tuple[str, str] | None = None  # (excl, incl)
    max_price: tuple[str, str] | None = None
    tax_included_230: str = "NO"  # YES: the 2.3.0 rendering carries prices incl. VAT

    def tariff_id(self, version: str) -> str:
        return f"{self.party}-{self.kind}-{version.replace('.', '')}"


@dataclass(frozen=True)
class Cpo:
    country: str
    party: str
    country3: str
    zone: str
    currency: str
    vat: str
    name: str
    cities: tuple[tuple[str, str, float, float], ...]  # name, postal code, lat, lon
    streets: tuple[str, ...]
    ac: TariffSpec
    dc: TariffSpec
    breakdown: bool = True  # fills the optional total_*_cost fields (2.2.1/2.3.0)

    @property
    def key(self) -> str:
        return f"{self.country}*{self.party}"


@dataclass(frozen=True)
class Emsp:
    country: str
    party: str

    @property
    def key(self) -> str:
        return f"{self.country}*{self.party}"

    @property
    def prefix(self) -> str:
        return f"{self.country}{self.party}"


def _el(*comps: Comp, **restrictions: Any) -> El:
    return El(tuple(comps), tuple(restrictions.items()))


WEEKDAYS_MON_SAT = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY"]

CPOS: tuple[Cpo, ...] = (
    Cpo(
        "NL",
        "ECO",
        "NLD",
        "Europe/Amsterdam",
        "EUR",
        "21",
        "EcoCharge Nederland",
        (
            ("Amsterdam", "1012", 52.3728, 4.8936),
            ("Utrecht", "3511", 52.0907, 5.1214),
            ("Rotterdam", "3011", 51.9225, 4.4792),
            ("Den Haag", "2511", 52.0705, 4.3007),
            ("Eindhoven", "5611", 51.4416, 5.4697),
        ),
        ("Stationsplein", "Marktstraat", "Kerkweg", "Havenkade", "Parkweg", "Molenstraat"),
        TariffSpec(
            "ECO",
            "AC",
            (
                _el(Comp("FLAT", "0.35", 0)),
                _el(Comp("ENERGY", "0.42", 1), start_time="07:00", end_time="23:00"),
                _el(Comp("ENERGY", "0.32", 1)),
                _el(Comp("PARKING_TIME", "1.20", 900), min_duration=10800),
            ),
        ),
        TariffSpec(
            "ECO",
            "DC",
            (
                _el(Comp("ENERGY", "0.59", 1), min_kwh=40),
                _el(Comp("ENERGY", "0.69", 1)),
                _el(Comp("TIME", "2.40", 60), min_power=100),
                _el(Comp("PARKING_TIME", "12.00", 60), min_duration=2700),
            ),
            max_price=("45.00", "54.45"),
        ),
    ),
    Cpo(
        "DE",
        "VLT",
        "DEU",
        "Europe/Berlin",
        "EUR",
        "19",
        "Voltwerk Ladenetz",
        (
            ("Berlin", "10178", 52.5200, 13.4050),
            ("Hamburg", "20095", 53.5511, 9.9937),
            ("München", "80331", 48.1351, 11.5820),
            ("Köln", "50667", 50.9375, 6.9603),
            ("Frankfurt am Main", "60311", 50.1109, 8.6821),
        ),
        ("Hauptstraße", "Bahnhofstraße", "Gartenweg", "Schillerstraße", "Ringstraße", "Am Markt"),
        TariffSpec(
            "VLT",
            "AC",
            (
                _el(Comp("FLAT", "0.50", 1)),
                _el(Comp("ENERGY", "0.45", 100), start_time="07:00", end_time="22:00"),
                _el(Comp("ENERGY", "0.39", 100)),
                _el(
                    Comp("PARKING_TIME", "6.00", 300),
                    start_time="08:00",
                    end_time="20:00",
                    day_of_week=WEEKDAYS_MON_SAT,
                    min_duration=14400,
                ),
            ),
            min_price=("1.50", "1.79"),
        ),
        TariffSpec(
            "VLT",
            "DC",
            (
                _el(Comp("ENERGY", "0.59", 1), min_kwh=50),
                _el(Comp("ENERGY", "0.65", 1)),
                _el(Comp("TIME", "1.20", 60), min_power=50),
                _el(Comp("PARKING_TIME", "9.00", 300), min_duration=3600),
            ),
        ),
        breakdown=False,
    ),
    Cpo(
        "GB",
        "PLG",
        "GBR",
        "Europe/London",
        "GBP",
        "20",
        "PlugGrid UK",
        (
            ("London", "EC1A 1BB", 51.5072, -0.1276),
            ("Manchester", "M1 1AE", 53.4808, -2.2426),
            ("Bristol", "BS1 4DJ", 51.4545, -2.5879),
            ("Leeds", "LS1 1UR", 53.8008, -1.5491),
            ("Birmingham", "B1 1AA", 52.4862, -1.8904),
        ),
        ("High Street", "Station Road", "Church Lane", "Mill Road", "Park Avenue", "Queen Street"),
        TariffSpec(
            "PLG",
            "AC",
            (
                _el(Comp("FLAT", "0.40", 1)),
                _el(Comp("ENERGY", "0.65", 1), start_time="16:00", end_time="19:00"),
                _el(Comp("ENERGY", "0.52", 1)),
                _el(Comp("PARKING_TIME", "6.00", 300), min_duration=7200),
            ),
            tax_included_230="YES",
        ),
        TariffSpec(
            "PLG",
            "DC",
            (
                _el(Comp("ENERGY", "0.69", 1), min_kwh=30),
                _el(Comp("ENERGY", "0.79", 1)),
                _el(Comp("TIME", "3.60", 60), min_power=100),
                _el(Comp("PARKING_TIME", "24.00", 60), min_duration=3600),
            ),
        ),
        breakdown=False,
    ),
    Cpo(
        "BE",
        "WAT",
        "BEL",
        "Europe/Brussels",
        "EUR",
        "21",
        "Wattify Belgium",
        (
            ("Bruxelles", "1000", 50.8503, 4.3517),
            ("Antwerpen", "2000", 51.2194, 4.4025),
            ("Gent", "9000", 51.0543, 3.7174),
            ("Liège", "4000", 50.6326, 5.5797),
            ("Leuven", "3000", 50.8798, 4.7005),
        ),
        ("Kerkstraat", "Stationsstraat", "Rue de la Gare", "Dorpsstraat", "Avenue Louise", "Nieuwstraat"),
        TariffSpec(
            "WAT",
            "AC",
            (
                _el(Comp("FLAT", "0.25", 0)),
                _el(Comp("ENERGY", "0.40", 1), start_time="07:00", end_time="23:00"),
                _el(Comp("ENERGY", "0.30", 1)),
                _el(Comp("PARKING_TIME", "1.80", 900), min_duration=7200),
            ),
        ),
        TariffSpec(
            "WAT",
            "DC",
            (
                _el(Comp("ENERGY", "0.55", 1), min_kwh=40),
                _el(Comp("ENERGY", "0.65", 1)),
                _el(Comp("TIME", "2.40", 60), min_power=100),
                _el(Comp("PARKING_TIME", "9.00", 300), min_duration=2700),
            ),
        ),
    ),
    Cpo(
        "FR",
        "REC",
        "FRA",
        "Europe/Paris",
        "EUR",
        "20",
        "Recharge France",
        (
            ("Paris", "75001", 48.8566, 2.3522),
            ("Lyon", "69001", 45.7640, 4.8357),
            ("Marseille", "13001", 43.2965, 5.3698),
            ("Lille", "59000", 50.6292, 3.0573),
            ("Nantes", "44000", 47.2184, -1.5536),
        ),
        (
            "Rue de la République",
            "Avenue Victor Hugo",
            "Rue du Marché",
            "Boulevard Pasteur",
            "Place de la Gare",
            "Rue des Écoles",
        ),
        TariffSpec(
            "REC",
            "AC",
            (
                _el(Comp("FLAT", "0.40", 1)),
                _el(Comp("ENERGY", "0.44", 1), start_time="06:00", end_time="22:00"),
                _el(Comp("ENERGY", "0.34", 1)),
                _el(Comp("TIME", "0.60", 60)),
                _el(Comp("PARKING_TIME", "3.00", 60), min_duration=10800),
            ),
        ),
        TariffSpec(
            "REC",
            "DC",
            (
                _el(Comp("ENERGY", "0.55", 1), min_kwh=40),
                _el(Comp("ENERGY", "0.62", 1)),
                _el(Comp("TIME", "3.00", 60), min_power=100),
                _el(Comp("PARKING_TIME", "12.00", 60), min_duration=3600),
            ),
        ),
    ),
)

EMSPS: tuple[Emsp, ...] = (
    Emsp("DE", "MSP"),
    Emsp("NL", "TNM"),
    Emsp("FR", "EMO"),
    Emsp("GB", "DRV"),
    Emsp("BE", "MOB"),
    Emsp("NL", "ROM"),
)
CPO_WEIGHTS = (5.0, 4.0, 3.0, 2.5, 2.0)
EMSP_WEIGHTS = (4.0, 3.0, 2.0, 1.5, 1.0, 1.0)

# ---- tariffs as OCPI JSON -----------------------------------------------------------------------

PHASE_DIMS = {0: ("ENERGY", "TIME", "FLAT"), 1: ("PARKING_TIME", "FLAT")}  # 0 charging, 1 parking


def _num(text: str) -> float | int:
    """A decimal string as the JSON number a CPO would write (exact for ≤ 15 digits)."""
    d = Decimal(text)
    return int(d) if d == d.to_integral_value() and "." not in text else float(d)


def _with_vat(price: str, vat: str) -> str:
    q = Decimal(price) * (1 + Decimal(vat) / 100)
    return f"{q.quantize(Decimal('0.0001'), ROUND_HALF_UP).normalize():f}"


def tariff_json(spec: TariffSpec, cpo: Cpo, version: str, valid_from: str) -> dict[str, Any]:
    """The OCPI tariff object of ``spec`` in ``version``."""
    incl = version == "2.3.0" and spec.tax_included_230 == "YES"
    out: dict[str, Any] = {}
    if version != "2.1.1":
        out.update(country_code=cpo.country, party_id=cpo.party)
    out.update(id=spec.tariff_id(version), currency=cpo.currency)
    if version != "2.1.1":
        out["type"] = "REGULAR"
    text = f"{cpo.name} {spec.kind} tariff"
    out["tariff_alt_text"] = [{"language": "en", "text": text}]
    if version != "2.1.1":
        for name, limit in (("min_price", spec.min_price), ("max_price", spec.max_price)):
            if limit is not None:
                keys = ("excl_vat", "incl_vat") if version == "2.2.1" else ("before_taxes", "after_taxes")
                out[name] = {keys[0]: _num(limit[0]), keys[1]: _num(limit[1])}
    elements = []
    for el in spec.elements:
        comps = []
        for c in el.comps:
            price = _with_vat(c.price, cpo.vat) if incl else c.price
            comp: dict[str, Any] = {"type": c.dim, "price": _num(price)}
            if version != "2.1.1":
                comp["vat"] = float(cpo.vat)
            comp["step_size"] = c.step
            comps.append(comp)
        entry: dict[str, Any] = {"price_components": comps}
        if el.restrictions:
            entry["restrictions"] = {k: v for k, v in el.restrictions}
        elements.append(entry)
    out["elements"] = elements
    if version == "2.3.0":
        out["tax_included"] = spec.tax_included_230
    if version != "2.1.1":
        out["start_date_time"] = valid_from
    out["last_updated"] = valid_from
    return out


def wrong_tariff_json(good: dict[str, Any]) -> dict[str, Any]:
    """The tariff an overcharging CPO used by mistake: parking step 3600 s, ENERGY price +10 %."""
    bad = json.loads(json.dumps(good))
    for el in bad["elements"]:
        for c in el["price_components"]:
            if c["type"] == "PARKING_TIME":
                c["step_size"] = 3600
            elif c["type"] == "ENERGY":
                c["price"] = float((Decimal(repr(c["price"])) * Decimal("1.1")).quantize(Decimal("0.0001")))
    return bad


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def phase_boundaries(spec: TariffSpec) -> dict[str, Any]:
    """Where the tariff can switch, per phase (0 charging, 1 parking): what the CPO splits at."""
    out: dict[str, Any] = {"clock": {0: set(), 1: set()}, "duration": {0: set(), 1: set()}}
    kwh: set[int] = set()
    power: set[int] = set()
    for el in spec.elements:
        r = dict(el.restrictions)
        dims = {c.dim for c in el.comps}
        for phase in (0, 1):
            if not dims & set(PHASE_DIMS[phase]):
                continue
            for key in ("start_time", "end_time"):
                if key in r:
                    out["clock"][phase].add(_minutes(r[key]) % 1440)
            if "day_of_week" in r:
                out["clock"][phase].add(0)
            for key in ("min_duration", "max_duration"):
                if key in r:
                    out["duration"][phase].add(int(r[key]))
        if "ENERGY" in dims or "TIME" in dims:
            for key in ("min_kwh", "max_kwh"):
                if key in r:
                    kwh.add(int(Decimal(str(r[key])) * 1000))
            for key in ("min_power", "max_power"):
                if key in r:
                    power.add(int(Decimal(str(r[key])) * 1000))
    out["kwh_wh"] = kwh
    out["power_w"] = power
    return out


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
    reported: str = "auto"  # auto | yes | no
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
        if self.reported == "no":
            return False
        if self.reported == "yes" or self.fmt == "ndjson":
            return True
        return self.cdrs + self.malformed <= AUTO_REPORTED_MAX

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

    month_end = _naive(nxt)
    dst_days: list[list[int]] = []
    for z in zones:
        days = []
        for tr in z.trans[1:]:
            local = int(z.to_local(np.array([tr]))[0])
            local_day = local - local % 86400
            if ms <= local_day < month_end:
                days.append(local_day)
        dst_days.append(days)
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


# ---- sessions and charging periods (vectorized per block) ---------------------------------------


@dataclass
class Block:
    """One block of sessions (sorted by start) and their charging periods (``p_*``)."""

    seq: np.ndarray  # global session number (ids)
    cpo: np.ndarray
    loc: np.ndarray
    evse: np.ndarray
    emsp: np.ndarray
    contract: np.ndarray
    version: np.ndarray  # index into cfg.versions
    is_dc: np.ndarray
    start: np.ndarray  # UTC s
    end: np.ndarray
    sloppy: np.ndarray  # periods straddle a clock boundary (CPO priced by period start)
    straddles: np.ndarray  # ... and one actually does
    p_off: np.ndarray  # [n + 1] first period of each session
    p_start: np.ndarray
    p_dur: np.ndarray  # s
    p_park: np.ndarray  # bool
    p_energy_wh: np.ndarray
    p_pmin_w: np.ndarray  # -1 = not reported
    p_pmax_w: np.ndarray

    @property
    def n(self) -> int:
        return len(self.seq)


def _snap(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.int64) // GRID) * GRID


def _weights(values: tuple[float, ...], k: int) -> np.ndarray:
    w = np.array(values[:k], dtype=float)
    return w / w.sum()


def generate_block(world: World, block_idx: int, g0: int, n: int) -> Block:
    cfg = world.cfg
    rng = np.random.default_rng([cfg.seed, 1, block_idx])
    ncpo = len(world.cpos)
    cpo = rng.choice(ncpo, size=n, p=_weights(CPO_WEIGHTS, ncpo))
    loc = rng.integers(0, world.n_loc, n)
    emsp = rng.choice(len(world.emsps), size=n, p=_weights(EMSP_WEIGHTS, len(world.emsps)))
    contract = rng.integers(0, world.n_contracts, n)
    version = rng.choice(len(cfg.versions), size=n, p=np.array(cfg.version_weights))
    is_dc = world.loc_is_dc[cpo, loc].astype(np.int64)
    evse = rng.integers(0, 1 << 30, n) % world.loc_evses[cpo, loc]

    # local start: a day of the month and a time of day from a daily profile
    day = rng.integers(0, world.month_days, n)
    mix = rng.random(n)
    tod_h = np.where(
        is_dc == 1,
        np.where(mix < 0.8, rng.normal(14.0, 4.0, n), rng.uniform(0, 24, n)),
        np.where(
            mix < 0.35,
            rng.normal(8.5, 1.2, n),
            np.where(mix < 0.75, rng.normal(18.0, 1.8, n), rng.uniform(0, 24, n)),
        ),
    )
    tod = np.clip(tod_h, 0, 23.99) * 3600
    naive = world.month_start_naive + day * 86400 + tod.astype(np.int64)
    # a few sessions forced into the night of a DST change (inside the month)
    u = rng.random(n)
    shift = rng.uniform(-3.0 * 3600, 2.5 * 3600, n).astype(np.int64)
    for ci, days in enumerate(world.dst_days):
        if days:
            pick = (u < cfg.dst_rate) & (cpo == ci)
            naive = np.where(pick, days[0] + shift, naive)
    # out-of-month: start and end entirely in the previous / next month
    u = rng.random(n)
    prev_start = world.month_start_naive - 3 * 86400 + rng.integers(0, 12 * 3600, n)
    next_start = world.next_month_start_naive + 2 * 3600 + rng.integers(0, 24 * 3600, n)
    naive = np.where(u < cfg.out_of_month_rate / 2, prev_start, naive)
    naive = np.where((u >= cfg.out_of_month_rate / 2) & (u < cfg.out_of_month_rate), next_start, naive)
    naive = _snap(naive)
    start = np.empty(n, dtype=np.int64)
    for ci, z in enumerate(world.zones):
        m = cpo == ci
        start[m] = z.to_utc(naive[m])

    # charging: AC constant power, DC tapering stages (breakpoints in time and power)
    pnom = world.loc_pnom_w[cpo, loc]
    ac_car = np.array([3700, 7400, 11000, 22000])[rng.choice(4, size=n, p=[0.1, 0.3, 0.4, 0.2])]
    p_ac = (np.minimum(pnom, ac_car) * rng.uniform(0.85, 0.98, n)).astype(np.int64) // 100 * 100
    need_kwh = np.clip(rng.lognormal(np.log(14.0), 0.7, n), 1.0, 75.0)
    tc_ac = _snap(np.clip(need_kwh * 1000 / p_ac * 3600, 6 * 60, 11 * 3600)) + GRID
    dc_car = np.array([50000, 100000, 150000, 200000])[rng.choice(4, size=n, p=[0.15, 0.35, 0.3, 0.2])]
    p0_dc = np.maximum(
        50_000, (np.minimum(pnom, dc_car) * rng.uniform(0.9, 1.0, n)).astype(np.int64) // 100 * 100
    )
    tc_dc = _snap(rng.uniform(10 * 60, 50 * 60, n)) + GRID
    n_st = rng.integers(2, 4, n)  # DC taper stages (plus the min_power crossing)
    K = 6  # breakpoints: up to 5 + one threshold crossing
    bp_t = np.full((n, K), INF, dtype=np.int64)
    bp_p = np.zeros((n, K), dtype=np.int64)
    frac = np.cumsum(rng.uniform(0.5, 1.5, (n, 4)), axis=1)
    frac = frac / frac[np.arange(n), n_st - 1][:, None]
    ratio = np.cumprod(rng.uniform(0.6, 0.92, (n, 4)), axis=1)
    for j in range(5):
        if j == 0:
            t_j = np.zeros(n, dtype=np.int64)
            p_j = np.where(is_dc == 1, p0_dc, p_ac)
        else:
            t_j = np.where(is_dc == 1, _snap(frac[:, j - 1] * tc_dc), tc_ac)
            p_j = np.where(is_dc == 1, (p0_dc * ratio[:, j - 1]).astype(np.int64) // 100 * 100, p_ac)
        valid = np.where(is_dc == 1, j <= n_st, j <= 1)
        bp_t[:, j] = np.where(valid, t_j, INF)
        bp_p[:, j] = np.where(valid, p_j, 0)
    for j in range(1, 5):  # strictly increasing after snapping to the grid
        bp_t[:, j] = np.where(bp_t[:, j] < INF, np.maximum(bp_t[:, j], bp_t[:, j - 1] + GRID), INF)
    # the min_power crossing becomes a breakpoint of its own (power exactly at the limit)
    ti = world.tariff_index(cpo, is_dc)
    thr = world.power_w[ti]
    cross_t = np.full(n, INF, dtype=np.int64)
    for j in range(4):
        ok = (bp_t[:, j + 1] < INF) & (thr > 0) & (bp_p[:, j] > thr) & (bp_p[:, j + 1] < thr)
        span = np.maximum(bp_p[:, j] - bp_p[:, j + 1], 1)
        t_x = bp_t[:, j] + _snap((bp_p[:, j] - thr) * (bp_t[:, j + 1] - bp_t[:, j]) // span)
        at_start = ok & (t_x <= bp_t[:, j])  # within a grid step of a breakpoint: move that one
        at_end = ok & (t_x >= bp_t[:, j + 1])
        bp_p[:, j] = np.where(at_start, thr, bp_p[:, j])
        bp_p[:, j + 1] = np.where(at_end, thr, bp_p[:, j + 1])
        cross_t = np.where(ok & ~at_start & ~at_end, t_x, cross_t)
    bp_t[:, 5] = cross_t
    bp_p[:, 5] = np.where(cross_t < INF, thr, 0)
    order = np.argsort(bp_t, axis=1, kind="stable")
    bp_t = np.take_along_axis(bp_t, order, axis=1)
    bp_p = np.take_along_axis(bp_p, order, axis=1)
    tc = np.where(bp_t < INF, bp_t, -1).max(axis=1)  # end of charging (offset from the start)

    # parking after charging
    u = rng.random(n)
    park_ac = np.where(rng.random(n) < 0.5, rng.uniform(5 * 60, 3600, n), rng.uniform(3600, 12 * 3600, n))
    park = np.where(
        is_dc == 1,
        np.where(u < 0.10, rng.uniform(5 * 60, 40 * 60, n), 0),
        np.where(u < 0.40, park_ac, 0),
    )
    park = _snap(park)
    end = start + tc + park

    # sort the block by start; numbers follow that order
    o = np.lexsort((np.arange(n), start))
    cpo, loc, evse, emsp, contract, version, is_dc = (
        a[o] for a in (cpo, loc, evse, emsp, contract, version, is_dc)
    )
    start, end, park, tc, bp_t, bp_p, ti = start[o], end[o], park[o], tc[o], bp_t[o], bp_p[o], ti[o]
    seq = g0 + np.arange(n, dtype=np.int64)
    sloppy_draw = np.random.default_rng([cfg.seed, 2, block_idx]).random(n)

    # ---- stages: charging stages between breakpoints, then one parking stage
    st_valid = np.zeros((n, K), dtype=bool)
    st_valid[:, :5] = bp_t[:, 1:] < INF
    st_valid[:, 5] = park > 0
    s_idx, s_col = np.nonzero(st_valid)
    is_park = s_col == 5
    col = np.minimum(s_col, 4)
    a = np.where(is_park, start[s_idx] + tc[s_idx], start[s_idx] + bp_t[s_idx, col])
    b = np.where(is_park, end[s_idx], start[s_idx] + bp_t[s_idx, np.minimum(col + 1, K - 1)])
    pa = np.where(is_park, 0, bp_p[s_idx, col])
    pb = np.where(is_park, 0, bp_p[s_idx, np.minimum(col + 1, K - 1)])
    d = b - a
    e = np.where(is_park, 0, (pa + pb) * d // 7200)
    sess_first = np.searchsorted(s_idx, np.arange(n))
    cum_all = np.cumsum(e) - e
    cum = cum_all - cum_all[sess_first][s_idx]
    st_ti = ti[s_idx]
    phase = is_park.astype(np.int64)
    cpo_s = cpo[s_idx]

    # ---- cuts inside stages: clock times (3 days × 3 minutes), duration, kWh threshold
    ns = len(s_idx)
    cuts = np.full((ns, 11), INF, dtype=np.int64)
    mins = world.clock_min[st_ti, phase]  # (ns, 3)
    local_a = np.empty(ns, dtype=np.int64)
    for ci, z in enumerate(world.zones):
        m = cpo_s == ci
        local_a[m] = z.to_local(a[m])
    day0 = local_a - local_a % 86400
    naive_c = day0[:, None, None] + (np.arange(3) * 86400)[None, :, None] + mins[:, None, :] * 60
    clock_c = np.empty_like(naive_c)
    for ci, z in enumerate(world.zones):
        m = cpo_s == ci
        clock_c[m] = z.to_utc(naive_c[m])
    clock_c = clock_c.reshape(ns, 9)
    ok = (
        (np.broadcast_to(mins[:, None, :], (ns, 3, 3)).reshape(ns, 9) >= 0)
        & (clock_c > a[:, None])
        & (clock_c < b[:, None])
    )
    # straddling sessions: some with a clock cut lose those cuts (~straddle_rate of all sessions)
    has_clock = np.zeros(n, dtype=bool)
    np.logical_or.at(has_clock, s_idx, ok.any(axis=1))
    share = has_clock.sum()
    p_sloppy = min(1.0, cfg.straddle_rate * n / share) if share else 0.0
    sloppy = has_clock & (sloppy_draw < p_sloppy)
    ok &= ~sloppy[s_idx][:, None]
    cuts[:, :9] = np.where(ok, clock_c, INF)
    dlim = world.dur_s[st_ti, phase]
    dc_cut = start[s_idx] + dlim
    cuts[:, 9] = np.where((dlim > 0) & (dc_cut > a) & (dc_cut < b), dc_cut, INF)
    kthr = world.kwh_wh[st_ti]
    T = kthr - cum
    has_k = (phase == 0) & (kthr > 0) & (T > 0) & (T < e)
    dsafe = np.maximum(d, 1)
    esafe = np.maximum(e, 1)
    koff = ((T * dsafe + esafe - 1) // esafe + GRID - 1) // GRID * GRID
    koff = np.where(koff >= d, d - GRID, koff)
    has_k &= koff > 0
    kcut = np.where(has_k, a + koff, INF)
    cuts[:, 10] = kcut
    cuts.sort(axis=1)
    dup = np.zeros_like(cuts, dtype=bool)
    dup[:, 1:] = (cuts[:, 1:] == cuts[:, :-1]) & (cuts[:, 1:] < INF)
    cuts[dup] = INF
    cuts.sort(axis=1)
    ncut = (cuts < INF).sum(axis=1)

    # cumulative energy at each cut: pro rata by time, exactly the threshold at the kWh cut
    rel = np.where(cuts < INF, cuts - a[:, None], 0)
    V = e[:, None] * rel // dsafe[:, None]
    Tm = np.where(has_k, T, 0)[:, None]
    before = cuts < kcut[:, None]
    after = (cuts > kcut[:, None]) & (cuts < INF)
    V = np.where(cuts == kcut[:, None], Tm, np.where(before & has_k[:, None], np.minimum(V, Tm), V))
    V = np.where(after & has_k[:, None], np.maximum(V, Tm), V)

    # ---- periods
    npieces = ncut + 1
    rep = np.repeat(np.arange(ns), npieces)
    first_piece = np.cumsum(npieces) - npieces
    k = np.arange(len(rep)) - first_piece[rep]
    last = k == ncut[rep]
    prev_col = np.maximum(k - 1, 0)
    this_col = np.minimum(k, cuts.shape[1] - 1)
    p_start = np.where(k == 0, a[rep], cuts[rep, prev_col])
    p_end = np.where(last, b[rep], cuts[rep, this_col])
    v0 = np.where(k == 0, 0, V[rep, prev_col])
    v1 = np.where(last, e[rep], V[rep, this_col])
    p_energy = v1 - v0
    p_park = is_park[rep]
    p_dur = p_end - p_start
    # DC power at the period edges (decreasing): MAX at the start, MIN at the end
    span = np.maximum(d[rep], 1)
    pw0 = pa[rep] + (pb[rep] - pa[rep]) * (p_start - a[rep]) / span
    pw1 = pa[rep] + (pb[rep] - pa[rep]) * (p_end - a[rep]) / span
    dc_row = (is_dc[s_idx][rep] == 1) & ~p_park
    p_pmax = np.where(dc_row, np.ceil(np.round(pw0, 6) / 100).astype(np.int64) * 100, -1)
    p_pmin = np.where(dc_row, np.floor(np.round(pw1, 6) / 100).astype(np.int64) * 100, -1)
    sess_of_piece = s_idx[rep]
    p_off = np.searchsorted(sess_of_piece, np.arange(n + 1))
    straddles = sloppy.copy()
    return Block(
        seq=seq,
        cpo=cpo,
        loc=loc,
        evse=evse,
        emsp=emsp,
        contract=contract,
        version=version,
        is_dc=is_dc,
        start=start,
        end=end,
        sloppy=sloppy,
        straddles=straddles,
        p_off=p_off,
        p_start=p_start,
        p_dur=p_dur,
        p_park=p_park,
        p_energy_wh=p_energy,
        p_pmin_w=p_pmin,
        p_pmax_w=p_pmax,
    )


# ---- OCPI records -------------------------------------------------------------------------------


def _iso(seconds: np.ndarray) -> list[str]:
    return [s + "Z" for s in np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").tolist()]


def _money(x: Decimal) -> float:
    return float(x)


def r2(text: str | Decimal) -> Decimal:
    """Half-up to cents, as a CPO reports an amount."""
    return Decimal(text).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _contract_number(emsp: int, contract: int) -> int:
    return (contract * 7919 + emsp * 1_234_567 + 10_000_019) % 100_000_000


@dataclass
class Renderer:
    """Builds OCPI CDR dicts for the sessions of a block (locations and tokens cached)."""

    world: World
    width: int
    _loc: dict[tuple[int, int, int, str], dict[str, Any]] = field(default_factory=dict)

    def cdr_id(self, c: int, seq: int) -> str:
        yymm = self.world.cfg.month[2:4] + self.world.cfg.month[5:7]
        return f"{self.world.cpos[c].party}-{yymm}-{seq:0{self.width}d}"

    def location(self, c: int, loc: int, evse: int, is_dc: int, version: str) -> dict[str, Any]:
        key = (c, loc, evse, version)
        hit = self._loc.get(key)
        if hit is not None:
            return hit
        w = self.world
        cpo = w.cpos[c]
        city, postal, _, _ = cpo.cities[int(w.loc_city[c, loc])]
        street = cpo.streets[int(w.loc_street[c, loc])]
        house = int(w.loc_house[c, loc])
        address = f"{house} {street}" if cpo.country in ("GB", "FR") else f"{street} {house}"
        lat = f"{w.loc_lat_e6[c, loc] / 1e6:.6f}"
        lon = f"{w.loc_lon_e6[c, loc] / 1e6:.6f}"
        lid = w.location_id(c, loc)
        n = loc + 1
        standard = "IEC_62196_T2_COMBO" if is_dc else "IEC_62196_T2"
        fmt = "CABLE" if is_dc else "SOCKET"
        power_type = "DC" if is_dc else "AC_3_PHASE"
        if version == "2.1.1":
            tariff_id = w.tariffs[(c, is_dc, version)]["id"]
            pnom = int(w.loc_pnom_w[c, loc])
            out: dict[str, Any] = {
                "id": lid,
                "type": "PARKING_LOT" if is_dc else "ON_STREET",
                "address": address,
                "city": city,
                "postal_code": postal,
                "country": cpo.country3,
                "coordinates": {"latitude": lat, "longitude": lon},
                "evses": [
                    {
                        "uid": f"{cpo.party}{n:04d}-{evse + 1}",
                        "evse_id": f"{cpo.country}-{cpo.party}-E{n:04d}{evse + 1}",
                        "status": "AVAILABLE",
                        "connectors": [
                            {
                                "id": "1",
                                "standard": standard,
                                "format": fmt,
                                "power_type": power_type,
                                "voltage": 400 if is_dc or pnom > 7400 else 230,
                                "amperage": pnom // 400 if is_dc else max(16, pnom // 690),
                                "tariff_id": tariff_id,
                                "last_updated": w.valid_from,
                            }
                        ],
                        "last_updated": w.valid_from,
                    }
                ],
                "time_zone": cpo.zone,
                "last_updated": w.valid_from,
            }
        else:
            out = {
                "id": lid,
                "address": address,
                "city": city,
                "country": cpo.country3,
                "coordinates": {"latitude": lat, "longitude": lon},
                "evse_uid": f"{cpo.party}{n:04d}-{evse + 1}",
                "evse_id": f"{cpo.country}*{cpo.party}*E{n:04d}{evse + 1}",
                "connector_id": "1",
                "connector_standard": standard,
                "connector_format": fmt,
                "connector_power_type": power_type,
            }
        self._loc[key] = out
        return out

    def token(self, e: int, contract: int) -> tuple[str, str, str]:
        """(uid, contract_id, 2.1.1 auth_id) of an eMSP contract."""
        emsp = self.world.emsps[e]
        num = _contract_number(e, contract)
        check = sum(int(ch) for ch in f"{num:08d}") % 10
        contract_id = f"{emsp.country}-{emsp.party}-C{num:08d}-{check}"
        uid = f"{(num * 2654435761 + e) & 0xFFFFFFFF:08X}"
        return uid, contract_id, contract_id.replace("-", "")

    def cdr(self, blk: Block, i: int, version: str, iso: dict[str, list[str]]) -> dict[str, Any]:
        w = self.world
        c, e = int(blk.cpo[i]), int(blk.emsp[i])
        cpo = w.cpos[c]
        is_dc = int(blk.is_dc[i])
        seq = int(blk.seq[i])
        tariff = w.tariffs[(c, is_dc, version)]
        uid, contract_id, auth_id = self.token(e, int(blk.contract[i]))
        rec: dict[str, Any] = {}
        if version != "2.1.1":
            rec["country_code"] = cpo.country
            rec["party_id"] = cpo.party
        rec["id"] = self.cdr_id(c, seq)
        rec["start_date_time"] = iso["start"][i]
        rec["stop_date_time" if version == "2.1.1" else "end_date_time"] = iso["end"][i]
        auth = (
            "WHITELIST",
            "WHITELIST",
            "WHITELIST",
            "WHITELIST",
            "WHITELIST",
            "WHITELIST",
            "WHITELIST",
            "AUTH_REQUEST",
            "AUTH_REQUEST",
            "COMMAND",
        )[seq % 10]
        if version == "2.1.1":
            rec["auth_id"] = auth_id
            rec["auth_method"] = "WHITELIST" if auth == "COMMAND" else auth
            rec["location"] = self.location(c, int(blk.loc[i]), int(blk.evse[i]), is_dc, version)
        else:
            rec["session_id"] = f"{cpo.party}-S{seq:0{self.width}d}"
            em = w.emsps[e]
            rec["cdr_token"] = {
                "country_code": em.country,
                "party_id": em.party,
                "uid": uid,
                "type": "APP_USER" if auth == "COMMAND" else "RFID",
                "contract_id": contract_id,
            }
            rec["auth_method"] = auth
            rec["cdr_location"] = self.location(c, int(blk.loc[i]), int(blk.evse[i]), is_dc, version)
        rec["currency"] = cpo.currency
        if w.cfg.embed_tariffs:
            rec["tariffs"] = [tariff]
        periods = []
        for p in range(int(blk.p_off[i]), int(blk.p_off[i + 1])):
            hours = int(blk.p_dur[p]) * 25 // 9 / 10000  # exact: durations are multiples of 9 s
            if blk.p_park[p]:
                dims = [{"type": "PARKING_TIME", "volume": hours}]
            else:
                dims = [
                    {"type": "ENERGY", "volume": int(blk.p_energy_wh[p]) / 1000},
                    {"type": "TIME", "volume": hours},
                ]
                if blk.p_pmax_w[p] >= 0 and version != "2.1.1":
                    dims.append({"type": "MIN_POWER", "volume": int(blk.p_pmin_w[p]) / 1000})
                    dims.append({"type": "MAX_POWER", "volume": int(blk.p_pmax_w[p]) / 1000})
            period: dict[str, Any] = {"start_date_time": iso["p_start"][p], "dimensions": dims}
            if version != "2.1.1":
                period["tariff_id"] = tariff["id"]
            periods.append(period)
        rec["charging_periods"] = periods
        rec["total_cost"] = 0 if version == "2.1.1" else _price(version, Decimal(0), Decimal(0), None)
        rec["total_energy"] = 0
        rec["total_time"] = 0
        rec["last_updated"] = iso["updated"][i]
        return rec


def _price(version: str, excl: Decimal, incl: Decimal | None, vat: str | None) -> Any:
    """An OCPI Price in ``version`` from amounts already rounded to cents."""
    if version == "2.1.1":
        return _money(excl)
    if version == "2.2.1":
        out: dict[str, Any] = {"excl_vat": _money(excl)}
        if incl is not None:
            out["incl_vat"] = _money(incl)
        return out
    taxes = []
    if incl is not None and vat is not None:
        taxes.append({"name": "VAT", "percentage": float(vat), "amount": _money(incl - excl)})
    return {"before_taxes": _money(excl), "taxes": taxes}


COST_FIELDS = (
    ("total_fixed_cost", "fixed"),
    ("total_energy_cost", "energy"),
    ("total_time_cost", "time"),
    ("total_parking_cost", "parking"),
)
MONEY_KEYS = ("excl_vat", "incl_vat", "before_taxes", "amount")


def fill_totals(
    rec: dict[str, Any], row: dict[str, Any], version: str, vat: str, breakdown: bool = True
) -> tuple[Decimal, Decimal | None]:
    """Write the engine's result into the CDR as a CPO reports it (cents, half-up).

    Returns the reported (total excl, total incl); incl is None for 2.1.1.
    """
    last_updated = rec.pop("last_updated")
    for key in ("total_cost", "total_energy", "total_time"):
        rec.pop(key, None)
    excl = r2(row["total_cost_excl_vat"])
    incl = None if row["total_cost_incl_vat"] is None else r2(row["total_cost_incl_vat"])
    if version == "2.3.0":
        taxes = [t for t in row.get("taxes") or [] if t.get("amount") is not None]
        rec["total_cost"] = {
            "before_taxes": _money(excl),
            "taxes": [
                {"name": t["name"], "percentage": float(t["percentage"]), "amount": _money(r2(t["amount"]))}
                for t in taxes
            ],
        }
        incl = excl + sum((r2(t["amount"]) for t in taxes), Decimal(0))
    else:
        rec["total_cost"] = _price(version, excl, incl, None)
    parking = Decimal(row["parking_time_h"])
    parts = version if breakdown else "2.1.1"  # the total_*_cost fields are optional: some CPOs omit them
    _cost_field(rec, "total_fixed_cost", "fixed", row, parts, vat)
    rec["total_energy"] = float(Decimal(row["total_energy_kwh"]).quantize(Decimal("0.001")))
    _cost_field(rec, "total_energy_cost", "energy", row, parts, vat)
    rec["total_time"] = float(Decimal(row["total_time_h"]))
    _cost_field(rec, "total_time_cost", "time", row, parts, vat)
    if parking > 0:
        rec["total_parking_time"] = float(parking)
        _cost_field(rec, "total_parking_cost", "parking", row, parts, vat)
    rec["last_updated"] = last_updated
    return excl, None if version == "2.1.1" else incl


def _cost_field(out: dict[str, Any], fld: str, cat: str, row: dict[str, Any], version: str, vat: str) -> None:
    """A total_*_cost breakdown field (2.2.1/2.3.0 only; left out when the category costs nothing)."""
    if version == "2.1.1":
        return
    excl = row[f"{cat}_cost_excl_vat"]
    if excl is None or Decimal(excl) == 0:
        return
    incl = row[f"{cat}_cost_incl_vat"]
    out[fld] = _price(version, r2(excl), None if incl is None else r2(incl), vat)


def negate_money(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {
            k: (-v if k in MONEY_KEYS and isinstance(v, (int, float)) and v else negate_money(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [negate_money(v) for v in obj]
    return obj


# ---- the engine pass ----------------------------------------------------------------------------


@dataclass
class Engine:
    """Prices generated CDR dicts with :func:`pricing.batch.price_batch` (right and wrong tariffs)."""

    world: World
    right: Any = None
    wrong: Any = None

    def __post_init__(self) -> None:
        from pricing.ocpi import parse_tariff
        from pricing.sessions import TariffSet

        def tset(tariffs: dict[tuple[int, int, str], dict[str, Any]]) -> Any:
            out = []
            for key in sorted(tariffs):
                tariff, _ = parse_tariff(json.loads(json.dumps(tariffs[key])), key[2])
                out.append(tariff)
            return TariffSet.of(out)

        self.right = tset(self.world.tariffs)
        self.wrong = tset(self.world.wrong_tariffs)

    def price(
        self, recs: list[dict[str, Any]], versions: list[str], start_policy: list[bool], wrong: list[bool]
    ) -> list[dict[str, Any]]:
        from pricing.batch import price_batch
        from pricing.policy import PeriodBoundaries, PricingPolicy

        groups: dict[tuple[str, bool, bool], list[int]] = {}
        for i, key in enumerate(zip(versions, start_policy, wrong, strict=True)):
            groups.setdefault(key, []).append(i)
        out: list[dict[str, Any] | None] = [None] * len(recs)
        for (version, start, bad), idx in sorted(groups.items()):
            policy = PricingPolicy(period_boundaries=PeriodBoundaries.START) if start else PricingPolicy()
            res = price_batch(
                [recs[i] for i in idx],
                tariffs=self.wrong if bad else self.right,
                policy=policy,
                version=version,
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


# ---- writers ------------------------------------------------------------------------------------


def _dumps(obj: Any) -> bytes:
    if _orjson is not None:
        return _orjson.dumps(obj)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def corrupt(rec: dict[str, Any], kind: str, cpo: Cpo) -> bytes:
    """A broken record of the given kind (the session's record, damaged)."""
    if kind == "truncated_json":
        raw = _dumps(rec)
        return raw[: len(raw) // 2]
    rec = json.loads(json.dumps(rec))
    if kind == "missing_field":
        del rec["currency"]
    elif kind == "negative_volume":
        for p in rec["charging_periods"]:
            for d in p["dimensions"]:
                if d["type"] == "ENERGY":
                    d["volume"] = -(d["volume"] or 1.0)
                    break
            else:
                continue
            break
    elif kind == "unknown_tariff":
        if "location" in rec:
            for evse in rec["location"]["evses"]:
                for conn in evse["connectors"]:
                    conn["tariff_id"] = f"{cpo.party}-XX-211"
        for p in rec["charging_periods"]:
            if "tariff_id" in p:
                p["tariff_id"] = p["tariff_id"].replace("-AC-", "-XX-").replace("-DC-", "-XX-")
    elif kind == "wrong_currency":
        rec["currency"] = "EUR" if cpo.currency != "EUR" else "GBP"
    return _dumps(rec)


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
        import pyarrow.parquet as pq

        from pricing.flat import arrow_schema

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


def _dict_strings(indices: np.ndarray, values: list[str | None]) -> Any:
    """A string column from small-integer codes into ``values`` (None → null)."""
    import pyarrow as pa

    return pa.array(values, pa.string()).take(pa.array(np.asarray(indices, dtype=np.int32)))


def flat_table(
    world: World,
    blk: Block,
    plan: Plan,
    ids: Any,
    reported: list[tuple[Decimal | None, Decimal | None]] | None,
) -> Any:
    """The block's records in the flat layout of :mod:`pricing.flat` (vectorized over periods)."""
    import pyarrow as pa

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

    # tariff ids: (cpo, is_dc, version) plus one unknown id per CPO for the malformed records
    tariff_vals: list[str | None] = []
    for c in range(ncpo):
        for dc in (0, 1):
            for v in VERSIONS:
                tariff_vals.append(world.tariffs[(c, dc, v)]["id"])
    unknown_base = len(tariff_vals)
    tariff_vals += [f"{cp.party}-XX-221" for cp in world.cpos]
    t_idx = (cpo * 2 + blk.is_dc[sess]) * 3 + vidx
    t_idx = np.where(ent_kind == MALFORMED_KINDS.index("unknown_tariff"), unknown_base + cpo, t_idx)

    currencies = sorted({cp.currency for cp in world.cpos} | {"EUR", "GBP"})
    cur = np.array([currencies.index(cp.currency) for cp in world.cpos])[cpo]
    wrong = np.array([currencies.index("EUR" if cp.currency != "EUR" else "GBP") for cp in world.cpos])[cpo]
    cur = np.where(ent_kind == MALFORMED_KINDS.index("wrong_currency"), wrong, cur)
    cur_vals: list[str | None] = [*currencies, None]
    cur = np.where(ent_kind == MALFORMED_KINDS.index("missing_field"), len(currencies), cur)

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
        rep_excl = pa.array([r[0] for r in reported], dec).take(take)
        rep_incl = pa.array([r[1] for r in reported], dec).take(take)
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
        "currency": _dict_strings(cur, cur_vals),
        "time_zone": _dict_strings(cpo, [cp.zone for cp in world.cpos]),
        "location_country": _dict_strings(cpo, [cp.country3 for cp in world.cpos]),
        "period_idx": pa.array(period_idx.astype(np.int32), pa.int32()),
        "period_start_ms": ms(blk.p_start[prow]),
        "tariff_id": _dict_strings(t_idx, tariff_vals),
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


def settlement_columns(
    world: World, blk: Block, plan: Plan, ids: Any, row_ent: np.ndarray, is211: np.ndarray
) -> dict[str, Any]:
    """The optional settlement columns of the flat layout: location, contract, credit flags."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(plan)
    sess = plan.i
    renderer = Renderer(world, 0)

    def strings(keys: np.ndarray, make: Any) -> Any:  # one Python call per distinct key
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        return pa.array([make(*map(int, u)) for u in uniq], pa.string()).take(pa.array(inv.reshape(-1)))

    locations = strings(np.stack([blk.cpo[sess], blk.loc[sess]], 1), world.location_id)
    contracts = strings(
        np.stack([blk.emsp[sess], blk.contract[sess]], 1), lambda e, c: renderer.token(e, c)[1]
    )
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
    from pricing.flat import arrow_schema

    return arrow_schema(optional=True)


def flat_ids(world: World, blk: Block, plan: Plan, width: int) -> Any:
    """CDR ids of the records (``<PARTY>-<yymm>-<number>``, credits ``-C``, re-issues ``-R``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

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
        text = json.dumps(tariff, indent=2, ensure_ascii=False) + "\n"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        paths.append(path)
    return paths


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
        "pairs": pairs,
        "parties_211": {
            "emsp_by_contract_prefix": {e.prefix: e.key for e in world.emsps},
            "cpo_by_location": locations,
        },
    }
    return out


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
    reported: list[tuple[Decimal | None, Decimal | None]] | None
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
    if cfg.fmt == "parquet" and engine is None:
        return BlockResult(blk, plan, [], None, [])
    lines, reported, minmax = _render_block(
        world, Renderer(world, id_width(cfg)), engine, blk, plan.entries()
    )
    return BlockResult(blk, plan, lines, reported, minmax)


def id_width(cfg: Config) -> int:
    return max(7, len(str(max(cfg.cdrs + cfg.malformed - 1, 0))))


def iter_block_results(cfg: Config, malformed: dict[int, str], jobs: int) -> Iterator[BlockResult]:
    """Blocks in order; with ``jobs > 1`` a process pool works a few blocks ahead."""
    n_blocks = -(-(cfg.cdrs + cfg.malformed) // BLOCK)
    if jobs <= 1 or n_blocks <= 1:
        for b in range(n_blocks):
            yield build_block(cfg, b, malformed)
        return
    from concurrent.futures import ProcessPoolExecutor

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
                labels_out.append((row["file"], row["line"], _dumps(row)))
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


def _render_block(
    world: World, renderer: Renderer, engine: Engine | None, blk: Block, entries: list[Entry]
) -> tuple[list[tuple[str, bytes, bool]], list[tuple[Decimal | None, Decimal | None]], list[int]]:
    """Every entry as an NDJSON line (file version, bytes, clean?) and its reported totals.

    Each (session, version) is rendered once and priced once with the right tariffs, and once more
    with the wrong ones when its original was overcharged. What was *billed* (the original, its
    resends and its credit) uses the wrong price; a re-issue the right one.
    """
    updated = blk.end + 60 + (blk.seq * 37) % 1800
    iso = {
        "start": _iso(blk.start),
        "end": _iso(blk.end),
        "p_start": _iso(blk.p_start),
        "updated": _iso(updated),
        "send": _iso(np.array([en.send for en in entries], dtype=np.int64)),
    }
    base: dict[tuple[int, str], dict[str, Any]] = {}
    for en in entries:
        key = (en.i, en.render)
        if key not in base:
            base[key] = renderer.cdr(blk, en.i, en.render, iso)
    over = {en.i for en in entries if is_overcharged(en)}
    keys = list(base)
    wrong_keys = [k for k in keys if k[0] in over]
    right_rows: dict[tuple[int, str], dict[str, Any]] = {}
    wrong_rows: dict[tuple[int, str], dict[str, Any]] = {}
    if engine is not None:
        todo = keys + wrong_keys
        rows = engine.price(
            [base[k] for k in todo],
            [k[1] for k in todo],
            [bool(blk.sloppy[k[0]]) for k in todo],
            [False] * len(keys) + [True] * len(wrong_keys),
        )
        right_rows = dict(zip(keys, rows[: len(keys)], strict=True))
        wrong_rows = dict(zip(wrong_keys, rows[len(keys) :], strict=True))
    lines: list[tuple[str, bytes, bool]] = []
    reported: list[tuple[Decimal | None, Decimal | None]] = []
    minmax: list[int] = []
    for n_en, en in enumerate(entries):
        key = (en.i, en.render)
        cpo = world.cpos[int(blk.cpo[en.i])]
        rec = dict(base[key])  # shallow: fill_totals and the edits below only replace top-level keys
        rep: tuple[Decimal | None, Decimal | None] = (None, None)
        if engine is not None:
            billed_wrong = en.i in over and en.kind in ("orig", "dup", "conflict", "credit")
            row = wrong_rows[key] if billed_wrong else right_rows[key]
            if row.get("min_max_applied") and en.kind != "malformed":
                minmax.append(n_en)
            rep = fill_totals(rec, row, en.render, cpo.vat, cpo.breakdown)
        if en.kind == "credit":
            rid = rec["id"]
            rec = negate_money(rec)
            rec["id"] = rid + "-C"
            rec["last_updated"] = iso["send"][n_en]
            rec["credit"] = True
            rec["credit_reference_id"] = rid
            rep = (_neg(rep[0]), _neg(rep[1]))
        elif en.kind == "reissue":
            rec["id"] = rec["id"] + "-R"
            rec["last_updated"] = iso["send"][n_en]
        elif en.kind == "conflict":
            rec["total_cost"] = _shift_total(rec["total_cost"], en.delta, en.render, cpo.vat)
            rec["last_updated"] = iso["send"][n_en]
            inc = _incl_delta(en.delta, cpo.vat)
            rep = (_add(rep[0], en.delta), _add(rep[1], inc))
        if en.kind == "malformed":
            assert en.malformed is not None
            lines.append((en.version, corrupt(rec, en.malformed, cpo), False))
        else:
            lines.append((en.version, _dumps(rec), True))
        reported.append(rep)
    return lines, reported, minmax


def _neg(x: Decimal | None) -> Decimal | None:
    return None if x is None else -x


def _add(x: Decimal | None, y: Decimal) -> Decimal | None:
    return None if x is None else x + y


def _incl_delta(delta: Decimal, vat: str) -> Decimal:
    return r2(delta * (1 + Decimal(vat) / 100))


def _shift_total(total: Any, delta: Decimal, version: str, vat: str) -> Any:
    """A conflicting resend: the same CDR id with a different total_cost."""
    if version == "2.1.1":
        return _money(r2(Decimal(repr(total)) + delta))
    total = json.loads(json.dumps(total))
    if version == "2.2.1":
        total["excl_vat"] = _money(r2(Decimal(repr(total["excl_vat"])) + delta))
        if "incl_vat" in total:
            total["incl_vat"] = _money(r2(Decimal(repr(total["incl_vat"])) + _incl_delta(delta, vat)))
        return total
    total["before_taxes"] = _money(r2(Decimal(repr(total["before_taxes"])) + delta))
    if total.get("taxes"):
        t = total["taxes"][0]
        t["amount"] = _money(r2(Decimal(repr(t["amount"])) + _incl_delta(delta, vat) - delta))
    return total


# ---- command line -------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return v


def _rate(text: str) -> float:
    v = float(text)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError("must be a fraction between 0 and 1")
    return v


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``roamledger generate`` to the CLI's subparsers."""
    p = subparsers.add_parser(
        "generate",
        help="write a realistic, deterministic month of OCPI CDRs (+ tariffs) for tests and benchmarks",
        description=(
            "Generate OCPI CDRs (NDJSON, one file per version) or the flat Parquet layout, and the "
            "tariffs they use. Same arguments give byte-identical files. Reported totals are computed "
            "by the pricing engine and rounded to cents."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--cdrs",
        type=_positive_int,
        required=True,
        metavar="N",
        help="well-formed sessions (CDRs) to generate",
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help=".ndjson/.jsonl: nested OCPI CDRs, first version in FILE, others in <stem>.v<digits>.ndjson; "
        ".parquet: the flat layout of pricing.flat",
    )
    p.add_argument(
        "--month", default="2026-10", metavar="YYYY-MM", help="month of the session starts (default 2026-10)"
    )
    p.add_argument(
        "--versions",
        default="2.2.1",
        metavar="V[:W],...",
        help="OCPI versions with optional weights, e.g. 2.2.1:60,2.1.1:10,2.3.0:30 (default 2.2.1)",
    )
    p.add_argument(
        "--cpos",
        type=int,
        default=3,
        choices=range(1, len(CPOS) + 1),
        metavar="K",
        help="CPOs (1-5, default 3)",
    )
    p.add_argument(
        "--emsps",
        type=int,
        default=4,
        choices=range(1, len(EMSPS) + 1),
        metavar="M",
        help="eMSPs (1-6, default 4)",
    )
    p.add_argument(
        "--malformed", type=_positive_int, default=0, metavar="K", help="broken records to add (default 0)"
    )
    p.add_argument(
        "--overcharge-rate",
        type=_rate,
        default=0.01,
        metavar="R",
        help="CDRs priced with a wrong tariff (default 0.01)",
    )
    p.add_argument(
        "--credit-rate", type=_rate, default=0.003, metavar="R", help="2.2+ CDRs credited (default 0.003)"
    )
    p.add_argument(
        "--duplicate-rate", type=_rate, default=0.002, metavar="R", help="CDRs sent twice (default 0.002)"
    )
    p.add_argument(
        "--out-of-month-rate",
        type=_rate,
        default=0.002,
        metavar="R",
        help="sessions in the previous/next month (default 0.002)",
    )
    p.add_argument(
        "--straddle-rate",
        type=_rate,
        default=0.01,
        metavar="R",
        help="sessions with a period straddling a price change (0.01)",
    )
    p.add_argument(
        "--dc-share", type=_rate, default=0.3, metavar="R", help="share of DC locations (default 0.3)"
    )
    p.add_argument(
        "--tariffs-out",
        metavar="DIR",
        help="where to write the tariff JSON files (default: <FILE's dir>/tariffs)",
    )
    p.add_argument(
        "--embed-tariffs", action="store_true", help="also embed the tariff in every CDR ('tariffs')"
    )
    p.add_argument(
        "--reported",
        choices=["auto", "yes", "no"],
        default="auto",
        help="reported totals by the engine: auto = always for NDJSON, for Parquet up to 100,000 sessions",
    )
    p.add_argument(
        "--no-reported", dest="reported", action="store_const", const="no", help="same as --reported no"
    )
    p.add_argument("--summary", metavar="FILE", help="also write the counts as JSON")
    p.add_argument(
        "--contracts-out",
        metavar="FILE",
        help="also write a contracts file for `roamledger settle` (party mapping for 2.1.1, sample terms)",
    )
    p.add_argument(
        "--labels",
        metavar="FILE",
        help="also write the ground truth of every special record (NDJSON: file, line, cdr_id, labels)",
    )
    p.add_argument(
        "--jobs", type=int, default=1, metavar="J", help="worker processes (the output does not depend on it)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)
    return p


def config_from_args(args: argparse.Namespace) -> Config:
    try:
        year, month = (int(x) for x in args.month.split("-"))
        date(year, month, 1)
    except ValueError as exc:
        raise InputError(f"--month {args.month!r}: use YYYY-MM, e.g. 2026-10") from exc
    versions, weights = parse_versions(args.versions)
    cfg = Config(
        cdrs=args.cdrs,
        seed=args.seed,
        out=Path(args.out),
        month=f"{year:04d}-{month:02d}",
        versions=versions,
        version_weights=weights,
        cpos=args.cpos,
        emsps=args.emsps,
        malformed=args.malformed,
        overcharge_rate=args.overcharge_rate,
        credit_rate=args.credit_rate,
        duplicate_rate=args.duplicate_rate,
        out_of_month_rate=args.out_of_month_rate,
        straddle_rate=args.straddle_rate,
        dc_share=args.dc_share,
        tariffs_out=Path(args.tariffs_out) if args.tariffs_out else None,
        embed_tariffs=args.embed_tariffs,
        reported=args.reported,
        summary=Path(args.summary) if args.summary else None,
        labels=Path(args.labels) if args.labels else None,
        contracts_out=Path(args.contracts_out) if args.contracts_out else None,
    )
    _ = cfg.fmt  # validates the suffix
    if cfg.reported == "no" and cfg.fmt == "ndjson":
        raise InputError("--no-reported needs a .parquet output. Hint: OCPI CDRs require total_cost")
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if not args.quiet and total > BLOCK:
            print(
                f"generated {done:,}/{total:,} sessions ({time.perf_counter() - t0:.1f} s)", file=sys.stderr
            )

    summary = generate(cfg, progress, jobs=max(1, args.jobs))
    elapsed = time.perf_counter() - t0
    for path, lines in summary["files"].items():
        print(f"wrote {path}: {lines} records")
    print(
        f"sessions {summary['sessions']}, malformed {summary['malformed']}, credits {summary['credits']}, "
        f"re-issues {summary['reissues']}, duplicates {summary['duplicates_identical']} identical + "
        f"{summary['duplicates_conflicting']} conflicting, overcharged {summary['overcharged']}, "
        f"straddling {summary['straddling_sessions']}; tariffs in {summary['tariffs']}; {elapsed:.1f} s"
    )
    return 0


def iter_blocks(cfg: Config) -> Iterator[tuple[World, Block]]:
    """The generated sessions block by block (for benchmarks that want arrays, not files)."""
    world = build_world(cfg)
    total = cfg.cdrs + cfg.malformed
    for block_idx, g0 in enumerate(range(0, total, BLOCK)):
        yield world, generate_block(world, block_idx, g0, min(BLOCK, total - g0))
