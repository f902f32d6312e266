"""Delivery webhooks: each account's signing secret (and the previous one during a rotation),
which events a message's callback gets (messages/accounts ``callback_events``), and the
transactional outbox of events (``webhook_outbox``) settlement writes with each state change.

Revision ID: 0003_webhooks
Revises: 0002_settlement
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from bridge.storage.models import UTCDateTime

revision = "0003_webhooks"
down_revision = "0002_settlement"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: existing accounts get a secret lazily (bridge.storage.webhook_secrets.ensure)
    op.add_column("accounts", sa.Column("webhook_secret", sa.String(64)))
    op.add_column("accounts", sa.Column("webhook_secret_previous", sa.String(64)))
    op.add_column("accounts", sa.Column("webhook_secret_rotated_at", UTCDateTime()))
    # "final" | "all"; None = "final" (accounts: the default of its sends; messages: no URL)
    op.add_column("accounts", sa.Column("callback_events", sa.String(8)))
    op.add_column("messages", sa.Column("callback_events", sa.String(8)))
    op.create_table(
        "webhook_outbox",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(26), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_webhook_outbox")),
    )
    op.create_index(
        op.f("ix_webhook_outbox_created_at"), "webhook_outbox", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_outbox_created_at"), table_name="webhook_outbox")
    op.drop_table("webhook_outbox")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("callback_events")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("callback_events")
        batch.drop_column("webhook_secret_rotated_at")
        batch.drop_column("webhook_secret_previous")
        batch.drop_column("webhook_secret")
