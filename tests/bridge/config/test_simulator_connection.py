"""The connection `smpp-bridge run` makes for its own simulator: every bind may hold a lease."""

from __future__ import annotations

from bridge.config import simulator_connection
from bridge.config.smsc import SIMULATOR


def test_every_bind_of_the_simulator_connection_may_be_leased():
    conn = simulator_connection("127.0.0.1", 2775)
    assert conn.name == SIMULATOR and conn.binds == 2
    assert conn.max_binds == conn.binds  # was 1: the second bind waited for a lease forever


def test_changes_keep_their_own_cap():
    assert simulator_connection("127.0.0.1", 2775, binds=3).max_binds == 3
    assert simulator_connection("127.0.0.1", 2775, binds=1, max_binds=4).max_binds == 4
