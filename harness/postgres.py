"""A throwaway PostgreSQL server for the tests and the benchmark: a fresh cluster in a temporary
folder, on a free loopback port, started and stopped with PostgreSQL's own tools (Debian's
`postgresql` package; the test-runner image installs it). Stoppable and restartable mid-test,
for the database-outage tests.

PostgreSQL refuses to run as root; when this runs as root (CI's test container does), the
server runs as the package's `postgres` user, which owns the folder.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from harness.launch import free_port

USER = "app"  # the database role the app connects as
MAX_CONNECTIONS = 200  # the default here: room for every setup's pools at once


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError(
            "PostgreSQL's server tools (initdb, pg_ctl) are missing: Debian's `postgresql` "
            "package (the test-runner image, tests/Dockerfile, installs it)"
        )
    return Path(initdb).parent


@dataclass
class Postgres:
    folder: Path
    port: int
    bindir: Path
    max_connections: int = MAX_CONNECTIONS

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def _run(self, *args: str) -> None:
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        """Start and wait until it accepts connections (pg_ctl -w polls it)."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
            f"-c max_connections={self.max_connections} -c fsync=off"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.folder / "data"),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast`` disconnects clients and stops; ``immediate`` is a crash."""
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", mode, "-w", "stop"
        )


@contextmanager
def postgres_server(folder: Path, max_connections: int = MAX_CONNECTIONS) -> Iterator[Postgres]:
    """A new cluster in ``folder`` (trust authentication on loopback only), running."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    server = Postgres(folder, free_port(), _bindir(), max_connections)
    server._run(
        str(server.bindir / "initdb"),
        "-D",
        str(folder / "data"),
        "-U",
        USER,
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-sync",
    )
    server.start()
    try:
        yield server
    finally:
        # A test may have stopped it already.
        with suppress(subprocess.CalledProcessError):
            server.stop("immediate")


@contextmanager
def throwaway_postgres(**settings) -> Iterator[Postgres]:
    """postgres_server() in a new temporary folder, removed afterwards. Not pytest's tmp_path:
    its folders are private to the test user, and PostgreSQL runs as its own user when the
    tests run as root."""
    folder = Path(tempfile.mkdtemp(prefix="postgres-"))
    try:
        with postgres_server(folder, **settings) as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)
