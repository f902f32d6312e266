"""bridge.redis.pinned over a real redis-server: one kept connection per thread, pipelined
replies, error replies that leave the connection usable, reconnects, closing with the client."""

from __future__ import annotations

import threading

import pytest
import redis

from bridge.redis.clients import make_redis
from bridge.redis.pinned import PinnedConnections
from tests.harness.procs import wait_until


def _client_ids(client: redis.Redis) -> set[int]:
    return {int(c["id"]) for c in client.client_list()}


def test_a_thread_keeps_its_connection_and_another_thread_gets_its_own(redis_server):
    client = make_redis(redis_server.url)
    pinned = PinnedConnections(client)
    mine = {pinned.execute("CLIENT", "ID") for _ in range(5)}
    theirs: list[int] = []
    worker = threading.Thread(target=lambda: theirs.append(pinned.execute("CLIENT", "ID")))
    worker.start()
    worker.join(10)
    assert len(mine) == 1 and theirs and theirs[0] not in mine
    client.close()


def test_many_commands_are_one_pipeline_with_replies_in_order(redis_client, redis_server):
    pinned = PinnedConnections(make_redis(redis_server.url))
    replies = pinned.execute_many(
        [("SET", "a", "1"), ("INCR", "a"), ("GET", "a"), ("XADD", "s", "*", "f", "v")]
    )
    assert replies[:3] == [b"OK", 2, b"2"] and replies[3].endswith(b"-0")
    assert redis_client.xlen("s") == 1


def test_an_error_reply_raises_after_every_reply_was_read(redis_client, redis_server):
    pinned = PinnedConnections(make_redis(redis_server.url))
    redis_client.set("text", "not a number")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        pinned.execute_many([("INCR", "n"), ("INCR", "text"), ("INCR", "n")])
    assert redis_client.get("n") == b"2"  # the command after the error ran too
    assert pinned.execute("INCR", "n") == 3  # and the connection is in step


def test_a_restarted_redis_is_reconnected_to(redis_server):
    client = make_redis(redis_server.url)
    pinned = PinnedConnections(client)
    pinned.execute("CLIENT", "SETNAME", "before")
    redis_server.restart()
    assert pinned.execute("PING") == b"PONG"  # raw replies: no response callbacks
    assert pinned.execute("CLIENT", "GETNAME") is None  # a new connection
    client.close()


def test_closing_the_client_closes_the_kept_connections(redis_client, redis_server):
    client = make_redis(redis_server.url)
    pinned = PinnedConnections(client)
    kept = pinned.execute("CLIENT", "ID")
    assert kept in _client_ids(redis_client)
    client.close()
    # the server drops a client once it reads the close; bounded wait, not an instant race
    wait_until(
        lambda: kept not in _client_ids(redis_client), timeout=5, message="connection closed"
    )


def test_a_thread_that_ends_gives_its_connection_back_to_the_pool(redis_server):
    client = make_redis(redis_server.url)
    pinned = PinnedConnections(client)
    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.append(pinned.execute("CLIENT", "ID")))
    worker.start()
    worker.join(10)
    assert client.client_id() == seen[0]  # the pool handed the same connection out again
    client.close()


def test_an_unreachable_redis_is_retried_by_the_policy_once_not_nested(redis_server, monkeypatch):
    """Reconnect attempts of a kept connection while Redis does not answer: the client's
    policy (here 1 + 2 attempts), not that policy squared (the connection's own connect retry
    inside the call's retry)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from tests.harness.redis_server import time_out_connects

    client = redis.Redis.from_url(redis_server.url, retry=Retry(NoBackoff(), 2))
    pinned = PinnedConnections(client)
    assert pinned.execute("PING") == b"PONG"  # the thread keeps a connection
    redis_server.stop()
    attempts = time_out_connects(monkeypatch)
    with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
        pinned.execute("PING")
    assert 1 <= len(attempts) <= 3
    client.close()
