"""``smpp-bridge run`` (everything on this machine) and ``smpp-bridge api`` (the API alone).

run: create var/, migrate the database, start an embedded redis-server when REDIS_URL is unset
(its URL is exported to the children), create the demo account on first start, start the
simulated SMSC (only with no [[smsc]]), gunicorn with the API, then the delivery worker(s) and
the webhook sender(s) that `bridge.cli.worker.run_children` names (webhooks may reach 127.0.0.0/8
unless webhook_allow_networks is set), print the demo credentials, a working curl and whether a
bind is up (the API serves whether or not the worker ever binds), restart any child that dies
(the embedded Redis included) with backoff, and stop everything on Ctrl-C/SIGTERM or when a
child keeps dying (restart_* in the config).

api: the same supervisor with only gunicorn (and the embedded Redis when REDIS_URL is unset); it
does not migrate (run `smpp-bridge db upgrade`) and creates no demo account.

The outbox sweeper runs inside the API processes (BridgeService's thread, one at a time through
a Redis lock), so it runs whichever of the two commands started the API.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import signal
import sys
import threading
from pathlib import Path

from bridge.cli import CommandError
from bridge.cli.database import open_migrated
from bridge.cli.worker import bind_line, run_children
from bridge.config import Config, load_config
from bridge.process.supervisor import ChildSpec, RestartPolicy, Supervisor, SupervisorError
from bridge.redis.clients import redact
from bridge.redis.embedded import EmbeddedRedis, EmbeddedRedisError
from bridge.telemetry import metrics_dir
from bridge.telemetry.logs import configure_logging, json_mode, say

SKIPPABLE = ("simulator", "worker", "webhooks")  # children of `run` --skip may leave out


def register(subparsers) -> None:
    run = subparsers.add_parser(
        "run",
        help="everything on this machine: Redis, API, worker",
        description=__doc__.split("\n\n")[1],
    )
    _common(run)
    run.add_argument("--no-demo", action="store_true", help="do not create/print the demo account")
    run.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=SKIPPABLE,
        help="do not start this child: simulator, worker (every worker process) or webhooks"
        " (every sender process); repeatable",
    )
    run.set_defaults(handler=cmd_run)
    api = subparsers.add_parser("api", help="the HTTP API alone under gunicorn")
    _common(api)
    api.set_defaults(handler=cmd_api)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-port",
        type=_port,
        default=0,
        metavar="PORT",
        help="port of the embedded Redis when REDIS_URL is unset (0: a free one)",
    )


def _port(raw: str) -> int:
    """A TCP port from 0 to 65535, for argparse."""
    if not raw.isdigit() or int(raw) > 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port from 0 to 65535, got {raw!r}")
    return int(raw)


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config()
    configure_logging(config)
    Path(config.var_dir).mkdir(parents=True, exist_ok=True)
    metrics_dir.prepare(config.var_dir)  # before any import of prometheus_client
    _migrate(config)
    config = _with_operator_token(config)
    return _supervise(config, args, with_extras=True, demo=not args.no_demo)


def _with_operator_token(config: Config) -> Config:
    """With no operator token configured, the one kept in var/operator-token (made on first
    start); its path is printed, never the token."""
    if config.operator_token:
        return config
    from bridge.ops.token import TokenFileError, operator_token_file

    try:
        token, path = operator_token_file(config.var_dir)
    except (TokenFileError, OSError) as exc:
        raise CommandError(f"operator token: {exc}") from None
    _say(
        f"operator token (GET /api/v2/status, Authorization: Bearer) is in {path.resolve()}; "
        "set BRIDGE_OPERATOR_TOKEN to use your own"
    )
    return config.replace(operator_token=token)


def cmd_api(args: argparse.Namespace) -> int:
    config = load_config()
    open_migrated(config).dispose()  # before var/ is made: a missing database creates nothing
    configure_logging(config)
    Path(config.var_dir).mkdir(parents=True, exist_ok=True)
    metrics_dir.prepare(config.var_dir)  # exported to gunicorn (see api/gunicorn_conf.py)
    return _supervise(config, args, with_extras=False, demo=False)


def _supervise(config: Config, args: argparse.Namespace, *, with_extras: bool, demo: bool) -> int:
    stop = threading.Event()
    _on_signals(stop)
    with contextlib.ExitStack() as stack:
        redis = None
        if not config.redis_url:
            redis = _embedded_redis(config, args.redis_port, stack)
            config = config.replace(redis_url=redis.url)
        env = child_env(config)
        shown = None
        if demo:
            from bridge.cli.demo import ensure_demo

            shown = ensure_demo(config)
        skip = set(getattr(args, "skip", ()))  # "worker" names worker, worker-2, ...
        extras = run_children(config, env) if with_extras else []
        extras = [c for c in extras if c.name.partition("-")[0] not in skip]
        # the simulator first (the worker binds to it), then the API, then the rest
        children = [c for c in extras if c.name == "simulator"] + [api_child(config, env)]
        children += [c for c in extras if c.name != "simulator"]
        supervisor = Supervisor(children, env, say=_say, policy=RestartPolicy.from_config(config))
        if redis is not None:
            assert redis.proc is not None  # started above
            supervisor.adopt(redis.child(), redis.proc)
        stack.callback(supervisor.stop)
        try:
            supervisor.start(stop)
            if stop.is_set():
                return 0
            bind = None
            if any(c.name == "worker" for c in children):  # a short wait, for a true banner
                supervisor.watch(stop, lambda: supervisor.is_ready("worker"), BIND_WAIT)
                bind = bind_line(config, supervisor.is_ready("worker"))
            if stop.is_set():
                return 0
            _banner(config, shown, bind)
            return supervisor.wait(stop)
        except SupervisorError as exc:
            raise CommandError(str(exc)) from None


BIND_WAIT = 5.0  # seconds `run` waits for a bind before its banner (which then says it is down)


def _embedded_redis(config: Config, port: int, stack: contextlib.ExitStack) -> EmbeddedRedis:
    redis = EmbeddedRedis(config.var_dir, port)
    try:
        redis.start()
    except EmbeddedRedisError as exc:
        raise CommandError(str(exc)) from None
    stack.callback(redis.stop)  # after the supervisor stopped it: releases var/redis
    assert redis.proc is not None
    _say(f"started redis-server (pid {redis.proc.pid}) at {redis.public_url}, data in {redis.dir}")
    return redis


# what `run` lets webhooks reach when webhook_allow_networks is not set (a receiver on this host)
DEMO_WEBHOOK_NETWORKS = "127.0.0.0/8"


def child_env(config: Config) -> dict[str, str]:
    """The environment of every child: ours, plus the resolved database, Redis and var dir."""
    env = dict(os.environ)
    env["DATABASE_URL"] = config.effective_database_url
    env["REDIS_URL"] = config.redis_url or ""
    env["BRIDGE_VAR_DIR"] = str(Path(config.var_dir).resolve())
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["BRIDGE_LOG_FORMAT"] = config.log_format  # one format for every child
    if config.operator_token:  # made by `run` into var/ when not configured
        env["BRIDGE_OPERATOR_TOKEN"] = config.operator_token
    if not config.webhook_allow_networks:  # the demo's callbacks go to this machine
        env["BRIDGE_WEBHOOK_ALLOW_NETWORKS"] = DEMO_WEBHOOK_NETWORKS
    return env


def api_child(config: Config, env: dict[str, str]) -> ChildSpec:
    """gunicorn with the API; ready once it answers the OpenAPI document."""
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:api.gunicorn_conf", "api.wsgi:app"]
    return ChildSpec("api", argv, ready=lambda: _answers(_client_host(config), config.port))


def _answers(host: str, port: int) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        conn.request("GET", "/api/v2/openapi.json")
        return conn.getresponse().status == 200
    finally:
        conn.close()


def _client_host(config: Config) -> str:
    return "127.0.0.1" if config.host in ("0.0.0.0", "", "::") else config.host


def _migrate(config: Config) -> None:
    from alembic.util import CommandError as AlembicError
    from sqlalchemy.exc import SQLAlchemyError

    from bridge.storage.db import upgrade

    try:
        upgrade(config.effective_database_url)
    except (SQLAlchemyError, AlembicError, OSError) as exc:  # one line, not a traceback
        raise CommandError(f"cannot migrate the database: {str(exc).splitlines()[0]}") from None


def _on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def _say(line: str) -> None:
    say(f"smpp-bridge: {line}")  # one JSON object in json mode


def _banner(config: Config, demo, bind: str | None = None) -> None:
    base = f"http://{_client_host(config)}:{config.port}"
    lines = [f"API ready at {base} (docs: {base}/api/v2); Redis {redact(config.redis_url)}"]
    if bind is not None:
        lines.append(bind)
    if demo is not None and json_mode():  # shipped logs get no password or key
        lines.append(f"Demo account {demo.username}: credentials in {config.var_dir}/demo.json")
    elif demo is not None:
        lines += demo.describe(base)
    lines.append("Press Ctrl-C to stop.")
    say("\n".join(lines))
