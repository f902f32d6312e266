"""The supervisor's restart knobs: defaults, the environment, the TOML file, checked at start."""

from __future__ import annotations

import pytest

from bridge.config import ConfigError, load_config
from bridge.process.supervisor import RestartPolicy


def test_defaults_environment_and_file(tmp_path):
    policy = RestartPolicy.from_config(load_config(env={}))
    assert policy == RestartPolicy(limit=5, window=60.0, backoff=0.5, backoff_max=10.0)
    config = load_config(
        env={
            "BRIDGE_RESTART_LIMIT": "2",
            "BRIDGE_RESTART_WINDOW": "30",
            "BRIDGE_RESTART_BACKOFF": "0.1",
            "BRIDGE_RESTART_BACKOFF_MAX": "0.4",
        }
    )
    assert RestartPolicy.from_config(config) == RestartPolicy(2, 30.0, 0.1, 0.4)
    path = tmp_path / "bridge.toml"
    path.write_text("restart_limit = 0\nrestart_backoff_max_seconds = 60\n")
    config = load_config(env={}, path=str(path))
    assert (config.restart_limit, config.restart_backoff_max_seconds) == (0, 60.0)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"BRIDGE_RESTART_LIMIT": "-1"}, "restart_limit (BRIDGE_RESTART_LIMIT) must be a number"),
        ({"BRIDGE_RESTART_WINDOW": "0"}, "restart_window_seconds (BRIDGE_RESTART_WINDOW)"),
        ({"BRIDGE_RESTART_BACKOFF": "0"}, "restart_backoff_seconds (BRIDGE_RESTART_BACKOFF)"),
        ({"BRIDGE_RESTART_LIMIT": "five"}, "BRIDGE_RESTART_LIMIT must be a int, got 'five'"),
        (
            {"BRIDGE_RESTART_BACKOFF": "5", "BRIDGE_RESTART_BACKOFF_MAX": "1"},
            "restart_backoff_max_seconds (BRIDGE_RESTART_BACKOFF_MAX) must be at least",
        ),
    ],
)
def test_bad_values_are_one_line_naming_the_variable(env, says):
    with pytest.raises(ConfigError, match=None) as caught:
        load_config(env=env)
    assert says in str(caught.value) and "\n" not in str(caught.value)
