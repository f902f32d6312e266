"""The [worker] table: defaults, overrides, and errors that say what to fix."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from bridge.config import DEFAULT_RULES, ConfigError, RetryRule, read_settings


def test_an_empty_table_gives_the_documented_defaults():
    s = read_settings({})
    assert (s.batch_size, s.claim_idle_seconds, s.max_pending) == (500, 60.0, 0)
    assert s.retry.rules == DEFAULT_RULES
    assert s.retry.rule_for("ESME_RTHROTTLED", True) == RetryRule(1.0, 10)
    assert s.retry.rule_for("timeout", True) == RetryRule(5.0, 3)
    # a retryable status without its own rule takes "default"; a permanent one is not retried
    assert s.retry.rule_for("ESME_RSYSERR", True) == DEFAULT_RULES["default"]
    assert s.retry.rule_for("ESME_RINVDSTADR", False) is None


def test_rules_by_status_name_hex_code_and_outcome_word():
    s = read_settings(
        {
            "batch_size": 50,
            "claim_idle_seconds": 2,
            "retry": {
                "backoff": 3,
                "max_delay": 10,
                "esme_rthrottled": {"delay": 0.5, "max_attempts": 4},
                "0x00000401": {"max_attempts": 2},
                "not_sent": {"delay": 0},
            },
        }
    )
    assert s.batch_size == 50 and s.claim_idle_seconds == 2.0
    assert s.retry.rules["ESME_RTHROTTLED"] == RetryRule(0.5, 4)
    # a vendor code the status table calls permanent becomes retryable once listed
    assert s.retry.rule_for("0x00000401", False) == RetryRule(DEFAULT_RULES["default"].delay, 2)
    assert s.retry.rules["not_sent"] == RetryRule(0.0, DEFAULT_RULES["not_sent"].max_attempts)
    rule = s.retry.rules["ESME_RTHROTTLED"]
    assert [s.retry.delay(rule, n) for n in (1, 2, 3, 4)] == [0.5, 1.5, 4.5, 10.0]


@pytest.mark.parametrize(
    "table, words",
    [
        ({"batch_sise": 10}, "unknown key 'batch_sise'"),
        ({"batch_size": 0}, "batch_size must be an integer from 1"),
        ({"claim_idle_seconds": -1}, "claim_idle_seconds must be a positive number"),
        ({"retry": {"ESME_RNOPE": {"delay": 1}}}, "neither an SMPP status name"),
        ({"retry": {"timeout": {"delay": 1, "tries": 2}}}, "unknown key 'tries'"),
        ({"retry": {"timeout": {"max_attempts": 0}}}, "max_attempts must be an integer from 1"),
        ({"retry": {"backoff": 0.5}}, "backoff must be a number from 1 to 10"),
        ({"reconnect_min": 5, "reconnect_max": 1}, "reconnect_max must be >= reconnect_min"),
    ],
)
def test_mistakes_are_refused_with_what_to_write(table, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        read_settings(table)


def test_run_shares_the_simulators_binds_between_worker_processes():
    from bridge.cli import CommandError
    from bridge.cli.worker import worker_config
    from bridge.config import Config

    one = asdict(worker_config(Config(), "127.0.0.1:2775").smsc[0])
    assert (one["port"], one["binds"], one["message_id_form"]) == (2775, 2, "dec")
    two = asdict(worker_config(Config().replace(worker={"processes": 2}), "127.0.0.1:2775").smsc[0])
    assert (two["binds"], two["max_binds"]) == (1, 2)  # 2 binds fleet-wide, one per process
    configured = Config().replace(
        smsc=({"name": "x", "host": "h", "port": 1, "system_id": "s", "password": "p"},)
    )
    assert worker_config(configured, "127.0.0.1:2775") is configured
    with pytest.raises(CommandError, match="no \\[\\[smsc\\]\\] is configured"):
        worker_config(Config(), None)
