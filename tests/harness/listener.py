"""A bare TCP server on 127.0.0.1 for tests that script a peer byte by byte: it accepts on a
free port and serves each connection in its own thread; ``stop()`` joins them all (each
``serve`` must return within a few seconds of ``stopping`` being set)."""

from __future__ import annotations

import socket
import threading


class Listener:
    """Subclasses define ``serve(conn, number)``; ``number`` counts connections from 1."""

    def __init__(self, poll: float) -> None:
        self.stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(poll)
        self.port = self._listener.getsockname()[1]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def serve(self, conn: socket.socket, number: int) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopping.set()
        for thread in list(self._threads):
            thread.join(5)
            assert not thread.is_alive()
        self._listener.close()

    def _accept(self) -> None:
        number = 0
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            number += 1
            thread = threading.Thread(target=self.serve, args=(conn, number), daemon=True)
            self._threads.append(thread)
            thread.start()
