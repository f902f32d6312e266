"""Scheduling, validity and cancellation of messages.

Revision ID: 0004_scheduling
Revises: 0003_webhooks
Create Date: 2026-12-04
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0004_scheduling"
down_revision = "0003_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved in the chain; filled by the change that needs it


def downgrade() -> None:
    pass
