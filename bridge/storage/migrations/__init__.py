"""Alembic migrations, applied with ``bridge.storage.db.upgrade(url)`` or ``smpp-bridge db upgrade``."""
