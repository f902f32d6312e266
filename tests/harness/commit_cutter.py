"""A TCP proxy in front of PostgreSQL that can lose a COMMIT's answer: armed, it forwards the
next simple-query ``COMMIT`` of the transaction it is armed for to the server, waits for the
server's answer (so the commit is applied) and closes the client's connection without passing
the answer on; with ``applied=False`` it closes both connections instead of forwarding the
COMMIT (the server rolls the transaction back). What a network cut or a failover at the worst
moment does to a client: either way it cannot know whether its COMMIT held."""

from __future__ import annotations

import select
import socket
import threading

from tests.harness.listener import Listener

_COMMIT = b"Q\x00\x00\x00\x0bCOMMIT\x00"  # the simple-query message psycopg sends on commit()


class CommitCutter(Listener):
    """``arm(marker)``: cut the next COMMIT of a transaction that sent ``marker`` (a piece of
    its SQL, e.g. ``b"INSERT INTO ledger"``; psycopg sends a statement's text until it has
    prepared it, after 5 runs on a connection, so a test keeps to a few)."""

    def __init__(self, upstream_port: int, *, applied: bool = True) -> None:
        self.upstream_port = upstream_port
        self.applied = applied
        self.marker: bytes | None = None
        self.cut = threading.Event()  # set once a COMMIT was cut
        super().__init__(poll=0.2)

    def arm(self, marker: bytes) -> None:
        self.marker = marker

    def serve(self, conn: socket.socket, number: int) -> None:
        up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        try:
            self._relay(conn, up)
        finally:
            conn.close()
            up.close()

    def _relay(self, conn: socket.socket, up: socket.socket) -> None:
        marked = False  # this connection's open transaction sent the marker
        while not self.stopping.is_set():
            ready, _, _ = select.select([conn, up], [], [], 0.2)
            for side in ready:
                data = side.recv(65536)
                if not data:
                    return
                if side is up:
                    conn.sendall(data)
                    continue
                marker = self.marker
                marked = marked or (marker is not None and marker in data)
                if _COMMIT in data and marked and self.marker is not None:
                    self.marker = None
                    if self.applied:
                        up.sendall(data)
                        up.settimeout(5)
                        up.recv(65536)  # the server's answer: the commit is applied
                    self.cut.set()
                    return  # ...and the client never hears it
                if _COMMIT in data:
                    marked = False
                up.sendall(data)
