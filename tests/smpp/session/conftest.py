"""Fixtures for the session tests: the project's simulated SMSC on an ephemeral port and
sessions bound to it, each stopped after the test even when it fails."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from smpp.session.client import Session, SessionConfig
from smpp.simulator import Simulator
from tests.harness.simulator import make_simulator  # noqa: F401 - a fixture used below

SYSTEM_ID = "bridge"
PASSWORD = "secret"
STOP_TIMEOUT = 5.0  # s any session gets to stop at teardown


class Collector:
    """What the session's callbacks handed over, in the order they came (one list of
    ``events`` too, so tests can check receipts against responses)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.receipts: list = []
        self.mo: list = []
        self.states: list = []
        self.events: list[tuple] = []

    def on_receipt(self, receipt, info) -> None:
        with self.lock:
            self.receipts.append(receipt)
            self.events.append(("receipt", receipt.message_id))

    def on_mo(self, message) -> None:
        with self.lock:
            self.mo.append(message)

    def on_state(self, state) -> None:
        with self.lock:
            self.states.append(state)


def session_config(port: int, **overrides) -> SessionConfig:
    """Test defaults: short timeouts and back-off so every scenario runs in well under a second."""
    defaults: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "system_id": SYSTEM_ID,
        "password": PASSWORD,
        "window": 10,
        "response_timeout": 2.0,
        "connect_timeout": 2.0,
        "enquire_link_interval": 30.0,
        "reconnect_min": 0.02,
        "reconnect_max": 0.2,
        "throttle_backoff": 0.2,
        "down_queue_timeout": 2.0,
        "name": "test",
    }
    return SessionConfig(**(defaults | overrides))


@pytest.fixture
def make_sim(make_simulator) -> Callable[..., Simulator]:  # noqa: F811 - the fixture
    """make_sim(**SimulatorConfig fields) -> a started Simulator expecting bridge/secret
    (tests.harness.simulator stops it, and fails the test on the simulator's own errors)."""

    def make(**fields) -> Simulator:
        fields.setdefault("system_id", SYSTEM_ID)
        fields.setdefault("password", PASSWORD)
        return make_simulator(**fields)

    return make


@pytest.fixture
def sim(make_sim) -> Simulator:
    return make_sim()


@pytest.fixture
def session() -> Iterator[Callable[..., tuple[Session, Collector]]]:
    """make(port, on_receipt=None, on_mo=None, **SessionConfig overrides) -> a started
    (Session, Collector); the Collector's callbacks are used unless others are given."""
    made: list[Session] = []

    def make(port: int, on_receipt=None, on_mo=None, **overrides) -> tuple[Session, Collector]:
        sink = Collector()
        s = Session(
            session_config(port, **overrides),
            on_receipt=on_receipt or sink.on_receipt,
            on_mo=on_mo or sink.on_mo,
            on_state=sink.on_state,
        )
        made.append(s)
        s.start()
        return s, sink

    yield make
    for s in made:
        assert s.stop(timeout=STOP_TIMEOUT), "session thread did not stop"
