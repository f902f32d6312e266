"""Fixtures of the delivery-engine tests: the simulated SMSC, a real Redis, SQLite and
PostgreSQL, the accept service, and workers in this process or as real subprocesses.

Every process and thread started here is stopped in a ``finally``; every wait is bounded.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bridge.config import Config, read_settings
from bridge.proof.rig import FAST_WORKER, numbers, to_toml  # noqa: F401  (tests import them here)
from bridge.redis.clients import make_redis
from bridge.service import BridgeService
from bridge.storage.models import accounts, messages
from tests.harness.procs import stop_process, wait_until
from tests.harness.simulator import make_simulator  # noqa: F401  (fixture)

SMPP_BRIDGE = str(Path(sys.executable).parent / "smpp-bridge")
FINAL = {"delivered", "undelivered", "expired", "rejected", "failed"}
OPENING = Decimal("100000.00")


@dataclass
class Bridge:
    """The accept side and its stores, plus the simulator every connection points at."""

    config: Config
    db: Any
    redis: Any
    service: BridgeService
    sim: Any
    account_id: int
    tmp: Path
    env: dict[str, str] = field(default_factory=dict)

    def send(
        self,
        count: int,
        start: int = 0,
        text: str = "hello from the engine tests",
        batch: int = 1000,
    ) -> list[str]:
        """Accept ``count`` messages (one request per ``batch`` recipients); their ids."""
        ids: list[str] = []
        for offset in range(0, count, batch):
            body = self.service.send(
                self.account_id, numbers(min(batch, count - offset), start + offset), text
            ).body
            ids += [m["message_id"] for m in body["messages"]]
        return ids

    def rows(self, ids: list[str] | None = None) -> list[Any]:
        query = select(messages)
        if ids is not None:
            query = query.where(messages.c.id.in_(ids))
        with self.db.connect() as conn:
            return conn.execute(query).mappings().all()

    def states(self) -> Counter:
        return Counter(r["state"] for r in self.rows())

    def wait_final(self, count: int, timeout: float, states: set[str] = FINAL) -> Counter:
        """Until ``count`` messages are in one of ``states``; returns the state counts."""

        def done() -> Counter | None:
            got = self.states()
            return got if sum(n for s, n in got.items() if s in states) >= count else None

        try:
            return wait_until(
                done, timeout=timeout, interval=0.2, message=f"{count} messages in {sorted(states)}"
            )
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; states now {dict(self.states())}") from None

    def balance(self) -> Decimal:
        with self.db.connect() as conn:
            return conn.execute(
                select(accounts.c.balance).where(accounts.c.id == self.account_id)
            ).scalar_one()

    def worker_toml(self, worker: dict | None = None, smsc: dict | None = None) -> Path:
        """A BRIDGE_CONFIG file with this bridge's [[smsc]] and a [worker] table."""
        table = {**smsc_table(self.sim), **(smsc or {})}
        path = self.tmp / f"worker-{time.monotonic_ns()}.toml"
        path.write_text(to_toml({"smsc": [table], "worker": {**FAST_WORKER, **(worker or {})}}))
        return path

    def audit(self, *args: str) -> subprocess.CompletedProcess:
        """`smpp-bridge audit` as an operator runs it (exit 0 = the books and states agree)."""
        return subprocess.run(
            [SMPP_BRIDGE, "audit", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def smsc_table(sim, **overrides) -> dict:
    return {
        "name": "sim",
        "host": sim.host,
        "port": sim.port,
        "system_id": "bridge",
        "password": "secret",
        "binds": 2,
        "window": 20,
        "response_timeout": 2.0,
        "enquire_link_interval": 5.0,
        **overrides,
    }


@pytest.fixture
def sim(make_simulator):  # noqa: F811  (the fixture imported above)
    """The SMSC every test talks to (credentials bridge/secret, receipts at once)."""
    return make_simulator(system_id="bridge", password="secret")


@pytest.fixture
def bridge(database_url, redis_server, sim, tmp_path) -> Iterator[Bridge]:
    from bridge.storage.db import Database, upgrade

    upgrade(database_url)
    config = Config().replace(
        database_url=database_url,
        redis_url=redis_server.url,
        smsc=(smsc_table(sim),),
        max_recipients=10_000,
        var_dir=str(tmp_path),
    )
    db = Database(database_url)
    client = make_redis(redis_server.url)
    service = BridgeService(
        config,
        db,
        client,
        run_sweeper=False,
        hasher=PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1),
    )
    service.start()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_server.url,
        "BRIDGE_VAR_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("BRIDGE_CONFIG", None)
    try:
        account = service.create_account(
            "engine", "engine-password-1", balance=OPENING, sender_id="ACME"
        )
        yield Bridge(config, db, client, service, sim, account.id, tmp_path, env)
    finally:
        service.stop()
        client.close()
        db.dispose()


@pytest.fixture
def start_worker(bridge) -> Iterator[Callable[..., Any]]:
    """start_worker(worker={...}, smsc={...}) -> a started in-process Worker (stopped after)."""
    from bridge.delivery.worker import Worker

    started: list[Worker] = []

    def start(
        worker: dict | None = None,
        smsc: dict | None = None,
        *,
        more_smsc: tuple = (),
        routes: tuple = (),
        **kw,
    ) -> Worker:
        config = bridge.config.replace(
            smsc=({**smsc_table(bridge.sim), **(smsc or {})}, *more_smsc), routes=routes
        )
        settings = read_settings({**FAST_WORKER, **(worker or {})})
        w = Worker(config, db=bridge.db, redis=bridge.redis, settings=settings, **kw)
        w.start()
        started.append(w)
        return w

    try:
        yield start
    finally:
        for w in reversed(started):
            w.stop(drain_timeout=2.0)


@pytest.fixture
def spawn_worker(bridge) -> Iterator[Callable[..., subprocess.Popen]]:
    """spawn_worker(worker={...}, smsc={...}) -> `smpp-bridge worker` as a real subprocess with
    its own BRIDGE_CONFIG; killed/stopped after the test. Its log: tmp/worker-<n>.log."""
    procs: list[tuple[subprocess.Popen, Any]] = []

    def spawn(worker: dict | None = None, smsc: dict | None = None) -> subprocess.Popen:
        env = {**bridge.env, "BRIDGE_CONFIG": str(bridge.worker_toml(worker, smsc))}
        log = open(bridge.tmp / f"worker-{len(procs) + 1}.log", "ab")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(
            [SMPP_BRIDGE, "worker", "--log-level", "INFO"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append((proc, log))
        return proc

    try:
        yield spawn
    finally:
        for proc, log in procs:
            stop_process(proc, timeout=20)
            log.close()


@contextmanager
def database_held(database_url: str, db, table: str, mode: str = "EXCLUSIVE") -> Iterator[None]:
    """Hold the database so nothing can write ``table`` meanwhile, while the test still reads
    it (SQLite: another connection's write transaction; PostgreSQL: LOCK TABLE ... EXCLUSIVE,
    which also stops SELECT ... FOR UPDATE; ``mode="ACCESS EXCLUSIVE"`` stops reads too)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None, database_url
        conn = sqlite3.connect(url.database, timeout=5, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    with db.engine.connect() as pg:
        tx = pg.begin()
        pg.exec_driver_sql(f"LOCK TABLE {table} IN {mode} MODE")
        try:
            yield
        finally:
            tx.rollback()


def wire_counts(bridge: Bridge, *more_sims) -> Counter:
    """How many times the simulator(s) accepted a message for each destination (E.164)."""
    return Counter(
        "+" + m.destination_addr for sim in (bridge.sim, *more_sims) for m in sim.messages
    )


def check_ground_truth(bridge: Bridge, count: int, *more_sims) -> dict[str, int]:
    """The simulator's record against our rows: every message that reached a submitted or
    receipt state was accepted by the SMSC at least once; any message on the wire more than
    once is flagged possible_duplicate; the reported count equals the flagged rows; the
    stream and the receipt log are empty; the audit passes. Returns a summary for the test to
    add its own checks."""
    from bridge.delivery.reader import stream_info
    from bridge.delivery.receipt_log import backlog
    from bridge.redis import keys as redis_keys

    rows = bridge.rows()
    assert len(rows) == count
    wire = wire_counts(bridge, *more_sims)
    reached = [r for r in rows if r["state"] in ("submitted", "delivered", "undelivered")]
    missing = [r["destination"] for r in reached if wire[r["destination"]] == 0]
    assert not missing, f"{len(missing)} messages marked sent never reached the SMSC"
    twice = {r["id"] for r in rows if wire[r["destination"]] > 1}
    flagged = {r["id"] for r in rows if r["possible_duplicate"]}
    assert twice <= flagged, f"{len(twice - flagged)} duplicates on the wire were not flagged"
    reported = int(bridge.redis.get(redis_keys.POSSIBLE_DUPLICATES) or 0)
    assert reported == len(flagged), f"reported {reported} possible duplicates, {len(flagged)} rows"
    info = stream_info(bridge.redis)
    assert (info.length, info.pending) == (0, 0), info
    # a receipt's entry goes right after its commit: bounded wait, not a race
    wait_until(lambda: backlog(bridge.redis) == 0, timeout=10, message="an empty receipt log")
    audit = bridge.audit()
    assert audit.returncode == 0, audit.stdout + audit.stderr
    return {"twice": len(twice), "flagged": len(flagged), "wire": sum(wire.values())}
