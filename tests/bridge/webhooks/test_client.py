"""The webhook client's timeout is a deadline for the whole exchange, not for each read.

A real receiver on 127.0.0.1 that trickles its answer one byte every 0.2 s (each read gets
data well within any per-read timeout) must still end the request at the deadline. Also: an
early answer stands, and a kept connection closed as it is reused is sent again at once.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from bridge.webhooks.client import DeliveryError, WebhookClient
from bridge.webhooks.ssrf import Target
from tests.harness.closing_receiver import closing_receiver
from tests.harness.listener import Listener

TRICKLE = 0.2  # seconds between two bytes of the answer
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 40\r\n\r\n"
BODY = b"x" * 40


class Trickler(Listener):
    """Accepts connections, reads each request, then writes ``fast`` at once and ``slow`` one
    byte every TRICKLE seconds; stops within one TRICKLE of ``stop()``."""

    def __init__(self, fast: bytes, slow: bytes) -> None:
        self.fast, self.slow = fast, slow
        super().__init__(TRICKLE)

    def serve(self, conn: socket.socket, number: int) -> None:
        """Answer each request of the connection in turn (keep-alive, as receivers do) until
        the client closes it or the server stops."""
        with conn, contextlib.suppress(OSError):
            conn.settimeout(TRICKLE)
            while not self.stopping.is_set():
                request, closed = b"", False
                while b"\r\n\r\n" not in request and not self.stopping.is_set():
                    with contextlib.suppress(TimeoutError):
                        chunk = conn.recv(65536)
                        closed = not chunk
                        request += chunk or b"\r\n\r\n"
                if closed or self.stopping.is_set():
                    return
                conn.sendall(self.fast)
                for i in range(len(self.slow)):
                    if self.stopping.wait(TRICKLE):
                        return
                    conn.sendall(self.slow[i : i + 1])


@contextlib.contextmanager
def trickler(fast: bytes, slow: bytes) -> Iterator[Trickler]:
    server = Trickler(fast, slow)
    try:
        yield server
    finally:
        server.stop()


def target(port: int) -> Target:
    return Target("http", "127.0.0.1", port, "/hook", ("127.0.0.1",))


def post_timed(client: WebhookClient, port: int, body: bytes = b"{}"):
    start = time.monotonic()
    try:
        return client.post(target(port), body, {}), time.monotonic() - start
    except DeliveryError as exc:
        return exc, time.monotonic() - start


def test_headers_trickled_end_at_the_deadline():
    """Without the deadline this takes len(HEAD) * 0.2 s, about 14 s."""
    client = WebhookClient(connect_timeout=0.5, total_timeout=1.0)
    with trickler(b"", HEAD + BODY) as server:
        outcome, took = post_timed(client, server.port)
    client.close()
    assert isinstance(outcome, DeliveryError), outcome
    assert str(outcome).startswith("timeout"), outcome
    assert 0.9 <= took < 1.6, took


def test_a_body_trickled_after_the_status_keeps_the_answer_and_ends_at_the_deadline():
    """The status arrived: that is the receiver's answer (retrying would deliver twice); the
    connection is closed at the deadline instead of being read for 8 s."""
    client = WebhookClient(connect_timeout=0.5, total_timeout=1.0)
    with trickler(HEAD, BODY) as server:
        outcome, took = post_timed(client, server.port)
        assert getattr(outcome, "status", None) == 200, outcome
        assert 0.9 <= took < 1.6, took
        again, took_again = post_timed(client, server.port)  # a fresh connection, not the cut one
    client.close()
    assert getattr(again, "status", None) == 200 and took_again < 1.6


@pytest.mark.parametrize("total", [1.0, 3.0])
def test_a_prompt_answer_is_not_cut(total):
    client = WebhookClient(connect_timeout=0.5, total_timeout=total)
    with trickler(HEAD + BODY, b"") as server:
        for _ in range(3):  # the kept-alive connection serves the next ones
            outcome, took = post_timed(client, server.port)
            assert getattr(outcome, "status", None) == 200, outcome
            assert took < 0.5
    client.close()


@contextlib.contextmanager
def tls_receiver(tmp_path, name: str) -> Iterator[tuple[int, str]]:
    """An HTTPS receiver on 127.0.0.1 with a self-signed certificate for ``name`` (made with
    the openssl command); yields (port, the certificate's path), answers every POST 200."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}"]
        + ["-addext", f"subjectAltName=DNS:{name}"],
        check=True,
        capture_output=True,
        timeout=60,
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], str(cert)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_tls_checks_the_certificate_and_the_urls_name_at_the_pinned_address(tmp_path):
    """https to the pinned 127.0.0.1: the certificate must chain to a trusted CA and name the
    URL's host (SNI and the check use the name, not the address); each failure is a
    DeliveryError saying why, and a good target's connection is kept alive."""
    with tls_receiver(tmp_path, "hooks.example") as (port, cert):

        def post(name: str, ca: str | None):
            client = WebhookClient(connect_timeout=2, total_timeout=5, ca_certs=ca)
            try:
                return [client.post(Target("https", name, port, "/h", ("127.0.0.1",)), b"{}", {})]
            except DeliveryError as exc:
                return exc
            finally:
                client.close()

        untrusted = post("hooks.example", None)
        assert isinstance(untrusted, DeliveryError) and "CERTIFICATE_VERIFY_FAILED" in str(
            untrusted
        )
        wrong_name = post("other.example", cert)
        assert isinstance(wrong_name, DeliveryError), wrong_name
        assert "doesn't match 'hooks.example'" in str(wrong_name)
        assert [a.status for a in post("hooks.example", cert)] == [200]


@pytest.mark.parametrize("status", [200, 413])
def test_an_answer_sent_before_the_body_was_read_is_the_answer(status):
    """A receiver may answer after the headers and close without reading the body (a 413 for
    a body too large, a 2xx that acknowledges at once): the send then fails (EPIPE/ECONNRESET)
    but the answer is on the wire. It is the answer, as urllib3's pool read it: a final status
    is not retried for the retry period, a 2xx is not delivered again."""
    answer = f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def answer_early() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    request += chunk
                conn.sendall(answer)  # closed with the body unread: the client's send fails

    thread = threading.Thread(target=answer_early, daemon=True)
    thread.start()
    client = WebhookClient(connect_timeout=2, total_timeout=10)
    try:
        outcome, _ = post_timed(client, listener.getsockname()[1], b"x" * (8 << 20))
    finally:
        client.close()
        thread.join(10)
        listener.close()
    assert not thread.is_alive()
    assert getattr(outcome, "status", None) == status, outcome


def test_a_kept_connection_closed_as_it_is_reused_is_sent_again_at_once_on_a_new_one():
    """The receiver closes a kept-alive connection, unanswered, as the second POST arrives on
    it (its idle timeout firing just then): no byte of an answer, so the client sends once more
    on a new connection, which answers; the caller sees one 200."""
    client = WebhookClient(connect_timeout=2, total_timeout=10)
    with closing_receiver() as server:
        try:
            first, _ = post_timed(client, server.port, b'{"n":1}')
            second, took = post_timed(client, server.port, b'{"n":2}')
        finally:
            client.close()
    assert getattr(first, "status", None) == 200, first
    assert getattr(second, "status", None) == 200, second
    assert took < 2.0
    assert [(n, answered) for n, _, answered in server.requests] == [
        (1, True),  # the first POST, on connection 1, kept alive
        (1, False),  # the second on the kept connection: closed unanswered
        (2, True),  # sent again at once on a new connection
    ]


def test_a_new_connection_closed_unanswered_is_a_delivery_error_not_sent_again():
    client = WebhookClient(connect_timeout=2, total_timeout=10)
    with closing_receiver(answer_first=False) as server:
        try:
            outcome, _ = post_timed(client, server.port)
        finally:
            client.close()
    assert isinstance(outcome, DeliveryError), outcome
    assert "RemoteDisconnected" in str(outcome) or "ConnectionReset" in str(outcome), outcome
    assert len(server.requests) == 1


EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
PROCESSING = b"HTTP/1.1 102 Processing\r\n\r\n"


def test_interim_answers_are_skipped_and_the_final_one_is_the_answer():
    """A receiver (or its proxy) that sends 103 Early Hints or 102 Processing first: the final
    200 is the answer (http.client alone takes the 103 as the answer: a failed delivery), and
    the connection stays usable for the next POST."""
    final = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    client = WebhookClient(connect_timeout=2, total_timeout=10)
    with trickler(EARLY_HINTS + PROCESSING + EARLY_HINTS + final, b"") as server:
        try:
            outcomes = [post_timed(client, server.port)[0] for _ in range(3)]
        finally:
            client.close()
    assert [getattr(o, "status", o) for o in outcomes] == [200, 200, 200]


def test_endless_interim_answers_are_a_broken_answer():
    client = WebhookClient(connect_timeout=2, total_timeout=10)
    with trickler(EARLY_HINTS * 50, b"") as server:
        try:
            outcome, _ = post_timed(client, server.port)
        finally:
            client.close()
    assert isinstance(outcome, DeliveryError), outcome
    assert "interim answers" in str(outcome), outcome
