"""A raw TCP peer for byte-level session tests (fuzzing, exact PDU order, an SMSC that ignores
enquire_link). It is deliberately not an SMSC: it answers the bind, then runs a test's script,
which reads and writes raw PDUs. Scenarios an SMSC has belong in smpp.simulator instead.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from smpp.codec import pdu

if TYPE_CHECKING:
    from smpp.session.client import Session

IO_TIMEOUT = 5.0  # s any single read may take before the script gives up


class Peer:
    """One accepted connection, as the script sees it."""

    def __init__(self, sock: socket.socket, server: ScriptedSmsc) -> None:
        self.sock = sock
        self.server = server
        self._buffer = b""
        self._seq = 1000

    def next_sequence(self) -> int:
        self._seq += 1
        return self._seq

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, timeout: float = IO_TIMEOUT) -> tuple[int, int, int, bytes] | None:
        """The next PDU as (command_id, status, sequence, body), recorded; None on EOF."""
        self.sock.settimeout(timeout)
        while True:
            frames, _ = pdu.split_frames(self._buffer)
            if frames:
                frame = frames[0]
                self._buffer = self._buffer[len(frame) :]
                _, command, status, seq = pdu.HEADER.unpack_from(frame)
                entry = (command, status, seq, bytes(frame[16:]))
                with self.server.lock:
                    self.server.received.append(entry)
                return entry
            try:
                chunk = self.sock.recv(65536)
            except ConnectionError:
                return None
            if not chunk:
                return None
            self._buffer += chunk

    def expect(self, command: int, timeout: float = IO_TIMEOUT) -> tuple[int, int, int, bytes]:
        """Read until a PDU with ``command`` arrives (answering enquire_links meanwhile)."""
        while True:
            entry = self.read(timeout)
            if entry is None:
                raise ConnectionError(f"peer closed before {pdu.command_name(command)}")
            if entry[0] == command:
                return entry
            if entry[0] == pdu.ENQUIRE_LINK:
                self.send(pdu.encode_enquire_link_resp(entry[2]))

    def drain(self, timeout: float = IO_TIMEOUT) -> None:
        """Read (and record) until the client closes the connection."""
        while self.read(timeout) is not None:
            pass


class ScriptedSmsc:
    """Listens on 127.0.0.1:<ephemeral>; each connection: read the bind, answer it with
    ``bind_status`` (unless ``answer_bind`` is False), then ``script(peer)``; then close.
    One connection at a time."""

    def __init__(
        self, script: Callable[[Peer], None], bind_status: int = 0, answer_bind: bool = True
    ) -> None:
        self.script = script
        self.bind_status = bind_status
        self.answer_bind = answer_bind  # False: the script itself answers (or garbles) the bind
        self.lock = threading.Lock()
        self.received: list[tuple[int, int, int, bytes]] = []
        self.connections = 0
        self.errors: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="scripted-smsc", daemon=True)

    def __enter__(self) -> ScriptedSmsc:  # noqa: PYI034 - no subclasses
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(IO_TIMEOUT * 2)
        self._listener.close()
        assert not self._thread.is_alive(), "scripted SMSC thread did not stop"

    def commands(self) -> list[int]:
        with self.lock:
            return [entry[0] for entry in self.received]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            with self.lock:
                self.connections += 1
            with contextlib.closing(sock):
                self._handle(Peer(sock, self))

    def _handle(self, peer: Peer) -> None:
        try:
            bind = peer.read()
            if bind is None:
                return
            command, _, seq, _ = bind
            if self.answer_bind:
                peer.send(pdu.encode_bind_resp(command, seq, "SCRIPTED", self.bind_status))
            if self.bind_status == 0:
                self.script(peer)
        except (OSError, pdu.PduError) as exc:  # the session hung up or sent garbage
            with self.lock:
                self.errors.append(repr(exc))


@contextlib.contextmanager
def scripted_session(
    script: Callable[[Peer], None], **overrides: object
) -> Iterator[tuple[Session, ScriptedSmsc]]:
    """A started Session (tests' config with ``overrides``) bound to a ScriptedSmsc running
    ``script``; both stopped afterwards, even when the test fails."""
    from smpp.session.client import Session
    from tests.smpp.session.conftest import session_config

    with ScriptedSmsc(script) as smsc:
        session = Session(session_config(smsc.port, **overrides), on_receipt=lambda r, i: None)
        session.start()
        try:
            yield session, smsc
        finally:
            assert session.stop(timeout=5), "session thread did not stop"
