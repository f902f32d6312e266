"""Every Redis key name the bridge uses is built here, and only here.

All keys share a prefix so several bridges can share one Redis (``BRIDGE_REDIS_PREFIX`` is not
a knob yet; the prefix is a constant). Add a constant or a ``*_key(...)`` helper for new keys.
"""

from __future__ import annotations

import hashlib

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


# --- failed password logins (bridge/accept/logins.py) ---
# Fixed-window counters of failed logins: per client address, per (username, address) and per
# username. Each expires with its window, or with the lockout once it reaches its limit.
LOGIN_FAIL_PREFIX = PREFIX + "login:fail:"


def login_fail_keys(username: str, address: str) -> tuple[str, str, str]:
    """The (address, username+address, username) failure counters of one login attempt. The
    username is used as sent when short, else by its SHA-256 (a key name stays bounded)."""
    name = username if len(username) <= 64 else "sha256:" + _sha256(username)
    return (
        f"{LOGIN_FAIL_PREFIX}addr:{address}",
        f"{LOGIN_FAIL_PREFIX}pair:{address}:{name}",
        f"{LOGIN_FAIL_PREFIX}user:{name}",
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# --- outbox sweeper (bridge/accept/sweeper.py) ---
# A lock (SET NX PX, value = holder token) so one API process at a time re-enqueues messages.
SWEEPER_LOCK = PREFIX + "lock:sweeper"

# --- scheduled sends (bridge/redis/schedule.py, bridge/delivery/release.py) ---
# A ZSET of the `scheduled` messages, member = message id, score = send_at (epoch seconds). The
# database is the truth: the releaser rebuilds the set from it whenever SCHEDULE_BUILT (a STRING
# it sets after a rebuild) is missing, i.e. on a fresh or emptied Redis.
SCHEDULE_SET = PREFIX + "scheduled"
SCHEDULE_BUILT = PREFIX + "scheduled:built"
# A lock (SET NX PX) so one worker at a time releases due messages.
RELEASER_LOCK = PREFIX + "lock:releaser"

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


# --- operations: the status document (bridge/ops/status.py, bridge/redis/stats.py) ---
# Message transitions settlement stored, by state entered: one HASH per 10-second bucket
# (field = state, value = count), expiring after the hour the status document reads.
STATE_COUNTS_PREFIX = PREFIX + "stats:states:"
# MO messages stored unrouted (no inbound route matched): one counter the inbound side INCRs.
UNROUTED_MO_COUNT = PREFIX + "stats:unrouted_mo"


def state_counts_key(bucket: int) -> str:
    """The transition counts of one 10-second bucket (``int(unix_seconds) // 10``)."""
    return f"{STATE_COUNTS_PREFIX}{bucket}"


def unrouted_mo_count_key() -> str:
    """The running count of MO messages that matched no inbound route."""
    return UNROUTED_MO_COUNT


# The outbound stream's length sampled once per 10-second bucket when the status document is
# read (bridge/ops/history.py): one STRING per bucket, set NX, expiring after 16 minutes.
QUEUE_SAMPLE_PREFIX = PREFIX + "stats:queue:"


def queue_sample_key(bucket: int) -> str:
    """The outbound stream length sampled in one 10-second bucket (``int(unix_seconds) // 10``)."""
    return f"{QUEUE_SAMPLE_PREFIX}{bucket}"


# --- delivery receipts and settlement (bridge/delivery/settlement/correlation.py, core.py) ---
# Receipt correlation: one STRING per (connection, id spelling) -> "<message_id>:<part_index>",
# expiring after the longest validity a send can have plus a margin (correlation.DEFAULT_MAP_TTL,
# 3 days). An id spelling is a canonical_id, or, for message_id_form "auto", the id's exact
# spelling (message_id.exact_spelling).
DLR_MAP_PREFIX = PREFIX + "dlr:map:"
# Form "auto" while a connection is still learning its SMSC's ids: one STRING per (connection,
# conversion, converted spelling) -> "<message_id>:<part_index>" (message_id.CONVERSIONS),
# same TTL as the map. Never read before the exact spelling; never decides alone.
DLR_CONV_PREFIX = PREFIX + "dlr:conv:"
# What a connection has learned about its SMSC's ids (form "auto"): one HASH per connection
# (learned = same|hex2dec|dec2hex, resp_hex, held_total, conflicts); no TTL (a few fields).
DLR_FORMS_PREFIX = PREFIX + "dlr:forms:"
# Receipts kept because they matched only through an ambiguous converted spelling: one SET per
# connection of their own spellings (the receipts wait in the orphan lists), orphan TTL.
DLR_HELD_PREFIX = PREFIX + "dlr:held:"
# Receipts that voted for a conversion: one SET per (connection, conversion) of spellings.
DLR_VOTES_PREFIX = PREFIX + "dlr:votes:"
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


def dlr_conv_key(connection: str, conversion: str, spelling: str) -> str:
    """Where a resp id's converted spelling maps to its (message, part) while learning."""
    return f"{DLR_CONV_PREFIX}{connection}:{conversion}:{spelling}"


def dlr_forms_key(connection: str) -> str:
    """What a connection has learned about its SMSC's message ids."""
    return DLR_FORMS_PREFIX + connection


def dlr_held_key(connection: str) -> str:
    """The own spellings of a connection's held (ambiguous) receipts."""
    return DLR_HELD_PREFIX + connection


def dlr_votes_key(connection: str, conversion: str) -> str:
    """The receipts that voted for one conversion on a connection."""
    return f"{DLR_VOTES_PREFIX}{connection}:{conversion}"


# --- the receipt log (owner: delivery; bridge/delivery/receipt_log.py) ---
# Every delivery receipt is appended here before its deliver_sm is answered: one STREAM
# (fields c = connection, f = message_id_form, r = the receipt as JSON with its arrival time),
# consumer group "receipt-writers"; an entry is XACKed and XDELed once its receipt is applied
# (the settlement transaction committed). Its length is bounded ([worker]
# receipt_backlog_limit): past it receipts are refused with a retryable status.
RECEIPTS_STREAM = PREFIX + "receipts"
RECEIPTS_GROUP = "receipt-writers"
# Receipts settlement could not store (an unexpected error): one STREAM, capped, for replay.
RECEIPTS_DEAD = PREFIX + "receipts:dead"


def receipts_stream_key() -> str:
    """The stream of received delivery receipts not yet applied."""
    return RECEIPTS_STREAM


def receipts_dead_key() -> str:
    """The stream of receipts settlement could not store."""
    return RECEIPTS_DEAD


# --- the reconciler (owner: delivery; bridge/delivery/reconcile.py) ---
# A lock (SET NX PX, value = holder token) so one worker at a time checks that every queued
# message has a stream entry and re-enqueues those whose entry Redis lost.
RECONCILER_LOCK = PREFIX + "lock:reconciler"


# --- delivery webhooks (owner: webhooks; bridge/webhooks/) ---
# The events to POST: one STREAM (entries of bridge.webhooks.events), consumer group
# "webhook-senders"; an entry is XACKed and XDELed once its event has a final outcome or waits
# in the retry set.
WEBHOOKS_STREAM = PREFIX + "webhooks"
WEBHOOKS_GROUP = "webhook-senders"
# Events waiting for a retry (or for a paused endpoint): one ZSET, member = the event's stream
# fields as JSON, score = due time (ms since the epoch); due members go back on the stream.
WEBHOOKS_RETRY = PREFIX + "webhooks:retry"
# Events given up on (retry period spent, a 4xx, a refused target): one STREAM, capped;
# `smpp-bridge webhooks resend` moves chosen ones back to the stream (bridge/webhooks/dead.py).
WEBHOOKS_DEAD = PREFIX + "webhooks:dead"
# Each message's delivery attempts: one LIST of JSON records, capped, expiring (7 days).
WEBHOOK_ATTEMPTS_PREFIX = PREFIX + "webhooks:attempts:"
# The outbox sweep's lock (bridge/delivery/settlement/relay.py): one worker sweeps at a time.
WEBHOOKS_OUTBOX_LOCK = PREFIX + "lock:webhook-outbox"
# The inbound outbox sweep's lock (bridge/inbound/relay.py): one worker sweeps at a time.
INBOUND_OUTBOX_LOCK = PREFIX + "lock:inbound-outbox"


def webhooks_stream_key() -> str:
    """The stream of webhook events the producer XADDs to."""
    return WEBHOOKS_STREAM


def webhooks_retry_key() -> str:
    """The sorted set of webhook events waiting for their due time."""
    return WEBHOOKS_RETRY


def webhooks_dead_key() -> str:
    """The stream of dead-lettered webhook events."""
    return WEBHOOKS_DEAD


def webhook_attempts_key(message_id: str) -> str:
    """The list of webhook delivery attempts of one message."""
    return WEBHOOK_ATTEMPTS_PREFIX + message_id
