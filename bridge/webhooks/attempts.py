"""Each message's webhook delivery attempts: a capped, expiring Redis list of JSON records that
``GET /api/v2/sms/{id}`` lists. One record per attempt (and one when an event is given up):

    {"event_id": "...", "attempt": 2, "at": "2026-12-04T10:00:01.250Z", "status": 503,
     "error": null, "next_retry_at": "2026-12-04T10:00:05.000Z", "outcome": "retrying"}

``outcome`` is ``delivered`` (2xx), ``retrying`` (a retryable failure; ``next_retry_at`` says
when), ``failed`` (not retried: a 4xx or 3xx, a refused target) or ``dead`` (the retry period
is spent). ``status`` is the HTTP status, or null when ``error`` says what went wrong instead.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bridge.redis.keys import webhook_attempts_key

KEPT = 50  # newest records kept per message
TTL_SECONDS = 7 * 86_400  # a message's list expires a week after its last attempt
OUTCOMES = ("delivered", "retrying", "failed", "dead")
_JSON = json.JSONEncoder(
    separators=(",", ":")
)  # made once: json.dumps(separators=) makes one a call


def iso(ms: float | None) -> str | None:
    """Milliseconds since the epoch as ISO 8601 UTC with milliseconds, or None."""
    if ms is None:
        return None
    text = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def record(
    event_id: str,
    attempt: int,
    at_ms: float,
    outcome: str,
    *,
    status: int | None = None,
    error: str | None = None,
    next_retry_ms: float | None = None,
) -> dict[str, Any]:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown attempt outcome {outcome!r}")
    return {
        "event_id": event_id,
        "attempt": attempt,
        "at": iso(at_ms),
        "status": status,
        "error": error,
        "next_retry_at": iso(next_retry_ms),
        "outcome": outcome,
    }


def add(pipe: Any, message_id: str, entry: dict[str, Any]) -> None:
    """Queue on ``pipe`` (a redis pipeline) what appends ``entry`` to the message's list;
    no-op without a message id (an inbound event that names none)."""
    add_many(pipe, [(message_id, entry)])


# Append records to their lists (KEYS[i] gets ARGV[i + 2]), each trimmed to the newest ARGV[1]
# and kept ARGV[2] seconds: a batch's records in one command, not three per record.
_ADD_MANY = """
local kept, ttl = -tonumber(ARGV[1]), ARGV[2]
for i, key in ipairs(KEYS) do
  redis.call('RPUSH', key, ARGV[i + 2])
  redis.call('LTRIM', key, kept, -1)
  redis.call('EXPIRE', key, ttl)
end
return #KEYS
"""


def add_many(pipe: Any, records: list[tuple[str, dict[str, Any]]]) -> None:
    """Queue on ``pipe`` one script call appending every (message id, record) of ``records``
    (what ``add`` does for each, in order); those without a message id are skipped."""
    kept = [(webhook_attempts_key(m), _JSON.encode(e)) for m, e in records if m]
    if kept:
        pipe.eval(
            _ADD_MANY, len(kept), *[k for k, _ in kept], KEPT, TTL_SECONDS, *[r for _, r in kept]
        )


def read_attempts(redis: Any, message_id: str) -> list[dict[str, Any]]:
    """The message's attempt records, oldest first ([] if none or expired)."""
    out = []
    for raw in redis.lrange(webhook_attempts_key(message_id), 0, -1):
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue  # never written by us; skip rather than fail the API
    return out
