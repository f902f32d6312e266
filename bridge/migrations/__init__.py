"""Alembic migrations, applied with ``bridge.db.upgrade(url)`` or ``smpp-bridge db upgrade``."""
