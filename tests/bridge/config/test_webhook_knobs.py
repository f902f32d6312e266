"""The webhook sender's process count: default, the environment, the TOML file, checked at
start; and the `webhooks` children `smpp-bridge run` makes of it."""

from __future__ import annotations

import pytest

from bridge.cli.worker import run_children
from bridge.config import ConfigError, load_config


def test_defaults_environment_and_file(tmp_path):
    assert load_config(env={}).webhook_processes == 2
    assert load_config(env={"BRIDGE_WEBHOOK_PROCESSES": "3"}).webhook_processes == 3
    path = tmp_path / "bridge.toml"
    path.write_text("webhook_processes = 1\n")
    assert load_config(env={}, path=str(path)).webhook_processes == 1


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("0", "webhook_processes (BRIDGE_WEBHOOK_PROCESSES) must be a number of at least 1"),
        ("17", "webhook_processes (BRIDGE_WEBHOOK_PROCESSES) must be a whole number from 1 to 16"),
        ("two", "BRIDGE_WEBHOOK_PROCESSES must be a int, got 'two'"),
    ],
)
def test_bad_counts_are_one_line_naming_the_variable(raw, says):
    with pytest.raises(ConfigError) as caught:
        load_config(env={"BRIDGE_WEBHOOK_PROCESSES": raw})
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_run_starts_one_webhooks_child_per_process():
    config = load_config(env={"BRIDGE_WEBHOOK_PROCESSES": "3", "REDIS_URL": "redis://127.0.0.1:1"})
    senders = [c for c in run_children(config, {}) if c.name.startswith("webhooks")]
    assert [c.name for c in senders] == ["webhooks", "webhooks-2", "webhooks-3"]
    assert all(c.argv[-1] == "webhooks" for c in senders)  # one consumer group, own names
    one = load_config(env={"BRIDGE_WEBHOOK_PROCESSES": "1", "REDIS_URL": "redis://127.0.0.1:1"})
    assert [c.name for c in run_children(one, {}) if c.name.startswith("webhooks")] == ["webhooks"]
