"""`smpp-bridge worker`: the delivery engine (`smpp-bridge status` is bridge/cli/status.py).

Also ``run_children``, the engine's children of `smpp-bridge run`: with no ``[[smsc]]``
configured, a simulated SMSC on a free port (started before the API), then the worker processes
routed to it (the API does not wait for them to bind) and the webhook sender processes.
"""

from __future__ import annotations

import argparse
import socket
import sys
from dataclasses import replace

from bridge.cli import CommandError
from bridge.cli.database import open_migrated
from bridge.config import Config, load_config, simulator_connection

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SIMULATOR_SYSTEM_ID = "bridge"  # system_id and password `run` starts its simulator with


def register(subparsers) -> None:
    w = subparsers.add_parser(
        "worker",
        help="the delivery worker: stream -> SMPP binds -> settlement",
        description="Reads the outbound stream, submits through leased SMPP binds, stores "
        "outcomes and receipts. Stops gracefully on SIGTERM/Ctrl-C.",
    )
    w.add_argument(
        "--simulator",
        metavar="HOST:PORT",
        help="with no [[smsc]] configured, route everything to the simulated SMSC "
        "at this address (what `smpp-bridge run` does)",
    )
    w.add_argument(
        "--simulator-system-id",
        metavar="ID",
        help=f"system_id to bind to --simulator with (default {SIMULATOR_SYSTEM_ID})",
    )
    w.add_argument(
        "--simulator-password",
        metavar="PASSWORD",
        help=f"password to bind to --simulator with (default {SIMULATOR_SYSTEM_ID}; '-' reads "
        "it from stdin)",
    )
    w.add_argument("--consumer", help="consumer name in the stream group (default host-pid-rand)")
    w.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=LOG_LEVELS,
        help="DEBUG, INFO, WARNING, ERROR or CRITICAL, any case (INFO)",
    )
    w.set_defaults(handler=cmd_worker)


# ---------------------------------------------------------------------- worker


def worker_config(
    config: Config,
    simulator: str | None,
    system_id: str | None = None,
    password: str | None = None,
) -> Config:
    """The config the worker runs with: routed to ``simulator`` when no [[smsc]] is set, bound
    with ``system_id``/``password`` (default: what `smpp-bridge run` starts its simulator with)."""
    if (system_id is not None or password is not None) and not simulator:
        raise CommandError(
            "--simulator-system-id and --simulator-password go with --simulator HOST:PORT;"
            " for a real SMSC put system_id and password in its [[smsc]] table"
        )
    if config.smsc:
        return config
    if not simulator:
        raise CommandError(
            "no [[smsc]] is configured: add one to the BRIDGE_CONFIG file, or "
            "pass --simulator HOST:PORT of a running `smpp-bridge simulator`"
        )
    host, _, port = simulator.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CommandError(f"--simulator must be HOST:PORT, got {simulator!r}")
    credentials = {
        "system_id": SIMULATOR_SYSTEM_ID if system_id is None else system_id,
        "password": SIMULATOR_SYSTEM_ID if password is None else password,
    }
    for flag, value, least, most in (
        ("--simulator-system-id", credentials["system_id"], 1, 15),
        ("--simulator-password", credentials["password"], 0, 8),
    ):
        if not least <= len(value) <= most:  # SMPP 3.4: C-Octet strings of 16 and 9 octets
            raise CommandError(f"{flag} must be {least} to {most} characters (an SMPP 3.4 limit)")
    # the simulator `run` starts answers decimal ids: one receipt-map key per part, not the
    # three spellings "auto" must store
    conn = simulator_connection(host, int(port), message_id_form="dec", **credentials)
    processes = config.worker.processes
    if processes > 1:  # share the simulator's binds out between `run`'s worker processes
        conn = replace(conn, max_binds=conn.binds, binds=max(1, -(-conn.binds // processes)))
    return config.replace(smsc=(conn,))


def cmd_worker(args: argparse.Namespace) -> int:
    from bridge.telemetry import metrics_dir
    from bridge.telemetry.logs import configure_logging

    base = load_config()
    configure_logging(base, level=args.log_level)  # alembic: warnings only
    password = args.simulator_password
    if password == "-":
        password = sys.stdin.readline().rstrip("\r\n")
    config = worker_config(base, args.simulator, args.simulator_system_id, password)
    if not config.redis_url:
        raise CommandError("REDIS_URL is not set: the worker reads the outbound stream there")
    db = open_migrated(config)  # before var/metrics is made: a missing database creates nothing
    metrics_dir.prepare(config.var_dir)  # before bridge.delivery imports prometheus_client
    from bridge.delivery.worker import Worker

    try:
        Worker(config, db=db, consumer=args.consumer).run_forever()
    finally:
        db.dispose()
    return 0


# ---------------------------------------------------------------------- `run`'s children


def run_children(config: Config, env: dict[str, str]) -> list:
    """For `smpp-bridge run`: the simulated SMSC (only with no [[smsc]]), the worker(s) and
    the webhook sender(s)."""
    from bridge.process.supervisor import ChildSpec

    redis_url = config.redis_url
    if not redis_url:  # run sets it (REDIS_URL or its embedded redis-server) before this
        raise ValueError(
            "run_children needs config.redis_url: start Redis first (set REDIS_URL, or let "
            "`smpp-bridge run` start its embedded redis-server)"
        )
    python = [sys.executable, "-m", "bridge.cli"]
    children = []
    worker_argv = [*python, "worker"]
    if not config.smsc:
        port = _free_port()
        children.append(
            ChildSpec(
                "simulator",
                [
                    *python,
                    "simulator",
                    "--port",
                    str(port),
                    "--system-id",
                    SIMULATOR_SYSTEM_ID,
                    "--password",
                    SIMULATOR_SYSTEM_ID,
                ],
                ready=lambda: _port_open(port),
                ready_timeout=20,
                stop_timeout=10,
            )
        )
        worker_argv += ["--simulator", f"127.0.0.1:{port}"]
    for i in range(config.worker.processes):
        children.append(
            ChildSpec(
                "worker" if i == 0 else f"worker-{i + 1}",
                worker_argv,
                ready=lambda: _some_bind_up(redis_url),
                ready_timeout=60,
                stop_timeout=40,
                blocking=False,  # an SMSC that cannot be reached must not keep the API down
            )
        )
    from bridge.cli.webhooks import webhooks_children

    children += webhooks_children(python, config.webhook_processes)
    return children


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


def bind_line(config: Config, bound: bool) -> str:
    """The banner's line about the SMSC binds."""
    if bound:
        return "SMSC: a bind is up; messages are delivered (`smpp-bridge status` shows each bind)"
    names = ", ".join(c.name for c in config.smsc) or "the simulated SMSC"
    return (
        f"SMSC: no bind is up yet ({names}); sends are accepted and wait in the queue until one"
        " binds: `smpp-bridge status` shows each bind and its last error"
    )


def _some_bind_up(redis_url: str) -> bool:
    """Ready once a bind of this fleet reports itself bound (the demo can deliver); the last
    heartbeat of a process of this machine that is gone (a killed worker) does not count."""
    import redis as redis_lib

    from bridge.delivery.fleet import read_bind_statuses

    client = redis_lib.Redis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=1)
    try:
        return any(
            b.get("state") == "bound" and _alive(b.get("hostname"), b.get("pid"))
            for b in read_bind_statuses(client)
        )
    except redis_lib.RedisError:
        return False
    finally:
        client.close()


def _alive(hostname: object, pid: object) -> bool:
    """False only for a pid of this machine that no longer exists."""
    import os

    if hostname != socket.gethostname() or not isinstance(pid, int):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        pass
    return True
