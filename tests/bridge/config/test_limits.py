"""The API, message and sweeper knobs: a value that would refuse every request, charge a
negative price or spin the sweeper stops start-up with one line naming its variable, and a
TOML value of the wrong type is refused instead of truncated or crashing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bridge.config import ConfigError, load_config


def test_defaults_pass_and_the_region_is_read_in_any_case():
    config = load_config(env={})
    assert (config.api_workers, config.max_body_bytes, config.rate_limit_per_minute) == (
        2,
        1_048_576,
        60,
    )
    assert (config.max_parts, config.max_recipients, config.idempotency_ttl_seconds) == (
        10,
        10_000,
        86_400,
    )
    assert config.price_per_part == Decimal("0.80") and config.default_region == "KE"
    config = load_config(
        env={
            "BRIDGE_DEFAULT_REGION": "ug",
            "BRIDGE_PRICE_PER_PART": "0",
            "BRIDGE_SWEEPER_GRACE": "0",
            "BRIDGE_MAX_PARTS": "255",
            "BRIDGE_DEFAULT_SENDER_ID": " ACME ",
        }
    )
    assert config.default_region == "UG" and config.price_per_part == 0
    assert config.max_parts == 255 and config.default_sender_id == "ACME"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("BRIDGE_API_WORKERS", "0"),
        ("BRIDGE_MAX_BODY_BYTES", "0"),
        ("BRIDGE_MAX_BODY_BYTES", "-5"),
        ("BRIDGE_RATE_LIMIT", "0"),
        ("BRIDGE_RATE_LIMIT", "-1"),
        ("BRIDGE_MAX_PARTS", "0"),
        ("BRIDGE_MAX_PARTS", "256"),
        ("BRIDGE_MAX_RECIPIENTS", "0"),
        ("BRIDGE_IDEMPOTENCY_TTL", "0"),
        ("BRIDGE_SWEEPER_GRACE", "-1"),
        ("BRIDGE_SWEEPER_INTERVAL", "0"),
        ("BRIDGE_SWEEPER_INTERVAL", "nan"),
        ("BRIDGE_PRICE_PER_PART", "-0.80"),
        ("BRIDGE_PRICE_PER_PART", "NaN"),
        ("BRIDGE_DEFAULT_REGION", "XX"),
        ("BRIDGE_DEFAULT_REGION", "Kenya"),
        ("BRIDGE_DEFAULT_SENDER_ID", "ABCDEFGHIJKL"),
        ("BRIDGE_WEBHOOK_RETRY_SECONDS", "inf"),
        ("BRIDGE_RESTART_WINDOW", "nan"),
    ],
)
def test_an_unusable_value_stops_start_up_naming_its_variable(var, value):
    with pytest.raises(ConfigError, match=var):
        load_config(env={var: value})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("port = 8081.5", "port must be a int, got 8081.5"),
        ("max_parts = 2.9", "max_parts must be a int, got 2.9"),
        ("port = [8081]", r"port must be a int, got \[8081\]"),
        ("login_window_seconds = true", "login_window_seconds must be a float, got True"),
        ("webhook_allow_networks = 5", "webhook_allow_networks must be a list of strings, got 5"),
        ("optout_keywords = 5", "optout_keywords must be a list of strings, got 5"),
        ("metrics_allow_networks = 5", "metrics_allow_networks must be a list of strings, got 5"),
    ],
)
def test_a_toml_value_of_the_wrong_type_is_one_line_naming_it(tmp_path, line, message):
    path = tmp_path / "bridge.toml"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError, match=message):
        load_config(env={}, path=str(path))
