"""The failed-login and password-hashing knobs: read from the environment, checked at start."""

from __future__ import annotations

import pytest

from bridge.config import ConfigError, load_config


def test_defaults_and_environment():
    config = load_config(env={})
    assert (config.login_failures_per_username, config.login_failures_per_address) == (10, 50)
    assert (config.login_window_seconds, config.login_lockout_seconds) == (900.0, 900.0)
    assert (config.password_hash_concurrency, config.password_hash_wait_seconds) == (2, 2.0)
    config = load_config(
        env={
            "BRIDGE_LOGIN_FAILURES_PER_USERNAME": "3",
            "BRIDGE_LOGIN_FAILURES_PER_ADDRESS": "7",
            "BRIDGE_LOGIN_WINDOW": "60",
            "BRIDGE_LOGIN_LOCKOUT": "300",
            "BRIDGE_PASSWORD_HASH_CONCURRENCY": "1",
            "BRIDGE_PASSWORD_HASH_WAIT": "0.5",
        }
    )
    assert config.login_failures_per_username == 3 and config.login_failures_per_address == 7
    assert config.login_window_seconds == 60 and config.login_lockout_seconds == 300
    assert config.password_hash_concurrency == 1 and config.password_hash_wait_seconds == 0.5


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("BRIDGE_LOGIN_FAILURES_PER_USERNAME", "0"),
        ("BRIDGE_LOGIN_FAILURES_PER_ADDRESS", "-1"),
        ("BRIDGE_LOGIN_WINDOW", "0"),
        ("BRIDGE_LOGIN_LOCKOUT", "0.5"),
        ("BRIDGE_PASSWORD_HASH_CONCURRENCY", "0"),
        ("BRIDGE_PASSWORD_HASH_WAIT", "0"),
    ],
)
def test_a_value_that_would_refuse_every_login_is_a_config_error(var, value):
    with pytest.raises(ConfigError, match=var):
        load_config(env={var: value})
