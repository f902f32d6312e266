"""Fixtures for the simulator's own tests; make_simulator/simulator come from
tests/harness/simulator.py (shared with the session and engine tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.harness.simulator import RawEsme, make_simulator, simulator  # noqa: F401


@pytest.fixture
def esme() -> Iterator[Callable[..., RawEsme]]:
    """esme(sim_or_address) -> a connected RawEsme; every one is closed at teardown."""
    opened: list[RawEsme] = []

    def connect(target, timeout: float = 5.0) -> RawEsme:
        address = target if isinstance(target, tuple) else target.address
        client = RawEsme(address, timeout)
        opened.append(client)
        return client

    try:
        yield connect
    finally:
        for client in opened:
            client.close()
