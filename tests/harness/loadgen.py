"""A lean HTTP/1.1 load generator for the benches: asyncio, keep-alive, closed loop, 127.0.0.1.

The load generator shares the machine's two cores with what it measures, so it must be cheap:
``http.client`` in threads costs ~0.2 ms of CPU per request (its header parsing alone), this
~0.06 ms. Each connection sends its requests one after another (a new one only once the
previous answer was read) and reconnects when the server says ``Connection: close``.

``post(...)`` builds a request; ``run_for`` repeats one request for a time (bench/accept.py),
``run_all`` sends a list of requests spread over the connections (bench/e2e.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


def post(port: int, path: str, key: str, body: bytes, content_type: str) -> bytes:
    """The bytes of one POST with an API key."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {key}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def get(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


@dataclass
class Outcome:
    """What the connections saw: latencies (s) of the counted requests, non-200 answers."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0


async def _connection(
    port: int, requests: Iterator[bytes], outcome: Outcome, count_from: float = 0.0
) -> None:
    reader = writer = None
    try:
        for request in requests:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None  # opened together with writer
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lower = head.lower()
            length = int(lower.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            body = await reader.readexactly(length)
            if start >= count_from:
                outcome.latencies.append(time.perf_counter() - start)
                if head[9:12] != b"200":
                    outcome.errors.append(f"{head[9:12].decode()} {body[:200]!r}")
            if b"connection: close" in lower:
                writer.close()
                writer = None
    finally:
        if writer is not None:
            writer.close()


def _timed(request: bytes, until: float) -> Iterator[bytes]:
    while time.perf_counter() < until:
        yield request


def run_for(port: int, request: bytes, connections: int, warmup: float, seconds: float) -> Outcome:
    """``connections`` clients repeat ``request`` for warmup + seconds; only the requests
    started after the warm-up are counted."""
    outcome = Outcome()
    now = time.perf_counter()
    count_from, until = now + warmup, now + warmup + seconds

    async def main() -> None:
        await asyncio.gather(
            *(
                _connection(port, _timed(request, until), outcome, count_from)
                for _ in range(connections)
            )
        )

    cpu = time.process_time()
    asyncio.run(main())
    outcome.cpu_seconds = time.process_time() - cpu
    return outcome


def run_all(port: int, requests: Iterable[bytes], connections: int) -> Outcome:
    """Send every request once, spread over ``connections`` clients (round robin)."""
    requests = list(requests)
    outcome = Outcome()

    async def main() -> None:
        await asyncio.gather(
            *(
                _connection(port, iter(requests[i::connections]), outcome)
                for i in range(connections)
            )
        )

    cpu = time.process_time()
    asyncio.run(main())
    outcome.cpu_seconds = time.process_time() - cpu
    return outcome
