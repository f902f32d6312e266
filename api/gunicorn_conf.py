"""gunicorn settings for the API, read from the bridge config only (bridge.config.Config).

Used as ``gunicorn -c python:api.gunicorn_conf api.wsgi:app`` (what ``smpp-bridge run``/``api``
do) or through the repository's ``gunicorn.conf.py``. The app is built in each worker after the
fork (no preload), so database pools, Redis clients and threads are never shared across forks.
"""

from __future__ import annotations

from api.intake import IntakeLimits
from bridge.config import load_config
from bridge.telemetry import metrics_dir

_config = load_config()
# Every worker counts into one directory (prometheus-client multiprocess mode), made here in
# the master before anything imports prometheus_client; inherited by the workers.
metrics_dir.prepare(_config.var_dir)

bind = [f"{_config.host}:{_config.port}"]
workers = _config.api_workers
# gthread: keep-alive connections and a few threads per worker, so a client that reuses its
# connection is not re-accepted per request, and one slow database commit does not idle the
# worker. 8 threads: concurrent sends of a worker share one group commit (bridge.accept.group),
# so more requests in flight per worker make fewer, bigger transactions (8 beat 4 in each of 4
# paired runs of bench/accept.py, ~+7% req/s, lower p99): Config.api_threads, BRIDGE_API_THREADS.
# The balanced gthread worker spreads keep-alive connections over the workers (plain gthread
# can pin a burst of them all to one worker: api/balanced_worker.py).
worker_class = _config.api_worker_class
threads = _config.api_threads
keepalive = 75  # seconds an idle keep-alive connection is kept (longer than most proxies' 60)
preload_app = False
limit_request_line = 8190  # bytes of "GET /path?query HTTP/1.1" (gunicorn's maximum; 414 beyond)
# The worker's loop reads each request whole before a thread gets it (api/intake.py): headers
# within BRIDGE_HEADER_TIMEOUT, the body within BRIDGE_BODY_TIMEOUT after them, else 408; bodies
# over BRIDGE_MAX_BODY_BYTES get 413 unread. post_fork hands these to each worker.
_intake = IntakeLimits(
    header_timeout=_config.header_timeout_seconds,
    body_timeout=_config.body_timeout_seconds,
    max_body_bytes=_config.max_body_bytes,
)
timeout = 30  # seconds a worker may be silent before gunicorn restarts it
graceful_timeout = 10  # seconds in-flight requests get on shutdown
max_requests = 0
accesslog = _config.api_access_log or None  # "-" = stdout; off by default (speed)
errorlog = "-"
# BRIDGE_LOG_FORMAT (text or json) on the error and access logs; secrets masked in the latter
logger_class = "api.gunicorn_logging.BridgeLogger"
loglevel = _config.api_log_level.lower()
proc_name = "smpp-bridge-api"
# gunicorn >= 25 opens a control socket at one fixed path per user ($HOME/.gunicorn/gunicorn.ctl);
# several bridges (or tests) on one machine would fight over it, and we do not use gunicornc.
control_socket_disable = True
# Proxy headers are trusted from nobody: the rate limit keys on the TCP peer address.
forwarded_allow_ips = ""


def post_fork(server, worker) -> None:
    """Ask the kernel to SIGTERM this worker if the gunicorn master dies (no orphans), answer
    requests gunicorn itself refuses as JSON, not HTML (api/gunicorn_errors.py), and give the
    worker its request deadlines."""
    from api.gunicorn_errors import install
    from bridge.process.lifecycle import die_with_parent

    die_with_parent()
    install()
    worker.intake_limits = _intake  # read by api.intake.IntakeThreadWorker (others ignore it)


def worker_exit(server, worker) -> None:
    """Stop the service's threads and close its connections as the worker leaves."""
    from api.app import shutdown

    shutdown()


def child_exit(server, worker) -> None:
    """In the master, after a worker is reaped (even a crashed one): free its board slot and
    drop its live gauges from the metrics directory (its counters stay in the sums)."""
    from prometheus_client import multiprocess

    from api.balanced_worker import release_slot

    release_slot(worker)
    multiprocess.mark_process_dead(worker.pid)
