"""The one writer path of both settlement engines: run folders, NDJSON rows, statement line tables.

The record engine (:mod:`settlement.jobs`) and the columnar engine (:mod:`settlement.columnar`)
write the same files, so they write them with the same functions: a statement's lines become a
polars frame of ``LINE_COLUMNS`` (:func:`line_frame` for line objects, the columnar engine builds
its own from columns) and that frame is written as ``lines.csv`` (:func:`write_lines_csv`) and as
the ``lines`` / ``disputed`` lists of ``statement.json`` (:func:`lines_json`,
:func:`write_document`); record rows go to NDJSON through :func:`write_ndjson_rows`; a run folder
appears in one rename (:func:`atomic_output`) with its ``rejects.ndjson`` and ``manifest.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from pricing import __version__
from pricing.errors import Finding, RoamledgerError
from pricing.files import all_files, sha256_file, signals_held, skipped_files
from pricing.io import csv_safe_expr, dumps
from settlement.contracts import Contracts
from settlement.rules import local_end_date, local_iso
from settlement.statement import LINE_COLUMNS, Line, Statement

SLICE = 200_000  # rows formatted at a time when writing
ListWriter = tuple[int, Callable[[Any], None]]

# ---- run folders --------------------------------------------------------------------------------


RUN_FILES = frozenset({"manifest.json", "findings.ndjson", "reconciliation.ndjson", "rejects.ndjson"})
STATEMENT_FILES = frozenset(
    {"statement.json", "lines.csv", "statement.html", "invoice_reconciliation_record.json"}
)


def check_output_folder(
    out_dir: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]] = ()
) -> None:
    """Refuse an output folder the run must not replace: one that holds anything but an earlier
    settlement run (its ``manifest.json`` says so and every entry is a file or statement folder that
    run wrote), or one that holds an input of this run."""
    out = Path(out_dir).resolve()
    for given in inputs:
        path = Path(given).resolve()
        if path == out or out in path.parents:
            raise RoamledgerError(
                f"--out {out_dir}: the input {given} is inside it, and the run replaces what the folder "
                "holds. "
                "Hint: choose an output folder outside the inputs"
            )
    if not out.exists():
        return
    if not out.is_dir():
        raise RoamledgerError(f"--out {out_dir} is a file. Hint: give a new, empty or earlier-run folder")
    entries = {p.name for p in out.iterdir()}
    if not entries:
        return
    why = "it holds files that are not a roamledger settlement run"
    folders = earlier_run_folders(out)
    if folders is not None:
        foreign = sorted(entries - RUN_FILES - folders)
        for name in sorted(folders & entries):
            foreign += not_written(out / name)
        if not foreign:
            return
        why = f"besides an earlier run it holds {', '.join(foreign[:3])}{' …' if len(foreign) > 3 else ''}"
    raise RoamledgerError(
        f"--out {out_dir}: {why}, and the run replaces what the folder holds. "
        "Hint: give a new or empty folder, or one holding only an earlier settlement run"
    )


def not_written(folder: Path) -> list[str]:
    """What a statement folder of an earlier run holds that the run did not write (a note, a
    signed copy): the folder itself when it is not one."""
    if not folder.is_dir():
        return [folder.name]
    inside = sorted(folder.iterdir())
    return [f"{folder.name}/{p.name}" for p in inside if p.name not in STATEMENT_FILES or not p.is_file()]


def settle_manifest(manifest: Any) -> bool:
    """Whether a parsed ``manifest.json`` is one roamledger settle wrote."""
    return isinstance(manifest, dict) and "counts_check" in manifest and "roamledger" in manifest


def earlier_run_folders(out: Path) -> set[str] | None:
    """The statement folders of the settlement run ``out`` holds, or None when its manifest is
    missing or is not one of ours."""
    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        if not settle_manifest(manifest):
            return None
        return {st["folder"] for st in manifest.get("statements", [])}
    except (OSError, ValueError, TypeError, KeyError):
        return None


def run_failure(manifest: dict[str, Any]) -> str | None:
    """Why a settlement run failed (the command then exits non-zero), from its ``manifest.json``,
    or None: ``"nothing read"``, ``"every record rejected"``, ``"no session in the month"``,
    ``"no tariff matched"`` (every CDR TARIFF_NOT_FOUND / TARIFF_INVALID), ``"no statement"`` (the
    month's CDRs are all excluded from every statement: unknown parties, say; a disputed line
    still makes a statement). The one home of these rules: :func:`atomic_output` keeps an earlier
    run in place of a failed one, ``--history`` and ``close`` do not count one, ``roamledger
    settle`` words the error."""
    counts, reconciliation = manifest["counts"], manifest.get("reconciliation", {})
    read, rejected = counts["read"], counts["rejected"]
    if read == 0:
        return "nothing read"
    if rejected == read:
        return "every record rejected"
    if counts["settled"] + counts["excluded"] == 0:
        return "no session in the month"
    by_code = reconciliation.get("findings_by_code", {})
    not_found = by_code.get("TARIFF_NOT_FOUND", 0) + by_code.get("TARIFF_INVALID", 0)
    if not_found and not_found == reconciliation.get("cdrs"):
        return "no tariff matched"
    if not manifest.get("statements"):
        return "no statement"
    return None


def paid_run(manifest: dict[str, Any]) -> bool:
    """Whether a ``manifest.json`` is a settle run's that did not fail (:func:`run_failure`): the
    runs ``--history`` counts (a failed run settled nothing: its month is not paid)."""
    try:
        return settle_manifest(manifest) and run_failure(manifest) is None
    except (KeyError, TypeError):
        return False


def failed_folder(out: Path) -> Path:
    """Where a failed run is written when ``out`` holds an earlier run (kept as it was)."""
    return out.with_name(f"{out.name}.failed")


def atomic_output(out_dir: str | os.PathLike[str], fill: Callable[[Path], None]) -> Path:
    """Call ``fill`` on a fresh temporary folder, then move its files into place; returns where.

    A run that dies half-way leaves only a ``.partial`` folder (removed by the next run), never a
    half-written ``out_dir`` that looks complete. A new ``out_dir`` appears in one rename (the
    folder follows the umask); an existing one (empty, or an earlier run: :func:`check_output_folder`)
    is kept as a folder — its mode and owner are the user's — and its earlier files are swapped
    for the new ones with Ctrl-C and SIGTERM held off, ``manifest.json`` last in. A failed run
    (:func:`run_failure`) never replaces an earlier run: it goes to ``OUT.failed``
    (:func:`failed_folder`) and the earlier run stays as it was.
    """
    out = Path(out_dir).resolve()
    parent = out.parent
    check_output_folder(out)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for stale in parent.glob(f".{out.name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=parent))
        tmp.chmod(0o777 & ~current_umask())  # mkdtemp makes it private; outputs follow the umask
    except OSError as exc:
        raise RoamledgerError(
            f"cannot write to {out}: {exc}. Hint: choose a writable --out directory"
        ) from exc
    try:
        fill(tmp)
        target = out
        if out.is_dir() and any(out.iterdir()) and _failed(tmp):
            target = failed_folder(out)
            check_output_folder(target)
        _place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _failed(tmp: Path) -> bool:
    path = tmp / "manifest.json"
    if not path.exists():
        return False
    manifest = json.loads(path.read_text(encoding="utf-8"))
    return run_failure(manifest) is not None


def _place(tmp: Path, out: Path) -> None:
    """The files of ``tmp`` into ``out``: ``tmp`` renamed to it when there is none; else the
    earlier entries of ``out`` moved aside (``manifest.json`` first: the folder stops looking
    like a complete run), the new ones moved in (``manifest.json`` last), signals held off."""
    if not out.exists():
        tmp.rename(out)
        return
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    moved: list[tuple[Path, Path]] = []  # (from, to), undone in reverse where a rename fails
    with signals_held():
        old.mkdir()
        try:
            for entry in sorted(out.iterdir(), key=lambda p: p.name != "manifest.json"):
                entry.rename(old / entry.name)
                moved.append((entry, old / entry.name))
            for entry in sorted(tmp.iterdir(), key=lambda p: p.name == "manifest.json"):
                entry.rename(out / entry.name)
                moved.append((entry, out / entry.name))
        except OSError as exc:  # e.g. --out a mount point: its entries cannot be renamed across
            for src, dst in reversed(moved):
                dst.rename(src)
            old.rmdir()
            raise RoamledgerError(
                f"cannot write into {out}: {exc.strerror or exc} (the earlier files stay as they were). "
                "Hint: if it is a mount point, give a folder inside it as --out"
            ) from exc
        tmp.rmdir()
    shutil.rmtree(old, ignore_errors=True)


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def out_of_month_finding(
    cdr_id: str, end_ms: int, month: str, source: str, line: int | None, zone: ZoneInfo
) -> dict[str, Any]:
    """The finding of a CDR outside the month: its session end in the statement zone (the zone
    that decides the month), so the date shown is the one that puts it in another month."""
    return {
        "cdr_id": cdr_id,
        "code": "OUT_OF_MONTH",
        "dimension": None,
        "period": None,
        "amount": None,
        "message": f"session ended {local_iso(end_ms, zone)} ({zone.key}), in "
        f"{local_end_date(end_ms, zone).isoformat()[:7]}, not {month}; settle it in its own month (if "
        "that month is settled already, give its run folder as --history: it is settled here as a late line)",
        "source": source,
        "line": line,
    }


def ndjson_lines(rows: Iterable[dict[str, Any]]) -> Iterable[bytes]:
    """One compact JSON object per line (:func:`pricing.io.dumps`), UTF-8."""
    return ((dumps(r) + "\n").encode("utf-8") for r in rows)


def write_ndjson_rows(fh: Any, rows: Iterable[dict[str, Any]]) -> None:
    """Rows as NDJSON into the binary file ``fh``."""
    fh.writelines(ndjson_lines(rows))


def write_rejects(tmp: Path, rejects: Sequence[Finding]) -> None:
    rows = sorted((f.as_row() for f in rejects), key=lambda r: (r["source"], r["line"] or 0))
    with open(tmp / "rejects.ndjson", "wb") as fh:
        write_ndjson_rows(fh, rows)


def statement_entry(st: Statement, n_lines: int) -> dict[str, Any]:
    return {
        "id": st.id,
        "folder": st.folder,
        "cpo": st.cpo,
        "emsp": st.emsp,
        "currency": st.currency,
        "lines": n_lines,
        "amount_due": st.totals["amount_due"],
    }


def write_manifest(
    tmp: Path,
    month: str,
    inputs: Sequence[str | os.PathLike[str]],
    settings: dict[str, Any],
    contracts: Contracts,
    counts: dict[str, int],
    reconciliation: dict[str, Any],
    statements: list[dict[str, Any]],
    record_path: dict[str, int] | None = None,
) -> None:
    """``manifest.json``. ``record_path`` (columnar engine only): how many records went through
    the record-by-record code, by reason."""
    manifest = {
        "roamledger": __version__,
        "month": month,
        "inputs": {str(p): sha256_file(p) for p in all_files(inputs)},
        "settings": settings,
        "contracts": contracts.as_dict(),
        "counts": counts,
        "counts_check": "read == settled + excluded + rejected + out_of_month",
        "reconciliation": reconciliation,
        "statements": statements,
    }
    if skipped := skipped_files(inputs):  # in the given folders but not read: named, not silent
        manifest["skipped_inputs"] = [str(p) for p in skipped]
    if record_path is not None:
        manifest["record_path"] = dict(sorted(record_path.items()))
    (tmp / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


# ---- JSON documents with streamed lists ---------------------------------------------------------


def write_document(doc: dict[str, Any], lists: dict[str, ListWriter], fh: Any) -> None:
    """Write ``doc`` as ``json.dumps(indent=2, sort_keys=True)`` does, plus the lists of ``lists``
    (key → (items, writer)) whose items the writers stream (each item on its own line, already
    indented, separated by ``,\n``). Big statements never exist as one Python object. ``fh`` is a
    binary file."""
    marks = {key: f"\x00{key}\x00" for key, (n, _) in lists.items() if n}
    full = {**doc, **{k: ([marks[k]] if k in marks else []) for k in lists}}
    text = json.dumps(full, indent=2, sort_keys=True, ensure_ascii=False)
    for key in sorted(marks):  # sort_keys: the lists appear in key order
        head, text = text.split(json.dumps(marks[key]), 1)
        fh.write(head.rstrip(" ").encode("utf-8"))
        lists[key][1](fh)
    fh.write((text + "\n").encode("utf-8"))


def json_value(name: str) -> pl.Expr:
    """The JSON text of a column's value, as Python's json.dumps writes it."""
    return pl.struct(name).struct.json_encode().str.slice(len(json.dumps(name)) + 2).str.head(-1)


NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def json_object(frame: pl.DataFrame, cols: Sequence[str]) -> pl.Expr:
    """``json.dumps(row, separators=(",", ":"), ensure_ascii=False)`` of the ``cols`` of each row
    (string / boolean columns), by concatenation; a string column holding a character JSON must
    escape is encoded by polars' JSON writer instead."""
    parts: list[pl.Expr] = []
    for i, c in enumerate(cols):
        key = ("{" if i == 0 else ",") + json.dumps(c) + ":"
        dtype = frame.schema[c]
        if dtype == pl.Boolean:
            value = pl.when(pl.col(c)).then(pl.lit("true")).otherwise(pl.lit("false"))
        elif frame.height and frame.select(pl.col(c).str.contains(NEEDS_ESCAPE).any()).item():
            value = json_value(c)
        else:
            value = pl.lit('"') + pl.col(c) + pl.lit('"')
        parts.append(pl.lit(key) + value.fill_null(pl.lit("null")))
    return pl.concat_str(parts) + pl.lit("}")


def write_text(fh: Any, text: pl.Series) -> None:
    """Each value on its own line, written by polars into the binary file ``fh``."""
    if len(text):
        text.to_frame("t").write_csv(fh, include_header=False, quote_style="never", line_terminator="\n")


def write_items(fh: Any, frame: pl.DataFrame, item: pl.Expr) -> None:
    """JSON list items (``item`` of each row), indented by 4, separated by ``,\n``, no newline after
    the last (:func:`write_document` writes the rest)."""
    text = frame.select((pl.lit("    ") + item).alias("t"))["t"]
    n = len(text)
    for lo in range(0, n - 1, SLICE):
        write_text(fh, text.slice(lo, min(SLICE, n - 1 - lo)) + ",")
    if n:
        fh.write(text[n - 1].encode("utf-8"))


# ---- statement line tables ----------------------------------------------------------------------


def line_frame(lines: Sequence[Line], ords: Sequence[int] | None = None) -> pl.DataFrame:
    """Line objects as the columns of a statement's line table (+ ``ord``, their input order,
    when given)."""
    rows = [ln.as_row() for ln in lines]
    data: dict[str, Any] = {c: [r[c] for r in rows] for c in LINE_COLUMNS}
    schema: dict[str, Any] = {c: pl.String for c in LINE_COLUMNS}
    schema["credit"] = schema["disputed"] = pl.Boolean
    frame = pl.DataFrame(data, schema=schema)
    if ords is None:
        return frame
    return frame.with_columns(pl.Series("ord", list(ords), pl.Int64))


def lines_json(frame: pl.DataFrame) -> ListWriter:
    """A line table as the items of a ``statement.json`` list: one compact JSON object per line,
    sorted keys."""

    def write(fh: Any) -> None:
        write_items(fh, frame, json_object(frame, sorted(LINE_COLUMNS)))

    return frame.height, write


def write_lines_csv(fh: Any, frame: pl.DataFrame) -> None:
    """A line table as ``lines.csv`` (``csv.writer`` conventions: empty for null and ""; text
    cells safe for spreadsheets, :func:`pricing.io.csv_safe`)."""
    fh.write((",".join(LINE_COLUMNS) + "\n").encode("utf-8"))
    if frame.height:
        frame.select(LINE_COLUMNS).with_columns(
            csv_safe_expr(pl.col(pl.String)).replace("", None)  # csv.writer writes "" as nothing
        ).write_csv(fh, include_header=False, line_terminator="\n", quote_style="necessary", null_value="")
