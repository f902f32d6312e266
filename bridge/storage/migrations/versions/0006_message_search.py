"""Indexes for listing and searching messages and batches.

Revision ID: 0006_message_search
Revises: 0005_inbound
Create Date: 2026-12-04
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0006_message_search"
down_revision = "0005_inbound"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved in the chain; filled by the change that needs it


def downgrade() -> None:
    pass
