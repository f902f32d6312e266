"""Every Redis key name the bridge uses is built here, and only here.

All keys share a prefix so several bridges can share one Redis (``BRIDGE_REDIS_PREFIX`` is not
a knob yet; the prefix is a constant). Add a constant or a ``*_key(...)`` helper for new keys.
"""
from __future__ import annotations

PREFIX = "sb:"

# The outbound stream of accepted messages and its consumer group (worker side).
OUTBOUND_STREAM = PREFIX + "outbound"
OUTBOUND_GROUP = "workers"

# --- outbox sweeper (owner: storage; bridge/sweeper.py) ---
# A lock (SET NX PX, value = holder token) so one API process at a time re-enqueues messages.
SWEEPER_LOCK = PREFIX + "lock:sweeper"
