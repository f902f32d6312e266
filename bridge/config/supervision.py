"""The restart policy of `smpp-bridge run`/`api` (``restart_*`` in :class:`bridge.config.Config`),
checked once: how often a child that dies is started again, and when `run` gives up."""

from __future__ import annotations

from typing import Any

from bridge.config.reader import ConfigError, check_least

# field -> (environment variable, smallest value)
LIMITS = {
    "restart_limit": ("BRIDGE_RESTART_LIMIT", 0),
    "restart_window_seconds": ("BRIDGE_RESTART_WINDOW", 1),
    "restart_backoff_seconds": ("BRIDGE_RESTART_BACKOFF", 0.01),
    "restart_backoff_max_seconds": ("BRIDGE_RESTART_BACKOFF_MAX", 0.01),
}


def check(config: Any) -> None:
    """ConfigError naming the knob and its variable for a restart setting out of range."""
    check_least(config, LIMITS)
    if config.restart_backoff_max_seconds < config.restart_backoff_seconds:
        raise ConfigError(
            "restart_backoff_max_seconds (BRIDGE_RESTART_BACKOFF_MAX) must be at least "
            "restart_backoff_seconds (BRIDGE_RESTART_BACKOFF)"
        )
