"""The simulated SMSC for tests: a fixture factory that always stops what it started, and a
minimal raw-socket ESME built on smpp.codec.pdu to drive it byte by byte.

Use from any conftest.py::

    from tests.harness.simulator import make_simulator, simulator  # noqa: F401  (fixtures)

    def test_x(make_simulator):
        sim = make_simulator(system_id="bridge", password="pw", dlr_delay=0.05)
        host, port = sim.address
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Self

import pytest

from smpp.codec import pdu
from smpp.simulator import Simulator

BIND_IDS = {
    "transmitter": pdu.BIND_TRANSMITTER,
    "receiver": pdu.BIND_RECEIVER,
    "transceiver": pdu.BIND_TRANSCEIVER,
}


@pytest.fixture
def make_simulator() -> Iterator:
    """make_simulator(config=None, **fields) -> a started Simulator; all stopped at teardown."""
    started: list[Simulator] = []

    def make(config=None, **fields) -> Simulator:
        sim = Simulator(config, **fields)
        sim.start()
        started.append(sim)
        return sim

    try:
        yield make
    finally:
        for sim in started:
            sim.stop()
    errors = [e for sim in started for e in sim.errors]
    if errors:
        pytest.fail(f"the simulator hit internal errors (a bug in smpp.simulator): {errors}")


@pytest.fixture
def simulator(make_simulator) -> Simulator:
    """A started simulator with default settings: any credentials, receipts at once."""
    return make_simulator()


class RawEsme:
    """A bare SMPP client over one socket: send encoded PDUs, read decoded ones. Nothing is
    answered automatically, so tests see and control every PDU."""

    def __init__(self, address: tuple[str, int], timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self.timeout = timeout
        self.buffer = b""
        self.frames: list[bytes] = []
        self.backlog: list[pdu.Pdu] = []  # PDUs request() read past; read() returns them first
        self.seq = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def send(self, frame: bytes) -> None:
        self.sock.sendall(frame)

    def read_frame(self, timeout: float | None = None) -> bytes:
        """The next whole frame; TimeoutError if none within ``timeout``, EOFError on close."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.frames:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no PDU from the simulator in time")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise TimeoutError("no PDU from the simulator in time") from None
            if not data:
                raise EOFError("the simulator closed the connection")
            self.frames, self.buffer = pdu.split_frames(self.buffer + data)
        return self.frames.pop(0)

    def read(self, timeout: float | None = None) -> pdu.Pdu:
        if self.backlog:
            return self.backlog.pop(0)
        return pdu.decode_pdu(self.read_frame(timeout))

    def read_until(
        self, command_id: int, timeout: float | None = None
    ) -> tuple[pdu.Pdu, list[pdu.Pdu]]:
        """(the first PDU with ``command_id``, the PDUs read before it)."""
        before: list[pdu.Pdu] = []
        while True:
            got = self.read(timeout)
            if got.command_id == command_id:
                return got, before
            before.append(got)

    def closed_by_peer(self, timeout: float | None = None) -> bool:
        """True once the simulator closes the connection (PDUs still queued are discarded)."""
        self.backlog.clear()
        try:
            while True:
                self.read_frame(timeout)
        except (EOFError, ConnectionResetError):
            return True

    def request(self, frame: bytes, timeout: float | None = None) -> pdu.Pdu:
        """Send a request and return the response with its sequence number; other PDUs read
        meanwhile are kept for read()."""
        seq = pdu.decode_header(frame).sequence_number
        self.send(frame)
        skipped = []
        try:
            while True:
                got = pdu.decode_pdu(self.read_frame(timeout))
                if got.sequence_number == seq and got.command_id & pdu.RESPONSE_BIT:
                    return got
                skipped.append(got)
        finally:
            self.backlog.extend(skipped)

    def bind(
        self, kind: str = "transceiver", system_id: str = "esme", password: str = "pw"
    ) -> pdu.Pdu:
        return self.request(
            pdu.encode_bind(BIND_IDS[kind], self.next_seq(), pdu.Bind(system_id, password))
        )

    def submit_frame(self, dest: str = "254700000001", text: bytes = b"hello", **fields) -> bytes:
        fields.setdefault("source_addr", "ACME")
        return pdu.encode_submit_sm(
            self.next_seq(), pdu.ShortMessage(destination_addr=dest, short_message=text, **fields)
        )

    def submit(self, dest: str = "254700000001", text: bytes = b"hello", **fields) -> pdu.Pdu:
        """submit_sm, then its submit_sm_resp."""
        return self.request(self.submit_frame(dest, text, **fields))

    def enquire(self) -> pdu.Pdu:
        return self.request(pdu.encode_enquire_link(self.next_seq()))
