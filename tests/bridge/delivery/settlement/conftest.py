"""Fixtures of the settlement tests: a migrated database (SQLite and PostgreSQL), a real Redis,
a settable clock, an account with money and a factory of charged messages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bridge.delivery.settlement import Settlement
from tests.bridge.delivery.settlement.helpers import Clock, create_account, make_messages


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def settlement(db, redis_client, clock):
    return Settlement(db, redis_client, clock=clock)


@pytest.fixture
def account(db, clock):
    return create_account(db, "acme", Decimal("1000.00"), clock.now)


@pytest.fixture
def make(db, account, clock):
    """make(n, parts=1, price=Decimal("0.80"), ...) -> charged OutboundMessages (accepted)."""

    def factory(n: int = 1, **kwargs):
        return make_messages(db, account, n, clock.now, **kwargs)

    return factory
