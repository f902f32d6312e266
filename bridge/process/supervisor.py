"""Start a list of child processes in order, keep them running, and stop them all (reverse order).

``smpp-bridge run`` and ``smpp-bridge api`` use it for the embedded Redis, gunicorn and (through
the hook in bridge/cli/run.py) the simulated SMSC, the worker and the webhook sender. A child
that dies is started again after a backoff (:class:`RestartPolicy`: 0.5 s doubling to 10 s by
default), each restart said in one line with the exit reason; a child that keeps dying (more
than ``limit`` restarts within ``window`` seconds) stops everything with one line naming it and
its last exit. Each child runs in its own session, so a Ctrl-C at the terminal reaches only the
supervisor, which then stops the children in reverse order: SIGTERM, then SIGKILL to the
child's whole process group after ``stop_timeout``. Each child also asks the kernel for SIGTERM
should the supervisor die without cleaning up (Linux PR_SET_PDEATHSIG), so no process is left
behind. Every wait is bounded.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bridge.process.lifecycle import die_with_parent

log = logging.getLogger(__name__)

POLL = 0.1  # seconds between liveness checks
READY_POLL = 0.5  # seconds between readiness checks of a child the others do not wait for


class SupervisorError(RuntimeError):
    """A child could not start or keeps dying; the message names it and says where to look."""


@dataclass
class ChildSpec:
    """One process to run. ``env`` is added to the supervisor's environment."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready: Callable[[], bool] | None = None  # polled until True; None = ready once started
    ready_timeout: float = 60.0  # seconds to become ready
    stop_timeout: float = 15.0  # seconds after SIGTERM before SIGKILL
    # with a ready check: at the first start, later children wait until this one is ready (its
    # death before then stops the start); False: started and watched, readiness said when it comes
    blocking: bool = True
    # starts the process from the environment (default: argv in a session of its own)
    spawn: Callable[[dict[str, str]], subprocess.Popen] | None = None


@dataclass(frozen=True)
class RestartPolicy:
    """When a child that exited is started again, and when the supervisor gives up."""

    limit: int = 5  # restarts of one child within ``window``; one more exit is a crash loop
    window: float = 60.0  # seconds
    backoff: float = 0.5  # seconds before the first restart within the window
    backoff_max: float = 10.0  # seconds; the delay doubles per restart up to this

    @classmethod
    def from_config(cls, config: Any) -> RestartPolicy:
        return cls(
            limit=config.restart_limit,
            window=config.restart_window_seconds,
            backoff=config.restart_backoff_seconds,
            backoff_max=config.restart_backoff_max_seconds,
        )

    def delay(self, restart: int) -> float:
        """Seconds before the ``restart``-th restart within the window (1 = the first)."""
        return min(self.backoff * 2 ** max(restart - 1, 0), self.backoff_max)


def exit_reason(returncode: int) -> str:
    """'killed by SIGKILL' for a signal, 'exit code 3' otherwise."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


@dataclass
class _Child:
    spec: ChildSpec
    proc: subprocess.Popen | None = None
    started: float = 0.0  # monotonic time of the current start
    ready: bool = False
    warned: bool = False  # said that it is not ready in time (once per start)
    checked: float = 0.0  # monotonic time of the last readiness check
    due: float | None = None  # monotonic time of a pending restart
    restarts: collections.deque[float] = field(default_factory=collections.deque)


class Supervisor:
    """Runs ``children``: ``start``, then ``wait`` (or ``watch``) until ``stop_event``, ``stop``."""

    def __init__(
        self,
        children: list[ChildSpec],
        base_env: dict[str, str] | None = None,
        say: Callable[[str], None] = print,
        policy: RestartPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._specs = list(children)
        self._env = dict(os.environ if base_env is None else base_env)
        self._say = say
        self._policy = policy or RestartPolicy()
        self._clock = clock
        self._children: list[_Child] = []

    @property
    def pids(self) -> dict[str, int]:
        return {c.spec.name: c.proc.pid for c in self._children if c.proc is not None}

    def is_ready(self, name: str) -> bool:
        return any(c.spec.name == name and c.proc is not None and c.ready for c in self._children)

    def adopt(self, spec: ChildSpec, proc: subprocess.Popen) -> None:
        """Watch a child started (and ready) elsewhere, e.g. the embedded Redis; restarts go
        through ``spec.spawn``. Adopted children stop last."""
        self._children.insert(0, _Child(spec, proc, self._clock(), ready=True))

    def start(self, stop_event: threading.Event) -> None:
        """Start each child in order, waiting for the blocking ones to be ready; raises
        SupervisorError when one of those exits or is not ready in time."""
        for spec in self._specs:
            if stop_event.is_set():
                return
            child = _Child(spec)
            self._children.append(child)
            self._launch(child)
            if spec.blocking and spec.ready is not None:
                self._wait_ready(child, stop_event)

    def _launch(self, child: _Child) -> None:
        spec = child.spec
        env = {**self._env, **spec.env}
        if spec.spawn is not None:
            child.proc = spec.spawn(env)
        else:
            child.proc = subprocess.Popen(
                spec.argv, env=env, start_new_session=True, preexec_fn=die_with_parent
            )  # noqa: PLW1509 (see there)
        child.started, child.ready, child.warned, child.due = self._clock(), False, False, None
        self._say(f"started {spec.name} (pid {child.proc.pid})")

    def _wait_ready(self, child: _Child, stop_event: threading.Event) -> None:
        spec, proc = child.spec, child.proc
        assert proc is not None
        deadline = time.monotonic() + spec.ready_timeout
        while not stop_event.is_set():
            if proc.poll() is not None:
                raise SupervisorError(
                    f"{spec.name} exited ({exit_reason(proc.returncode)}) before it "
                    "was ready; its output is above"
                )
            if spec.ready is None or _safely(spec.ready):
                child.ready = True
                return
            if time.monotonic() > deadline:
                raise SupervisorError(
                    f"{spec.name} was not ready after {spec.ready_timeout:.0f}s;"
                    " its output is above"
                )
            stop_event.wait(POLL)

    def wait(self, stop_event: threading.Event) -> int:
        """Keep the children running until ``stop_event`` (returns 0); raises SupervisorError
        when a child keeps dying."""
        self.watch(stop_event)
        return 0

    def watch(
        self,
        stop_event: threading.Event,
        until: Callable[[], bool] | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Keep the children running until ``stop_event`` is set (False), or ``until()`` holds
        or ``timeout`` seconds pass (True). Raises SupervisorError on a crash loop."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not stop_event.is_set():
            for child in self._children:
                self._tend(child)
            if until is not None and until():
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return True
            stop_event.wait(POLL)
        return False

    def _tend(self, child: _Child) -> None:
        """One look at a child: note its exit, restart it when due, report its readiness."""
        now = self._clock()
        if child.proc is not None and child.proc.poll() is not None:
            self._exited(child, now)
        elif child.proc is None and child.due is not None and now >= child.due:
            try:
                self._launch(child)
            except OSError as exc:  # e.g. the executable is gone: a failure like an exit
                self._failed(child, now, f"could not start: {exc}", "")
        elif child.proc is not None and not child.ready and now - child.checked >= READY_POLL:
            self._check_ready(child, now)

    def _exited(self, child: _Child, now: float) -> None:
        proc = child.proc
        assert proc is not None
        _kill_group(proc.pid)  # what it left behind (gunicorn's workers hold the port)
        child.proc = None
        self._failed(child, now, exit_reason(proc.returncode), f" (pid {proc.pid})")

    def _failed(self, child: _Child, now: float, reason: str, pid: str) -> None:
        """Schedule the restart of a child that exited or could not start, or give up."""
        name, policy = child.spec.name, self._policy
        while child.restarts and now - child.restarts[0] > policy.window:
            child.restarts.popleft()
        if policy.limit == 0:
            raise SupervisorError(
                f"{name}{pid} exited ({reason}) and restarts are off (restart_limit 0);"
                " stopped everything (its output is above)"
            )
        if len(child.restarts) >= policy.limit:
            raise SupervisorError(
                f"{name} keeps failing: {len(child.restarts) + 1} exits within "
                f"{policy.window:g}s, the last {reason}; stopped everything (its output "
                "is above)"
            )
        child.restarts.append(now)
        delay = policy.delay(len(child.restarts))
        child.due = now + delay
        self._say(
            f"{name}{pid} exited ({reason}); restarting in {delay:g}s"
            f" (restart {len(child.restarts)} of {policy.limit} allowed within {policy.window:g}s)"
        )

    def _check_ready(self, child: _Child, now: float) -> None:
        spec, proc = child.spec, child.proc
        assert proc is not None
        child.checked = now
        if spec.ready is None or _safely(spec.ready):
            child.ready = True
            if spec.ready is not None:
                self._say(f"{spec.name} (pid {proc.pid}) is ready")
        elif not child.warned and now - child.started > spec.ready_timeout:
            child.warned = True
            self._say(
                f"{spec.name} (pid {proc.pid}) is not ready after {spec.ready_timeout:g}s;"
                " still running it (its output is above)"
            )

    def stop(self) -> None:
        """Stop every child, last started first; bounded by the children's stop timeouts."""
        while self._children:
            child = self._children.pop()
            if child.proc is not None:
                _terminate(child.proc, child.spec.stop_timeout)
                self._say(f"stopped {child.spec.name}")


def _safely(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except OSError:  # connection refused while the child starts up
        return False


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _terminate(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM the child, then SIGKILL its process group; always reaps it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning(
                "pid %s ignored SIGTERM for %ss; killing its process group", proc.pid, timeout
            )
    _kill_group(proc.pid)  # leftovers of the child's session (e.g. workers)
    proc.wait(timeout)
