"""The delivery engine's fault scenarios, run for real by `smpp-bridge prove faults`.

Each scenario is a function registered with :func:`scenario`: it gets a started :class:`Rig`
and its message count, makes the fault happen (simulator scenarios, SIGKILLs), waits until every
message is final, and returns the final states it expects. The runner then checks the result
against ground truth (bridge.proof.truth) and prints one row per scenario.

To add one: write ``def my_fault(rig: Rig, n: int) -> dict[str, int]`` here (or in a module
imported by bridge.proof) under ``@scenario("my-fault", "what happens", messages=600)``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bridge.proof.rig import OPENING, Rig
from bridge.proof.truth import Outcome, measure

Drive = Callable[[Rig, int], dict[str, int]]


@dataclass(frozen=True)
class FaultScenario:
    name: str  # the --only name
    summary: str  # one line for --list and the docs
    messages: int  # messages it sends by default (times --scale)
    drive: Drive
    quick: bool = False  # a few seconds: the one the test suite runs


SCENARIOS: dict[str, FaultScenario] = {}


def scenario(
    name: str, summary: str, messages: int, quick: bool = False
) -> Callable[[Drive], Drive]:
    """Register the decorated function as the fault scenario ``name``."""

    def register(drive: Drive) -> Drive:
        if name in SCENARIOS:
            raise ValueError(f"fault scenario {name!r} is registered twice")
        SCENARIOS[name] = FaultScenario(name, summary, messages, drive, quick)
        return drive

    return register


def run_scenario(spec: FaultScenario, root: Path, scale: float = 1.0) -> Outcome:
    """Run one scenario in a fresh rig under ``root`` and measure it; never raises for a
    scenario that fails (its outcome lists the problems), and always stops what it started."""
    count = max(1, round(spec.messages * scale))
    started = time.monotonic()
    with Rig(root) as rig:
        problems: list[str] = []
        expected: dict[str, int] | None
        try:
            expected = spec.drive(rig, count)
        except (TimeoutError, AssertionError) as exc:
            problems.append(f"{type(exc).__name__}: {exc}")
            expected = None
        total = sum(expected.values()) if expected is not None else len(rig.rows())
        return measure(rig, spec.name, total, expected, started, problems)


def run_all(names: list[str], scale: float, keep: Path | None, workdir: Path) -> list[Outcome]:
    """Run ``names`` one after the other under ``workdir``; a failed scenario's directory is
    kept (its worker logs) and named in the outcome, the others are removed unless ``keep``."""
    outcomes = []
    for name in names:
        root = workdir / name
        outcome = run_scenario(SCENARIOS[name], root, scale)
        if not outcome.ok:
            outcome.problems.append(f"logs and database kept in {root}")
        elif keep is None:
            shutil.rmtree(root, ignore_errors=True)
        outcomes.append(outcome)
    return outcomes


# ---------------------------------------------------------------------------- the scenarios


@scenario(
    "worker-sigkill",
    "a worker process SIGKILLed mid-flight (SMSC latency 40 ms); a second one finishes",
    messages=1000,
)
def worker_sigkill(rig: Rig, n: int) -> dict[str, int]:
    rig.sim.set_scenarios("latency:ms=40")
    rig.send(n)
    first = rig.spawn_worker()
    rig.wait_accepted(max(1, n * 3 // 10))
    rig.kill_worker(first)
    rig.sim.set_scenarios()
    rig.spawn_worker()  # takes the dead worker's entries over after claim_idle_seconds
    rig.wait_final(n, timeout=120)
    return {"delivered": n}


@scenario(
    "redis-sigkill",
    "redis-server SIGKILLed mid-run (its last second of AOF lost), 20 % more sent while it is"
    " down, restarted; the sweeper and the reconciler re-enqueue",
    messages=1000,
)
def redis_sigkill(rig: Rig, n: int) -> dict[str, int]:
    late = max(1, n // 5)
    rig.sim.set_scenarios("latency:ms=20")
    rig.spawn_worker()
    rig.send(n)
    rig.wait_accepted(max(1, n // 5))
    rig.kill_redis()
    rig.send(late, start=n)  # committed and charged; the XADD fails, the sweeper sends it
    rig.restart_redis()
    rig.sweep()
    rig.wait_final(n + late, timeout=120)
    return {"delivered": n + late}


@scenario(
    "smsc-drops",
    "the SMSC drops the connection every 200 PDUs (about 100 messages per connection)",
    messages=600,
)
def smsc_drops(rig: Rig, n: int) -> dict[str, int]:
    rig.sim.set_scenarios("drop-after:pdus=200")
    rig.spawn_worker()
    rig.send(n)
    rig.wait_final(n, timeout=90)
    assert rig.sim.counters["connections"] >= 3, "the SMSC never dropped a connection"
    return {"delivered": n}


@scenario(
    "throttled",
    "3 of every 10 submits answered ESME_RTHROTTLED, retried after the rule's delay",
    messages=600,
)
def throttled(rig: Rig, n: int) -> dict[str, int]:
    rig.sim.set_scenarios("msgqful:every=7,burst=3,status=ESME_RTHROTTLED")
    rig.spawn_worker()
    rig.send(n)
    rig.wait_final(n, timeout=90)
    return {"delivered": n}


@scenario(
    "partly-silent",
    "a fifth of submits never answered: timed out after 1 s, re-sent and flagged",
    messages=300,
)
def partly_silent(rig: Rig, n: int) -> dict[str, int]:
    rig.sim.set_scenarios("silent:every=5")
    rig.spawn_worker(
        worker={"retry": {"timeout": {"delay": 0.1, "max_attempts": 8}}},
        smsc={"response_timeout": 1.0},
    )
    rig.send(n)
    rig.wait_final(n, timeout=120)
    return {"delivered": n}


@scenario(
    "silent",
    "an SMSC that answers no submit: each message tried twice, then failed and refunded once",
    messages=20,
    quick=True,
)
def silent(rig: Rig, n: int) -> dict[str, int]:
    rig.sim.set_scenarios("silent")
    rig.spawn_worker(
        worker={"retry": {"timeout": {"delay": 0.05, "max_attempts": 2}}},
        smsc={"response_timeout": 0.5},
    )
    rig.send(n)
    rig.wait_final(n, timeout=60)
    assert rig.balance() == OPENING, f"balance {rig.balance()} after refunds, not {OPENING}"
    return {"failed": n}


@scenario(
    "receipts-first",
    "every delivery receipt sent before its submit_sm_resp",
    messages=600,
    quick=True,
)
def receipts_first(rig: Rig, n: int) -> dict[str, int]:
    rig.sim.set_scenarios("receipt-first")
    rig.spawn_worker()
    rig.send(n)
    rig.wait_final(n, timeout=90)
    return {"delivered": n}
