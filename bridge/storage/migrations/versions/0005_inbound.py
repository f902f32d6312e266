"""Inbound (mobile-originated) messages, inbound routing and opt-outs.

Revision ID: 0005_inbound
Revises: 0004_scheduling
Create Date: 2026-12-04
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0005_inbound"
down_revision = "0004_scheduling"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved in the chain; filled by the change that needs it


def downgrade() -> None:
    pass
