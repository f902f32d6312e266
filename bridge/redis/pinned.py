"""Hot-path Redis commands on a connection each thread keeps for itself.

redis-py checks a connection out of its pool and back in for every command and wraps each in
its retry and observability layers. On this machine that is ~42 µs of client CPU per command, of
which ~22 µs are the socket calls themselves (docs/benchmarks.md). The accept path sends two
commands per request (the rate limit, then the XADD of its group), so those go through here:
each thread takes one connection from the client's pool once and keeps it, and a command is one
packed write and one read on it (~30 µs).

What redis-py would do is kept: the connection is the pool's (same URL, timeouts, health check
before use after ``health_check_interval`` idle, reconnect after a failure), the client's retry
policy wraps each call (reconnecting inside it without a second, nested retry), a connection
goes back to the pool when its thread ends, and ``client.close()`` closes the kept connections
with the pool.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import redis


class PinnedConnections:
    """Commands on ``client``'s Redis through one kept connection per calling thread."""

    def __init__(self, client: redis.Redis) -> None:
        self._pool = client.connection_pool
        self._local = threading.local()

    def execute(self, *args: Any) -> Any:
        """One command's reply; an error reply raises (e.g. redis.exceptions.NoScriptError)."""
        return self.execute_many([args])[0]

    def execute_many(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send ``commands`` in one write and read every reply (a pipeline, no MULTI).

        An error reply raises after all replies were read, so the connection stays usable.
        A lost connection is retried by the client's retry policy (the commands may then run
        twice: callers use this only for commands where that is harmless or counted).
        """
        conn = self._connection()
        return conn.retry.call_with_retry(
            lambda: self._round_trip(conn, commands), lambda _error: conn.disconnect()
        )

    def _connection(self):
        kept = getattr(self._local, "kept", None)
        if kept is None or kept.conn.pid != os.getpid():
            kept = self._local.kept = _Kept(self._pool)
        elif kept.conn.should_reconnect():  # the server announced maintenance (RESP3)
            kept.conn.disconnect()
        return kept.conn

    @staticmethod
    def _round_trip(conn, commands: Sequence[Sequence[Any]]) -> list[Any]:
        # Connect here, inside the caller's retry, not with the connection's own connect retry:
        # nested, the two multiply (11 x 11 attempts with redis-py's default policy).
        conn.connect_check_health(retry_socket_connect=False)
        conn.send_packed_command(conn.pack_commands(commands))
        replies: list[Any] = []
        error: redis.ResponseError | None = None
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except redis.ResponseError as exc:
                error = error or exc
                replies.append(exc)
        if error is not None:
            raise error
        return replies


class _Kept:
    """A thread's connection, handed back to its pool when the thread ends (its thread-local
    storage, the only reference to this object, is dropped then)."""

    def __init__(self, pool) -> None:
        self.conn = pool.get_connection()
        weakref.finalize(self, pool.release, self.conn)
