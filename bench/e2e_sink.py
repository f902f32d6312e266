"""The webhook receiver of ``bench.e2e --webhooks``: an asyncio keep-alive HTTP/1.1 server on
127.0.0.1 that answers every POST 204 and appends ``<webhook-id> <epoch seconds>`` per request
to a file (flushed every 0.1 s), keeping the first 20 requests whole (``<file>.samples``, JSON
lines of headers and body) so the bench can verify their signatures.

    python -m bench.e2e_sink FILE      # prints {"port": N}, stops on SIGTERM
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import sys
import time

ANSWER = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
SAMPLES = 20


async def _main(path: str) -> None:
    out = open(path, "a", encoding="ascii")  # noqa: SIM115 (closed at the end)
    samples = open(path + ".samples", "a", encoding="utf-8")  # noqa: SIM115
    kept = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal kept
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name:
                        headers[name.strip().lower().decode()] = value.strip().decode()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                out.write(f"{headers.get('webhook-id', '-')} {time.time():.6f}\n")
                if kept < SAMPLES:
                    kept += 1
                    record = {"headers": headers, "body": base64.b64encode(body).decode()}
                    samples.write(json.dumps(record) + "\n")
                    samples.flush()
                writer.write(ANSWER)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client left, or the sink stops (asyncio.run cancels open connections)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 0.1)
        except TimeoutError:
            out.flush()
    out.close()
    samples.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1]))
