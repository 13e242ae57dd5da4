"""The columnar settlement engine (flat Parquet months at scale); start at
:mod:`settlement.columnar.settle`, which lists the steps."""
