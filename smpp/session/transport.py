"""One TCP connection to an SMSC, owned by the session thread: opened and bound with smpplib,
then driven non-blocking with the fast codec in ``smpp.codec.pdu``.

Why both: the issue asks for smpplib for the client's socket and PDUs, and smpplib does the
connect and bind well (its socket, its bind_* PDUs, its reading of bind_*_resp). After the bind
smpplib falls short for a windowed, high-rate session — it is blocking, reads one PDU per call,
keeps no window or per-request timeout, does not answer unbind/data_sm or send generic_nack, and
its PDU encoding is several times slower than ``smpp.codec.pdu`` — so :func:`open_bound` detaches the
bound socket from the smpplib client and :class:`Connection` drives it: non-blocking writes from
an output buffer, reads cut into frames by ``smpp.codec.pdu.split_frames``.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

from smpp.codec import pdu
from smpp.codec.status import ESME_RINVPASWD, ESME_RINVSYSID, ESME_RINVSYSTYP
from smpp.codec.status import status as status_info

log = logging.getLogger(__name__)

#: Bind statuses that mean "your credentials are wrong": retrying cannot help.
CREDENTIAL_STATUSES = frozenset((ESME_RINVPASWD, ESME_RINVSYSID, ESME_RINVSYSTYP))
_RECV_SIZE = 256 * 1024


class ConnectionLost(Exception):
    """The connection is gone or can no longer be trusted (closed, reset, unanswered
    enquire_link, malformed PDU, the SMSC unbound): drop it and reconnect."""


class BindRefused(Exception):
    """The SMSC answered our bind with an error ``status``. ``final`` when the status says the
    credentials are wrong, so the session stops trying until someone fixes its configuration."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
        self.final = status in CREDENTIAL_STATUSES


def open_bound(
    host: str, port: int, command: str, credentials: dict[str, object], timeout: float, name: str
) -> Connection:
    """Connect to ``host:port`` and bind with smpplib (``command``: "transceiver",
    "transmitter" or "receiver"); returns the bound, detached, non-blocking Connection.
    Raises ConnectionLost (try again later) or BindRefused."""
    client = _BindClient(
        host,
        port,
        timeout=timeout,
        allow_unknown_opt_params=True,
        logger_name=f"smpp.session.{name}.smpplib",
    )
    try:
        client.connect()
        resp = getattr(client, f"bind_{command}")(**credentials)
    except smpplib.exceptions.PDUError as exc:
        status = int(exc.args[1]) if len(exc.args) > 1 else 0
        _close(client)
        raise BindRefused(
            f"SMSC {host}:{port} refused bind_{command}: {status_info(status)}", status
        ) from None
    except smpplib.exceptions.ConnectionError:
        _close(client)
        raise ConnectionLost(
            f"cannot connect/bind to {host}:{port}: refused, closed, or no "
            f"bind_{command}_resp within {timeout}s"
        ) from None
    except Exception as exc:  # noqa: BLE001 - smpplib's parser raises many types on garbage
        _close(client)
        raise ConnectionLost(
            f"unreadable bind_{command}_resp from {host}:{port}: {exc!r}"
        ) from None
    if resp is None or resp.command != f"bind_{command}_resp":
        _close(client)
        got = getattr(resp, "command", None)
        raise ConnectionLost(f"{host}:{port} answered bind_{command} with {got}: reconnecting")
    sock = client._socket  # detach: from here on the session thread drives the socket itself
    client._socket = None
    client.state = smpplib.consts.SMPP_CLIENT_STATE_CLOSED
    return Connection(sock, command, first_sequence=client.sequence + 1)


class _BindClient(smpplib.client.Client):  # type: ignore[misc]  # smpplib has no type hints
    """smpplib's client, hardened for the one PDU it still reads (the bind response): a
    command_length outside 16..64 KiB is refused before smpplib would try to read (and
    allocate) that many bytes or pass a negative size to recv()."""

    def read_pdu(self) -> Any:  # an smpplib PDU object (untyped)
        raw_length = self._recv_exact(4)
        length = int.from_bytes(raw_length, "big")
        if not pdu.HEADER_LENGTH <= length <= pdu.MAX_PDU_LENGTH:
            raise smpplib.exceptions.ConnectionError(
                f"malformed bind response: command_length {length}"
            )
        raw = raw_length + self._recv_exact(length - 4)
        return smpplib.smpp.parse_pdu(
            raw, client=self, allow_unknown_opt_params=self.allow_unknown_opt_params
        )


def _close(client: smpplib.client.Client) -> None:
    if client._socket is not None:
        client._socket.close()
        client._socket = None
    client.state = smpplib.consts.SMPP_CLIENT_STATE_CLOSED


class Connection:
    """A bound socket: sequence numbers, an output buffer written without blocking, and an
    input buffer cut into whole PDUs. ``queued``/``sent`` count bytes over the connection's
    life, so a PDU queued at offset ``o`` definitely never left when ``o >= sent``."""

    def __init__(self, sock: socket.socket, role: str, first_sequence: int = 1) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.role = role  # "transceiver", "transmitter" or "receiver"
        self._sequence = max(1, first_sequence) - 1
        self._out = bytearray()
        self._in = b""
        self.queued = 0
        self.sent = 0
        self.last_rx = 0.0  # session clock reading of the last bytes received
        self.enquire_sequence: int | None = None  # our enquire_link awaiting its resp
        self.enquire_deadline = 0.0
        self.enquire_sent = 0.0  # session clock reading when that enquire_link was written
        self.unbind_sequence: int | None = None  # our unbind awaiting its resp
        self.unbound = False  # the unbind exchange is over (either side started it)
        self.framing_error: pdu.PduError | None = None  # the stream broke after these frames

    def fileno(self) -> int:
        return self.sock.fileno()

    def next_sequence(self) -> int:
        """1 .. 0x7FFFFFFF, then round again."""
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        return self._sequence

    def write(self, data: bytes) -> int:
        """Queue ``data`` for sending; returns its offset in the connection's output stream."""
        offset = self.queued
        self._out += data
        self.queued += len(data)
        return offset

    @property
    def wants_write(self) -> bool:
        return bool(self._out)

    def flush(self) -> None:
        """Send as much of the output buffer as the socket takes now."""
        while self._out:
            try:
                n = self.sock.send(self._out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                raise ConnectionLost(f"write to SMSC failed: {exc}") from None
            del self._out[:n]
            self.sent += n

    def receive(self) -> list[bytes]:
        """Whole PDUs now readable (possibly none). Raises ConnectionLost on EOF or a socket
        error. When the stream cannot be framed any further, returns the whole PDUs before the
        break and sets ``framing_error``: the caller handles those, then hangs up."""
        try:
            data = self.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError as exc:
            raise ConnectionLost(f"read from SMSC failed: {exc}") from None
        if not data:
            raise ConnectionLost("the SMSC closed the connection")
        buffer = self._in + data if self._in else data
        try:
            frames, self._in = pdu.split_frames(buffer)
        except pdu.PduError as exc:
            self.framing_error = exc
            frames, self._in = _frames_before_error(buffer), b""
        return frames

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError as exc:
            log.debug("closing SMSC socket: %s", exc)


def _frames_before_error(buffer: bytes) -> list[bytes]:
    """The whole, well-framed PDUs at the start of ``buffer`` (split_frames gave up on it)."""
    frames, pos = [], 0
    while len(buffer) - pos >= pdu.HEADER_LENGTH:
        length = int.from_bytes(buffer[pos : pos + 4], "big")
        if not pdu.HEADER_LENGTH <= length <= pdu.MAX_PDU_LENGTH or pos + length > len(buffer):
            break
        frames.append(buffer[pos : pos + length])
        pos += length
    return frames
