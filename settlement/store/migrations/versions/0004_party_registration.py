"""When a party registered through the OCPI credentials module (``parties.registered_ms``): its
token is then its token C, and a second POST /credentials is refused (405; PUT updates, DELETE
unregisters). NULL: the token is a registration token A (every party stored before this migration
starts so: its next POST registers it as before).

Revision ID: 0004_party_registration
Revises: 0003_kernel_columns
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_party_registration"
down_revision = "0003_kernel_columns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("parties") as batch:
        batch.add_column(sa.Column("registered_ms", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("parties") as batch:
        batch.drop_column("registered_ms")
