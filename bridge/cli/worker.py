"""`smpp-bridge worker` (the delivery engine) and `smpp-bridge status` (every bind, fleet-wide).

Also ``run_children``, the children `smpp-bridge run` starts after the API: with no ``[[smsc]]``
configured, a simulated SMSC on a free port, then the worker processes routed to it.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys
import time
from dataclasses import replace
from typing import Any

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
    s = subparsers.add_parser(
        "status",
        help="every SMPP bind of the fleet, and the outbound stream",
        description="Reads the bind heartbeats every worker publishes in Redis.",
    )
    s.add_argument("--json", action="store_true", help="print one JSON document")
    s.add_argument(
        "--check",
        action="store_true",
        help="exit 1 unless at least one bind is reported and every bind is bound",
    )
    s.set_defaults(handler=cmd_status)


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
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the schema check is not news
    password = args.simulator_password
    if password == "-":
        password = sys.stdin.readline().rstrip("\r\n")
    config = worker_config(load_config(), args.simulator, args.simulator_system_id, password)
    if not config.redis_url:
        raise CommandError("REDIS_URL is not set: the worker reads the outbound stream there")
    from bridge.delivery.worker import Worker

    db = open_migrated(config)
    try:
        Worker(config, db=db, consumer=args.consumer).run_forever()
    finally:
        db.dispose()
    return 0


# ---------------------------------------------------------------------- status


def cmd_status(args: argparse.Namespace) -> int:
    config = load_config()
    if not config.redis_url:  # a `smpp-bridge run` on this machine: its embedded Redis
        from bridge.redis.embedded import running_url

        config = config.replace(redis_url=running_url(config.var_dir))
    if not config.redis_url:
        raise CommandError(
            "REDIS_URL is not set and no `smpp-bridge run` owns "
            f"{config.var_dir}/redis: bind status lives in Redis; set REDIS_URL"
        )
    import redis as redis_lib

    from bridge.redis.clients import make_redis, redact

    client = make_redis(config.redis_url)
    try:
        report = collect_status(client)
    except redis_lib.AuthenticationError as exc:
        raise CommandError(
            f"cannot read status from Redis at {redact(config.redis_url)}: {exc} The embedded "
            f"Redis's password is in {config.var_dir}/redis/password (its owner's only): run "
            "as that user, or set REDIS_URL with the password"
        ) from None
    except redis_lib.RedisError as exc:
        raise CommandError(
            f"cannot read status from Redis at {redact(config.redis_url)}: {exc}"
        ) from None
    finally:
        client.close()
    print(json.dumps(report, indent=1, sort_keys=True) if args.json else render_status(report))
    if args.check:
        binds = report["binds"]
        return 0 if binds and all(b.get("state") == "bound" for b in binds) else 1
    return 0


def collect_status(client) -> dict[str, Any]:
    """Binds (from heartbeats), the stream and the possible-duplicate counter."""
    from dataclasses import asdict

    from bridge.cli.webhooks import webhook_counts
    from bridge.delivery.fleet import read_bind_statuses
    from bridge.delivery.reader import stream_info
    from bridge.delivery.settlement.learning import receipt_forms
    from bridge.redis import keys as redis_keys

    dup = client.get(redis_keys.POSSIBLE_DUPLICATES)
    return {
        "binds": read_bind_statuses(client),
        "stream": asdict(stream_info(client)),
        "possible_duplicates": int(dup or 0),
        "receipt_forms": receipt_forms(client),
        "webhooks": webhook_counts(client),
        "at": time.time(),
    }


def render_status(report: dict[str, Any]) -> str:
    """Plain text for the NOC: one line per bind, then the stream."""
    now = report["at"]
    rows = [
        (
            "CONNECTION",
            "BIND",
            "STATE",
            "FOR",
            "IN-FLIGHT",
            "QUEUED",
            "SUBMITTED",
            "ACKED",
            "ERRORS",
            "TIMEOUTS",
            "RECEIPTS",
            "HOST:PID",
            "LAST ERROR",
        )
    ]
    for b in report["binds"]:
        c = b.get("counters") or {}
        since = b.get("since")
        rows.append(
            (
                str(b.get("connection")),
                str(b.get("bind_id")),
                str(b.get("state")),
                _age(now - since) if since else "-",
                str(b.get("in_flight", 0)),
                str(b.get("queued", 0)),
                str(c.get("submitted", 0)),
                str(c.get("acked", 0)),
                str(sum((c.get("errors") or {}).values())),
                str(c.get("timeouts", 0)),
                str(c.get("receipts", 0)),
                f"{b.get('hostname')}:{b.get('pid')}",
                (b.get("last_error") or "")[:60],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    if not report["binds"]:
        lines.append("(no binds reported: is a worker running against this Redis?)")
    s = report["stream"]
    lines.append("")
    lines.append(
        f"outbound stream: {s['length']} entries, {s['pending']} pending"
        + (f", {s['lag']} not yet read" if s.get("lag") is not None else "")
        + f"; possible duplicates flagged so far: {report['possible_duplicates']}"
    )
    for c in s["consumers"]:
        lines.append(
            f"  consumer {c['name']}: {c['pending']} pending, idle {_age(c['idle_ms'] / 1000)}"
        )
    if "webhooks" in report:
        from bridge.cli.webhooks import status_line

        lines.append(status_line(report["webhooks"]))
    for name, f in sorted(report.get("receipt_forms", {}).items()):
        lines.append(
            f"receipt ids on {name}: {f['learned']}; {f['held']} receipt(s) held now"
            f" ({f['held_total']} ever), {f['conflicts']} conflict(s)"
            + (f"; votes {f['votes']}" if f["learned"] == "learning" else "")
        )
    return "\n".join(lines)


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


# ---------------------------------------------------------------------- `run`'s children


def run_children(config: Config, env: dict[str, str]) -> list:
    """For `smpp-bridge run`: the simulated SMSC (only with no [[smsc]]), the worker(s) and
    the webhook sender."""
    from bridge.process.supervisor import ChildSpec

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
                ready=lambda: _some_bind_up(config),
                ready_timeout=60,
                stop_timeout=40,
            )
        )
    from bridge.cli.webhooks import webhooks_child

    children.append(webhooks_child(python))
    return children


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


def _some_bind_up(config: Config) -> bool:
    """Ready once a bind of this fleet reports itself bound (the demo can deliver)."""
    import redis as redis_lib

    from bridge.delivery.fleet import read_bind_statuses

    client = redis_lib.Redis.from_url(
        config.redis_url, socket_connect_timeout=0.5, socket_timeout=1
    )
    try:
        return any(b.get("state") == "bound" for b in read_bind_statuses(client))
    except redis_lib.RedisError:
        return False
    finally:
        client.close()
