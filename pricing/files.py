"""Input files by name: which ones a folder gives, which are refused, their digests.

Light on purpose (the standard library and :mod:`pricing.errors` only): a command names and checks
its inputs and starts hashing them before it loads the pricing's modules (numpy, polars, pyarrow:
about a second), so these do not wait for those.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pricing.errors import InputError

READABLE = (".json", ".ndjson", ".jsonl", ".parquet")  # the files a folder's records are read from
COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"(\xb5/\xfd": "zstd"}


# byte order marks of the encodings OCPI JSON is not in (UTF-32 first: its LE mark begins with UTF-16's)
WIDE = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}


def wide_text(head: bytes) -> str | None:
    """``"UTF-16"`` / ``"UTF-32"`` where a file's first bytes say so: its byte order mark, or,
    without one, the NUL bytes of its first character (JSON's first character is ASCII, and UTF-8
    JSON holds no NUL byte: RFC 8259 §8.1's detection), else None."""
    for mark, kind in WIDE.items():
        if head.startswith(mark):
            return kind
    if len(head) >= 4 and 0 in head[:4]:
        return "UTF-32" if head[:4].count(0) == 3 else "UTF-16"
    return None


@contextmanager
def signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM held off (delivered after) while a run's files are renamed into place:
    the user sees the earlier set of files or the new one, never a mix."""
    mask = getattr(signal, "pthread_sigmask", None)
    previous = mask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM}) if mask else None
    try:
        yield
    finally:
        if mask is not None and previous is not None:
            mask(signal.SIG_SETMASK, previous)


def check_not_compressed(path: Path) -> None:
    """A compressed file, or one in UTF-16 / UTF-32 (:func:`wide_text`), is refused by
    name: read as UTF-8 text, every record would be BAD_JSON (or some lines only, half-read)."""
    with open(path, "rb") as fh:
        head = fh.read(6)
    for magic, kind in COMPRESSED.items():
        if head.startswith(magic) and not head.startswith(b"PAR1"):
            tool = {"gzip": "gunzip", "bzip2": "bunzip2", "xz": "unxz", "zstd": "unzstd"}[kind]
            raise InputError(f"{path}: compressed input ({kind}) is not supported. Hint: {tool} it first")
    kind = wide_text(head)
    if kind:
        raise InputError(
            f"{path}: the file is {kind} text; OCPI JSON is UTF-8. "
            f"Hint: convert it first, e.g. iconv -f {kind} -t UTF-8 {path} > "
            f"{path.with_name(f'{path.stem}.utf8{path.suffix}')}"
        )


def skipped_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """What the given folders hold that is not read: files of another kind and sub-folders
    (hidden ones, starting with ``.``, aside). Files given by name are always read."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += [
                c
                for c in sorted(p.iterdir())
                if not c.name.startswith(".") and (c.is_dir() or c.suffix.lower() not in READABLE)
            ]
    return out


HASH_CHUNK = 1 << 20  # bytes hashed at a time, into one reused buffer (~20 % less CPU than fresh ones)


def sha256_file(path: str | os.PathLike[str], stop: threading.Event | None = None) -> str:
    """SHA-256 of a file's bytes (manifests record every input this way). ``stop``: set by a run
    that failed meanwhile, which then does not wait for the rest of a large file (raises
    InterruptedError)."""

    digest = hashlib.sha256()
    buf = bytearray(HASH_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            if stop is not None and stop.is_set():
                raise InterruptedError(f"{path}: hashing stopped")
            digest.update(view[:n])
    return digest.hexdigest()


def all_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every file under the given files/directories, sorted within a directory."""
    out: list[Path] = []
    for p in map(Path, paths):
        out.extend(sorted(c for c in p.rglob("*") if c.is_file()) if p.is_dir() else [p])
    return out


def expand_inputs(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files in the order ``iter_sources`` reads them."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(
                expand_inputs(c for c in sorted(p.iterdir()) if c.suffix.lower() in READABLE and c.is_file())
            )
        else:
            check_not_compressed(p)
            out.append(p)
    return out


def columnar_ndjson(path: str | os.PathLike[str], engine: str, explain: bool, version: str | None) -> bool:
    """Whether ``roamledger price`` (:func:`pricing.batch.price_inputs`) reads this input file with
    the columnar NDJSON reader: an NDJSON file, when nothing asks for per-record work (the kernel
    engine, no trace, no forced OCPI version). The reader gives the per-record path's results."""
    p = Path(path)
    return (
        engine == "kernel" and not explain and version is None and p.suffix.lower() in (".ndjson", ".jsonl")
    )
