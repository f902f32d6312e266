"""Delivery webhooks: each account's signing secret, and the previous one during a rotation.

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


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("webhook_secret_rotated_at")
        batch.drop_column("webhook_secret_previous")
        batch.drop_column("webhook_secret")
