"""Arrow columns of the flat layout as exact numpy values, and lazy list-like views of them.

Helpers of :mod:`pricing.flat` (the flat reader) and :mod:`pricing.periods` (``from_flat``): they
read Arrow buffers directly (validity bitmaps, dictionary codes, decimal128 words) so a million
rows cost no Python object each; nothing here rounds or converts through float.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from pricing import errors as E


def valid_mask(arr: Any) -> np.ndarray:
    """Per element of a pyarrow Array: not null (from the validity bitmap, no compute kernel)."""
    n = len(arr)
    nulls = arr.null_count
    if not nulls:
        return np.ones(n, bool)
    if nulls == n:
        return np.zeros(n, bool)
    buf = arr.buffers()[0]
    bits = np.unpackbits(np.frombuffer(buf, np.uint8), count=arr.offset + n, bitorder="little")
    return bits[arr.offset :].view(bool)


def _int64_values(arr: Any, valid: np.ndarray, fill: int) -> np.ndarray:
    """The values of an integer pyarrow Array as int64, ``fill`` where null (without nulls: a
    read-only view of the Arrow buffer, no copy)."""

    if arr.type != pa.int64() and arr.type != pa.int32():
        arr = arr.cast(pa.int64())
    dtype = np.int64 if arr.type == pa.int64() else np.int32
    n = len(arr)
    data = np.frombuffer(arr.buffers()[1], dtype, count=arr.offset + n)[arr.offset :]
    if valid.all():
        return data.astype(np.int64, copy=False)
    return np.where(valid, data, fill).astype(np.int64, copy=False)


def codes(column: Any) -> tuple[np.ndarray, list[Any]]:
    """Dictionary codes of a pyarrow string column (-1 for null) and the dictionary."""

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    idx = arr.indices
    return _int64_values(idx, valid_mask(idx), -1), arr.dictionary.to_pylist()


def ints(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """An int64 column as (values with 0 for null, present mask)."""

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    valid = valid_mask(arr)
    return _int64_values(arr, valid, 0), valid


class ListColumn(Sequence):
    """A column that reads like a Python list without building one object per row: subclasses
    give ``__len__``, ``_at(i)`` (one row) and ``to_list()``."""

    @abstractmethod
    def _at(self, i: int) -> Any: ...

    @abstractmethod
    def to_list(self) -> list[Any]: ...

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return self.to_list()[i]
        return self._at(int(i))

    def __iter__(self) -> Iterator[Any]:
        return iter(self.to_list())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


class Coded(ListColumn):
    """A column of strings as codes into a list of distinct values (-1 = None); reads like a list
    without building one Python object per row (``series()`` gives a polars column)."""

    def __init__(self, codes: np.ndarray, values: list[Any]) -> None:
        self.codes = np.asarray(codes, np.int64)
        self.values = list(values)

    def __len__(self) -> int:
        return len(self.codes)

    def _at(self, i: int) -> Any:
        c = int(self.codes[i])
        return None if c < 0 else self.values[c]

    def to_list(self) -> list[Any]:
        lut = np.empty(len(self.values) + 1, object)
        lut[: len(self.values)] = self.values
        lut[-1] = None  # code -1
        return lut[self.codes].tolist()

    def series(self, name: str) -> Any:
        lut = pl.Series(name, [*self.values, None], dtype=pl.String)
        return lut.gather(np.where(self.codes < 0, len(self.values), self.codes))


class ArrowStrings(ListColumn):
    """A pyarrow string Array that reads like a list (one Python str only when asked)."""

    def __init__(self, arr: Any) -> None:
        self.arr = arr

    def __len__(self) -> int:
        return len(self.arr)

    def _at(self, i: int) -> Any:
        return self.arr[i].as_py()

    def to_list(self) -> list[Any]:
        return self.arr.to_pylist()

    def series(self, name: str) -> Any:
        return pl.Series(name, pl.from_arrow(self.arr), dtype=pl.String)


class IntColumn(ListColumn):
    """An int64 numpy column that reads like a list of Python ints."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, np.int64)

    def __len__(self) -> int:
        return len(self.values)

    def _at(self, i: int) -> Any:
        return int(self.values[i])

    def to_list(self) -> list[int]:
        return self.values.tolist()

    def series(self, name: str) -> Any:
        return pl.Series(name, self.values, dtype=pl.Int64)


class RowStrings:
    """A string column addressed by row (codes = row numbers): no dictionary for unique ids."""

    def __init__(self, arr: Any) -> None:
        self.arr = arr

    def __getitem__(self, row: int) -> str | None:
        return self.arr[int(row)].as_py()

    def take(self, rows: np.ndarray) -> list[str | None]:
        return self.column(rows).to_list()

    def column(self, rows: np.ndarray) -> ArrowStrings:
        return ArrowStrings(self.arr.take(pa.array(rows, pa.int64())))

    def blank(self) -> np.ndarray:
        """Per row: empty or only whitespace (``not value.strip()``; Arrow's Unicode whitespace is
        Python's, checked for every code point); False for null."""
        empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(self.arr)), 0)
        return pc.fill_null(empty, False).to_numpy(zero_copy_only=False)


def row_strings(column: Any) -> tuple[np.ndarray, RowStrings, np.ndarray]:
    """(row number or -1 for null, the column, per row: same value as the row before)."""

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(pa.string())
    n = len(arr)
    valid = valid_mask(arr)
    same = np.zeros(n, bool)
    if n > 1:
        eq = pc.fill_null(pc.equal(arr.slice(1), arr.slice(0, n - 1)), False).to_numpy(zero_copy_only=False)
        same[1:] = eq | (~valid[1:] & ~valid[:-1])
    return np.where(valid, np.arange(n, dtype=np.int64), -1), RowStrings(arr), same


def decimal_e6(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """A ``decimal128(38, 6)`` column as exact int64 micro-units (0 where null) and a valid mask.

    Reads the 128-bit two's complement values directly; a value beyond int64 raises."""

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(arr)
    if pa.types.is_null(arr.type) or n == 0:
        return np.zeros(n, np.int64), np.zeros(n, bool)
    if arr.type != pa.decimal128(38, 6):
        arr = arr.cast(pa.decimal128(38, 6))
    words = np.frombuffer(arr.buffers()[1], dtype=np.int64).reshape(-1, 2)[arr.offset : arr.offset + n]
    lo, hi = words[:, 0], words[:, 1]
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    if np.any(valid & (hi != (lo >> 63))):
        raise E.RoamledgerError("a reported amount does not fit 64-bit micro-units")
    return np.where(valid, lo, 0), valid
