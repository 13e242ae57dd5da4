"""The columns the kernel reads: CDR-level flat columns on ``cdrs`` and one ``cdr_periods`` row per
charging period (the flat layout of :mod:`pricing.flat`). CDRs stored before this migration keep
``kernel`` false: settlement reads them from their raw JSON, record by record.

Revision ID: 0003_kernel_columns
Revises: 0002_months
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_kernel_columns"
down_revision = "0002_months"
branch_labels = None
depends_on = None

CDR_TEXT = (
    "emsp_country_code",
    "emsp_party_id",
    "time_zone",
    "location_country",
    "location_id",
    "contract_id",
    "credit_reference_id",
    "connector_tariff_ids",
    "reported_taxes",
)
MONEY_E6 = (  # exact micro-units: reported totals, per-dimension costs excl. VAT, energy, time
    "reported_total_excl_e6",
    "reported_total_incl_e6",
    *(f"reported_{d}_cost_excl_e6" for d in ("fixed", "energy", "time", "parking", "reservation")),
    "reported_total_energy_e6",
    "reported_total_time_e6",
)
VOLUMES = (
    "energy_mwh",
    "time_ms",
    "parking_ms",
    "reservation_ms",
    "min_power_w",
    "max_power_w",
    "min_current_ma",
    "max_current_ma",
)


def upgrade() -> None:
    with op.batch_alter_table("cdrs") as batch:
        batch.add_column(sa.Column("kernel", sa.Boolean, nullable=False, server_default=sa.false()))
        for name in CDR_TEXT:
            batch.add_column(sa.Column(name, sa.Text))
        for name in MONEY_E6:
            batch.add_column(sa.Column(name, sa.BigInteger))
    op.create_table(
        "cdr_periods",
        sa.Column("cdr_pk", sa.Integer, sa.ForeignKey("cdrs.id"), primary_key=True),
        sa.Column("period_idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("period_start_ms", sa.BigInteger, nullable=False),
        sa.Column("tariff_id", sa.Text),
        *(sa.Column(name, sa.BigInteger) for name in VOLUMES),
    )


def downgrade() -> None:
    op.drop_table("cdr_periods")
    with op.batch_alter_table("cdrs") as batch:
        for name in ("kernel", *CDR_TEXT, *MONEY_E6):
            batch.drop_column(name)
