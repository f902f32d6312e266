"""A whole bridge in one temporary directory, for the proof suites (`smpp-bridge prove`):
the embedded Redis, a SQLite database, the simulated SMSC, the accept service in this process,
and `smpp-bridge worker` processes that can be SIGKILLed.

Nothing here is shared with a running installation: every file lives under ``root``, Redis and
the simulator listen on free ports of 127.0.0.1, and :meth:`Rig.close` stops every process and
thread it started (also when a scenario failed half-way). Every wait is bounded.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Self, TypeVar

from argon2 import PasswordHasher
from sqlalchemy import select

from bridge.config import Config
from bridge.process.lifecycle import die_with_parent
from bridge.redis.clients import make_redis
from bridge.redis.embedded import EmbeddedRedis
from bridge.service import BridgeService
from bridge.storage.db import Database, upgrade
from bridge.storage.models import accounts, messages
from smpp.simulator import Simulator

T = TypeVar("T")
FINAL = frozenset({"delivered", "undelivered", "expired", "rejected", "failed"})
OPENING = Decimal("100000.00")  # the proof account's balance before the first send
SYSTEM_ID, PASSWORD = "bridge", "secret"  # the simulator's credentials
STOP_TIMEOUT = 20.0  # seconds a worker gets to drain on SIGTERM before SIGKILL

#: Worker timings short enough that a dead worker's entries are taken over in seconds; a
#: scenario overrides what it exercises.
FAST_WORKER: dict[str, Any] = {
    "claim_idle_seconds": 3.0,
    "claim_interval_seconds": 0.5,
    "lease_ttl": 3.0,
    "status_interval": 0.5,
    "reconnect_min": 0.05,
    "reconnect_max": 0.5,
    "down_queue_timeout": 2.0,
    "drain_timeout": 10.0,
    "retry": {
        "ESME_RTHROTTLED": {"delay": 0.1, "max_attempts": 30},
        "timeout": {"delay": 0.2, "max_attempts": 4},
        "not_sent": {"delay": 0.1, "max_attempts": 60},
        "max_delay": 1.0,
    },
}


#: The proof rig's workers also look for lost stream entries every second (Redis SIGKILL).
PROOF_WORKER: dict[str, Any] = {
    **FAST_WORKER,
    "reconcile_interval_seconds": 1.0,
    "reconcile_grace_seconds": 2.0,
}


def wait_until(
    check: Callable[[], T | None], timeout: float, message: str, interval: float = 0.2
) -> T:
    """Poll ``check`` until it returns something truthy (returned), or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise TimeoutError(f"waited {timeout:g} s for {message}")
        time.sleep(interval)


def numbers(count: int, start: int = 0) -> list[str]:
    """Distinct valid Kenyan mobile numbers, so the simulator's record maps onto our rows."""
    return [f"+2547{10_000_000 + start + i:08d}" for i in range(count)]


def to_toml(data: dict[str, Any]) -> str:
    """Just enough TOML for a worker's BRIDGE_CONFIG: [[smsc]] tables and [worker] with its
    [worker.retry] table (scalars and inline tables)."""

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f'"{k}" = {value(x)}' for k, x in v.items()) + " }"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)

    lines: list[str] = []
    for table in data.get("smsc", []):
        lines += ["[[smsc]]", *(f"{k} = {value(v)}" for k, v in table.items())]
    worker = dict(data.get("worker", {}))
    retry = worker.pop("retry", None)
    lines += ["[worker]", *(f"{k} = {value(v)}" for k, v in worker.items())]
    if retry:
        lines += ["[worker.retry]", *(f'"{k}" = {value(v)}' for k, v in retry.items())]
    return "\n".join(lines) + "\n"


class Rig:
    """Start with ``with Rig(root) as rig:``; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.var = root / "var"
        self.database_url = f"sqlite:///{root / 'bridge.db'}"
        self.redis_server = EmbeddedRedis(self.var)
        # receipts refused while Redis is down come again, as from a real SMSC
        self.sim = Simulator(system_id=SYSTEM_ID, password=PASSWORD, receipt_retry_seconds=1.0)
        self.workers: list[tuple[subprocess.Popen, IO[bytes]]] = []
        self.killed: set[int] = set()  # pids this rig SIGKILLed on purpose
        self.db: Database | None = None
        self.redis: Any = None
        self.service: BridgeService | None = None
        self.account_id = 0
        self._log: logging.Handler | None = None

    # ------------------------------------------------------------------ life cycle

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # what the accept side logs in this process (e.g. XADDs failing while Redis is down)
        self._log = logging.FileHandler(self.root / "bridge.log")
        self._log.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logging.getLogger().addHandler(self._log)
        url = self.redis_server.start()
        upgrade(self.database_url)
        self.sim.start()
        self.config = Config(
            database_url=self.database_url,
            redis_url=url,
            smsc=(self.smsc_table(),),  # type: ignore[arg-type]  # parsed by Config
            max_recipients=10_000,
            var_dir=str(self.var),
        )
        self.db = Database(self.database_url)
        self.redis = make_redis(url)
        self.service = BridgeService(
            self.config,
            self.db,
            self.redis,
            run_sweeper=False,  # scenarios sweep when they mean to (rig.sweep)
            hasher=PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1),
        )
        self.service.start()
        account = self.service.create_account(
            "proof", "proof-password-1", balance=OPENING, sender_id="ACME"
        )
        self.account_id = account.id

    def close(self) -> None:
        """Stop the workers (SIGTERM, then SIGKILL), the service, the simulator and Redis."""
        for proc, log in self.workers:
            stop_process(proc)
            log.close()
        self.workers.clear()
        if self.service is not None:
            self.service.stop()
        if self.redis is not None:
            self.redis.close()
        if self.db is not None:
            self.db.dispose()
        self.sim.stop()
        self.redis_server.stop()
        if self._log is not None:
            logging.getLogger().removeHandler(self._log)
            self._log.close()

    # ------------------------------------------------------------------ parts

    def smsc_table(self, **overrides: Any) -> dict[str, Any]:
        host, port = self.sim.address or ("127.0.0.1", 0)
        return {
            "name": "sim",
            "host": host,
            "port": port,
            "system_id": SYSTEM_ID,
            "password": PASSWORD,
            "binds": 2,
            "window": 20,
            "response_timeout": 2.0,
            "enquire_link_interval": 5.0,
            **overrides,
        }

    def spawn_worker(
        self, worker: dict[str, Any] | None = None, smsc: dict[str, Any] | None = None
    ) -> subprocess.Popen:
        """`smpp-bridge worker` as a real process with its own BRIDGE_CONFIG (PROOF_WORKER and
        ``worker`` over it, the simulator's [[smsc]] and ``smsc`` over it). Log: worker-N.log."""
        n = len(self.workers) + 1
        settings = {**PROOF_WORKER, **(worker or {})}
        settings["retry"] = {**PROOF_WORKER["retry"], **(worker or {}).get("retry", {})}
        toml = self.root / f"worker-{n}.toml"
        toml.write_text(to_toml({"smsc": [self.smsc_table(**(smsc or {}))], "worker": settings}))
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_server.url,
            "BRIDGE_VAR_DIR": str(self.var),
            "BRIDGE_CONFIG": str(toml),
            "PYTHONUNBUFFERED": "1",
        }
        log = open(self.root / f"worker-{n}.log", "ab")  # noqa: SIM115  (closed in close())
        proc = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "worker", "--log-level", "INFO"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509  (prctl only)
        )
        self.workers.append((proc, log))
        return proc

    def kill_worker(self, proc: subprocess.Popen) -> None:
        """SIGKILL the worker's whole process group, as the OOM killer or a power cut would."""
        self.killed.add(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def check_workers(self) -> None:
        """Raise if a worker the scenario did not kill has exited (its log's last line)."""
        for n, (proc, _) in enumerate(self.workers, 1):
            if proc.pid not in self.killed and proc.poll() is not None:
                lines = (self.root / f"worker-{n}.log").read_text(errors="replace").splitlines()
                last = lines[-1] if lines else "(no output)"
                raise AssertionError(f"worker {n} exited with code {proc.returncode}: {last}")

    def kill_redis(self) -> None:
        """SIGKILL redis-server: no AOF flush, so up to its last second of writes is lost."""
        proc = self.redis_server.proc
        assert proc is not None, "Redis is not running"
        proc.kill()
        proc.wait(10)

    def restart_redis(self, timeout: float = 15.0) -> None:
        """Start redis-server again on the same port and directory (its AOF is loaded)."""
        self.redis_server.launch()
        wait_until(self.redis_server.answers, timeout, "redis-server to answer after restart")

    def sweep(self, timeout: float = 30.0) -> int:
        """Run the accept side's outbox sweeper (no grace) until no message is left `accepted`;
        how many it re-enqueued."""
        from bridge.accept.sweeper import Sweeper

        assert self.db is not None
        sweeper = Sweeper(self.config.replace(sweeper_grace_seconds=0.0), self.db, self.redis)
        swept: list[int] = []

        def done() -> bool:
            swept.append(sweeper.sweep_once())
            return self.states().get("accepted", 0) == 0

        wait_until(done, timeout, "the sweeper to re-enqueue every accepted message")
        return sum(swept)

    # ------------------------------------------------------------------ sends and state

    def send(self, count: int, start: int = 0, batch: int = 1000) -> list[str]:
        """Accept ``count`` messages (one request per ``batch`` recipients); their ids."""
        assert self.service is not None
        ids: list[str] = []
        for offset in range(0, count, batch):
            body = self.service.send(
                self.account_id,
                numbers(min(batch, count - offset), start + offset),
                "hello from smpp-bridge prove",
            ).body
            ids += [m["message_id"] for m in body["messages"]]
        return ids

    def rows(self) -> list[Any]:
        assert self.db is not None
        with self.db.connect() as conn:
            return list(conn.execute(select(messages)).mappings().all())

    def states(self) -> Counter[str]:
        return Counter(r["state"] for r in self.rows())

    def balance(self) -> Decimal:
        assert self.db is not None
        with self.db.connect() as conn:
            return Decimal(
                conn.execute(
                    select(accounts.c.balance).where(accounts.c.id == self.account_id)
                ).scalar_one()
            )

    def accepted_by_smsc(self) -> int:
        return int(self.sim.counters.get("accepted", 0))

    def wait_accepted(self, count: int, timeout: float = 60.0) -> None:
        """Until the simulator has accepted ``count`` submits (a worker is mid-flight)."""

        def done() -> bool:
            self.check_workers()
            return self.accepted_by_smsc() >= count

        wait_until(done, timeout, f"the SMSC to accept {count}")

    def wait_final(self, count: int, timeout: float) -> Counter[str]:
        """Until ``count`` messages are final; their state counts."""

        def done() -> Counter[str] | None:
            self.check_workers()
            got = self.states()
            return got if sum(n for s, n in got.items() if s in FINAL) >= count else None

        try:
            return wait_until(done, timeout, f"{count} messages to be final", interval=0.25)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; states now {dict(self.states())}") from None


def stop_process(proc: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process group, SIGKILL it if it has not exited within ``timeout``."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
