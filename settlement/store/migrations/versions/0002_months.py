"""Settlement runs kept in the store and closed months: a run's status (queued, running, done,
failed) with its options, heartbeat and the CDR rows it read; the run's files; the CDR rows the
final runs of closed months settled (so a late CDR is settled once, on the next open month).

Revision ID: 0002_months
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_months"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("settlement_runs") as batch:
        batch.add_column(sa.Column("status", sa.String(8)))
        batch.add_column(sa.Column("message", sa.Text))
        batch.add_column(sa.Column("options", sa.Text))
        batch.add_column(sa.Column("finished_ms", sa.BigInteger))
        batch.add_column(sa.Column("heartbeat_ms", sa.BigInteger))
        batch.add_column(sa.Column("cdr_rows", sa.Text))
    op.create_table(
        "run_files",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("settlement_runs.id"), primary_key=True),
        sa.Column("path", sa.String(255), primary_key=True),
        sa.Column("content", sa.Text, nullable=False),
    )
    op.create_table(
        "closed_cdrs",
        sa.Column("cdr_row", sa.Integer, sa.ForeignKey("cdrs.id"), primary_key=True),
        sa.Column("month", sa.String(7), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("closed_cdrs")
    op.drop_table("run_files")
    with op.batch_alter_table("settlement_runs") as batch:
        for name in ("cdr_rows", "heartbeat_ms", "finished_ms", "options", "message", "status"):
            batch.drop_column(name)
