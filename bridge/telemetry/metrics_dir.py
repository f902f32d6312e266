"""The directory prometheus-client's multiprocess mode keeps its counters in, shared by every
process of one machine (the gunicorn workers, the delivery worker, the webhook sender), so
``GET /metrics`` in any API worker reports the sum over all of them.

:func:`prepare` runs before anything counts: in each command's handler (``run``, ``api``,
``worker``, ``webhooks``) and in gunicorn's master (api/gunicorn_conf.py). Children inherit
the variable. prometheus-client picks its mode when it is imported; one imported earlier is
switched to the directory (nothing has counted yet then).

Each process using the directory holds a shared ``flock`` on its ``.lock`` file for its whole
life (the kernel drops it when the process dies, even by SIGKILL). The first process to start
when nobody holds it clears the directory: counters start from zero once per fresh start, and
never while another process of the machine is counting into it (that would read as a counter
reset to Prometheus).
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import Any

ENV = "PROMETHEUS_MULTIPROC_DIR"
SUBDIR = "metrics"  # under var_dir, unless PROMETHEUS_MULTIPROC_DIR names another directory
LOCK_NAME = ".lock"


class _Held:
    """The lock file this process holds (kept open until the process exits)."""

    fd: int | None = None
    path: str | None = None


def prepare(var_dir: str, environ: dict[str, str] | os._Environ[str] | None = None) -> str:
    """Make the directory (``$PROMETHEUS_MULTIPROC_DIR``, else ``<var_dir>/metrics``, mode
    0700), clear it when no other process uses it, hold its shared lock, and export it in
    ``environ`` (default ``os.environ``). Returns its path. Idempotent within a process."""
    environ = os.environ if environ is None else environ
    path = str(Path(environ.get(ENV) or Path(var_dir) / SUBDIR).resolve())
    if _Held.path == path:
        environ[ENV] = path
        return path
    if environ is os.environ:
        os.environ[ENV] = path  # prometheus-client's collector and mark_process_dead read it
        _switch_late_import(path)
    Path(path).mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(os.path.join(path, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pass  # another process counts here now: keep its numbers
    else:
        clear(path)
    fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a starting process clears
    _Held.fd, _Held.path = fd, path
    environ[ENV] = path
    return path


def clear(path: str) -> int:
    """Delete prometheus-client's files in ``path``; how many."""
    gone = 0
    for item in Path(path).glob("*.db"):
        item.unlink(missing_ok=True)
        gone += 1
    return gone


def _switch_late_import(path: str) -> None:
    """prometheus-client imported before the variable was set (a module imported at start-up
    pulled it in) counts in memory; it reads ``values.ValueClass`` whenever a metric's value is
    made, so switching it now sends every later value to the directory. Values made before
    would be lost to the scrape: that is a programming error, said loudly."""
    values: Any = sys.modules.get("prometheus_client.values")  # its internals, set below
    if values is None or values.ValueClass is not values.MutexValue:
        return
    ours = sys.modules.get("bridge.telemetry.metrics")
    if ours is not None and ours.counted_anything():
        raise RuntimeError(
            f"metrics were counted before {ENV} was set to {path}: call "
            "bridge.telemetry.metrics_dir.prepare() before counting"
        )
    values.ValueClass = values.MultiProcessValue()
