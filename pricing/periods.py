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

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pricing.compile import CHG, PARK, RES
from pricing.model import Phase, Session, Tariff

PHASE_CODE = {Phase.RESERVATION: RES, Phase.CHARGING: CHG, Phase.PARKING: PARK}
MEASURES = ("min_power_w", "max_power_w", "min_current_ma", "max_current_ma")


@dataclass
class PeriodTable:
    """Sessions and their periods as columns.

    Per session (``n_s``): ``s_start`` (ms), ``s_expired`` (reservation expired), ``s_primary``
    (index into ``tariffs`` of ``Session.tariffs[0]``), ``s_zone`` (index into ``zones``),
    ``s_taxes_known`` (every tariff of the session knows its taxes), ``s_off`` (``n_s + 1``
    offsets into the period columns).

    Per period (``n_p``): ``sess``, ``start`` (ms), ``dur`` (ms), ``phase`` (RES/CHG/PARK codes of
    :mod:`pricing.compile`), ``energy`` (mWh), ``tariff`` (batch-wide index), ``slot`` (the
    period's ``tariff_idx`` inside its session: step rounding and FLAT fees tell tariffs apart by
    slot), ``src`` (CDR charging-period index), ``meas`` ``[4, n_p]`` (min/max power W, min/max
    current mA) with ``meas_has`` (False = not measured).
    """

    tariffs: tuple[Tariff, ...]
    zones: tuple[str, ...]
    s_start: np.ndarray
    s_expired: np.ndarray
    s_primary: np.ndarray
    s_zone: np.ndarray
    s_taxes_known: np.ndarray
    s_off: np.ndarray
    sess: np.ndarray
    start: np.ndarray
    dur: np.ndarray
    phase: np.ndarray
    energy: np.ndarray
    tariff: np.ndarray
    slot: np.ndarray
    src: np.ndarray
    meas: np.ndarray
    meas_has: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_sessions(self) -> int:
        return len(self.s_start)

    @property
    def n_periods(self) -> int:
        return len(self.start)

    def chunk(self, lo: int, hi: int) -> PeriodTable:
        """Sessions ``lo:hi`` (and their periods), session indices rebased to 0."""
        a, b = int(self.s_off[lo]), int(self.s_off[hi])
        return PeriodTable(
            tariffs=self.tariffs,
            zones=self.zones,
            s_start=self.s_start[lo:hi],
            s_expired=self.s_expired[lo:hi],
            s_primary=self.s_primary[lo:hi],
            s_zone=self.s_zone[lo:hi],
            s_taxes_known=self.s_taxes_known[lo:hi],
            s_off=self.s_off[lo : hi + 1] - a,
            sess=self.sess[a:b] - lo,
            start=self.start[a:b],
            dur=self.dur[a:b],
            phase=self.phase[a:b],
            energy=self.energy[a:b],
            tariff=self.tariff[a:b],
            slot=self.slot[a:b],
            src=self.src[a:b],
            meas=self.meas[:, a:b],
            meas_has=self.meas_has[:, a:b],
        )

    def group_ranges(self) -> dict[tuple[int, int], tuple[int, int]]:
        """(tariff, zone) → (first start, last end) over the periods: what the calendar covers."""
        if not self.n_periods:
            return {}
        n_z = max(len(self.zones), 1)
        code = self.tariff * n_z + self.s_zone[self.sess]
        end = self.start + np.maximum(self.dur, 0)
        order = np.argsort(code, kind="stable")
        code_s = code[order]
        first = np.flatnonzero(np.r_[True, code_s[1:] != code_s[:-1]])
        lo = np.minimum.reduceat(self.start[order], first)
        hi = np.maximum.reduceat(end[order], first)
        return {
            (int(c) // n_z, int(c) % n_z): (int(a), int(b))
            for c, a, b in zip(code_s[first], lo, hi, strict=True)
        }


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


# ---- the flat Parquet layout (pricing.flat) -----------------------------------------------------


def read_flat(path: str) -> Any:
    """A flat-layout Parquet file as a pyarrow Table (lazy import: only the flat path needs it)."""
    import pyarrow.parquet as pq

    return pq.read_table(path)


def codes(column: Any) -> tuple[np.ndarray, list[Any]]:
    """Dictionary codes of a pyarrow string column (-1 for null) and the dictionary."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    idx = arr.indices.to_numpy(zero_copy_only=False)
    valid = arr.indices.is_valid().to_numpy(zero_copy_only=False)
    return np.where(valid, np.nan_to_num(idx, nan=0), -1).astype(np.int64), arr.dictionary.to_pylist()


def ints(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """An int64 column as (values with 0 for null, present mask)."""
    import pyarrow as pa

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    values = arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    return values, valid


class RowStrings:
    """A string column addressed by row (codes = row numbers): no dictionary for unique ids."""

    def __init__(self, arr: Any) -> None:
        self.arr = arr

    def __getitem__(self, row: int) -> str | None:
        return self.arr[int(row)].as_py()

    def take(self, rows: np.ndarray) -> list[str | None]:
        import pyarrow as pa

        return self.arr.take(pa.array(rows, pa.int64())).to_pylist()


def row_strings(column: Any) -> tuple[np.ndarray, RowStrings, np.ndarray]:
    """(row number or -1 for null, the column, per row: same value as the row before)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(pa.string())
    n = len(arr)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    same = np.zeros(n, bool)
    if n > 1:
        eq = pc.fill_null(pc.equal(arr.slice(1), arr.slice(0, n - 1)), False).to_numpy(zero_copy_only=False)
        same[1:] = eq | (~valid[1:] & ~valid[:-1])
    return np.where(valid, np.arange(n, dtype=np.int64), -1), RowStrings(arr), same


@dataclass
class FlatRecords:
    """A flat table split into records (CDRs), with the first problem of each record, if any."""

    n_rows: int
    rec: np.ndarray  # per row: record index
    first_row: np.ndarray  # per record: first row (0-based)
    cols: dict[str, Any]  # decoded columns (numpy)
    rejects: dict[int, tuple[str, str, str]]  # record → (code, message, path)

    @property
    def n_records(self) -> int:
        return len(self.first_row)


FLAT_VOLUMES = ("energy_mwh", "time_ms", "parking_ms", "reservation_ms")
FLAT_STRINGS = (
    "cdr_id",
    "ocpi_version",
    "country_code",
    "party_id",
    "currency",
    "time_zone",
    "location_country",
    "tariff_id",
)
FLAT_INTS = ("cdr_start_ms", "cdr_end_ms", "period_start_ms", *FLAT_VOLUMES, *MEASURES)


def split_flat(table: Any) -> FlatRecords:
    """Decode a flat table, cut it into records (runs of one ``cdr_id``) and find, per record, the
    first problem in the parser's order: a missing field, end before start, a negative volume,
    periods out of order, a period after the end."""
    from pricing import errors as E

    cols: dict[str, Any] = {}
    for name in FLAT_STRINGS:
        if name == "cdr_id":
            code, values, same = row_strings(table.column(name))
            cols[name] = (code, values)
        else:
            cols[name] = codes(table.column(name))
    tcode, tvalues = cols["tariff_id"]
    if "" in tvalues:  # an empty tariff_id names no tariff (build_session: ``if i``)
        cols["tariff_id"] = (np.where(tcode == tvalues.index(""), -1, tcode), tvalues)
    for name in FLAT_INTS:
        cols[name] = ints(table.column(name))
    n = table.num_rows
    new = ~same
    rec = np.cumsum(new) - 1
    first_row = np.flatnonzero(new)
    rejects: dict[int, tuple[str, str, str]] = {}

    def flag(bad_rows: np.ndarray, code: str, message: Any, path: Any) -> None:
        for r in np.flatnonzero(bad_rows).tolist():
            k = int(rec[r])
            if k not in rejects:
                rejects[k] = (code, message(r), path(r))

    def pos(r: int) -> int:
        return r - int(first_row[rec[r]])

    for name, what in (
        ("cdr_id", "id"),
        ("currency", "currency"),
        ("cdr_start_ms", "start_date_time"),
        ("cdr_end_ms", "end_date_time"),
        ("period_start_ms", "charging_periods[].start_date_time"),
    ):
        present = cols[name][0] >= 0 if name in FLAT_STRINGS else cols[name][1]
        flag(
            ~present,
            E.MISSING_FIELD,
            lambda r, name=name, what=what: f"{name}: missing ({what}). Hint: every row of a CDR needs it",
            lambda r, what=what: f"$.{what}",
        )
    start, end = cols["cdr_start_ms"][0], cols["cdr_end_ms"][0]
    flag(
        end < start,
        E.INVALID_VALUE,
        lambda r: (
            "cdr_end_ms is before cdr_start_ms. Hint: end_date_time must not be earlier than start_date_time"
        ),
        lambda r: "$.end_date_time",
    )
    for name in FLAT_VOLUMES:
        v, has = cols[name]
        flag(
            has & (v < 0),
            E.NEGATIVE_VOLUME,
            lambda r, name=name, v=v: (
                f"charging_periods[{pos(r)}].{name}: {int(v[r])} is negative. "
                "Hint: volumes are non-negative quantities"
            ),
            lambda r: f"$.charging_periods[{pos(r)}]",
        )
    ps = cols["period_start_ms"][0]
    back = np.zeros(n, bool)
    back[1:] = (~new[1:]) & (ps[1:] < ps[:-1])
    flag(
        back,
        E.PERIODS_OUT_OF_ORDER,
        lambda r: (
            f"charging_periods[{pos(r)}].start_date_time is before the start of charging_periods"
            f"[{pos(r) - 1}]. Hint: charging periods must be sent in time order"
        ),
        lambda r: f"$.charging_periods[{pos(r)}].start_date_time",
    )
    flag(
        ps > end,
        E.PERIOD_AFTER_END,
        lambda r: (
            f"charging_periods[{pos(r)}].start_date_time is after the end of the session. "
            "Hint: a charging period cannot start after end_date_time; check both timestamps"
        ),
        lambda r: f"$.charging_periods[{pos(r)}].start_date_time",
    )
    return FlatRecords(n, rec, first_row, cols, rejects)


def _value(cols: dict[str, Any], name: str, row: int) -> Any:
    c = cols[name]
    if name in FLAT_STRINGS:
        code, values = c
        return None if code[row] < 0 else values[code[row]]
    v, has = c
    return int(v[row]) if has[row] else None


def flat_cdr(fr: FlatRecords, k: int) -> Any:
    """Record ``k`` as a canonical :class:`~pricing.model.Cdr` (for the reference engine)."""
    from pricing.model import Cdr, CdrPeriod

    cols = fr.cols
    lo = int(fr.first_row[k])
    hi = int(fr.first_row[k + 1]) if k + 1 < fr.n_records else fr.n_rows
    periods = tuple(
        CdrPeriod(
            start_ms=_value(cols, "period_start_ms", r),
            energy_mwh=_value(cols, "energy_mwh", r),
            time_ms=_value(cols, "time_ms", r),
            parking_ms=_value(cols, "parking_ms", r),
            reservation_ms=_value(cols, "reservation_ms", r),
            min_power_w=_value(cols, "min_power_w", r),
            max_power_w=_value(cols, "max_power_w", r),
            min_current_ma=_value(cols, "min_current_ma", r),
            max_current_ma=_value(cols, "max_current_ma", r),
            tariff_id=_value(cols, "tariff_id", r),
        )
        for r in range(lo, hi)
    )
    return Cdr(
        id=_value(cols, "cdr_id", lo),
        version=_value(cols, "ocpi_version", lo) or "",
        start_ms=_value(cols, "cdr_start_ms", lo),
        end_ms=_value(cols, "cdr_end_ms", lo),
        currency=_value(cols, "currency", lo),
        periods=periods,
        country_code=_value(cols, "country_code", lo),
        party_id=_value(cols, "party_id", lo),
        location_country=_value(cols, "location_country", lo),
        location_time_zone=_value(cols, "time_zone", lo),
    )


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
    from pricing import errors as E
    from pricing.errors import RecordRejected, TimeZoneError
    from pricing.model import Cdr, CdrPeriod
    from pricing.policy import PricingPolicy, TimeSource
    from pricing.sessions import select_tariffs
    from pricing.timezones import resolve_time_zone

    policy = policy or PricingPolicy()
    cols = fr.cols
    n_rec = fr.n_records
    rec, first_row = fr.rec, fr.first_row
    rejects = dict(fr.rejects)
    ok = np.ones(n_rec, bool)
    if rejects:
        ok[list(rejects)] = False

    # -- tariff ids per record: distinct non-null ids in order of first appearance
    tcode, tvalues = cols["tariff_id"]
    n_codes = len(tvalues) + 1
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
        lut = np.zeros(len(tvalues) + 1, np.int64)
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

    # -- the decision per combination
    fr0 = first_row
    cc_code = cols["country_code"][0][fr0]
    pid_code = cols["party_id"][0][fr0]
    cur_code = cols["currency"][0][fr0]
    start = cols["cdr_start_ms"][0][fr0]
    store = tariffs if tariffs is not None and len(tariffs) else None
    all_t = store.all() if store is not None else []
    breaks = np.unique(
        np.array([v for t in all_t for v in (t.start_ms, t.end_ms) if v is not None], np.int64)
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
    ckeys, crep, cinv = np.unique(np.where(ok, combo_key, -1), return_index=True, return_inverse=True)
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
            id=_value(cols, "cdr_id", r0),
            version="",
            start_ms=int(start[k]),
            end_ms=int(start[k]),
            currency=_value(cols, "currency", r0),
            periods=tuple(CdrPeriod(0, tariff_id=tvalues[i]) for i in sigs[rec_sig[k]]),
            country_code=_value(cols, "country_code", r0),
            party_id=_value(cols, "party_id", r0),
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

    # -- time zone per (zone column, location country, tariff country)
    tz_code = cols["time_zone"][0][fr0]
    lc_code = cols["location_country"][0][fr0]
    country_vals = sorted({t.country_code for t in combo_primary if t is not None and t.country_code})
    country_idx = {c: i for i, c in enumerate(country_vals)}
    prim_country = np.array(
        [-1 if t is None or not t.country_code else country_idx[t.country_code] for t in combo_primary],
        np.int64,
    )
    pc_rec = prim_country[rec_combo]
    zdims = [len(cols["time_zone"][1]) + 1, len(cols["location_country"][1]) + 1, len(country_vals) + 1]
    zkey = ((tz_code + 1) * zdims[1] + lc_code + 1) * zdims[2] + pc_rec + 1
    zkeys, zrep, zinv = np.unique(np.where(ok, zkey, -1), return_index=True, return_inverse=True)
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
                location_zone=_value(cols, "time_zone", r0),
                country=_value(cols, "location_country", r0) or (prim.country_code if prim else None),
                registry_zone=None,
            )
        except TimeZoneError as exc:
            zone_ok[z] = False
            zone_reject[z] = (E.TZ_UNRESOLVED, str(exc), "")
            continue
        zone_of[z] = it.zone(name)
    rec_zone = zinv.reshape(-1)
    for k in np.flatnonzero(ok & ~zone_ok[rec_zone]).tolist():
        rejects[k] = zone_reject[int(rec_zone[k])]
        ok[k] = False

    # -- periods: split_period, vectorized over rows of the priced records
    keep_rows = ok[rec]
    rows = np.flatnonzero(keep_rows)
    r_rec = rec[rows]
    new_id = np.cumsum(ok) - 1  # record → session index
    r_sess = new_id[r_rec]
    ps = cols["period_start_ms"][0][rows]
    end = cols["cdr_end_ms"][0][rows]
    nxt = np.empty_like(ps)
    if len(rows):
        nxt[:-1] = np.where(r_rec[1:] == r_rec[:-1], ps[1:], end[:-1])
        nxt[-1] = end[-1]
    span = np.maximum(0, nxt - ps)
    e_v, e_has = (x[rows] for x in cols["energy_mwh"])
    t_v, t_has = (x[rows] for x in cols["time_ms"])
    p_v, p_has = (x[rows] for x in cols["parking_ms"])
    r_v, r_has = (x[rows] for x in cols["reservation_ms"])
    energy = np.where(e_has, e_v, 0)
    if policy.time_source is TimeSource.DIMENSION_VOLUMES:
        res = np.where(r_has, r_v, 0)
        park = np.where(p_has, p_v, 0)
        none = ~t_has & ~p_has & ~r_has
        chg = np.where(t_has, t_v, 0)
        chg = np.where(none & e_has, span, chg)
        park = np.where(none & ~e_has, span, park)
        fill = ~none & ~t_has & (energy > 0)
        chg = np.where(fill, np.maximum(0, span - res - park), chg)
    else:
        res = np.where(r_has, span, 0)
        rest = span - res
        only_park = p_has & ~t_has & (energy == 0)
        chg = np.where(p_has, np.minimum(np.where(t_has, t_v, 0), rest), rest)
        chg = np.where(only_park, 0, chg)
        park = np.where(p_has, rest - chg, 0)
    keep = np.stack([res > 0, (chg > 0) | (energy > 0), park > 0], axis=1)
    p_start = np.stack([ps, ps + res, ps + res + chg], axis=1)
    p_dur = np.stack([res, chg, park], axis=1)
    p_energy = np.stack([np.zeros_like(energy), energy, np.zeros_like(energy)], axis=1)
    p_phase = np.broadcast_to(np.array([RES, CHG, PARK], np.int64), keep.shape)
    flat_keep = keep.ravel()
    take = np.repeat(np.arange(len(rows)), 3)[flat_keep]
    sess = r_sess[take]
    n_s = int(ok.sum())
    # records that produced no period get one zero-length charging period at the CDR start
    count = np.bincount(sess, minlength=n_s)
    empty = np.flatnonzero(count == 0)
    e_rec = np.flatnonzero(ok)[empty]
    slot = row_slot[rows][take]
    combo_s = rec_combo[np.flatnonzero(ok)]
    src = (rows - fr0[rec[rows]])[take]
    meas_rows = [cols[m][0][rows][take] for m in MEASURES]
    has_rows = [cols[m][1][rows][take] for m in MEASURES]
    is_chg = p_phase.ravel()[flat_keep] == CHG
    columns = {
        "sess": np.concatenate([sess, empty]),
        "start": np.concatenate([p_start.ravel()[flat_keep], cols["cdr_start_ms"][0][fr0[e_rec]]]),
        "dur": np.concatenate([p_dur.ravel()[flat_keep], np.zeros(len(empty), np.int64)]),
        "phase": np.concatenate([p_phase.ravel()[flat_keep], np.full(len(empty), CHG)]),
        "energy": np.concatenate([p_energy.ravel()[flat_keep], np.zeros(len(empty), np.int64)]),
        "slot": np.concatenate([slot, np.zeros(len(empty), np.int64)]),
        "src": np.concatenate([src, np.zeros(len(empty), np.int64)]),
    }
    meas = np.stack(
        [np.concatenate([np.where(is_chg, m, 0), np.zeros(len(empty), np.int64)]) for m in meas_rows]
    )
    meas_has = np.stack([np.concatenate([h & is_chg, np.zeros(len(empty), bool)]) for h in has_rows])
    order = np.argsort(columns["sess"], kind="stable")
    for name in columns:
        columns[name] = columns[name][order]
    meas, meas_has = meas[:, order], meas_has[:, order]
    tariff = slot_global[combo_s[columns["sess"]], columns["slot"]]
    s_off = np.zeros(n_s + 1, np.int64)
    np.cumsum(np.bincount(columns["sess"], minlength=n_s), out=s_off[1:])
    phases_any = [np.zeros(n_s, bool) for _ in range(3)]
    for ph in (RES, CHG, PARK):
        phases_any[ph][columns["sess"][columns["phase"] == ph]] = True
    expired = phases_any[RES] & ~phases_any[CHG] & ~phases_any[PARK]
    rec_ok = np.flatnonzero(ok)
    tariff_objs = it.tariffs
    prim_idx = slot_global[combo_s, 0]
    cur_upper = [v.upper() for v in cols["currency"][1]]
    ver_code, ver_vals = cols["ocpi_version"]
    id_vals = cols["cdr_id"][1]
    zone_names = it.zones
    meta = {
        "cdr_id": id_vals.take(fr0[rec_ok]),
        "currency": [cur_upper[c] for c in cur_code[rec_ok].tolist()],
        "tariff_id": [tariff_objs[i].id for i in prim_idx.tolist()],
        "time_zone": [zone_names[z] for z in zone_of[rec_zone[rec_ok]].tolist()],
        "ocpi_version": [None if c < 0 else ver_vals[c] for c in ver_code[fr0[rec_ok]].tolist()],
        "line": (fr0[rec_ok] + 1).tolist(),
    }
    pt = PeriodTable(
        tariffs=tuple(tariff_objs),
        zones=tuple(zone_names),
        s_start=start[rec_ok],
        s_expired=expired,
        s_primary=prim_idx,
        s_zone=zone_of[rec_zone[rec_ok]],
        s_taxes_known=combo_known[combo_s],
        s_off=s_off,
        sess=columns["sess"],
        start=columns["start"],
        dur=columns["dur"],
        phase=columns["phase"],
        energy=columns["energy"],
        tariff=tariff,
        slot=columns["slot"],
        src=columns["src"],
        meas=meas,
        meas_has=meas_has,
        meta=meta,
    )
    return pt, rejects, rec_ok
