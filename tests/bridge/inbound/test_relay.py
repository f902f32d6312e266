"""The inbound outbox: a stored MO whose event was never XADDed (a crash, Redis down) is
relayed by the sweep once its grace has passed, exactly the same event."""

from __future__ import annotations

import json
from decimal import Decimal

from sqlalchemy import select, update

from bridge.config import Config
from bridge.inbound.relay import InboundRelay
from bridge.inbound.store import InboundStore
from bridge.redis import keys as redis_keys
from bridge.storage.models import accounts, inbound_messages
from bridge.webhooks.events import decode_event
from smpp.session.mo import MoMessage


def test_the_sweep_relays_what_was_left_behind(bridge_service, db, redis_client):
    info = bridge_service.create_account("acme", "acme-password-1", balance=Decimal(0))
    with db.begin() as conn:
        conn.execute(
            update(accounts)
            .where(accounts.c.id == info.id)
            .values(inbound_url="https://1.1.1.1/mo")
        )
    now = [1_900_000_000.0]
    config = Config().replace(inbound=({"number": "22141", "account": "acme"},))
    store = InboundStore(config, db, clock=lambda: now[0])  # no notify: as if it crashed
    stored = store.store("sim", MoMessage("254701000010", "22141", "hi there", 1, 0))
    relay = InboundRelay(db, redis_client, clock=lambda: now[0])
    stream = redis_keys.webhooks_stream_key()
    assert relay.sweep(30) == 0 and redis_client.xlen(stream) == 0  # still within its grace
    now[0] += 31
    assert relay.sweep(30) == 1
    [(_, fields)] = redis_client.xrange(stream)
    event = decode_event(fields)
    assert (event.id, event.kind, event.url) == (
        f"evt_in_{stored.id}",
        "inbound",
        "https://1.1.1.1/mo",
    )
    assert json.loads(event.body)["data"]["text"] == "hi there"
    with db.connect() as conn:
        assert conn.execute(select(inbound_messages.c.webhook_url)).scalar_one() is None
    assert relay.sweep(30) == 0  # relayed once
