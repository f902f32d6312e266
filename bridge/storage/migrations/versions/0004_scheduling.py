"""Scheduling, validity and cancellation of messages: ``messages.send_at`` (a scheduled send's
time) and a partial index of the ``scheduled`` messages by it, for the releaser. The new states
``scheduled`` and ``cancelled`` need no schema change (``messages.state`` is text).

Revision ID: 0004_scheduling
Revises: 0003_webhooks
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from bridge.storage.models import UTCDateTime

revision = "0004_scheduling"
down_revision = "0003_webhooks"
branch_labels = None
depends_on = None

_SCHEDULED = sa.text("state = 'scheduled'")


def upgrade() -> None:
    op.add_column("messages", sa.Column("send_at", UTCDateTime()))
    op.create_index(
        "ix_messages_scheduled_send_at",
        "messages",
        ["send_at"],
        unique=False,
        sqlite_where=_SCHEDULED,
        postgresql_where=_SCHEDULED,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_scheduled_send_at", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("send_at")
