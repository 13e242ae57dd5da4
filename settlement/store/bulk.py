"""Bulk import: CDRs staged set by set, then one set-based insert per batch.

A batch (at most ``batch`` CDRs of one source, in source order) is one transaction: its CDRs are
loaded into temporary staging tables (PostgreSQL: ``COPY … FROM STDIN`` of CSV written by Arrow;
SQLite: ``executemany``), the ids the store already holds are read in one join, and the new CDRs
with their charging periods are inserted by two ``INSERT … SELECT`` statements. The store's
promises hold as for single writes: a CDR id already held with the same JSON is a duplicate
(skipped), with other JSON a conflict (refused and logged), a refused record is logged with its
file and line, and a process killed mid-import leaves only whole batches (a rerun skips them as
duplicates).

OCPI NDJSON files are read by the columnar reader (:func:`pricing.ocpi.columnar.read_ndjson_flat`)
in spans of :data:`SPAN_BYTES`; the lines it leaves to the parser go the per-record way
(:func:`record_rows`), counted by reason. Other files (JSON, Parquet) are read record by record.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    MetaData,
    Table,
    Text,
    and_,
    case,
    delete,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import CreateTable

from pricing.errors import RecordRejected
from pricing.files import expand_inputs
from pricing.io import Record, dumps, loads, read_records
from pricing.ocpi import parse_cdr
from pricing.ocpi.columnar import read_ndjson_flat
from settlement.store.copy import copy_text
from settlement.store.rows import (
    CDR_SCHEMA,
    CONNECTORS,
    PERIOD_SCHEMA,
    credit_flags,
    first_rows,
    model_rows,
    now_ms,
    sha256,
    table_rows,
)
from settlement.store.schema import cdr_periods, cdrs

SPAN_BYTES = 32 << 20
BOM = b"\xef\xbb\xbf"
NDJSON = (".ndjson", ".jsonl")
KEY = ("country_code", "party_id", "cdr_id")


class RowError(ValueError):
    """A CDR the store refuses (the message says why and how to fix it)."""


def no_cpo(cdr_id: str, version: str) -> str:
    return f"CDR {cdr_id} (OCPI {version}) names no CPO. Hint: say which party sent it (--party CC*PID)"


def conflict_message(cdr_id: str) -> str:
    return (
        f"CDR {cdr_id}: a different CDR with this id is stored. Hint: send corrections as a "
        "credit CDR (credit: true, credit_reference_id) and a new CDR with a new id"
    )


def same_json(a: str, b: str) -> bool:
    """Two JSON texts of one object (whitespace, number spelling and key order aside from
    ``loads``/``dumps``): a re-send whose bytes differ but whose content does not."""
    return a == b or dumps(loads(a)) == dumps(loads(b))


def record_rows(
    obj: Any,
    country_code: str | None,
    party_id: str | None,
    stand_in: bool,
    raw: str | None = None,
    seq: int = 0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The staged rows of an OCPI CDR object (validated by the wire models: RecordRejected says
    why not; RowError when the store refuses it). ``raw``: its JSON as received, when at hand
    (else its compact serialization is kept). ``stand_in``: the given party only names the CPO of
    CDRs that name none (2.1.1, in imports); otherwise it is the sender, and a CDR of another
    party is refused (the receiver)."""
    cdr, _ = parse_cdr(obj)
    if not cdr.id:
        raise RowError("CDR without an id. Hint: every CDR needs a unique id")
    cc, pid = cdr.country_code or country_code, cdr.party_id or party_id
    if cc is None or pid is None:
        raise RowError(no_cpo(cdr.id, cdr.version))
    if not stand_in and country_code is not None and (cc, pid) != (country_code, party_id):
        raise RowError(
            f"CDR {cdr.id} belongs to {cc}*{pid}, not to the sending party {country_code}*{party_id}"
        )
    return model_rows(cdr, (cc, pid), raw if raw is not None else dumps(obj), seq)


# ---- writing ------------------------------------------------------------------------------------

_STAGE = MetaData()
# the keys of a batch's CDRs, looked up in the store in one join (emptied by each commit)
stage_keys = Table(
    "stage_keys",
    _STAGE,
    Column("seq", BigInteger),
    *(Column(k, Text) for k in KEY),
    Column("raw_sha256", Text),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)
STORED = [n for n in CDR_SCHEMA.names if n != "seq"]  # a cdrs row beside its id and ingest_id

_NEW_IDS = text(
    "WITH d AS (SELECT nextval(pg_get_serial_sequence('cdrs', 'id')) AS v FROM generate_series(1, :n)) "
    "SELECT min(v), CASE WHEN max(v) - min(v) + 1 = count(*) THEN NULL ELSE array_agg(v ORDER BY v) END "
    "FROM d"
)


def _held(conn: Connection, t: pa.Table) -> list[Any]:
    """(seq, same digest, the held raw JSON when the digests differ, key) of the batch's CDRs whose
    id the store holds, in line order: the batch's keys staged, then one join with the unique key's
    index."""
    conn.execute(CreateTable(stage_keys, if_not_exists=True))
    if conn.dialect.name != "postgresql":
        conn.execute(delete(stage_keys))
    _write(conn, stage_keys, t.select(list(stage_keys.c.keys())))
    s, c = stage_keys, cdrs
    same = s.c.raw_sha256 == c.c.raw_sha256
    on = and_(*(c.c[k] == s.c[k] for k in KEY))
    query = select(s.c.seq, same, case((same, None), else_=c.c.raw), *(c.c[k] for k in KEY))
    return list(conn.execute(query.select_from(s.join(c, on)).order_by(s.c.seq)).all())


def _new_ids(conn: Connection, n: int) -> np.ndarray:
    """``n`` new ``cdrs`` row ids, ascending: drawn from the id sequence in one statement
    (PostgreSQL; only a range's start comes back unless a concurrent writer drew ids in between),
    the next ones after the highest (SQLite: the batch holds the write lock)."""
    if conn.dialect.name == "postgresql":
        lo, gaps = conn.execute(_NEW_IDS, {"n": n}).one()
        return np.asarray(gaps, np.int64) if gaps is not None else np.arange(lo, lo + n, dtype=np.int64)
    top = conn.execute(select(func.coalesce(func.max(cdrs.c.id), 0))).scalar_one()
    return np.arange(top + 1, top + 1 + n, dtype=np.int64)


def _write(conn: Connection, table: Table, rows: pa.Table) -> None:
    """Append ``rows`` (columns named as the table's) to ``table``: PostgreSQL ``COPY … FROM
    STDIN`` of text made by Arrow (:mod:`settlement.store.copy`), SQLite ``executemany``. A row
    whose key a concurrent writer stored meanwhile fails the batch (IntegrityError: it is tried
    again)."""
    if not rows.num_rows:  # an empty executemany would be one INSERT … DEFAULT VALUES
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows.to_pylist())
        return
    payload = copy_text(rows)
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    statement = f"COPY {table.name} ({', '.join(rows.column_names)}) FROM STDIN"
    try:
        with dbapi.cursor() as cur, cur.copy(statement) as cp:
            cp.write(memoryview(payload))
    except psycopg.IntegrityError as exc:
        raise IntegrityError(statement, None, exc) from exc


# ---- a batch --------------------------------------------------------------------------------------


@dataclass
class Batch:
    """Staged rows of some CDRs of one source (``seq``: their line), the refusals met on the way."""

    cdrs: pa.Table
    periods: pa.Table
    where: Callable[[int], str]  # seq → "source:line"
    rejects: list[tuple[str, str | None, str | None, str]] = field(default_factory=list)
    # (where, country_code, party_id, message)


def write_batch(store: Any, conn: Connection, b: Batch, counts: dict[str, int]) -> None:
    """One batch in the caller's transaction: rejects logged, duplicates skipped, conflicts logged,
    the new CDRs and their periods appended under row ids drawn for them (no statement reads
    ``cdrs`` but the one lookup of the batch's keys in the unique index)."""
    log = store._log
    for where, cc, pid, message in b.rejects:
        counts["rejected"] += 1
        log(conn, cc, pid, "import", None, "rejected", message, where)
    t = b.cdrs
    seqs = t.column("seq").to_pylist()
    keys = zip(
        t.column("country_code").to_pylist(),
        t.column("party_id").to_pylist(),
        t.column("cdr_id").to_pylist(),
        strict=True,
    )
    raw = t.column("raw")
    sha = t.column("raw_sha256").to_pylist()
    first: dict[tuple[str, str, str], int] = {}
    keep = np.ones(t.num_rows, bool)
    for i, key in enumerate(keys):  # the same id twice in the batch: the second is judged here
        j = first.setdefault(key, i)
        if j != i:
            keep[i] = False
            _again(
                conn,
                log,
                key,
                sha[j] == sha[i] or same_json(raw[j].as_py(), raw[i].as_py()),
                counts,
                b.where(seqs[i]),
            )
    held = _held(conn, t if keep.all() else t.filter(pa.array(keep))) if t.num_rows else []
    row_of = {s: i for i, s in enumerate(seqs)}
    for seq, same, theirs, cc, pid, cdr_id in held:
        mine = None if same else raw[row_of[seq]].as_py()
        _again(conn, log, (cc, pid, cdr_id), bool(same) or same_json(mine, theirs), counts, b.where(seq))
        keep[row_of[seq]] = False
    n_new = int(keep.sum())
    if n_new == 0:
        return
    if not keep.all():
        t = t.filter(pa.array(keep))
    lo, hi = b.where(seqs[0]), b.where(seqs[-1]).rsplit(":", 1)[-1]
    cc0, pid0 = t.column("country_code")[0].as_py(), t.column("party_id")[0].as_py()
    log_id = log(conn, cc0, pid0, "import", None, "stored", f"{n_new} CDRs", f"{lo}-{hi}")
    ids = _new_ids(conn, n_new)
    new = (
        t.select(STORED)
        .append_column("id", pa.array(ids))
        .append_column("ingest_id", pa.array(np.full(n_new, log_id, np.int64)))
    )
    _write(conn, cdrs, new)
    p = b.periods
    new_seq = t.column("seq").to_numpy()
    pseq = p.column("seq").to_numpy()
    at = np.minimum(np.searchsorted(new_seq, pseq), n_new - 1)
    mine_p = new_seq[at] == pseq  # periods of the CDRs stored now (not of held or repeated ones)
    p = p.filter(pa.array(mine_p)).drop_columns(["seq"])
    _write(conn, cdr_periods, p.append_column("cdr_pk", pa.array(ids[at[mine_p]])))
    counts["stored"] += n_new


def _again(
    conn: Connection, log: Any, key: tuple[str, str, str], same: bool, counts: dict[str, int], where: str
) -> None:
    if same:
        counts["duplicate"] += 1
        return
    counts["conflict"] += 1
    log(conn, key[0], key[1], "cdr", key[2], "conflict", conflict_message(key[2]), where)


def prefetched(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """``items`` made by a background thread, up to ``depth`` ahead: reading and parsing the next
    span overlaps the database's work on this one (both release the GIL for most of their time)."""
    queue: Queue[tuple[bool, Any]] = Queue(maxsize=depth)
    done = threading.Event()

    def fill() -> None:
        try:
            for item in items:
                if done.is_set():
                    return
                queue.put((True, item))
            queue.put((False, None))
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put((False, exc))

    worker = threading.Thread(target=fill, daemon=True)
    worker.start()
    try:
        while True:
            more, item = queue.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        done.set()
        while worker.is_alive():  # let a blocked producer finish
            try:
                queue.get_nowait()
            except Empty:
                worker.join(0.05)


def run_batches(store: Any, batches: Iterable[Batch], counts: dict[str, int]) -> None:
    """Each batch in its own transaction; a batch that meets a concurrent writer's insert of the
    same id is tried again (its held ids are then read as such)."""
    for b in prefetched(iter(batches)):
        counts["read"] += b.cdrs.num_rows + len(b.rejects)
        for attempt in range(3):
            before = dict(counts)
            try:
                with store.writer.begin() as conn:
                    write_batch(store, conn, b, counts)
                break
            except IntegrityError:
                counts.update(before)
                if attempt == 2:
                    raise


# ---- records ------------------------------------------------------------------------------------


def record_batches(
    records: Iterable[Record], country_code: str | None, party_id: str | None, batch: int
) -> Iterator[Batch]:
    """Records (any reader) parsed one by one into batches of at most ``batch`` records."""
    rows: list[dict[str, Any]] = []
    periods: list[dict[str, Any]] = []
    wheres: dict[int, str] = {}
    rejects: list[tuple[str, str | None, str | None, str]] = []
    for seq, rec in enumerate(records):
        where = f"{rec.source}:{rec.line}"
        try:
            if rec.error is not None:
                raise RowError(rec.error.message)
            row, ps = record_rows(rec.obj, country_code, party_id, True, None, seq)
            rows.append(row)
            periods += ps
            wheres[seq] = where
        except (RecordRejected, RowError) as exc:
            rejects.append((where, country_code, party_id, str(exc)))
        if len(rows) + len(rejects) >= batch:
            yield _batch(rows, periods, wheres, rejects)
            rows, periods, wheres, rejects = [], [], {}, []
    if rows or rejects:
        yield _batch(rows, periods, wheres, rejects)


def _batch(
    rows: list[dict[str, Any]], periods: list[dict[str, Any]], wheres: dict[int, str], rejects: list[Any]
) -> Batch:
    return Batch(
        pa.Table.from_pylist(rows, CDR_SCHEMA),
        pa.Table.from_pylist(periods, PERIOD_SCHEMA),
        wheres.__getitem__,
        rejects,
    )


# ---- NDJSON, columnar ---------------------------------------------------------------------------


def spans(path: Path, size: int = SPAN_BYTES) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of the file in pieces of about ``size`` bytes, each ending at a line end."""
    with open(path, "rb") as fh:
        start, carry = 0, b""
        while chunk := fh.read(size):
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            yield start, data[:cut]
            start += cut
            carry = data[cut:]
        if carry:
            yield start, carry


def ndjson_batches(
    path: Path,
    country_code: str | None,
    party_id: str | None,
    batch: int,
    reasons: Counter[str],
) -> Iterator[Batch]:
    """An OCPI NDJSON file through the columnar reader, span by span, as batches in line order."""
    src = str(path)
    version: str | None = None
    before = 0  # lines of the spans before
    for start, data in spans(path):
        versions: dict[str, str] = {}
        stats: dict[str, int] = {}
        table, fallback = read_ndjson_flat(
            path, reasons=reasons, versions=versions, span=(start, start + len(data), version), stats=stats
        )
        version = version or versions.get(src)
        lines = data.split(b"\n")
        first = first_rows(table.column("line").to_numpy())
        per_cdr, periods = table_rows(table, first)
        local = per_cdr["line"].to_numpy()
        raws = [_line_text(lines[k - 1], start == 0 and k == 1) for k in local.tolist()]
        rows, rejects = _columnar_cdrs(per_cdr, raws, country_code, party_id, before, src)
        periods = periods.set_column(0, "seq", pc.add(periods.column("seq"), before))
        if rows.num_rows < len(raws) or not pc.all(rows.column("kernel")).as_py():
            held_flat = rows.filter(rows.column("kernel")).column("seq")  # periods of kernel CDRs only
            periods = periods.filter(pc.is_in(periods.column("seq"), value_set=held_flat.combine_chunks()))
        more, more_periods, wheres = [], [], {}
        for rec in fallback:
            line = before + (rec.line or 0)
            where = f"{src}:{line}"
            try:
                if rec.error is not None:
                    raise RowError(rec.error.message)
                row, ps = record_rows(rec.obj, country_code, party_id, True, None, line)
                more.append(row)
                more_periods += ps
                wheres[line] = where
            except (RecordRejected, RowError) as exc:
                rejects.append((line, (where, country_code, party_id, str(exc))))
        t = pa.concat_tables([rows, pa.Table.from_pylist(more, CDR_SCHEMA)]) if more else rows
        if not _ordered(t.column("seq")):  # the parser's CDRs among the reader's, in line order
            t = t.take(pc.sort_indices(t.column("seq")))
        p = (
            pa.concat_tables([periods, pa.Table.from_pylist(more_periods, PERIOD_SCHEMA)])
            if more
            else periods
        )
        if not _ordered(p.column("seq"), p.column("period_idx")):
            p = p.take(pc.sort_indices(p, [("seq", "ascending"), ("period_idx", "ascending")]))
        yield from _cut(t, p, sorted(rejects, key=lambda r: r[0]), batch, src)
        before += stats.get("lines", 0)


def _ordered(seq: pa.ChunkedArray, idx: pa.ChunkedArray | None = None) -> bool:
    """Whether rows are in ascending ``seq`` order (then ``idx``): a sort (a copy of every
    column, the raw JSON included) is needed only when they are not."""
    s = seq.to_numpy()
    later = s[1:] > s[:-1]
    if idx is not None:
        i = idx.to_numpy()
        later |= (s[1:] == s[:-1]) & (i[1:] > i[:-1])
    return bool(later.all())


def _line_text(raw: bytes, file_start: bool) -> str:
    text = raw.strip()
    if file_start and text.startswith(BOM):
        text = text[len(BOM) :]
    return text.decode("utf-8")


def _columnar_cdrs(
    per_cdr: dict[str, pa.Array],
    raws: list[str],
    country_code: str | None,
    party_id: str | None,
    before: int,
    src: str,
) -> tuple[pa.Table, list[tuple[int, tuple[str, str | None, str | None, str]]]]:
    """The staged cdrs rows of the columnar CDRs (the store's key: the CDR's own CPO, else the
    given party), and those refused for naming no CPO."""
    n = len(raws)
    seq = pc.add(per_cdr["line"], before)
    own = per_cdr["country_code"].is_valid()
    cc = pc.if_else(own, per_cdr["country_code"], pa.scalar(country_code, pa.string()))
    pid = pc.if_else(own, per_cdr["party_id"], pa.scalar(party_id, pa.string()))
    rejects = []
    if country_code is None or party_id is None:
        bad = np.flatnonzero(~own.to_numpy(zero_copy_only=False))
        ids, vers, lines = per_cdr["cdr_id"], per_cdr["ocpi_version"], seq
        for i in bad.tolist():
            line = lines[i].as_py()
            message = no_cpo(ids[i].as_py(), vers[i].as_py())
            rejects.append((line, (f"{src}:{line}", country_code, party_id, message)))
    digests = [sha256(r) for r in raws]
    now = now_ms()
    columns = {
        "seq": seq,
        "country_code": cc,
        "party_id": pid,
        "cdr_id": per_cdr["cdr_id"],
        "ocpi_version": per_cdr["ocpi_version"],
        "start_ms": per_cdr["start_ms"],
        "end_ms": per_cdr["end_ms"],
        "currency": per_cdr["currency"],
        "credit": credit_flags(per_cdr["credit"]),
        "raw": pa.array(raws, pa.string()),
        "raw_sha256": pa.array(digests, pa.string()),
        "received_ms": pa.array(np.full(n, now, np.int64)),
    }
    columns[CONNECTORS] = pa.nulls(n, pa.string())  # the reader leaves connector tariffs to the parser
    for name in CDR_SCHEMA.names:
        if name not in columns:
            columns[name] = per_cdr[name]
    kernel = columns["kernel"]
    for name in CDR_SCHEMA.names[CDR_SCHEMA.names.index("kernel") + 1 :]:  # flat columns: kernel CDRs only
        columns[name] = pc.if_else(kernel, columns[name], pa.scalar(None, columns[name].type))
    table = pa.Table.from_arrays([columns[f.name] for f in CDR_SCHEMA], schema=CDR_SCHEMA)
    if rejects:
        table = table.filter(own)
    return table, rejects


def _cut(
    t: pa.Table,
    p: pa.Table,
    rejects: list[tuple[int, tuple[str, str | None, str | None, str]]],
    batch: int,
    src: str,
) -> Iterator[Batch]:
    """Batches of at most ``batch`` records (stored or refused) in line order."""
    seq = t.column("seq").to_numpy()
    pseq = p.column("seq").to_numpy()
    rlines = np.asarray([r[0] for r in rejects], np.int64)
    allseq = np.sort(np.concatenate([seq, rlines]))
    for lo in range(0, len(allseq), batch):
        a, b = int(allseq[lo]), int(allseq[min(lo + batch, len(allseq)) - 1])
        i0, i1 = np.searchsorted(seq, a), np.searchsorted(seq, b, "right")
        j0, j1 = np.searchsorted(pseq, a), np.searchsorted(pseq, b, "right")
        r0, r1 = np.searchsorted(rlines, a), np.searchsorted(rlines, b, "right")
        yield Batch(
            t.slice(i0, i1 - i0),
            p.slice(j0, j1 - j0),
            lambda s: f"{src}:{s}",
            [r[1] for r in rejects[r0:r1]],
        )


def import_paths(
    store: Any,
    paths: Iterable[str | os.PathLike[str]],
    country_code: str | None,
    party_id: str | None,
    batch: int = 5_000,
) -> tuple[dict[str, int], Counter[str]]:
    """Files and folders into the store: (counts, records that went record by record, by reason)."""
    counts = {"read": 0, "stored": 0, "duplicate": 0, "conflict": 0, "rejected": 0}
    reasons: Counter[str] = Counter()
    for path in expand_inputs(paths):
        if path.suffix.lower() in NDJSON:
            run_batches(store, ndjson_batches(path, country_code, party_id, batch, reasons), counts)
            continue
        before = counts["read"]
        run_batches(store, record_batches(read_records(path), country_code, party_id, batch), counts)
        reasons["not NDJSON"] += counts["read"] - before
    return counts, reasons
