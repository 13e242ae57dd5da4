"""Messy months: a generated flat month made to look like a CPO that omits or misreports totals.

Real months are not a sea of MATCH lines: a CPO leaves ``total_cost`` out, a tariff is
misconfigured for weeks (every total a fixed share too high), a CDR names a tariff nobody sent,
or is billed in the wrong currency. :func:`make_messy` rewrites a flat Parquet month
(:mod:`pricing.flat`) that way, on columns (any size), choosing each CDR's fate by a fixed hash of
its position so the same arguments give the same file. The settle benchmark's "messy" rows and
the columnar engine's byte-identity test use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from settlement.rules import e4_text

MONEY = ("reported_total_excl", "reported_total_incl")


@dataclass(frozen=True)
class Mess:
    """Shares of CDRs (0..1), each chosen independently of the others."""

    no_reported: float = 0.5  # no total_cost at all (not comparable on any basis but ours)
    overcharged: float = 0.2  # of all (among those with a total): both totals +``markup`` %, to the cent
    markup_percent: int = 10
    excl_only_missing: float = 0.0  # only the excl. VAT total left out (no amount on 'reported')
    unknown_tariff: float = 0.0  # the periods name a tariff that was never given
    wrong_currency: str | None = None  # ...billed in this currency instead (tariff currency mismatch)
    wrong_currency_share: float = 0.0
    negated: float = 0.0  # reported totals with their sign flipped (negative lines, not credits)


def _uniform(rec: np.ndarray, salt: int) -> np.ndarray:
    """A fixed pseudo-random number in [0, 1) per record number (splitmix64, wrapping uint64
    arithmetic), independent across ``salt``s."""
    with np.errstate(over="ignore"):
        x = rec.astype(np.uint64) + np.uint64(salt) * np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def make_messy(src: Path, dst: Path, mess: Mess, batch_rows: int = 1_000_000) -> dict[str, int]:
    """Write ``src`` with ``mess`` applied to ``dst``, a batch of rows at a time (memory stays
    bounded at any size); returns how many CDRs got each change."""
    source = pq.ParquetFile(src)
    schema = source.schema_arrow
    counts: dict[str, int] = {}
    offset = 0  # record starts seen before this batch (a CDR may continue across batches)
    with pq.ParquetWriter(dst, schema) as out:
        for batch in source.iter_batches(batch_size=batch_rows):
            df = pl.from_arrow(pa.Table.from_batches([batch]))
            assert isinstance(df, pl.DataFrame)
            starts = (pl.col("period_idx") == 0).fill_null(False)
            df = df.with_columns((starts.cum_sum() + offset).alias("_rec"))
            offset += int(df.select(starts.sum()).item())
            df, made = _mess_up(df, mess)
            for k, v in made.items():
                counts[k] = counts.get(k, 0) + v
            table = df.to_arrow()
            out.write_table(
                pa.table({n: table.column(n).cast(schema.field(n).type) for n in schema.names}, schema=schema)
            )
    return counts


def _mess_up(df: pl.DataFrame, mess: Mess) -> tuple[pl.DataFrame, dict[str, int]]:
    """One batch (with its record numbers, ``_rec``) made messy, and the CDRs changed per kind."""
    rec = df["_rec"].to_numpy()
    no_rep = _uniform(rec, 1) < mess.no_reported
    with_total = 1.0 - mess.no_reported
    picks = {
        "no_reported": no_rep,
        "overcharged": ~no_rep & (_uniform(rec, 2) * with_total < mess.overcharged),
        "excl_only_missing": _uniform(rec, 3) < mess.excl_only_missing,
        "unknown_tariff": _uniform(rec, 4) < mess.unknown_tariff,
        "wrong_currency": _uniform(rec, 5) < (mess.wrong_currency_share if mess.wrong_currency else 0.0),
        "negated": _uniform(rec, 6) < mess.negated,
    }
    df = df.with_columns(**{f"_{k}": pl.Series(v) for k, v in picks.items()})
    first = (pl.col("period_idx") == 0).fill_null(False)
    counts = {k: int(df.select((first & pl.col(f"_{k}")).sum()).item()) for k in picks}
    # money as 1e-4 integers (flat money has at most 4 decimals), back to text, then to decimal128
    up = 100 + mess.markup_percent  # half-up to the cent: (v·up/100) in units of 1e-2
    new = {}
    for c in MONEY:
        v = (pl.col(c) * 10_000).cast(pl.Int64)
        cents = (v.abs() * up + 5_000) // 10_000
        marked = pl.when(v < 0).then(-cents).otherwise(cents) * 100
        v = pl.when("_overcharged").then(marked).otherwise(v)
        v = pl.when("_negated").then(-v).otherwise(v)
        gone = pl.col("_no_reported") | (pl.col("_excl_only_missing") if c == MONEY[0] else pl.lit(False))
        new[c] = pl.when(gone).then(None).otherwise(e4_text(v))
    df = df.with_columns(**new)
    df = df.with_columns(
        pl.when("_unknown_tariff").then(pl.lit("NO-SUCH-TARIFF")).otherwise("tariff_id").alias("tariff_id"),
        pl.when("_wrong_currency").then(pl.lit(mess.wrong_currency)).otherwise("currency").alias("currency"),
    )
    return df.drop("_rec", *(f"_{k}" for k in picks)), counts
