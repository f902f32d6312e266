"""Standard Webhooks signatures (the ``standardwebhooks`` package): the three headers of one
attempt. Each attempt is signed anew (a fresh ``webhook-timestamp``, which receivers check
against a few minutes' tolerance) with every secret that signs now: during a rotation overlap
the signature header carries two space-separated ``v1,<base64>`` entries, as the spec allows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

from standardwebhooks import Webhook


@lru_cache(maxsize=4096)
def _webhook(secret: str) -> Webhook:
    return Webhook(secret)  # decodes the secret once, not per request


def sign(event_id: str, body: bytes, secrets: Sequence[str], at: datetime) -> dict[str, str]:
    """The ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` headers."""
    if not secrets:
        raise ValueError("signing needs at least one secret")
    signatures = " ".join(_webhook(s).sign(event_id, at, body) for s in secrets)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(math.floor(at.timestamp())),
        "webhook-signature": signatures,
    }
