"""The ``[worker]`` TOML table: batch sizes, timings and the retry policy, checked once.

Every knob has a default, so an empty table (or none) is a working worker::

    [worker]
    batch_size = 500              # stream entries read per XREADGROUP
    claim_idle_seconds = 60       # a pending entry idle this long belongs to a dead worker
    [worker.retry]                # backoff = 2.0, max_delay = 60.0 apply to every rule
    ESME_RTHROTTLED = { delay = 1.0, max_attempts = 10 }
    timeout = { delay = 5.0, max_attempts = 3 }

Retry rules are keyed by SMPP status name (``ESME_RMSGQFUL``), by hex code for vendor codes
(``"0x00000401"``: listing a code the status table calls permanent makes it retryable), or by
one of the outcome words ``timeout`` (no submit_sm_resp; the SMSC may have the message),
``not_sent`` (never written: no bind) and ``default`` (any other retryable status).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from bridge.config.reader import ConfigError, Table
from smpp.codec import status as smpp_status

TIMEOUT, NOT_SENT, DEFAULT = "timeout", "not_sent", "default"
OUTCOME_WORDS = (TIMEOUT, NOT_SENT, DEFAULT)


@dataclass(frozen=True)
class RetryRule:
    """How a part refused (or lost) this way is retried."""

    delay: float  # seconds before the first retry; multiplied by `backoff` for each later one
    max_attempts: int  # submits of one part in all, the first included; then the message fails


#: Built-in rules; a [worker.retry] entry replaces the rule of the same key.
DEFAULT_RULES: Mapping[str, RetryRule] = MappingProxyType(
    {
        "ESME_RTHROTTLED": RetryRule(1.0, 10),  # the SMSC's rate cap: slow down, it passes
        "ESME_RMSGQFUL": RetryRule(2.0, 8),  # SMSC queue full: congestion passes with time
        TIMEOUT: RetryRule(5.0, 3),  # may be a duplicate when resent: few attempts
        NOT_SENT: RetryRule(1.0, 30),  # never written (no bind): safe; ~15 min with backoff
        DEFAULT: RetryRule(2.0, 5),  # ESME_RSYSERR, ESME_RINVBNDSTS, ESME_RX_T_APPN, ...
    }
)


@dataclass(frozen=True)
class RetryPolicy:
    """Which outcomes are retried, how often and after how long."""

    rules: Mapping[str, RetryRule] = field(default_factory=lambda: DEFAULT_RULES)
    backoff: float = 2.0  # each further retry of a part waits `backoff` times longer
    max_delay: float = 60.0  # seconds: the longest wait between two tries of a part

    def rule_for(self, key: str, retryable: bool) -> RetryRule | None:
        """The rule for a status name or outcome word; None = not retried (permanent).

        ``retryable`` is the status table's verdict: a listed key is retried either way, an
        unlisted retryable status falls back to the ``default`` rule.
        """
        rule = self.rules.get(key)
        if rule is not None:
            return rule
        return self.rules.get(DEFAULT) if retryable else None

    def delay(self, rule: RetryRule, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th try (1 = after the first)."""
        return min(self.max_delay, rule.delay * self.backoff ** max(0, attempt - 1))


@dataclass(frozen=True)
class WorkerSettings:
    """Everything `smpp-bridge worker` reads from [worker]. Times in seconds."""

    batch_size: int = 500  # stream entries per XREADGROUP / XAUTOCLAIM call
    block_ms: int = 200  # how long one XREADGROUP waits for new entries (ms)
    read_linger_ms: int = 10  # after a short read, wait this long for more before claiming (ms)
    claim_idle_seconds: float = 60.0  # pending entries idle longer are taken over (dead worker)
    claim_interval_seconds: float = 5.0  # how often to look for such entries
    max_pending: int = 0  # read messages waiting to be written; 0 = 20 x the binds' windows
    max_held: int = 20_000  # read messages not yet settled, in all (a memory bound)
    max_unrecorded: int = 0  # claimed, outcome not committed; 0 = 2 x windows + flush_batch
    claim_ahead: int = 0  # per connection, claimed before their turn; 0 = 8 x its bound windows
    flush_interval: float = 0.03  # the settlement writer's longest wait before a DB flush
    flush_batch: int = 2000  # outcomes per DB transaction at most
    # receipts in the Redis receipt log not yet applied, fleet-wide, at most; past it new
    # receipts are answered ESME_RX_T_APPN (the SMSC sends them again later)
    receipt_backlog_limit: int = 100_000
    drain_timeout: float = 20.0  # on SIGTERM: how long in-flight work may take to finish
    lease_ttl: float = 15.0  # bind lease lifetime in Redis; renewed every third of it
    status_interval: float = 5.0  # bind status heartbeat period (`smpp-bridge status`)
    down_queue_timeout: float = 5.0  # a submit waits this long for a bind before "not_sent"
    reconnect_min: float = 1.0  # a fallen bind reconnects after this (doubling) ...
    reconnect_max: float = 30.0  # ... up to this
    processes: int = 1  # worker processes `smpp-bridge run` starts (they share the stream)
    reconcile_interval_seconds: float = 30.0  # how often one worker checks queued vs the stream
    reconcile_grace_seconds: float = 60.0  # a queued message untouched this long must be on it
    webhook_sweep_interval_seconds: float = 5.0  # how often the webhook outbox is swept
    webhook_sweep_grace_seconds: float = 30.0  # an outbox row this old was left behind: relay it
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def pending_limit(self, connections) -> int:
        """Messages read and waiting to be claimed and written (in lanes, or for a retry).
        They are not claimed yet, so a crash leaves them unflagged; the automatic limit (20
        windows' worth, at least 500) keeps every bind busy."""
        if self.max_pending:
            return self.max_pending
        return max(500, 20 * sum(c.binds * c.window for c in connections))

    def unrecorded_limit(self, connections) -> int:
        """Messages claimed for sending whose outcome is not committed yet, at most: the most a
        SIGKILL can send twice (each of them is flagged possible_duplicate on recovery). The
        automatic bound, twice the binds' windows (what the lanes keep in flight) plus one
        settlement flush (``flush_batch``), keeps the binds busy while a flush commits."""
        if self.max_unrecorded:
            return self.max_unrecorded
        return 2 * sum(c.binds * c.window for c in connections) + self.flush_batch

    @property
    def touch_interval(self) -> float:
        """How often held entries are re-claimed by this worker so no one takes them over."""
        return self.claim_idle_seconds / 3


_KEYS = (
    "batch_size",
    "block_ms",
    "read_linger_ms",
    "claim_idle_seconds",
    "claim_interval_seconds",
    "max_pending",
    "max_held",
    "max_unrecorded",
    "claim_ahead",
    "flush_interval",
    "flush_batch",
    "receipt_backlog_limit",
    "drain_timeout",
    "lease_ttl",
    "status_interval",
    "down_queue_timeout",
    "reconnect_min",
    "reconnect_max",
    "processes",
    "reconcile_interval_seconds",
    "reconcile_grace_seconds",
    "webhook_sweep_interval_seconds",
    "webhook_sweep_grace_seconds",
    "retry",
)


def read_settings(raw: Mapping[str, Any] | None) -> WorkerSettings:
    """Check the [worker] table; raises ConfigError naming the key and what it must be."""
    t = Table(raw or {}, "[worker]", _KEYS)
    d = WorkerSettings()
    settings = WorkerSettings(
        batch_size=t.integer("batch_size", d.batch_size, lo=1, hi=10_000),
        block_ms=t.integer("block_ms", d.block_ms, lo=1, hi=60_000),
        read_linger_ms=t.integer("read_linger_ms", d.read_linger_ms, lo=0, hi=1000),
        claim_idle_seconds=t.seconds("claim_idle_seconds", d.claim_idle_seconds),
        claim_interval_seconds=t.seconds("claim_interval_seconds", d.claim_interval_seconds),
        max_pending=t.integer("max_pending", d.max_pending, lo=0),
        max_held=t.integer("max_held", d.max_held, lo=1),
        max_unrecorded=t.integer("max_unrecorded", d.max_unrecorded, lo=0),
        claim_ahead=t.integer("claim_ahead", d.claim_ahead, lo=0),
        flush_interval=t.seconds("flush_interval", d.flush_interval),
        flush_batch=t.integer("flush_batch", d.flush_batch, lo=1),
        receipt_backlog_limit=t.integer("receipt_backlog_limit", d.receipt_backlog_limit, lo=1_000),
        drain_timeout=t.seconds("drain_timeout", d.drain_timeout),
        lease_ttl=t.seconds("lease_ttl", d.lease_ttl),
        status_interval=t.seconds("status_interval", d.status_interval),
        down_queue_timeout=t.seconds("down_queue_timeout", d.down_queue_timeout),
        reconnect_min=t.seconds("reconnect_min", d.reconnect_min),
        reconnect_max=t.seconds("reconnect_max", d.reconnect_max),
        processes=t.integer("processes", d.processes, lo=1, hi=64),
        reconcile_interval_seconds=t.seconds(
            "reconcile_interval_seconds", d.reconcile_interval_seconds
        ),
        reconcile_grace_seconds=t.seconds("reconcile_grace_seconds", d.reconcile_grace_seconds),
        webhook_sweep_interval_seconds=t.seconds(
            "webhook_sweep_interval_seconds", d.webhook_sweep_interval_seconds
        ),
        webhook_sweep_grace_seconds=t.seconds(
            "webhook_sweep_grace_seconds", d.webhook_sweep_grace_seconds
        ),
        retry=read_retry(t.raw.get("retry", {})),
    )
    if settings.reconnect_max < settings.reconnect_min:
        raise ConfigError("[worker]: reconnect_max must be >= reconnect_min")
    if settings.webhook_sweep_grace_seconds < 2 * settings.webhook_sweep_interval_seconds:
        raise ConfigError(
            "[worker]: webhook_sweep_grace_seconds must be at least twice "
            "webhook_sweep_interval_seconds (relayed rows are deleted within one interval; a "
            "shorter grace re-sends them)"
        )
    return settings


def read_retry(raw: Any) -> RetryPolicy:
    """[worker.retry]: numbers ``backoff``/``max_delay`` and one table per status/outcome."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"[worker.retry] must be a table, got {type(raw).__name__}")
    rules = dict(DEFAULT_RULES)
    for key, value in raw.items():
        if key in ("backoff", "max_delay"):
            continue
        name = rule_key(key)
        t = Table(value, f"[worker.retry.{key}]", ("delay", "max_attempts"))
        default = rules.get(name, DEFAULT_RULES[DEFAULT])
        rules[name] = RetryRule(
            _non_negative(t, "delay", default.delay),
            t.integer("max_attempts", default.max_attempts, lo=1, hi=1000),
        )
    backoff = raw.get("backoff", 2.0)
    if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or not 1 <= backoff <= 10:
        raise ConfigError(f"[worker.retry]: backoff must be a number from 1 to 10, got {backoff!r}")
    policy = Table({"max_delay": raw.get("max_delay", 60.0)}, "[worker.retry]", ("max_delay",))
    return RetryPolicy(MappingProxyType(rules), float(backoff), policy.seconds("max_delay", 60.0))


def rule_key(key: str) -> str:
    """The canonical key of a [worker.retry] entry: an outcome word, a status name, or the
    name the status table gives a hex code (``0x00000401``)."""
    if key in OUTCOME_WORDS:
        return key
    try:
        if key.lower().startswith("0x"):
            return smpp_status.name(int(key, 16))
        return smpp_status.by_name(key).name
    except (KeyError, ValueError):
        raise ConfigError(
            f"[worker.retry]: {key!r} is neither an SMPP status name (e.g. ESME_RTHROTTLED), "
            f'a hex code (e.g. "0x00000401") nor one of {", ".join(OUTCOME_WORDS)}'
        ) from None


def _non_negative(t: Table, key: str, default: float) -> float:
    value = t.raw.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise t.fail(key, "a number of seconds >= 0", value)
    return float(value)
