"""The supervisor with real child processes: restarts with backoff, the crash-loop limit, the
window that forgets old restarts, and a stop that leaves nothing behind."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest

from bridge.process.supervisor import (
    ChildSpec,
    RestartPolicy,
    Supervisor,
    SupervisorError,
    exit_reason,
)
from tests.api.helpers import pid_gone
from tests.harness.procs import wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_backoff_doubles_up_to_its_ceiling():
    policy = RestartPolicy(backoff=0.5, backoff_max=10)
    assert [policy.delay(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]


def test_exit_reasons_name_the_signal_or_the_code():
    assert exit_reason(-signal.SIGKILL) == "killed by SIGKILL"
    assert exit_reason(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert exit_reason(3) == "exit code 3"
    assert exit_reason(0) == "exit code 0"


class _Run:
    """A supervisor watching its children in a thread; always stopped at the end."""

    def __init__(self, children: list[ChildSpec], policy: RestartPolicy) -> None:
        self.lines: list[str] = []
        self.sup = Supervisor(children, dict(os.environ), say=self.lines.append, policy=policy)
        self.stop_event = threading.Event()
        self.error: SupervisorError | None = None
        self.seen: set[int] = set()
        self.sup.start(self.stop_event)
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        try:
            self.sup.watch(self.stop_event, until=self._note, timeout=60)
        except SupervisorError as exc:
            self.error = exc

    def _note(self) -> bool:
        self.seen.update(self.sup.pids.values())
        return False

    def close(self) -> None:
        self.stop_event.set()
        self.thread.join(10)
        self.seen.update(self.sup.pids.values())
        self.sup.stop()
        wait_until(lambda: all(pid_gone(p) for p in self.seen), timeout=10)


def test_a_child_that_always_crashes_stops_the_supervisor_after_the_limit():
    crasher = ChildSpec("crasher", [sys.executable, "-c", "raise SystemExit(3)"], blocking=False)
    run = _Run([crasher], RestartPolicy(limit=3, window=60, backoff=0.05, backoff_max=0.2))
    try:
        run.thread.join(30)
        assert not run.thread.is_alive()
    finally:
        run.close()
    assert str(run.error) == (
        "crasher keeps failing: 4 exits within 60s, the last exit code 3; stopped everything"
        " (its output is above)"
    )
    assert len([line for line in run.lines if line.startswith("started crasher")]) == 4
    waits = [
        line.split("restarting in ")[1].split(" ")[0]
        for line in run.lines
        if "restarting in" in line
    ]
    assert waits == ["0.05s", "0.1s", "0.2s"], run.lines
    assert "crasher (pid " in run.lines[1] and "exited (exit code 3)" in run.lines[1]


def test_a_killed_child_comes_back_and_old_restarts_fall_out_of_the_window():
    run = _Run([ChildSpec("sleeper", SLEEPER)], RestartPolicy(limit=1, window=1, backoff=0.05))
    try:
        for round_ in range(3):  # more kills than the limit, each after the window has passed
            pid = run.sup.pids["sleeper"]
            os.kill(pid, signal.SIGKILL)

            def replaced(pid: int = pid) -> bool:
                return run.sup.pids.get("sleeper", pid) != pid

            wait_until(replaced, timeout=10, message=f"a new sleeper after kill {round_ + 1}")
            assert run.error is None
            # the supervisor noted this restart when it saw the exit, before the new pid
            # appeared: a window from now has surely passed for it (a window from the kill
            # may not have, when the exit was seen a poll later)
            since = time.monotonic()

            def window_passed(since: float = since) -> bool:
                return time.monotonic() - since > 1.05

            wait_until(window_passed, timeout=5)
        restarts = [line for line in run.lines if "restarting in" in line]
        assert len(restarts) == 3 and all("killed by SIGKILL" in r for r in restarts), run.lines
        assert all("(restart 1 of 1 allowed within 1s)" in r for r in restarts), run.lines
    finally:
        run.close()
    assert run.lines[-1] == "stopped sleeper"


def test_a_blocking_child_that_dies_before_it_is_ready_stops_the_start():
    lines: list[str] = []
    never = ChildSpec("never", [sys.executable, "-c", "raise SystemExit(2)"], ready=lambda: False)
    sup = Supervisor([never], dict(os.environ), say=lines.append)
    try:
        with pytest.raises(SupervisorError, match=r"never exited \(exit code 2\) before it was"):
            sup.start(threading.Event())
    finally:
        sup.stop()


def test_restarts_off_stop_at_the_first_exit():
    run = _Run(
        [ChildSpec("once", [sys.executable, "-c", "raise SystemExit(1)"])],
        RestartPolicy(limit=0),
    )
    try:
        run.thread.join(20)
    finally:
        run.close()
    assert "restarts are off (restart_limit 0)" in str(run.error)
