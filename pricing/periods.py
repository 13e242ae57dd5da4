"""Sessions → the columnar periods table the kernel prices.

Two builders produce the same :class:`PeriodTable`:

* :func:`from_sessions` — canonical :class:`~pricing.model.Session` objects (one Python pass over
  sessions and periods: this is the adapter for callers that already hold objects);
* :func:`from_flat` — the flat Parquet layout of :mod:`pricing.flat`, vectorized (polars/numpy),
  with the period → phase rules of :func:`pricing.sessions.split_period` and the tariff / zone /
  currency decisions of :func:`pricing.sessions.build_session`; a CDR whose tariff, zone or
  currency cannot be resolved becomes a reject :class:`~pricing.errors.Finding` with the same
  code and message, never a dropped row.

All columns are numpy int64 (bool for flags) in the units of :mod:`pricing.units`. Sessions are
in input order and the periods of one session are consecutive, in time order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pricing import errors as E
from pricing.compile import CHG, PARK, RES
from pricing.errors import RecordRejected, TimeZoneError
from pricing.flat import MEASURES, FlatRecords, flat_value
from pricing.flat_columns import Coded, IntColumn
from pricing.model import Cdr, CdrPeriod, Phase, Session, Tariff
from pricing.period_table import PeriodTable
from pricing.policy import PricingPolicy
from pricing.sessions import (
    ARRAY_OPS,
    END,
    FIRST_MS,
    LAST_MS,
    PERIOD_END,
    PERIOD_START,
    START,
    out_of_time,
    phase_durations,
    select_tariffs,
)
from pricing.timezones import resolve_time_zone

PHASE_CODE = {Phase.RESERVATION: RES, Phase.CHARGING: CHG, Phase.PARKING: PARK}


class Interner:
    """Batch-wide tariff and zone indices (tariffs compared by identity first, then by value)."""

    def __init__(self) -> None:
        self.tariffs: list[Tariff] = []
        self._by_id: dict[int, int] = {}
        self._by_value: dict[Tariff, int] = {}
        self.zones: list[str] = []
        self._zone: dict[str, int] = {}

    def tariff(self, t: Tariff) -> int:
        i = self._by_id.get(id(t))
        if i is None:
            i = self._by_value.get(t)
            if i is None:
                i = self._by_value[t] = len(self.tariffs)
                self.tariffs.append(t)
            self._by_id[id(t)] = i
        return i

    def zone(self, name: str) -> int:
        i = self._zone.get(name)
        if i is None:
            i = self._zone[name] = len(self.zones)
            self.zones.append(name)
        return i


def from_sessions(sessions: list[Session] | tuple[Session, ...]) -> PeriodTable:
    """The periods table of canonical sessions (a Python pass over objects, then numpy)."""
    it = Interner()
    s_start, s_expired, s_primary, s_zone, s_known, counts = [], [], [], [], [], []
    ids, currencies, zone_names, tariff_ids = [], [], [], []
    cols: dict[str, list[int]] = {k: [] for k in ("start", "dur", "phase", "energy", "tariff", "slot", "src")}
    meas: list[list[int]] = [[], [], [], []]
    has: list[list[bool]] = [[], [], [], []]
    c_start, c_dur, c_phase, c_energy = cols["start"], cols["dur"], cols["phase"], cols["energy"]
    c_tariff, c_slot, c_src = cols["tariff"], cols["slot"], cols["src"]
    for s in sessions:
        if not s.tariffs:
            raise ValueError(f"session {s.id!r} has no tariff")
        slots = [it.tariff(t) for t in s.tariffs]
        s_start.append(s.start_ms)
        s_expired.append(s.reservation_expired)
        s_primary.append(slots[0])
        s_zone.append(it.zone(s.time_zone))
        s_known.append(all(t.taxes_known for t in s.tariffs))
        counts.append(len(s.periods))
        ids.append(s.id)
        currencies.append(s.currency)
        zone_names.append(s.time_zone)
        tariff_ids.append(s.tariffs[0].id)
        for p in s.periods:
            c_start.append(p.start_ms)
            c_dur.append(p.duration_ms)
            c_phase.append(PHASE_CODE[p.phase])
            c_energy.append(p.energy_mwh)
            c_tariff.append(slots[p.tariff_idx])
            c_slot.append(p.tariff_idx)
            c_src.append(p.source_index)
            for q, v in enumerate((p.min_power_w, p.max_power_w, p.min_current_ma, p.max_current_ma)):
                meas[q].append(0 if v is None else v)
                has[q].append(v is not None)
    n_s = len(s_start)
    s_off = np.zeros(n_s + 1, np.int64)
    np.cumsum(np.array(counts, np.int64), out=s_off[1:])
    i64 = np.int64
    return PeriodTable(
        tariffs=tuple(it.tariffs),
        zones=tuple(it.zones),
        s_start=np.array(s_start, i64),
        s_expired=np.array(s_expired, bool),
        s_primary=np.array(s_primary, i64),
        s_zone=np.array(s_zone, i64),
        s_taxes_known=np.array(s_known, bool),
        s_off=s_off,
        sess=np.repeat(np.arange(n_s, dtype=i64), counts),
        start=np.array(c_start, i64),
        dur=np.array(c_dur, i64),
        phase=np.array(c_phase, i64),
        energy=np.array(c_energy, i64),
        tariff=np.array(c_tariff, i64),
        slot=np.array(c_slot, i64),
        src=np.array(c_src, i64),
        meas=np.array(meas, i64).reshape(4, -1),
        meas_has=np.array(has, bool).reshape(4, -1),
        meta={"cdr_id": ids, "currency": currencies, "time_zone": zone_names, "tariff_id": tariff_ids},
    )


# ---- the flat layout (pricing.flat) → PeriodTable, vectorized ----------------------------------


def unique_first(key: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(key, return_index=True, return_inverse=True)`` for keys in ``[-1, space)``;
    without a sort when the key space is small (a presence table and a lookup)."""
    n = len(key)
    if space + 1 > max(8 * n, 1 << 16) or space + 1 > 1 << 26:
        return np.unique(key, return_index=True, return_inverse=True)
    k = key + 1
    seen = np.zeros(space + 1, bool)
    seen[k] = True
    present = np.flatnonzero(seen)
    lut = np.zeros(space + 1, np.int64)
    lut[present] = np.arange(len(present), dtype=np.int64)
    inverse = lut[k]
    first = np.full(len(present), n, np.int64)
    np.minimum.at(first, inverse, np.arange(n, dtype=np.int64))
    return present - 1, first, inverse


def tariff_signatures(
    rec: np.ndarray, tcode: np.ndarray, n_rec: int, n_values: int
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, ...]]]:
    """Per row, the slot of its tariff id among its record's distinct non-null ids (in order of
    first appearance; null → 0); per record, the index of its id tuple in the returned list of
    tuples (``()`` first, then one-id tuples in code order, then longer ones in record order).

    The usual case — no record has two different ids — needs no sort; otherwise
    :func:`_tariff_signatures_general`."""
    real = tcode >= 0
    idx = np.flatnonzero(real)
    first_id = np.full(n_rec, -1, np.int64)
    if len(idx):
        r = rec[idx]
        head = np.empty(len(idx), bool)
        head[0] = True
        np.not_equal(r[1:], r[:-1], out=head[1:])
        first_id[r[head]] = tcode[idx[head]]
        if (tcode[idx] != first_id[r]).any():
            return _tariff_signatures_general(rec, tcode, n_rec, n_values)
    sigs: list[tuple[int, ...]] = [()]
    lut = np.zeros(n_values + 1, np.int64)
    present = np.zeros(n_values + 1, bool)
    present[first_id + 1] = True
    for c in (np.flatnonzero(present[1:])).tolist():
        lut[c] = len(sigs)
        sigs.append((c,))
    rec_sig = np.where(first_id >= 0, lut[np.maximum(first_id, 0)], 0)
    return np.zeros(len(rec), np.int64), rec_sig, sigs


def _tariff_signatures_general(
    rec: np.ndarray, tcode: np.ndarray, n_rec: int, n_values: int
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, ...]]]:
    """:func:`tariff_signatures` for any input (a sort over (record, id) pairs)."""
    n_codes = n_values + 1
    rk = rec * n_codes + (tcode + 1)
    uniq, first_pos, inverse = np.unique(rk, return_index=True, return_inverse=True)
    u_rec, u_code = uniq // n_codes, uniq % n_codes - 1
    order = np.lexsort((first_pos, u_rec))  # by record, then first appearance
    rank = np.empty(len(uniq), np.int64)
    real = u_code[order] >= 0
    # position among the record's non-null ids (nulls get slot 0, as build_session does)
    grp_start = np.r_[True, u_rec[order][1:] != u_rec[order][:-1]]
    run = np.cumsum(real) - real
    run_start = np.maximum.accumulate(np.where(grp_start, np.arange(len(order)), 0))
    base = (np.cumsum(real) - real)[run_start]
    rank[order] = np.where(real, run - base, 0)
    row_slot = rank[inverse]
    # a per-record signature: the tuple of its ids
    seq_codes = u_code[order][real]
    seq_rec = u_rec[order][real]
    n_ids = np.bincount(seq_rec, minlength=n_rec)
    sig_of: dict[tuple[int, ...], int] = {}
    rec_sig = np.zeros(n_rec, np.int64)
    if len(seq_rec):
        single = n_ids == 1
        multi_recs = np.flatnonzero(n_ids > 1)
        # records with one id (the usual case): signature = that id
        first_id = np.full(n_rec, -1, np.int64)
        first_idx = np.cumsum(n_ids) - n_ids
        has_any = n_ids > 0
        first_id[has_any] = seq_codes[first_idx[has_any]]
        sigs: list[tuple[int, ...]] = [()]
        sig_of[()] = 0
        for c in np.unique(first_id[single]).tolist():
            sig_of[(c,)] = len(sigs)
            sigs.append((c,))
        lut = np.zeros(n_values + 1, np.int64)
        for (c,), i in ((k, v) for k, v in sig_of.items() if len(k) == 1):
            lut[c] = i
        rec_sig = np.where(single, lut[np.maximum(first_id, 0)], 0)
        for k in multi_recs.tolist():  # several tariffs in one CDR: rare, resolved one by one
            key = tuple(seq_codes[first_idx[k] : first_idx[k] + n_ids[k]].tolist())
            if key not in sig_of:
                sig_of[key] = len(sigs)
                sigs.append(key)
            rec_sig[k] = sig_of[key]
    else:
        sigs = [()]

    return row_slot, rec_sig, sigs


@dataclass
class _Combos:
    """Tariff decisions of the flat records, made once per distinct combination."""

    it: Interner
    row_slot: np.ndarray  # per row: slot of its tariff id inside its record
    rec_combo: np.ndarray  # per record: its combination
    slot_global: np.ndarray  # per (combination, slot): batch-wide tariff index
    known: np.ndarray  # per combination: every chosen tariff knows its taxes
    primary: list[Tariff | None]  # per combination: the session's first tariff


def from_flat(
    fr: FlatRecords,
    tariffs: Any,
    policy: Any = None,
    tz: str | None = None,
    location_zones: dict[str, str] | None = None,
) -> tuple[PeriodTable, dict[int, tuple[str, str, str]], np.ndarray]:
    """The periods table of the flat records that can be priced, vectorized.

    Tariff choice, currency check and time zone follow :func:`pricing.sessions.build_session`
    exactly: the decision is made once per distinct (tariff ids, CPO, currency, validity bucket)
    and (zone column, country, tariff country) combination by the same functions, and spread to
    the records. Returns the table, the rejects (record → (code, message, path), including those
    of :func:`split_flat`) and, per priced session, its record index.
    """
    policy = policy or PricingPolicy()
    cols = fr.cols
    fr0 = fr.first_row
    rejects = dict(fr.rejects)
    ok = np.ones(fr.n_records, bool)
    if rejects:
        ok[list(rejects)] = False
    cb = _flat_tariffs(fr, tariffs, ok, rejects)
    zone_of = _flat_zones(fr, cb, tz, ok, rejects)
    _flat_timeline(fr, ok, policy, rejects)
    rec_ok = np.flatnonzero(ok)
    periods = _flat_periods(fr, ok, policy, cb.row_slot)
    combo_s = cb.rec_combo[rec_ok]
    prim_idx = cb.slot_global[combo_s, 0]
    s_zone = zone_of[rec_ok]
    ver_code, ver_vals = cols["ocpi_version"]
    meta = {
        "cdr_id": cols["cdr_id"][1].column(fr0[rec_ok]),
        "currency": Coded(cols["currency"][0][fr0][rec_ok], [v.upper() for v in cols["currency"][1]]),
        "tariff_id": Coded(prim_idx, [t.id for t in cb.it.tariffs]),
        "time_zone": Coded(s_zone, cb.it.zones),
        "ocpi_version": Coded(ver_code[fr0[rec_ok]], ver_vals),
        "line": IntColumn(fr0[rec_ok] + 1),
    }
    pt = PeriodTable(
        tariffs=tuple(cb.it.tariffs),
        zones=tuple(cb.it.zones),
        s_start=cols["cdr_start_ms"][0][fr0][rec_ok],
        s_expired=periods.pop("expired"),
        s_primary=prim_idx,
        s_zone=s_zone,
        s_taxes_known=cb.known[combo_s],
        tariff=cb.slot_global[combo_s[periods["sess"]], periods["slot"]],
        **periods,
        meta=meta,
    )
    return pt, rejects, rec_ok


def _flat_tariffs(
    fr: FlatRecords, tariffs: Any, ok: np.ndarray, rejects: dict[int, tuple[str, str, str]]
) -> _Combos:
    """The tariffs of each record by :func:`pricing.sessions.select_tariffs`, decided once per
    distinct (tariff ids, CPO, currency, validity bucket: between two instants where a version
    starts, ends or is published); records it rejects leave ``ok``."""
    cols = fr.cols
    n_rec = fr.n_records
    # -- tariff ids per record: distinct non-null ids in order of first appearance
    tcode, tvalues = cols["tariff_id"]
    row_slot, rec_sig, sigs = tariff_signatures(fr.rec, tcode, n_rec, len(tvalues))

    # -- the decision per combination
    fr0 = fr.first_row
    cc_code = cols["country_code"][0][fr0]
    pid_code = cols["party_id"][0][fr0]
    cur_code = cols["currency"][0][fr0]
    start = cols["cdr_start_ms"][0][fr0]
    store = tariffs if tariffs is not None and len(tariffs) else None
    all_t = store.all() if store is not None else []
    breaks = np.unique(
        np.array(
            [v for t in all_t for v in (t.start_ms, t.end_ms, t.last_updated_ms) if v is not None], np.int64
        )
    )
    bucket = np.searchsorted(breaks, start, "right")
    nb = len(breaks) + 1
    dims = [
        len(sigs),
        len(cols["country_code"][1]) + 1,
        len(cols["party_id"][1]) + 1,
        len(cols["currency"][1]) + 1,
        nb,
    ]
    combo_key = (
        (((rec_sig * dims[1] + cc_code + 1) * dims[2] + pid_code + 1) * dims[3] + cur_code + 1) * dims[4]
    ) + bucket
    space = dims[0] * dims[1] * dims[2] * dims[3] * dims[4]
    ckeys, crep, cinv = unique_first(np.where(ok, combo_key, -1), space)
    it = Interner()
    max_slots = max([len(s) for s in sigs] + [1])
    slot_global = np.zeros((len(ckeys), max_slots), np.int64)
    combo_ok = np.ones(len(ckeys), bool)
    combo_known = np.ones(len(ckeys), bool)
    combo_primary: list[Tariff | None] = [None] * len(ckeys)
    combo_reject: dict[int, tuple[str, str, str]] = {}
    for c, (key, k) in enumerate(zip(ckeys.tolist(), crep.tolist(), strict=True)):
        if key < 0:
            combo_ok[c] = False
            continue
        r0 = int(fr0[k])
        stub = Cdr(
            id=flat_value(cols, "cdr_id", r0),
            version="",
            start_ms=int(start[k]),
            end_ms=int(start[k]),
            currency=flat_value(cols, "currency", r0),
            periods=tuple(CdrPeriod(0, tariff_id=tvalues[i]) for i in sigs[rec_sig[k]]),
            country_code=flat_value(cols, "country_code", r0),
            party_id=flat_value(cols, "party_id", r0),
        )
        try:
            chosen, _ = select_tariffs(stub, store)
        except RecordRejected as exc:
            combo_ok[c] = False
            combo_reject[c] = (exc.code, exc.message, exc.path)
            continue
        for s, t in enumerate(chosen):
            slot_global[c, s] = it.tariff(t)
        combo_known[c] = all(t.taxes_known for t in chosen)
        combo_primary[c] = chosen[0]
    rec_combo = cinv.reshape(-1)
    for k in np.flatnonzero(ok & ~combo_ok[rec_combo]).tolist():
        rejects[k] = combo_reject[int(rec_combo[k])]
        ok[k] = False
    return _Combos(it, row_slot, rec_combo, slot_global, combo_known, combo_primary)


def _flat_zones(
    fr: FlatRecords, cb: _Combos, tz: str | None, ok: np.ndarray, rejects: dict[int, tuple[str, str, str]]
) -> np.ndarray:
    """Per record, the index of its time zone in ``cb.it.zones``, resolved once per distinct (zone
    column, location country, tariff country) as :func:`pricing.sessions.build_session` does;
    records without a zone leave ``ok``."""
    cols = fr.cols
    fr0 = fr.first_row
    tz_code = cols["time_zone"][0][fr0]
    lc_code = cols["location_country"][0][fr0]
    combo_primary, rec_combo = cb.primary, cb.rec_combo
    country_vals = sorted({t.country_code for t in combo_primary if t is not None and t.country_code})
    country_idx = {c: i for i, c in enumerate(country_vals)}
    prim_country = np.array(
        [-1 if t is None or not t.country_code else country_idx[t.country_code] for t in combo_primary],
        np.int64,
    )
    pc_rec = prim_country[rec_combo]
    zdims = [len(cols["time_zone"][1]) + 1, len(cols["location_country"][1]) + 1, len(country_vals) + 1]
    zkey = ((tz_code + 1) * zdims[1] + lc_code + 1) * zdims[2] + pc_rec + 1
    zkeys, zrep, zinv = unique_first(np.where(ok, zkey, -1), zdims[0] * zdims[1] * zdims[2])
    zone_of = np.zeros(len(zkeys), np.int64)
    zone_ok = np.ones(len(zkeys), bool)
    zone_reject: dict[int, tuple[str, str, str]] = {}
    for z, (key, k) in enumerate(zip(zkeys.tolist(), zrep.tolist(), strict=True)):
        if key < 0:
            zone_ok[z] = False
            continue
        r0 = int(fr0[k])
        prim = combo_primary[int(rec_combo[k])]
        try:
            name = resolve_time_zone(
                explicit=tz,
                location_zone=flat_value(cols, "time_zone", r0),
                country=flat_value(cols, "location_country", r0) or (prim.country_code if prim else None),
                registry_zone=None,
            )
        except TimeZoneError as exc:
            zone_ok[z] = False
            zone_reject[z] = (E.TZ_UNRESOLVED, str(exc), "")
            continue
        zone_of[z] = cb.it.zone(name)
    rec_zone = zinv.reshape(-1)
    for k in np.flatnonzero(ok & ~zone_ok[rec_zone]).tolist():
        rejects[k] = zone_reject[int(rec_zone[k])]
        ok[k] = False
    return zone_of[rec_zone]


def _flat_periods(
    fr: FlatRecords, ok: np.ndarray, policy: PricingPolicy, row_slot: np.ndarray
) -> dict[str, np.ndarray]:
    """The period columns of the ``ok`` records (``s_off``, ``sess``, ``start``, ``dur``,
    ``phase``, ``energy``, ``slot``, ``src``, ``meas``, ``meas_has``) and per session
    ``expired``: :func:`pricing.sessions.split_period`, element-wise over their rows."""
    cols, rec, fr0 = fr.cols, fr.rec, fr.first_row
    rec_ok = np.flatnonzero(ok)
    n_s = len(rec_ok)
    if n_s == fr.n_records:  # nothing rejected: every row, no gathers
        rows: np.ndarray | None = None
        r_rec = r_sess = rec
    else:
        rows = np.flatnonzero(ok[rec])
        r_rec = rec[rows]
        r_sess = (np.cumsum(ok) - 1)[r_rec]  # record → session index

    def sel(x: np.ndarray) -> np.ndarray:
        return x if rows is None else x[rows]

    ps = sel(cols["period_start_ms"][0])
    n_r = len(ps)
    energy, res, chg, park = _row_durations(cols, sel, r_rec, ps, policy)
    # each row gives its reservation, charging and parking phases that are not empty, in that
    # order; a record that gives none gets one zero-length charging period at the CDR start
    k_res, k_chg, k_park = res > 0, (chg > 0) | (energy > 0), park > 0
    cnt = k_res.astype(np.int64) + k_chg + k_park
    cs = np.zeros(n_r + 1, np.int64)
    np.cumsum(cnt, out=cs[1:])
    r_off = np.zeros(n_s + 1, np.int64)  # rows of each session (consecutive, at least one)
    np.cumsum(np.bincount(r_sess, minlength=n_s), out=r_off[1:])
    empty = cs[r_off[1:]] == cs[r_off[:-1]]
    s_off = np.zeros(n_s + 1, np.int64)
    np.cumsum(cs[r_off[1:]] - cs[r_off[:-1]] + empty, out=s_off[1:])
    n_p = int(s_off[-1])
    base = cs[:-1] + (np.cumsum(empty) - empty)[r_sess]  # output position of a row's first phase
    src_row = (np.arange(n_r, dtype=np.int64) if rows is None else rows) - fr0[r_rec]
    slot_row = sel(row_slot)
    out_start = np.empty(n_p, np.int64)
    out_dur = np.zeros(n_p, np.int64)
    out_phase = np.empty(n_p, np.int64)
    out_energy = np.zeros(n_p, np.int64)
    out_slot = np.zeros(n_p, np.int64)
    out_src = np.zeros(n_p, np.int64)
    meas = np.zeros((4, n_p), np.int64)
    meas_has = np.zeros((4, n_p), bool)
    i_res = np.flatnonzero(k_res)
    i_chg = np.flatnonzero(k_chg)
    i_park = np.flatnonzero(k_park)
    for ph, i, pos, p_start, p_dur in (
        (RES, i_res, base[i_res], ps[i_res], res[i_res]),
        (CHG, i_chg, base[i_chg] + k_res[i_chg], ps[i_chg] + res[i_chg], chg[i_chg]),
        (PARK, i_park, base[i_park] + k_res[i_park] + k_chg[i_park], None, park[i_park]),
    ):
        out_start[pos] = ps[i] + res[i] + chg[i] if p_start is None else p_start
        out_dur[pos] = p_dur
        out_phase[pos] = ph
        out_slot[pos] = slot_row[i]
        out_src[pos] = src_row[i]
        if ph == CHG:
            out_energy[pos] = energy[i]
            for q, m in enumerate(MEASURES):
                v, h = cols[m]
                meas[q, pos] = sel(v)[i] if rows is None else v[rows[i]]
                meas_has[q, pos] = sel(h)[i] if rows is None else h[rows[i]]
    e_s = np.flatnonzero(empty)
    e_pos = s_off[e_s]
    out_start[e_pos] = cols["cdr_start_ms"][0][fr0[rec_ok[e_s]]]
    out_phase[e_pos] = CHG
    sess = np.repeat(np.arange(n_s, dtype=np.int64), np.diff(s_off))

    def any_in_session(k: np.ndarray) -> np.ndarray:
        c = np.zeros(n_r + 1, np.int64)
        np.cumsum(k, out=c[1:])
        return c[r_off[1:]] > c[r_off[:-1]]

    expired = any_in_session(k_res) & ~any_in_session(k_chg) & ~any_in_session(k_park)
    return {
        "s_off": s_off,
        "sess": sess,
        "start": out_start,
        "dur": out_dur,
        "phase": out_phase,
        "energy": out_energy,
        "slot": out_slot,
        "src": out_src,
        "meas": meas,
        "meas_has": meas_has,
        "expired": expired,
    }


def _flat_timeline(
    fr: FlatRecords, ok: np.ndarray, policy: PricingPolicy, rejects: dict[int, tuple[str, str, str]]
) -> None:
    """The ``ok`` records whose instants leave FIRST_MS..LAST_MS leave ``ok`` with the reject of
    :func:`pricing.sessions.build_session`: the first of their start, each period's start and
    laid-out end (in period order), their end that does."""
    cols, rec, fr0 = fr.cols, fr.rec, fr.first_row
    start = cols["cdr_start_ms"][0][fr0]
    end = cols["cdr_end_ms"][0][fr0]
    ps = cols["period_start_ms"][0]
    lo, hi = FIRST_MS, LAST_MS
    bad_row_start = (ps < lo) | (ps > hi)
    rec_bad = (start < lo) | (start > hi) | (end > hi)
    rec_bad |= np.bincount(rec[bad_row_start], minlength=len(ok)) > 0
    vols = [np.where(cols[k][1], cols[k][0], 0) for k in ("time_ms", "parking_ms", "reservation_ms")]
    top = lo  # a bound on every laid-out period end: its start + its volumes + twice its span
    if len(ps):  # (Python ints: exact)
        span = max(int(end.max()), int(ps.max())) - int(ps.min())
        top = int(ps.max()) + sum(int(v.max()) for v in vols) + 2 * max(0, span)
    if top > hi:  # the layout itself, on volumes and instants clipped to the range's width (larger
        # ones end after it anyway): no int64 sum can wrap
        width = hi - lo + 1
        clipped = {"energy_mwh": cols["energy_mwh"]}
        for k, v in zip(("time_ms", "parking_ms", "reservation_ms"), vols, strict=True):
            clipped[k] = (np.clip(v, -width, width), cols[k][1])
        clipped["cdr_end_ms"] = (np.clip(cols["cdr_end_ms"][0], lo - 1, hi + 1), None)
        ps_c = np.clip(ps, lo - 1, hi + 1)
        _energy, res, chg, park = _row_durations(clipped, lambda x: x, rec, ps_c, policy)
        bad_row_end = ~bad_row_start & (ps_c + res + chg + park > hi)
        rec_bad |= np.bincount(rec[bad_row_end], minlength=len(ok)) > 0
    else:
        bad_row_end = np.zeros(len(ps), bool)
    for k in np.flatnonzero(ok & rec_bad).tolist():
        a, b = int(fr0[k]), int(fr0[k + 1]) if k + 1 < len(fr0) else len(ps)
        if not lo <= start[k] <= hi:
            exc = out_of_time(START, 0, int(start[k]))
        else:
            rows = np.flatnonzero(bad_row_start[a:b] | bad_row_end[a:b])
            if len(rows):
                i = int(rows[0])
                what = PERIOD_START if bad_row_start[a + i] else PERIOD_END
                exc = out_of_time(what, i, int(ps[a + i]))
            else:
                exc = out_of_time(END, 0, int(end[k]))
        rejects[k] = (exc.code, exc.message, exc.path)
        ok[k] = False


def _row_durations(
    cols: dict[str, Any], sel: Any, r_rec: np.ndarray, ps: np.ndarray, policy: PricingPolicy
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: (energy, reservation, charging, parking ms) by :func:`pricing.sessions.phase_durations`;
    a row's span runs to the next row of its record, or to the CDR end."""
    end = sel(cols["cdr_end_ms"][0])
    n_r = len(ps)
    nxt = np.empty(n_r, np.int64)
    if n_r:
        nxt[:-1] = np.where(r_rec[1:] == r_rec[:-1], ps[1:], end[:-1])
        nxt[-1] = end[-1]
    span = np.maximum(0, nxt - ps)
    e_v, e_has = (sel(x) for x in cols["energy_mwh"])
    t_v, t_has = (sel(x) for x in cols["time_ms"])
    p_v, p_has = (sel(x) for x in cols["parking_ms"])
    r_v, r_has = (sel(x) for x in cols["reservation_ms"])
    energy = np.where(e_has, e_v, 0)
    res, chg, park = phase_durations(
        ARRAY_OPS, policy.time_source, span, energy, e_has, t_v, t_has, p_v, p_has, r_v, r_has
    )
    return energy, res, chg, park
