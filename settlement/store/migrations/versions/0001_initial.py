"""The first store: parties, tariff versions, CDRs (append-only), ingest log, settlement runs,
statements, closed months.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    big, text, s = sa.BigInteger, sa.Text, sa.String
    op.create_table(
        "parties",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("country_code", s(2), nullable=False),
        sa.Column("party_id", s(3), nullable=False),
        sa.Column("role", s(8), nullable=False),
        sa.Column("name", text),
        sa.Column("token_sha256", s(64), unique=True),
        sa.Column("created_ms", big, nullable=False),
        sa.UniqueConstraint("country_code", "party_id", "role", name="uq_party"),
    )
    op.create_table(
        "tariffs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("country_code", s(2), nullable=False),
        sa.Column("party_id", s(3), nullable=False),
        sa.Column("tariff_id", s(36), nullable=False),
        sa.Column("last_updated_ms", big, nullable=False),
        sa.Column("ocpi_version", s(8), nullable=False),
        sa.Column("currency", s(3), nullable=False),
        sa.Column("start_ms", big),
        sa.Column("end_ms", big),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("raw", text, nullable=False),
        sa.Column("received_ms", big, nullable=False),
        sa.UniqueConstraint(
            "country_code", "party_id", "tariff_id", "last_updated_ms", name="uq_tariff_version"
        ),
    )
    op.create_table(
        "ingest_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at_ms", big, nullable=False),
        sa.Column("country_code", s(2)),
        sa.Column("party_id", s(3)),
        sa.Column("kind", s(16), nullable=False),
        sa.Column("object_id", s(64)),
        sa.Column("outcome", s(16), nullable=False),
        sa.Column("message", text),
        sa.Column("source", text),
    )
    op.create_table(
        "cdrs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("country_code", s(2), nullable=False),
        sa.Column("party_id", s(3), nullable=False),
        sa.Column("cdr_id", s(39), nullable=False),
        sa.Column("ocpi_version", s(8), nullable=False),
        sa.Column("start_ms", big, nullable=False),
        sa.Column("end_ms", big, nullable=False),
        sa.Column("currency", s(3), nullable=False),
        sa.Column("credit", sa.Boolean, nullable=False),
        sa.Column("raw", text, nullable=False),
        sa.Column("raw_sha256", s(64), nullable=False),
        sa.Column("received_ms", big, nullable=False),
        sa.Column("ingest_id", sa.Integer, sa.ForeignKey("ingest_log.id")),
        sa.UniqueConstraint("country_code", "party_id", "cdr_id", name="uq_cdr"),
    )
    op.create_index("ix_cdrs_end_ms", "cdrs", ["end_ms"])
    op.create_table(
        "settlement_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("month", s(7), nullable=False),
        sa.Column("created_ms", big, nullable=False),
        sa.Column("manifest", text, nullable=False),
    )
    op.create_table(
        "statements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("settlement_runs.id"), nullable=False),
        sa.Column("statement_id", s(64), nullable=False),
        sa.Column("cpo", s(8), nullable=False),
        sa.Column("emsp", s(8), nullable=False),
        sa.Column("currency", s(3), nullable=False),
        sa.Column("document", text, nullable=False),
    )
    op.create_table(
        "closed_months",
        sa.Column("month", s(7), primary_key=True),
        sa.Column("closed_ms", big, nullable=False),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("settlement_runs.id"), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "closed_months",
        "statements",
        "settlement_runs",
        "cdrs",
        "ingest_log",
        "tariffs",
        "parties",
    ):
        op.drop_table(table)
