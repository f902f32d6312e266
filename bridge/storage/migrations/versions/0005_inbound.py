"""Inbound (mobile-originated) messages, their webhook outbox column, opt-outs, and each
account's ``inbound_url``.

Revision ID: 0005_inbound
Revises: 0004_scheduling
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from bridge.storage.models import UTCDateTime

revision = "0005_inbound"
down_revision = "0004_scheduling"
branch_labels = None
depends_on = None

_PENDING = sa.text("webhook_url IS NOT NULL")
_LISTING = {
    "ix_inbound_messages_account_id_received_at_id": ["account_id", "received_at", "id"],
    "ix_inbound_messages_account_id_number_received_at_id": [
        "account_id",
        "number",
        "received_at",
        "id",
    ],
    "ix_inbound_messages_account_id_to_received_at_id": ["account_id", "to", "received_at", "id"],
    "ix_inbound_messages_account_id_keyword_received_at_id": [
        "account_id",
        "keyword",
        "received_at",
        "id",
    ],
}


def upgrade() -> None:
    op.add_column("accounts", sa.Column("inbound_url", sa.String(2048)))
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("number", sa.String(24), nullable=False),
        sa.Column("to", sa.String(24), nullable=False),
        sa.Column("keyword", sa.String(32), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("data_coding", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(8), nullable=True),
        sa.Column("dedupe_key", sa.String(64), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("webhook_url", sa.String(2048), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_inbound_messages_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_inbound_messages_dedupe_key")),
    )
    for name, columns in _LISTING.items():
        op.create_index(name, "inbound_messages", columns, unique=False)
    op.create_index(
        "ix_inbound_messages_webhook_pending",
        "inbound_messages",
        ["received_at"],
        unique=False,
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )
    op.create_table(
        "optouts",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(24), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("inbound_id", sa.String(26), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_optouts_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "number", name=op.f("pk_optouts")),
    )


def downgrade() -> None:
    op.drop_table("optouts")
    op.drop_index("ix_inbound_messages_webhook_pending", table_name="inbound_messages")
    for name in _LISTING:
        op.drop_index(name, table_name="inbound_messages")
    op.drop_table("inbound_messages")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("inbound_url")
