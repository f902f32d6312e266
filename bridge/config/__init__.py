"""The one configuration object, read and checked once at start-up.

:func:`load_config` reads defaults, then the TOML file ($BRIDGE_CONFIG), then environment
variables, and parses every table (``[[smsc]]``, ``[[route]]``, ``[worker]``) into frozen
dataclasses; any mistake is a :class:`ConfigError` naming the key, so a process fails at start,
and nothing re-checks later.
"""

from bridge.config.core import Config, load_config
from bridge.config.reader import ConfigError
from bridge.config.smsc import (
    BIND_MODES,
    MESSAGE_ID_FORMS,
    SIMULATOR,
    Connection,
    Route,
    default_burst,
    read_connections,
    read_routes,
    simulator_connection,
)
from bridge.config.worker import (
    DEFAULT,
    DEFAULT_RULES,
    NOT_SENT,
    OUTCOME_WORDS,
    TIMEOUT,
    RetryPolicy,
    RetryRule,
    WorkerSettings,
    read_settings,
)

__all__ = [
    "BIND_MODES",
    "DEFAULT",
    "DEFAULT_RULES",
    "MESSAGE_ID_FORMS",
    "NOT_SENT",
    "OUTCOME_WORDS",
    "SIMULATOR",
    "TIMEOUT",
    "Config",
    "ConfigError",
    "Connection",
    "RetryPolicy",
    "RetryRule",
    "Route",
    "WorkerSettings",
    "default_burst",
    "load_config",
    "read_connections",
    "read_routes",
    "read_settings",
    "simulator_connection",
]
