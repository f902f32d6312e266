"""Fixtures of the HTTP API tests: the real app over a real BridgeService, DB and Redis."""

from __future__ import annotations

import pytest
from falcon import testing

from api.app import create_app
from tests.harness.browser import chromium, page  # noqa: F401  (fixtures of the browser tests)


@pytest.fixture
def api_config(bridge_config):
    """The config the app is built with (tests change it with ``.replace``)."""
    return bridge_config


@pytest.fixture
def app(api_config, bridge_service, redis_client):
    return create_app(api_config, bridge_service, redis_client)


@pytest.fixture
def client(app):
    """A falcon TestClient over the app (WSGI, in this process)."""
    return testing.TestClient(app)


@pytest.fixture
def key_headers(demo_account):
    return {"X-API-Key": demo_account.api_key}
