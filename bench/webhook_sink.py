"""A fast keep-alive HTTP/1.1 sink for bench.webhooks: asyncio, one process, answers every POST
with 204 and counts them; prints its ports, then on SIGTERM the count, as JSON lines.

    python -m bench.webhook_sink --ports 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

COUNT = 0
ANSWER = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global COUNT
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            COUNT += 1
            writer.write(ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _main(ports: int) -> None:
    servers = [await asyncio.start_server(_serve, "127.0.0.1", 0) for _ in range(ports)]
    print(json.dumps({"ports": [s.sockets[0].getsockname()[1] for s in servers]}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    print(json.dumps({"count": COUNT}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", type=int, default=1)
    asyncio.run(_main(parser.parse_args().ports))
