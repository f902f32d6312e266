"""Delivery engine: per-part receipt states (message_parts) and refunds looked up by message.

Revision ID: 0002_settlement
Revises: 0001_initial
Create Date: 2024-06-02
"""

import sqlalchemy as sa
from alembic import op

from bridge.storage.models import UTCDateTime

revision = "0002_settlement"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_parts",
        sa.Column("message_id", sa.String(26), nullable=False),
        sa.Column("part_index", sa.Integer(), nullable=False),
        sa.Column("smsc_message_id", sa.String(64), nullable=False),
        sa.Column("stat", sa.String(8), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("error_code", sa.String(32)),
        sa.Column("done_at", UTCDateTime()),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", "part_index", name="pk_message_parts"),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name="fk_message_parts_message_id_messages"
        ),
    )
    op.create_index("ix_ledger_message_id", "ledger", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_ledger_message_id", table_name="ledger")
    op.drop_table("message_parts")
