"""BRIDGE_MAX_VALIDITY_MINUTES and BRIDGE_VALIDITY_SECONDS are checked once, naming both."""

from __future__ import annotations

import pytest

from bridge.config import Config, ConfigError


def test_the_defaults_hold():
    config = Config()
    assert config.max_validity_minutes == 1440 and config.validity_seconds == 86_400


@pytest.mark.parametrize("top", [0, 2881, True])
def test_max_validity_out_of_range_is_refused(top):
    with pytest.raises(ConfigError, match="BRIDGE_MAX_VALIDITY_MINUTES"):
        Config(max_validity_minutes=top)


def test_a_default_validity_above_the_max_says_what_to_raise():
    with pytest.raises(ConfigError, match=r"BRIDGE_VALIDITY_SECONDS.*raise BRIDGE_MAX_VALIDITY"):
        Config(validity_seconds=86_401)
    assert Config(validity_seconds=172_800, max_validity_minutes=2880).validity_seconds == 172_800
