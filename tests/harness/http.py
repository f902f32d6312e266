"""A WSGI app served over a real socket on 127.0.0.1 for tests that need real HTTP (a
browser, urllib): ``with serve_wsgi(app) as base_url: ...``, stopped on the way out."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a request thread never holds the test process open


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass


@contextlib.contextmanager
def serve_wsgi(app, *, threads: bool = True) -> Iterator[str]:
    """Serve ``app`` on an ephemeral port (a thread per request unless ``threads`` is false);
    yields ``http://127.0.0.1:<port>``."""
    server = make_server(
        "127.0.0.1",
        0,
        app,
        server_class=_ThreadingServer if threads else WSGIServer,
        handler_class=_Quiet,
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="wsgi", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
