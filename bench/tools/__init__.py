"""Helpers for reading benchmark output (``.venv/bin/python -m bench.tools.profile_top``)."""
