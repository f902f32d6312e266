"""The SQLite database and its -wal/-shm files are readable by their owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from bridge.storage.db import Database, upgrade


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    """The usual umask (files 0644 unless made otherwise), restored after the test."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _write(url: str) -> Database:
    db = Database(url)
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    return db


def test_a_new_database_and_its_wal_and_shm_are_0600(tmp_path, open_umask):
    path = tmp_path / "var" / "bridge.db"
    upgrade(f"sqlite:///{path}")
    db = _write(f"sqlite:///{path}")
    try:
        files = [path, path.with_name("bridge.db-wal"), path.with_name("bridge.db-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        db.dispose()


def test_files_of_an_older_install_are_narrowed(tmp_path, open_umask):
    path = tmp_path / "bridge.db"
    db = _write(f"sqlite:///{path}")
    db.dispose()
    loose = [path, path.with_name("bridge.db-wal"), path.with_name("bridge.db-shm")]
    for f in loose:
        f.touch()
        os.chmod(f, 0o644)
    db = Database(f"sqlite:///{path}")
    try:
        assert {f.name: _mode(f) for f in loose} == {f.name: 0o600 for f in loose}
        with db.connect() as conn:  # still the same database
            assert conn.execute(text("SELECT x FROM t")).scalar() == 1
    finally:
        db.dispose()
