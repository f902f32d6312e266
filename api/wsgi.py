"""WSGI entry point for gunicorn (``gunicorn -c gunicorn.conf.py api.wsgi:app``); built per worker."""

from api.app import app_from_environment

app = app_from_environment()
