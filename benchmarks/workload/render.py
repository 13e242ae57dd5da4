"""OCPI rendering: a block's records as OCPI CDR JSON lines, with the reported totals filled in."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np

from benchmarks.workload.jsontext import dumps
from benchmarks.workload.plan import Entry, is_overcharged
from benchmarks.workload.reported import Engine
from benchmarks.workload.sessions import Block
from benchmarks.workload.specs import Cpo
from benchmarks.workload.world import World

# ---- OCPI records -------------------------------------------------------------------------------


def _iso(seconds: np.ndarray) -> list[str]:
    return [s + "Z" for s in np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").tolist()]


def r2(text: str | Decimal) -> Decimal:
    """Half-up to cents, as a CPO reports an amount."""
    return Decimal(text).quantize(Decimal("0.01"), ROUND_HALF_UP)


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

    def cdr(self, blk: Block, i: int, version: str, iso: dict[str, list[str]]) -> dict[str, Any]:
        w = self.world
        c, e = int(blk.cpo[i]), int(blk.emsp[i])
        cpo = w.cpos[c]
        is_dc = int(blk.is_dc[i])
        seq = int(blk.seq[i])
        tariff = w.tariffs[(c, is_dc, version)]
        uid, contract_id, auth_id = w.token(e, int(blk.contract[i]))
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
            hours = Decimal(int(blk.p_dur[p]) * 25 // 9).scaleb(-4)  # exact: durations are multiples of 9 s
            if blk.p_park[p]:
                dims = [{"type": "PARKING_TIME", "volume": hours}]
            else:
                dims = [
                    {"type": "ENERGY", "volume": Decimal(int(blk.p_energy_wh[p])).scaleb(-3)},
                    {"type": "TIME", "volume": hours},
                ]
                if blk.p_pmax_w[p] >= 0 and version != "2.1.1":
                    dims.append({"type": "MIN_POWER", "volume": Decimal(int(blk.p_pmin_w[p])).scaleb(-3)})
                    dims.append({"type": "MAX_POWER", "volume": Decimal(int(blk.p_pmax_w[p])).scaleb(-3)})
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
        return excl
    if version == "2.2.1":
        out: dict[str, Any] = {"excl_vat": excl}
        if incl is not None:
            out["incl_vat"] = incl
        return out
    taxes = []
    if incl is not None and vat is not None:
        taxes.append({"name": "VAT", "percentage": Decimal(vat), "amount": incl - excl})
    return {"before_taxes": excl, "taxes": taxes}


COST_FIELDS = (
    ("total_fixed_cost", "fixed"),
    ("total_energy_cost", "energy"),
    ("total_time_cost", "time"),
    ("total_parking_cost", "parking"),
)
MONEY_KEYS = ("excl_vat", "incl_vat", "before_taxes", "amount")


def fill_totals(
    rec: dict[str, Any], row: dict[str, Any], version: str, vat: str, breakdown: bool = True
) -> None:
    """Write the engine's result into the CDR as a CPO reports it (cents, half-up)."""
    last_updated = rec.pop("last_updated")
    for key in ("total_cost", "total_energy", "total_time"):
        rec.pop(key, None)
    excl = r2(row["total_cost_excl_vat"])
    if version == "2.3.0":
        taxes = [t for t in row.get("taxes") or [] if t.get("amount") is not None]
        rec["total_cost"] = {
            "before_taxes": excl,
            "taxes": [
                {"name": t["name"], "percentage": Decimal(t["percentage"]), "amount": r2(t["amount"])}
                for t in taxes
            ],
        }
    else:
        incl = None if row["total_cost_incl_vat"] is None else r2(row["total_cost_incl_vat"])
        rec["total_cost"] = _price(version, excl, incl, None)
    parking = Decimal(row["parking_time_h"])
    parts = version if breakdown else "2.1.1"  # the total_*_cost fields are optional: some CPOs omit them
    _cost_field(rec, "total_fixed_cost", "fixed", row, parts, vat)
    rec["total_energy"] = Decimal(row["total_energy_kwh"]).quantize(Decimal("0.001"))
    _cost_field(rec, "total_energy_cost", "energy", row, parts, vat)
    rec["total_time"] = Decimal(row["total_time_h"])
    _cost_field(rec, "total_time_cost", "time", row, parts, vat)
    if parking > 0:
        rec["total_parking_time"] = parking
        _cost_field(rec, "total_parking_cost", "parking", row, parts, vat)
    rec["last_updated"] = last_updated


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
            k: (-v if k in MONEY_KEYS and isinstance(v, (int, Decimal)) and v else negate_money(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [negate_money(v) for v in obj]
    return obj


def corrupt(rec: dict[str, Any], kind: str, cpo: Cpo) -> bytes:
    """A broken record of the given kind (the session's record, damaged)."""
    if kind == "truncated_json":
        raw = dumps(rec)
        return raw[: len(raw) // 2]
    rec = copy.deepcopy(rec)
    if kind == "missing_field":
        del rec["currency"]
    elif kind == "negative_volume":
        for p in rec["charging_periods"]:
            for d in p["dimensions"]:
                if d["type"] == "ENERGY":
                    d["volume"] = -(d["volume"] or Decimal("1.0"))
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
    return dumps(rec)


def render_block(
    world: World, renderer: Renderer, engine: Engine, blk: Block, entries: list[Entry]
) -> tuple[list[tuple[str, bytes, bool]], list[int]]:
    """Every entry as an NDJSON line (file version, bytes, clean?), and the entries whose billed
    price hit the tariff's min/max.

    Each (session, version) is rendered once and priced once with the right tariffs, and once more
    with the wrong ones when its original was overcharged. What was *billed* (the original, its
    resends and its credit) uses the wrong price; a re-issue the right one. The flat layout gets the
    same reported totals on columns: :func:`benchmarks.workload.reported.flat_reported`.
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
    minmax: list[int] = []
    for n_en, en in enumerate(entries):
        key = (en.i, en.render)
        cpo = world.cpos[int(blk.cpo[en.i])]
        rec = dict(base[key])  # shallow: fill_totals and the edits below only replace top-level keys
        billed_wrong = en.i in over and en.kind in ("orig", "dup", "conflict", "credit")
        row = wrong_rows[key] if billed_wrong else right_rows[key]
        if row.get("min_max_applied") and en.kind != "malformed":
            minmax.append(n_en)
        fill_totals(rec, row, en.render, cpo.vat, cpo.breakdown)
        if en.kind == "credit":
            rid = rec["id"]
            rec = negate_money(rec)
            rec["id"] = rid + "-C"
            rec["last_updated"] = iso["send"][n_en]
            rec["credit"] = True
            rec["credit_reference_id"] = rid
        elif en.kind == "reissue":
            rec["id"] = rec["id"] + "-R"
            rec["last_updated"] = iso["send"][n_en]
        elif en.kind == "conflict":
            rec["total_cost"] = _shift_total(rec["total_cost"], en.delta, en.render, cpo.vat)
            rec["last_updated"] = iso["send"][n_en]
        if en.kind == "malformed":
            assert en.malformed is not None
            lines.append((en.version, corrupt(rec, en.malformed, cpo), False))
        else:
            lines.append((en.version, dumps(rec), True))
    return lines, minmax


def _incl_delta(delta: Decimal, vat: str) -> Decimal:
    return r2(delta * (1 + Decimal(vat) / 100))


def _shift_total(total: Any, delta: Decimal, version: str, vat: str) -> Any:
    """A conflicting resend: the same CDR id with a different total_cost."""
    if version == "2.1.1":
        return r2(Decimal(total) + delta)
    total = copy.deepcopy(total)
    if version == "2.2.1":
        total["excl_vat"] = r2(Decimal(total["excl_vat"]) + delta)
        if "incl_vat" in total:
            total["incl_vat"] = r2(Decimal(total["incl_vat"]) + _incl_delta(delta, vat))
        return total
    total["before_taxes"] = r2(Decimal(total["before_taxes"]) + delta)
    if total.get("taxes"):
        t = total["taxes"][0]
        t["amount"] = r2(Decimal(t["amount"]) + _incl_delta(delta, vat) - delta)
    return total
