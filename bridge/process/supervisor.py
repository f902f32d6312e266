"""Start a list of child processes in order, watch them, and stop them all (reverse order).

``smpp-bridge run`` and ``smpp-bridge api`` use it for gunicorn (and, through the hook in
bridge/cli/run.py, the worker and the simulated SMSC). Each child runs in its own session, so a
Ctrl-C at the terminal reaches only the supervisor, which then stops the children in reverse
order: SIGTERM, then SIGKILL to the child's whole process group after ``stop_timeout``. Each
child also asks the kernel for SIGTERM should the supervisor die without cleaning up (Linux
PR_SET_PDEATHSIG), so no process is left behind. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bridge.process.lifecycle import die_with_parent

log = logging.getLogger(__name__)

POLL = 0.1  # seconds between liveness/readiness checks


class SupervisorError(RuntimeError):
    """A child could not start or died; the message names it and says where to look."""


@dataclass
class ChildSpec:
    """One process to run. ``env`` is added to the supervisor's environment."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready: Callable[[], bool] | None = None  # polled until True; None = ready once started
    ready_timeout: float = 60.0  # seconds to become ready
    stop_timeout: float = 15.0  # seconds after SIGTERM before SIGKILL


@dataclass
class _Running:
    spec: ChildSpec
    proc: subprocess.Popen


class Supervisor:
    """Runs ``children``; ``start`` then ``wait`` until ``stop_event`` or a child dies; ``stop``."""

    def __init__(
        self,
        children: list[ChildSpec],
        base_env: dict[str, str] | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        self._specs = list(children)
        self._env = dict(os.environ if base_env is None else base_env)
        self._say = say
        self._running: list[_Running] = []

    @property
    def pids(self) -> dict[str, int]:
        return {r.spec.name: r.proc.pid for r in self._running}

    def start(self, stop_event: threading.Event) -> None:
        """Start each child and wait until it is ready (in order); raises SupervisorError."""
        for spec in self._specs:
            if stop_event.is_set():
                return
            proc = subprocess.Popen(
                spec.argv,
                env={**self._env, **spec.env},
                start_new_session=True,
                preexec_fn=die_with_parent,
            )  # noqa: PLW1509 (see there)
            self._running.append(_Running(spec, proc))
            self._say(f"started {spec.name} (pid {proc.pid})")
            self._wait_ready(spec, proc, stop_event)

    def _wait_ready(
        self, spec: ChildSpec, proc: subprocess.Popen, stop_event: threading.Event
    ) -> None:
        deadline = time.monotonic() + spec.ready_timeout
        while not stop_event.is_set():
            if proc.poll() is not None:
                raise SupervisorError(
                    f"{spec.name} exited with code {proc.returncode} before it "
                    "was ready; its output is above"
                )
            if spec.ready is None or _safely(spec.ready):
                return
            if time.monotonic() > deadline:
                raise SupervisorError(
                    f"{spec.name} was not ready after {spec.ready_timeout:.0f}s;"
                    " its output is above"
                )
            stop_event.wait(POLL)

    def wait(self, stop_event: threading.Event) -> int:
        """Block until ``stop_event`` (exit code 0) or until a child exits (exit code 1)."""
        while not stop_event.wait(POLL):
            for r in self._running:
                if r.proc.poll() is not None:
                    self._say(
                        f"{r.spec.name} (pid {r.proc.pid}) exited with code "
                        f"{r.proc.returncode}; stopping everything"
                    )
                    return 1
        return 0

    def stop(self) -> None:
        """Stop every child, last started first; bounded by the children's stop timeouts."""
        while self._running:
            r = self._running.pop()
            _terminate(r.proc, r.spec.stop_timeout)
            self._say(f"stopped {r.spec.name}")


def _safely(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except OSError:  # connection refused while the child starts up
        return False


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
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the child's session (e.g. workers)
    proc.wait(timeout)
