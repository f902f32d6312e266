"""Accounts and API keys: lifecycle, the distinct 401 sentences, and the in-process caches."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from bridge.errors import InvalidInput, NotFound, Unauthorized
from bridge.storage.models import accounts, api_keys, ledger
from tests.harness.procs import wait_until


def test_create_account_stores_a_salted_slow_hash_and_an_opening_topup(service, db, account):
    assert account.balance == Decimal("100.00") and account.currency == "KES"
    assert account.default_sender_id == "ACME" and account.allowed_sender_ids == ("INFO",)
    with db.connect() as conn:
        stored = conn.execute(select(accounts.c.password_hash)).scalar()
        rows = conn.execute(select(ledger.c.kind, ledger.c.amount)).all()
    assert stored.startswith("$argon2id$") and "s3cret-pass" not in stored
    assert rows == [("topup", Decimal("100.00"))]
    other = service.create_account("other", "s3cret-pass")
    with db.connect() as conn:
        hashes = conn.execute(select(accounts.c.password_hash)).scalars().all()
    assert hashes[0] != hashes[1]  # salted
    assert other.balance == 0


def test_duplicate_username_is_a_clear_error(service, account):
    with pytest.raises(InvalidInput, match="An account named 'acme' already exists"):
        service.create_account("acme", "another")


def test_authenticate(service, account):
    assert service.authenticate("acme", "s3cret-pass").id == account.id
    for username, password in [
        ("acme", "wrong"),
        ("nobody", "s3cret-pass"),
        ("acme", ""),
        ("", ""),
    ]:
        with pytest.raises(Unauthorized) as err:
            service.authenticate(username, password)
        assert err.value.message == "Unauthorized."


def test_password_change_and_deactivation_beat_the_password_cache(service, account):
    service.authenticate("acme", "s3cret-pass")  # now cached
    service.set_password(account.id, "new-pass")
    with pytest.raises(Unauthorized):
        service.authenticate("acme", "s3cret-pass")
    assert service.authenticate("acme", "new-pass").id == account.id
    service.set_active(account.id, False)
    with pytest.raises(Unauthorized):
        service.authenticate("acme", "new-pass")


def test_a_failed_password_is_never_cached(service, account, fast_hasher, db):
    with pytest.raises(Unauthorized):
        service.authenticate("acme", "guess")
    # the same wrong password stays wrong, the right one works (no negative cache poisoning)
    with pytest.raises(Unauthorized):
        service.authenticate("acme", "guess")
    assert service.authenticate("acme", "s3cret-pass").username == "acme"


def test_key_format_and_storage(service, db, account, clock):
    new = service.generate_key(account.id, expiry_days=30)
    assert new.api_key.startswith(f"sb_{new.key_id}_") and len(new.key_id) == 8
    assert len(new.api_key) >= len("sb_12345678_") + 32
    assert new.expires_at.timestamp() == pytest.approx(clock.now + 30 * 86400, abs=0.001)
    with db.connect() as conn:
        row = conn.execute(select(api_keys)).mappings().one()
    assert row["key_id"] == new.key_id and new.api_key not in row.values()
    info = service.verify_key(new.api_key)
    assert (info.key_id, info.account_id, info.rate_limit_per_minute) == (
        new.key_id,
        account.id,
        None,
    )


def test_key_errors_say_which_problem(service, account, clock):
    key = service.generate_key(account.id, expiry_days=1)
    tampered = key.api_key[:-4] + ("AAAA" if not key.api_key.endswith("AAAA") else "BBBB")
    for raw in ["", "nonsense", "sb_zzzzzzzz_" + "x" * 43, tampered]:
        with pytest.raises(Unauthorized) as err:
            service.verify_key(raw)
        assert err.value.message == "Invalid API key."
    clock.advance(86400 + 1)
    with pytest.raises(Unauthorized) as err:
        service.verify_key(key.api_key)
    assert err.value.message == "API key has expired."
    revoked = service.generate_key(account.id)
    service.revoke_keys(account.id, revoked.key_id)
    with pytest.raises(Unauthorized) as err:
        service.verify_key(revoked.api_key)
    assert err.value.message == "API key has been revoked."
    live = service.generate_key(account.id)
    service.set_active(account.id, False)
    with pytest.raises(Unauthorized) as err:
        service.verify_key(live.api_key)
    assert err.value.message == "Account is disabled."


def test_an_expired_key_is_refused_even_while_cached(service, account, clock):
    key = service.generate_key(account.id, expiry_days=1)
    service.verify_key(key.api_key)  # cached now
    clock.advance(86400)
    with pytest.raises(Unauthorized, match="expired"):
        service.verify_key(key.api_key)


def test_revocation_takes_effect_at_once_in_this_process(service, account):
    first, second = service.generate_key(account.id), service.generate_key(account.id)
    assert service.verify_key(first.api_key) and service.verify_key(second.api_key)  # cached
    assert service.revoke_keys(account.id, first.key_id) == 1
    with pytest.raises(Unauthorized, match="revoked"):
        service.verify_key(first.api_key)
    assert service.verify_key(second.api_key).key_id == second.key_id
    assert service.revoke_keys(account.id) == 1  # all the remaining active ones
    with pytest.raises(Unauthorized, match="revoked"):
        service.verify_key(second.api_key)
    assert service.revoke_keys(account.id) == 0


def test_revoking_another_accounts_key_does_nothing(service, account):
    other = service.create_account("other", "pw")
    key = service.generate_key(other.id)
    assert service.revoke_keys(account.id, key.key_id) == 0
    assert service.verify_key(key.api_key).account_id == other.id


def test_regenerate_revokes_and_creates_in_one_go(service, account):
    old = service.generate_key(account.id)
    new = service.regenerate_key(account.id, old.key_id, expiry_days=7)
    with pytest.raises(Unauthorized, match="revoked"):
        service.verify_key(old.api_key)
    assert service.verify_key(new.api_key).key_id == new.key_id
    with pytest.raises(InvalidInput, match="expiry_days must be between 1 and 365."):
        service.regenerate_key(account.id, None, expiry_days=0)
    assert service.verify_key(new.api_key)  # the failed call revoked nothing


@pytest.mark.parametrize("days", [0, 366, -1, "30", True])
def test_expiry_days_out_of_range(service, account, days):
    with pytest.raises(InvalidInput) as err:
        service.generate_key(account.id, expiry_days=days)
    assert err.value.message == "expiry_days must be between 1 and 365."


def test_keys_for_missing_accounts(service):
    with pytest.raises(NotFound):
        service.generate_key(999)
    with pytest.raises(NotFound):
        service.account(999)
    with pytest.raises(NotFound):
        service.balance(999)


def test_last_used_is_written_lazily_by_the_flusher(service, db, account, clock):
    key = service.generate_key(account.id)

    def last_used():
        with db.connect() as conn:
            value = conn.execute(select(api_keys.c.last_used_at)).scalar()
        return value and value.timestamp()

    start = clock.now
    for _ in range(20):
        service.verify_key(key.api_key)
    assert wait_until(last_used, timeout=10) == pytest.approx(start, abs=0.001)
    clock.advance(30)  # within the minute: noted nowhere
    service.verify_key(key.api_key)
    service.flusher.flush()
    assert last_used() == pytest.approx(start, abs=0.001)
    clock.advance(31)
    service.verify_key(key.api_key)
    wait_until(lambda: last_used() == pytest.approx(start + 61, abs=0.001), timeout=10)
    assert [k.last_used_at.timestamp() for k in service.list_keys(account.id)] == [start + 61]


def test_balance_and_topup(service, account):
    assert service.topup(account.id, Decimal("0.50")) == Decimal("100.50")
    info = service.balance(account.id)
    assert (info.username, info.balance, info.currency) == ("acme", Decimal("100.50"), "KES")
    assert service.audit() == []
