"""Indexes for listing and searching messages and batches (GET /api/v2/sms, /api/v2/batches).

Every filter walks one index newest first, keyset on (created_at, id), with no sort:
(account_id, created_at, id) replaces (account_id, created_at); (batch_id, account_id,
created_at, id) replaces (batch_id), whose lookups (the flusher's ``batch_id IN``, the audit)
it still serves; reference, state and number get (account_id, <column>, created_at, id).

Revision ID: 0006_message_search
Revises: 0005_inbound
Create Date: 2026-12-04
"""

from alembic import op

revision = "0006_message_search"
down_revision = "0005_inbound"
branch_labels = None
depends_on = None

_NEW = {
    "ix_messages_account_id_created_at_id": ["account_id", "created_at", "id"],
    "ix_messages_batch_id_account_id_created_at_id": ["batch_id", "account_id", "created_at", "id"],
    "ix_messages_account_id_client_reference_created_at_id": [
        "account_id",
        "client_reference",
        "created_at",
        "id",
    ],
    "ix_messages_account_id_state_created_at_id": ["account_id", "state", "created_at", "id"],
    "ix_messages_account_id_destination_created_at_id": [
        "account_id",
        "destination",
        "created_at",
        "id",
    ],
}
_REPLACED = {
    "ix_messages_account_id_created_at": ["account_id", "created_at"],
    "ix_messages_batch_id": ["batch_id"],
}


def upgrade() -> None:
    # new ones first: the replaced ones keep serving their queries until their successor exists
    for name, columns in _NEW.items():
        op.create_index(name, "messages", columns)
    for name in _REPLACED:
        op.drop_index(name, table_name="messages")


def downgrade() -> None:
    for name, columns in _REPLACED.items():
        op.create_index(name, "messages", columns)
    for name in _NEW:
        op.drop_index(name, table_name="messages")
