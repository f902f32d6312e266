"""api/gunicorn_conf.py takes every setting from Config (BRIDGE_API_THREADS, BRIDGE_API_WORKER_CLASS,
BRIDGE_ACCESS_LOG, BRIDGE_LOG_LEVEL included), and a bad value stops it with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bridge.config import Config, ConfigError, load_config

SHOW = (
    "import json, api.gunicorn_conf as g; "
    "print(json.dumps([g.threads, g.worker_class, g.accesslog, g.loglevel, g.workers]))"
)


def _gunicorn_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    return subprocess.run(
        [sys.executable, "-c", SHOW],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_defaults_and_the_environment_reach_gunicorn_through_config():
    default = _gunicorn_settings()
    assert json.loads(default.stdout) == [
        8,
        "api.balanced_worker.BalancedThreadWorker",
        None,
        "info",
        2,
    ]
    changed = _gunicorn_settings(
        BRIDGE_API_THREADS="3",
        BRIDGE_API_WORKER_CLASS="gthread",
        BRIDGE_ACCESS_LOG="-",
        BRIDGE_LOG_LEVEL="WARNING",
        BRIDGE_API_WORKERS="1",
    )
    assert json.loads(changed.stdout) == [3, "gthread", "-", "warning", 1]


def test_the_knobs_are_config_fields_with_env_names():
    config = load_config(env={"BRIDGE_API_THREADS": "4", "BRIDGE_ACCESS_LOG": "/tmp/x.log"})
    assert (config.api_threads, config.api_access_log) == (4, "/tmp/x.log")
    assert (Config().api_worker_class, Config().api_log_level) == (
        "api.balanced_worker.BalancedThreadWorker",
        "info",
    )


@pytest.mark.parametrize(
    "env, message",
    [
        ({"BRIDGE_API_THREADS": "0"}, r"api_threads \(BRIDGE_API_THREADS\) must be from 1 to 1024"),
        ({"BRIDGE_API_THREADS": "many"}, r"BRIDGE_API_THREADS must be a int, got 'many'"),
        ({"BRIDGE_LOG_LEVEL": "loud"}, r"api_log_level \(BRIDGE_LOG_LEVEL\) must be one of debug"),
        ({"BRIDGE_HEADER_TIMEOUT": "0"}, r"\(BRIDGE_HEADER_TIMEOUT\) must be positive seconds"),
        ({"BRIDGE_BODY_TIMEOUT": "-1"}, r"\(BRIDGE_BODY_TIMEOUT\) must be positive seconds"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env=env)


def test_the_request_deadlines_reach_the_worker_through_config():
    show = "import api.gunicorn_conf as g; i = g._intake; print(i.header_timeout, i.body_timeout)"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env = {**clean, "BRIDGE_HEADER_TIMEOUT": "2.5", "BRIDGE_BODY_TIMEOUT": "7"}
    shown = subprocess.run(
        [sys.executable, "-c", show], env=env, capture_output=True, text=True, timeout=60
    )
    assert shown.stdout.split() == ["2.5", "7.0"]
    assert (Config().header_timeout_seconds, Config().body_timeout_seconds) == (10.0, 30.0)
