"""The webhook sender's knobs (``webhook_*`` in :class:`bridge.config.Config`), checked once.

``webhook_allow_networks`` comes from the environment as comma-separated CIDRs and from TOML as
a list or the same string; it is kept as a tuple of normalised CIDR strings.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from bridge.config.reader import ConfigError, check_least

# field -> (environment variable, smallest value)
LIMITS = {
    "webhook_secret_overlap_seconds": ("BRIDGE_WEBHOOK_SECRET_OVERLAP", 0),
    "webhook_retry_seconds": ("BRIDGE_WEBHOOK_RETRY_SECONDS", 0),
    "webhook_backoff_base_seconds": ("BRIDGE_WEBHOOK_BACKOFF_BASE", 0.001),
    "webhook_backoff_max_seconds": ("BRIDGE_WEBHOOK_BACKOFF_MAX", 0.001),
    "webhook_connect_timeout_seconds": ("BRIDGE_WEBHOOK_CONNECT_TIMEOUT", 0.01),
    "webhook_timeout_seconds": ("BRIDGE_WEBHOOK_TIMEOUT", 0.01),
    "webhook_workers": ("BRIDGE_WEBHOOK_WORKERS", 1),
    "webhook_processes": ("BRIDGE_WEBHOOK_PROCESSES", 1),
    "webhook_endpoint_concurrency": ("BRIDGE_WEBHOOK_ENDPOINT_CONCURRENCY", 1),
    "webhook_endpoint_pause_after": ("BRIDGE_WEBHOOK_ENDPOINT_PAUSE_AFTER", 1),
    "webhook_claim_idle_seconds": ("BRIDGE_WEBHOOK_CLAIM_IDLE", 1),
}
ALLOW_VAR = "BRIDGE_WEBHOOK_ALLOW_NETWORKS"
MAX_PROCESSES = 16  # sender processes `run` may start (each is a Python process with its pools)


def cidrs(raw: Any) -> tuple[str, ...]:
    """The parser of webhook_allow_networks: "a, b" or ["a", "b"] -> ("a", "b") (unchecked)."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return tuple(str(item).strip() for item in items if str(item).strip())


def check(config: Any) -> tuple[str, ...]:
    """Check every webhook knob of ``config``; the normalised allow-list. ConfigError names
    the knob and its variable."""
    check_least(config, LIMITS)
    if not isinstance(config.webhook_processes, int) or config.webhook_processes > MAX_PROCESSES:
        raise ConfigError(
            "webhook_processes (BRIDGE_WEBHOOK_PROCESSES) must be a whole number from 1 to "
            f"{MAX_PROCESSES}, got {config.webhook_processes!r}; one per core is about what helps"
        )
    if config.webhook_timeout_seconds < config.webhook_connect_timeout_seconds:
        raise ConfigError(
            "webhook_timeout_seconds (BRIDGE_WEBHOOK_TIMEOUT) is the whole request and must be "
            "at least webhook_connect_timeout_seconds (BRIDGE_WEBHOOK_CONNECT_TIMEOUT)"
        )
    networks = []
    for item in cidrs(config.webhook_allow_networks):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(
                f"webhook_allow_networks ({ALLOW_VAR}): {item!r} is not a CIDR; "
                "write e.g. 127.0.0.0/8,10.20.0.0/16,::1/128"
            ) from None
    return tuple(networks)
