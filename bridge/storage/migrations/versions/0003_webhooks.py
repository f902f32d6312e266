"""Delivery webhooks: per-account signing secrets and the event bookkeeping.

Revision ID: 0003_webhooks
Revises: 0002_settlement
Create Date: 2026-12-04
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0003_webhooks"
down_revision = "0002_settlement"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved in the chain; filled by the change that needs it


def downgrade() -> None:
    pass
