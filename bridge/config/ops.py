"""The operations knobs of Config: the metrics allow-list and the log format, read and checked
once (bridge.config.core calls :func:`check`)."""

from __future__ import annotations

import ipaddress
from typing import Any

from bridge.config.reader import ConfigError

LOG_FORMATS = ("text", "json")
DEFAULT_METRICS_NETWORKS = ("127.0.0.0/8", "::1/128")
NONE = "none"  # BRIDGE_METRICS_ALLOW_NETWORKS=none: the token only (an empty variable is unset)


def networks_setting(raw: Any) -> tuple[str, ...]:
    """The parser of metrics_allow_networks: "a, b", ["a", "b"] or "none" (unchecked)."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    items = [str(item).strip() for item in items if str(item).strip()]
    return () if [i.lower() for i in items] == [NONE] else tuple(items)


def check(config: Any) -> tuple[tuple[str, ...], str]:
    """(normalised metrics_allow_networks, log_format); ConfigError names the knob."""
    nets = []
    for item in networks_setting(config.metrics_allow_networks):
        try:
            nets.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(
                f"metrics_allow_networks (BRIDGE_METRICS_ALLOW_NETWORKS): {item!r} is not an "
                "address or CIDR; write e.g. 127.0.0.0/8,10.20.0.0/16,::1 (or none: token only)"
            ) from None
    fmt = str(config.log_format).strip().lower()
    if fmt not in LOG_FORMATS:
        raise ConfigError(
            f"log_format (BRIDGE_LOG_FORMAT) must be text or json, got {config.log_format!r}"
        )
    return tuple(nets), fmt
