"""Rows of an Arrow table as PostgreSQL ``COPY … FROM STDIN`` text (the server's default COPY
format): fields separated by tabs, rows ended by newlines, ``\\N`` for null, and a backslash, tab,
newline or carriage return inside a text value escaped with a backslash (nothing else is: the
server reads every other byte as it is, so a raw JSON line arrives byte for byte).

Built by Arrow compute over whole columns (no Python per row): every column as text, then one
join per row; the rows' text is the joined column's data buffer, handed to COPY without a copy.
The text format is cheaper than CSV to write here and to parse on the server (no quote doubling of
JSON's many quotes).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))  # the backslash first


def _value_bytes(col: pa.Array) -> np.ndarray:
    """The bytes of a string array's values, as they lie in its data buffer (no copy)."""
    data = col.buffers()[2]
    if data is None or not len(col):
        return np.zeros(0, np.uint8)
    off = np.frombuffer(col.buffers()[1], np.int32, 2, col.offset * 4)
    end = int(np.frombuffer(col.buffers()[1], np.int32, 1, (col.offset + len(col)) * 4)[0])
    return np.frombuffer(data, np.uint8, end - int(off[0]), int(off[0]))


def escaped(col: pa.Array) -> pa.Array:
    """A string array with the bytes COPY text reads specially escaped (only scanned when none)."""
    v = _value_bytes(col)
    if not (v == 92).any() and not (v < 32).any():  # no backslash, no control character
        return col
    for ch, rep in _ESCAPES:
        col = pc.replace_substring(col, ch, rep)
    return col


def text_field(col: pa.Array) -> pa.Array:
    """A column as COPY text fields (null stays null: written as ``\\N``)."""
    if pa.types.is_boolean(col.type):
        return pc.if_else(col, pa.scalar("t"), pa.scalar("f"))
    if pa.types.is_string(col.type):
        return escaped(col)
    if pa.types.is_integer(col.type):
        return pc.cast(col, pa.string())
    raise TypeError(f"no COPY text for Arrow type {col.type}")


def copy_text(rows: pa.Table) -> pa.Buffer:
    """The rows as COPY text, columns in the table's order."""
    if not rows.num_rows:
        return pa.py_buffer(b"")
    fields = [text_field(rows.column(i).combine_chunks()) for i in range(rows.num_columns)]
    line = pc.binary_join_element_wise(*fields, "\t", null_handling="replace", null_replacement="\\N")
    line = pc.binary_join_element_wise(line, pa.scalar(""), "\n")  # each row ends with a newline
    v = _value_bytes(line)
    return pa.py_buffer(v) if len(v) else pa.py_buffer(b"")
