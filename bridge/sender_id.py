"""The sender id rule (source_addr an SMSC will take), one place for the config's default and
the accounts' own ids: bridge.config and bridge.storage both use it, so it sits below both."""

from __future__ import annotations

from bridge.errors import InvalidInput

SENDER_ID_MAX = 11  # alphanumeric sender ids are at most 11 characters in SMPP/GSM


def validate_sender_id(sender_id: str) -> str:
    """A sender id an SMSC will take: 1-11 characters (alphanumeric) or up to 16 digits."""
    sender_id = sender_id.strip()
    limit = 16 if sender_id.lstrip("+").isdigit() else SENDER_ID_MAX
    if not sender_id or len(sender_id) > limit or not sender_id.isprintable():
        raise InvalidInput(
            f"sender_id must be 1 to {limit} printable characters, got {sender_id!r}.",
            field="sender_id",
        )
    return sender_id
