"""gunicorn settings for ``gunicorn -c gunicorn.conf.py api.wsgi:app``: see api/gunicorn_conf.py."""

from api.gunicorn_conf import *  # noqa: F403 - gunicorn takes every module-level name as a setting
from api.gunicorn_conf import child_exit, post_fork, worker_exit  # noqa: F401  (hooks, named for clarity)
