"""Every Redis key name the bridge uses is built here, and only here.

All keys share a prefix so several bridges can share one Redis (``BRIDGE_REDIS_PREFIX`` is not
a knob yet; the prefix is a constant). Add a constant or a ``*_key(...)`` helper for new keys.
"""

from __future__ import annotations

PREFIX = "sb:"

# The outbound stream of accepted messages and its consumer group (worker side).
OUTBOUND_STREAM = PREFIX + "outbound"
OUTBOUND_GROUP = "workers"

# --- API rate limiting (bridge/accept/ratelimit.py) ---
# One fixed-window counter per bucket ("key:<key_id>" or "addr:<client address>"); the key
# expires with its window, so nothing needs cleaning up.
RATE_LIMIT_PREFIX = PREFIX + "rl:"


def rate_limit_key(bucket: str) -> str:
    """The counter of one rate-limit bucket, e.g. ``rate_limit_key("key:k_123")``."""
    return RATE_LIMIT_PREFIX + bucket


# --- outbox sweeper (bridge/accept/sweeper.py) ---
# A lock (SET NX PX, value = holder token) so one API process at a time re-enqueues messages.
SWEEPER_LOCK = PREFIX + "lock:sweeper"

# --- fleet coordination: bind leases, TPS buckets, bind status (bridge/delivery/fleet.py) ---
# Bind leases: one ZSET per SMSC account, member = lease id, score = expiry (Redis TIME seconds).
BIND_LEASE_PREFIX = PREFIX + "lease:"
# TPS token buckets: one HASH per SMSC account (tokens, ts), expiring once it would be full.
TPS_BUCKET_PREFIX = PREFIX + "tps:"
# Bind status heartbeats: one HASH field per bind (JSON), and a ZSET of each field's expiry.
BIND_STATUS_HASH = PREFIX + "binds:status"
BIND_STATUS_EXPIRY = PREFIX + "binds:expiry"


def bind_lease_key(account: str) -> str:
    """The lease set of one SMSC account, e.g. ``bind_lease_key("10.0.0.5:2775:acme")``."""
    return BIND_LEASE_PREFIX + account


def tps_bucket_key(account: str) -> str:
    """The token bucket of one SMSC account."""
    return TPS_BUCKET_PREFIX + account


# --- delivery receipts and settlement (bridge/delivery/settlement/correlation.py, core.py) ---
# Receipt correlation: one STRING per (connection, id spelling) -> "<message_id>:<part_index>",
# expiring after the message's validity plus a margin. An id spelling is a canonical_id, or,
# for message_id_form "auto", each of id_forms(id).
DLR_MAP_PREFIX = PREFIX + "dlr:map:"
# Receipts that arrived before their submit_sm_resp was stored: one LIST (JSON receipts) per
# (connection, id spelling), expiring after the orphan TTL.
DLR_ORPHAN_PREFIX = PREFIX + "dlr:orphan:"
# How many messages were flagged possible_duplicate (resent after a recovery or a timeout).
POSSIBLE_DUPLICATES = PREFIX + "stats:possible_duplicates"


def dlr_map_key(connection: str, smsc_id: str) -> str:
    """Where a connection's smsc id spelling maps to its (message, part)."""
    return f"{DLR_MAP_PREFIX}{connection}:{smsc_id}"


def dlr_orphan_key(connection: str, smsc_id: str) -> str:
    """Where receipts for a not-yet-mapped smsc id spelling wait."""
    return f"{DLR_ORPHAN_PREFIX}{connection}:{smsc_id}"


# --- the reconciler (owner: delivery; bridge/delivery/reconcile.py) ---
# A lock (SET NX PX, value = holder token) so one worker at a time checks that every queued
# message has a stream entry and re-enqueues those whose entry Redis lost.
RECONCILER_LOCK = PREFIX + "lock:reconciler"
