"""The send path's opt-out lookup: exactly the listed numbers of this account, for one number or
more than a bind limit allows, in one statement of its own (no BEGIN/ROLLBACK around it)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from bridge.inbound.optouts import add_optout, opted_out
from tests.bridge.conftest import count_statements

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_lookup_finds_exactly_the_accounts_listed_numbers(bridge_service, db):
    acme = bridge_service.create_account("acme", "acme-password-1", balance=Decimal(0))
    other = bridge_service.create_account("other", "other-password-1", balance=Decimal(0))
    with db.begin() as conn:
        for number in ("+46700000001", "+46700039999"):
            add_optout(conn, acme.id, number, "api", NOW)
        add_optout(conn, other.id, "+46700000002", "api", NOW)
    many = [f"+467000{i:05d}" for i in range(40_000)]  # past SQLite's 32,766 bind parameters
    with db.connect() as conn:
        assert opted_out(conn, acme.id, ["+46700000001"]) == {"+46700000001"}
        assert opted_out(conn, acme.id, ["+46700000002"]) == set()  # the other account's
        assert opted_out(conn, acme.id, many) == {"+46700000001", "+46700039999"}
        assert opted_out(conn, other.id, many[:3]) == {"+46700000002"}
        assert opted_out(conn, acme.id, ["x'); DROP TABLE optouts; --", '"]']) == set()
        assert opted_out(conn, acme.id, []) == set()


def test_lookup_is_one_statement(bridge_service, db):
    acme = bridge_service.create_account("acme", "acme-password-1", balance=Decimal(0))
    for numbers in (["+46700000001"], [f"+467000{i:05d}" for i in range(100)]):
        with db.connect() as conn, count_statements(db.engine) as seen:
            assert opted_out(conn, acme.id, numbers) == set()
        assert len(seen) == 1 and seen[0].lstrip().startswith("SELECT"), seen
