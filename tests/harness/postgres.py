"""A throwaway PostgreSQL cluster (initdb + pg_ctl), run as the `postgres` user when we are root."""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from tests.harness.procs import free_port, wait_until


def pg_bin_dir() -> str | None:
    """The newest /usr/lib/postgresql/*/bin holding initdb, or the one on PATH."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    for d in reversed(dirs):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    found = shutil.which("initdb")
    return os.path.dirname(found) if found else None


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class PostgresCluster:
    datadir: str
    port: int
    _counter = itertools.count(1)

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._counter)}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    bindir = pg_bin_dir()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
    root = tempfile.mkdtemp(prefix="sb-pg-")
    os.chmod(root, 0o777)
    datadir = os.path.join(root, "data")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    subprocess.run(
        _as_owner(
            [
                f"{bindir}/initdb",
                "-D",
                datadir,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port = free_port()
    opts = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    pg_ctl = f"{bindir}/pg_ctl"
    subprocess.run(
        _as_owner(
            [pg_ctl, "-D", datadir, "-o", opts, "-l", f"{root}/pg.log", "-w", "-t", "60", "start"]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    cluster = PostgresCluster(datadir, port)
    try:
        import psycopg

        def answers() -> bool:
            psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres").close()
            return True

        wait_until(
            answers,
            timeout=30,
            message="PostgreSQL to accept connections",
        )
        yield cluster
    finally:
        subprocess.run(
            _as_owner([pg_ctl, "-D", datadir, "-m", "immediate", "-w", "stop"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(root, ignore_errors=True)
