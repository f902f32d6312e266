"""The one configuration object: environment variables over a TOML file over defaults.

Read once at start-up with :func:`load_config`; tests build a :class:`Config` directly or call
``load_config(env={...})``. Every knob has a default and says what it does and its unit.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from bridge.config.inbound import (
    DEFAULT_OPTIN,
    DEFAULT_OPTOUT,
    InboundRoute,
    keywords,
    read_inbound,
)
from bridge.config.inbound import check as check_inbound
from bridge.config.limits import check as check_limits
from bridge.config.ops import DEFAULT_METRICS_NETWORKS, networks_setting
from bridge.config.ops import check as check_ops
from bridge.config.reader import ConfigError
from bridge.config.smsc import SIMULATOR, Connection, Route, read_connections, read_routes
from bridge.config.supervision import check as check_supervision
from bridge.config.urls import check_database_url, check_redis_url
from bridge.config.webhooks import check as check_webhooks
from bridge.config.webhooks import cidrs
from bridge.config.worker import WorkerSettings, read_settings


@dataclass(frozen=True)
class Config:
    # --- storage and coordination ---
    database_url: str = ""  # DATABASE_URL; empty = SQLite file var/bridge.db (WAL mode)
    redis_url: str | None = None  # REDIS_URL; None = `run` starts an embedded redis-server in var/
    var_dir: str = "var"  # BRIDGE_VAR_DIR; where SQLite, embedded Redis data and logs live
    # BRIDGE_SQLITE_SYNCHRONOUS; full (fsync every commit: an OS crash loses no answered send)
    # or normal (faster; an OS crash or power cut may roll back the newest commits)
    sqlite_synchronous: str = "full"

    # --- HTTP API ---
    host: str = "127.0.0.1"  # BRIDGE_HOST; address the API listens on
    port: int = 8080  # BRIDGE_PORT; TCP port the API listens on
    api_workers: int = 2  # BRIDGE_API_WORKERS; gunicorn worker processes
    api_threads: int = 8  # BRIDGE_API_THREADS; request threads per gunicorn worker (gthread)
    # BRIDGE_API_WORKER_CLASS; the gunicorn worker class (gthread that balances connections)
    api_worker_class: str = "api.balanced_worker.BalancedThreadWorker"
    api_access_log: str = ""  # BRIDGE_ACCESS_LOG; "" = none (speed), "-" = stdout, else a file
    api_log_level: str = "info"  # BRIDGE_LOG_LEVEL; gunicorn's: debug, info, warning, error...
    max_body_bytes: int = 1_048_576  # BRIDGE_MAX_BODY_BYTES; larger request bodies get 413
    header_timeout_seconds: float = 10.0  # BRIDGE_HEADER_TIMEOUT; seconds for a request's headers
    body_timeout_seconds: float = 30.0  # BRIDGE_BODY_TIMEOUT; seconds for its body, after them
    rate_limit_per_minute: int = (
        60  # BRIDGE_RATE_LIMIT; /api/v2 requests per key per minute (per account override in DB)
    )

    # --- failed password logins (bridge/accept/logins.py) and password hashing ---
    login_failures_per_username: int = 10  # BRIDGE_LOGIN_FAILURES_PER_USERNAME; per window
    login_failures_per_address: int = 50  # BRIDGE_LOGIN_FAILURES_PER_ADDRESS; per window
    login_window_seconds: float = 900.0  # BRIDGE_LOGIN_WINDOW; seconds failures are counted
    login_lockout_seconds: float = 900.0  # BRIDGE_LOGIN_LOCKOUT; seconds a reached limit holds
    password_hash_concurrency: int = 2  # BRIDGE_PASSWORD_HASH_CONCURRENCY; verifies per process
    password_hash_wait_seconds: float = 2.0  # BRIDGE_PASSWORD_HASH_WAIT; longest wait, then 503

    # --- messages and money ---
    default_region: str = (
        "KE"  # BRIDGE_DEFAULT_REGION; ISO region for numbers without a country code
    )
    currency: str = "KES"  # BRIDGE_CURRENCY; currency of balances and prices
    price_per_part: Decimal = Decimal(
        "0.80"
    )  # BRIDGE_PRICE_PER_PART; default price of one SMS part
    max_parts: int = 10  # BRIDGE_MAX_PARTS; longest message accepted, in SMS parts
    max_recipients: int = 10_000  # BRIDGE_MAX_RECIPIENTS; most numbers in one send request
    default_sender_id: str = (
        "SMSBRIDGE"  # BRIDGE_DEFAULT_SENDER_ID; sender for accounts without their own
    )
    validity_seconds: int = (
        86_400  # BRIDGE_VALIDITY_SECONDS; a message not sent by then expires (refunded)
    )
    # BRIDGE_MAX_VALIDITY_MINUTES; the largest `validity` a send may ask for, minutes (at most
    # MAX_VALIDITY_LIMIT, 2880: receipts are correlated for that plus a day after a submit)
    max_validity_minutes: int = 1440
    idempotency_ttl_seconds: int = (
        86_400  # BRIDGE_IDEMPOTENCY_TTL; how long Idempotency-Key answers are kept
    )

    # --- outbox sweeper ---
    sweeper_grace_seconds: float = (
        30.0  # BRIDGE_SWEEPER_GRACE; `accepted` older than this is re-enqueued
    )
    sweeper_interval_seconds: float = 10.0  # BRIDGE_SWEEPER_INTERVAL; how often the sweeper looks

    # --- the supervisor of `smpp-bridge run`/`api` (bridge/process/supervisor.py) ---
    restart_limit: int = 5  # BRIDGE_RESTART_LIMIT; restarts of one child within the window;
    # one more exit stops everything (exit 1); 0 = never restart
    restart_window_seconds: float = 60.0  # BRIDGE_RESTART_WINDOW; seconds restarts are counted
    restart_backoff_seconds: float = 0.5  # BRIDGE_RESTART_BACKOFF; seconds before a first
    # restart, doubled for each further restart within the window
    restart_backoff_max_seconds: float = 10.0  # BRIDGE_RESTART_BACKOFF_MAX; longest delay, s

    # --- delivery webhooks: the sender (`smpp-bridge webhooks`; bridge/webhooks/) ---
    # BRIDGE_WEBHOOK_ALLOW_NETWORKS; CIDRs (comma-separated) webhooks may reach although they
    # are loopback/private/link-local...; () = public addresses only (`run` allows 127.0.0.0/8)
    webhook_allow_networks: tuple[str, ...] = ()
    webhook_secret_overlap_seconds: float = 86_400.0  # BRIDGE_WEBHOOK_SECRET_OVERLAP; seconds
    # the previous secret still signs after a rotation
    webhook_retry_seconds: float = 86_400.0  # BRIDGE_WEBHOOK_RETRY_SECONDS; seconds an event
    # is retried from its first enqueue, then dead-lettered
    webhook_backoff_base_seconds: float = 1.0  # BRIDGE_WEBHOOK_BACKOFF_BASE; seconds, doubled
    # per attempt (full jitter: the delay is uniform in [0, base * 2^n])
    webhook_backoff_max_seconds: float = 3_600.0  # BRIDGE_WEBHOOK_BACKOFF_MAX; longest delay, s
    webhook_connect_timeout_seconds: float = 5.0  # BRIDGE_WEBHOOK_CONNECT_TIMEOUT; seconds
    webhook_timeout_seconds: float = 10.0  # BRIDGE_WEBHOOK_TIMEOUT; seconds for a whole request
    webhook_workers: int = 32  # BRIDGE_WEBHOOK_WORKERS; requests in flight per sender process
    webhook_processes: int = 2  # BRIDGE_WEBHOOK_PROCESSES; sender processes `smpp-bridge run`
    # starts (1 to 16; they share the stream's consumer group, each restarted on its own; 2: on
    # 2 cores, 1.9x one's deliveries/s, idle cost nil; docs/benchmarks.md "Webhook sender")
    webhook_endpoint_concurrency: int = 4  # BRIDGE_WEBHOOK_ENDPOINT_CONCURRENCY; in flight
    # per endpoint (scheme://host:port) per sender process
    webhook_endpoint_pause_after: int = 3  # BRIDGE_WEBHOOK_ENDPOINT_PAUSE_AFTER; failures in a
    # row that pause an endpoint (backoff as above; its events wait, others flow)
    webhook_claim_idle_seconds: float = 60.0  # BRIDGE_WEBHOOK_CLAIM_IDLE; seconds an event
    # taken by a sender that died waits before another sender claims it

    # --- inbound (mobile-originated) messages and opt-outs (bridge/inbound/) ---
    # BRIDGE_INBOUND_DEFAULT_ACCOUNT; username that gets MO no [[inbound]] table routes; "" =
    # such MO are kept unrouted (`smpp-bridge inbox unrouted`)
    inbound_default_account: str = ""
    # BRIDGE_INBOUND_DEDUPE_SECONDS; an MO repeated (same connection, handset, number, text,
    # reassembly ref) within this many seconds is the SMSC redelivering it: stored once
    inbound_dedupe_seconds: float = 600.0
    # BRIDGE_OPTOUT_KEYWORDS; first words (any case) of an MO that opt its sender out of the
    # account it routes to (comma-separated in the environment, a list in TOML)
    optout_keywords: tuple[str, ...] = DEFAULT_OPTOUT
    optin_keywords: tuple[str, ...] = DEFAULT_OPTIN  # BRIDGE_OPTIN_KEYWORDS; ...opt back in
    inbound: tuple[InboundRoute, ...] = ()  # [[inbound]] tables (TOML only); () = none

    # --- operations: metrics, logs and the operator token (bridge/ops/) ---
    # BRIDGE_OPERATOR_TOKEN; the Bearer token of /metrics and the operator endpoints; "" = none
    operator_token: str = ""
    # BRIDGE_METRICS_ALLOW_NETWORKS; addresses/CIDRs (comma-separated) that may read /metrics
    # without the token ("none" or [] = the token only)
    metrics_allow_networks: tuple[str, ...] = DEFAULT_METRICS_NETWORKS
    log_format: str = "text"  # BRIDGE_LOG_FORMAT; text (one line a record) or json (an object)

    # --- SMSC connections, routes and the worker (TOML only: [[smsc]], [[route]], [worker]) ---
    # Given as raw TOML tables (load_config, tests) they are read and checked here, once.
    smsc: tuple[Connection, ...] = ()  # one per SMSC connection; () = the simulated SMSC
    routes: tuple[Route, ...] = ()  # ordered routing rules, first match wins; () = all to all
    worker: WorkerSettings = field(default_factory=WorkerSettings)  # batch sizes, retry policy

    def __post_init__(self) -> None:
        object.__setattr__(self, "database_url", check_database_url(self.database_url))
        object.__setattr__(self, "redis_url", check_redis_url(self.redis_url))
        if isinstance(self.port, bool) or not 1 <= self.port <= 65535:
            raise ConfigError(
                f"port (BRIDGE_PORT) must be a TCP port from 1 to 65535, got {self.port!r}"
            )
        if isinstance(self.api_threads, bool) or not 1 <= self.api_threads <= 1024:
            raise ConfigError(
                f"api_threads (BRIDGE_API_THREADS) must be from 1 to 1024, got {self.api_threads!r}"
            )
        if self.api_log_level.lower() not in _LOG_LEVELS:
            raise ConfigError(
                f"api_log_level (BRIDGE_LOG_LEVEL) must be one of {', '.join(_LOG_LEVELS)}, "
                f"got {self.api_log_level!r}"
            )
        for name in ("header_timeout_seconds", "body_timeout_seconds"):  # api/intake.py
            value = getattr(self, name)
            if isinstance(value, bool) or not value > 0:
                var = next(v for v, (f, _) in _ENV.items() if f == name)
                raise ConfigError(f"{name} ({var}) must be positive seconds, got {value!r}")
        check_supervision(self)
        region, sender = check_limits(self)
        object.__setattr__(self, "default_region", region)
        object.__setattr__(self, "default_sender_id", sender)
        smsc = read_connections(self.smsc)
        names = tuple(c.name for c in smsc) or (SIMULATOR,)
        object.__setattr__(self, "smsc", smsc)
        object.__setattr__(self, "routes", read_routes(self.routes, names, self.default_region))
        if not isinstance(self.worker, WorkerSettings):
            object.__setattr__(self, "worker", read_settings(self.worker))
        for name, least in _AT_LEAST.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not value >= least:
                var = next(v for v, (f, _) in _ENV.items() if f == name)
                raise ConfigError(f"{name} ({var}) must be at least {least}, got {value!r}")
        object.__setattr__(self, "webhook_allow_networks", check_webhooks(self))
        _check_validity(self)
        object.__setattr__(self, "inbound", read_inbound(self.inbound))
        for name in ("optout_keywords", "optin_keywords"):
            object.__setattr__(self, name, keywords(getattr(self, name)))
        check_inbound(self)
        nets, log_format = check_ops(self)
        object.__setattr__(self, "metrics_allow_networks", nets)
        object.__setattr__(self, "log_format", log_format)
        level = str(self.sqlite_synchronous).lower()
        if level not in ("full", "normal"):
            raise ConfigError(
                f"sqlite_synchronous (BRIDGE_SQLITE_SYNCHRONOUS) must be full or normal, got "
                f"{self.sqlite_synchronous!r}"
            )
        object.__setattr__(self, "sqlite_synchronous", level)

    @property
    def effective_database_url(self) -> str:
        """DATABASE_URL, or the default SQLite file under var_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.var_dir).resolve() / 'bridge.db'}"

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (tests use this); raw tables are read and checked."""
        return dataclasses.replace(self, **changes)


# minutes: the longest validity any send can have; the receipt correlation map lives this long
# plus a margin (bridge.delivery.settlement.correlation.DEFAULT_MAP_TTL: 3 days)
MAX_VALIDITY_LIMIT = 2880


def _check_validity(config: Config) -> None:
    """The default validity must be one a send could ask for: 1 s .. max_validity_minutes."""
    top = config.max_validity_minutes
    if isinstance(top, bool) or not 1 <= top <= MAX_VALIDITY_LIMIT:
        raise ConfigError(
            "max_validity_minutes (BRIDGE_MAX_VALIDITY_MINUTES) must be from 1 to "
            f"{MAX_VALIDITY_LIMIT}, got {top!r}"
        )
    seconds = config.validity_seconds
    if isinstance(seconds, bool) or not 1 <= seconds <= top * 60:
        raise ConfigError(
            f"validity_seconds (BRIDGE_VALIDITY_SECONDS) must be from 1 to {top * 60} "
            f"(max_validity_minutes x 60), got {seconds!r}; raise BRIDGE_MAX_VALIDITY_MINUTES "
            "for a longer default"
        )


# the smallest value of some knobs (a zero limit or window would refuse every login)
_AT_LEAST = {
    "login_failures_per_username": 1,
    "login_failures_per_address": 1,
    "login_window_seconds": 1,
    "login_lockout_seconds": 1,
    "password_hash_concurrency": 1,
    "password_hash_wait_seconds": 0.01,
}
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

# environment variable -> (field, parser)
_ENV: dict[str, tuple[str, Any]] = {
    "DATABASE_URL": ("database_url", str),
    "REDIS_URL": ("redis_url", str),
    "BRIDGE_VAR_DIR": ("var_dir", str),
    "BRIDGE_SQLITE_SYNCHRONOUS": ("sqlite_synchronous", str),
    "BRIDGE_HOST": ("host", str),
    "BRIDGE_PORT": ("port", int),
    "BRIDGE_API_WORKERS": ("api_workers", int),
    "BRIDGE_API_THREADS": ("api_threads", int),
    "BRIDGE_API_WORKER_CLASS": ("api_worker_class", str),
    "BRIDGE_ACCESS_LOG": ("api_access_log", str),
    "BRIDGE_LOG_LEVEL": ("api_log_level", str),
    "BRIDGE_MAX_BODY_BYTES": ("max_body_bytes", int),
    "BRIDGE_HEADER_TIMEOUT": ("header_timeout_seconds", float),
    "BRIDGE_BODY_TIMEOUT": ("body_timeout_seconds", float),
    "BRIDGE_RATE_LIMIT": ("rate_limit_per_minute", int),
    "BRIDGE_LOGIN_FAILURES_PER_USERNAME": ("login_failures_per_username", int),
    "BRIDGE_LOGIN_FAILURES_PER_ADDRESS": ("login_failures_per_address", int),
    "BRIDGE_LOGIN_WINDOW": ("login_window_seconds", float),
    "BRIDGE_LOGIN_LOCKOUT": ("login_lockout_seconds", float),
    "BRIDGE_PASSWORD_HASH_CONCURRENCY": ("password_hash_concurrency", int),
    "BRIDGE_PASSWORD_HASH_WAIT": ("password_hash_wait_seconds", float),
    "BRIDGE_DEFAULT_REGION": ("default_region", str),
    "BRIDGE_CURRENCY": ("currency", str),
    "BRIDGE_PRICE_PER_PART": ("price_per_part", Decimal),
    "BRIDGE_MAX_PARTS": ("max_parts", int),
    "BRIDGE_MAX_RECIPIENTS": ("max_recipients", int),
    "BRIDGE_DEFAULT_SENDER_ID": ("default_sender_id", str),
    "BRIDGE_VALIDITY_SECONDS": ("validity_seconds", int),
    "BRIDGE_MAX_VALIDITY_MINUTES": ("max_validity_minutes", int),
    "BRIDGE_IDEMPOTENCY_TTL": ("idempotency_ttl_seconds", int),
    "BRIDGE_SWEEPER_GRACE": ("sweeper_grace_seconds", float),
    "BRIDGE_SWEEPER_INTERVAL": ("sweeper_interval_seconds", float),
    "BRIDGE_RESTART_LIMIT": ("restart_limit", int),
    "BRIDGE_RESTART_WINDOW": ("restart_window_seconds", float),
    "BRIDGE_RESTART_BACKOFF": ("restart_backoff_seconds", float),
    "BRIDGE_RESTART_BACKOFF_MAX": ("restart_backoff_max_seconds", float),
    "BRIDGE_WEBHOOK_ALLOW_NETWORKS": ("webhook_allow_networks", cidrs),
    "BRIDGE_WEBHOOK_SECRET_OVERLAP": ("webhook_secret_overlap_seconds", float),
    "BRIDGE_WEBHOOK_RETRY_SECONDS": ("webhook_retry_seconds", float),
    "BRIDGE_WEBHOOK_BACKOFF_BASE": ("webhook_backoff_base_seconds", float),
    "BRIDGE_WEBHOOK_BACKOFF_MAX": ("webhook_backoff_max_seconds", float),
    "BRIDGE_WEBHOOK_CONNECT_TIMEOUT": ("webhook_connect_timeout_seconds", float),
    "BRIDGE_WEBHOOK_TIMEOUT": ("webhook_timeout_seconds", float),
    "BRIDGE_WEBHOOK_WORKERS": ("webhook_workers", int),
    "BRIDGE_WEBHOOK_PROCESSES": ("webhook_processes", int),
    "BRIDGE_WEBHOOK_ENDPOINT_CONCURRENCY": ("webhook_endpoint_concurrency", int),
    "BRIDGE_WEBHOOK_ENDPOINT_PAUSE_AFTER": ("webhook_endpoint_pause_after", int),
    "BRIDGE_WEBHOOK_CLAIM_IDLE": ("webhook_claim_idle_seconds", float),
    "BRIDGE_INBOUND_DEFAULT_ACCOUNT": ("inbound_default_account", str),
    "BRIDGE_INBOUND_DEDUPE_SECONDS": ("inbound_dedupe_seconds", float),
    "BRIDGE_OPTOUT_KEYWORDS": ("optout_keywords", keywords),
    "BRIDGE_OPTIN_KEYWORDS": ("optin_keywords", keywords),
    "BRIDGE_OPERATOR_TOKEN": ("operator_token", str),
    "BRIDGE_METRICS_ALLOW_NETWORKS": ("metrics_allow_networks", networks_setting),
    "BRIDGE_LOG_FORMAT": ("log_format", str),
}
# TOML table -> field
_TABLES = {"smsc": "smsc", "route": "routes", "worker": "worker", "inbound": "inbound"}
_FIELDS = {f.name: f for f in dataclasses.fields(Config) if f.name not in _TABLES.values()}


def _parse(name: str, parser: Any, raw: Any, source: str) -> Any:
    """``raw`` (an environment string or a TOML value) read by ``parser``; a TOML value of the
    wrong type (a list, a boolean, 1.5 for an integer) is refused, never truncated."""
    try:
        if isinstance(raw, bool) or (parser is int and isinstance(raw, float)):
            raise ValueError(raw)
        if parser is Decimal:
            return Decimal(str(raw))
        if parser in (int, float, str) and not isinstance(raw, str | int | float):
            raise ValueError(raw)
        return parser(raw)
    except (ValueError, TypeError, ArithmeticError) as exc:
        wanted = parser.__name__ if parser in (int, float, str, Decimal) else "list of strings"
        raise ConfigError(f"{source}: {name} must be a {wanted}, got {raw!r}") from exc


def _from_toml(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings, raw tables) of the TOML file; the tables are read by Config itself."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"BRIDGE_CONFIG names {path!r}, which does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key in _TABLES:
            continue
        if key not in _FIELDS:
            raise ConfigError(
                f"{path}: unknown setting {key!r}; known: {', '.join(sorted(_FIELDS))}"
            )
        parser = next((p for f, p in _ENV.values() if f == key), str)
        values[key] = _parse(key, parser, raw, path)
    tables: dict[str, Any] = {}
    for key in ("smsc", "route", "inbound"):
        if key in data:
            if not isinstance(data[key], list):
                raise ConfigError(
                    f"{path}: {key} must be [[{key}]] tables, got {type(data[key]).__name__}"
                )
            tables[_TABLES[key]] = tuple(data[key])
    if "worker" in data:
        tables["worker"] = data["worker"]
    return values, tables


def load_config(env: Mapping[str, str] | None = None, path: str | None = None) -> Config:
    """Build the config: defaults, then the TOML file (``path`` or $BRIDGE_CONFIG), then env vars."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    tables: dict[str, Any] = {}
    path = path or env.get("BRIDGE_CONFIG")
    if path:
        values, tables = _from_toml(path)
    for var, (name, parser) in _ENV.items():
        raw = env.get(var)
        if raw is not None and raw != "":
            values[name] = _parse(var, parser, raw, "environment")
    config = Config(**values)
    if not tables:
        return config
    try:
        return config.replace(**tables)
    except ConfigError as exc:  # the tables come from the file only: say which file
        raise ConfigError(f"{path}: {exc}") from None
