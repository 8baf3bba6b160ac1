"""The database: one PostgreSQL connection pool per worker process, sized to what that process
can have in flight.

Why a pool per *process*: a connection is a socket, and a socket cannot cross ``fork()``.
Gunicorn forks its workers after the app is imported (or, with preload, after it is built),
so the pool is created lazily, by the first request in each process, and re-created if the
process id changed since.

Why its size comes from the server: a request holds one connection for as long as it runs,
so a pool smaller than the requests a process serves at once makes the extra requests queue
for a connection, and a larger one holds idle PostgreSQL backends (a process each on the
database server). Only the server knows its concurrency, and the app never imports it: each
Gunicorn config hands the number over in ``APP_DB_POOL_SIZE`` (gunicorn_conf/sync.py,
gthread.py, gevent.py say why each value), and app/settings.py reads it.

Why psycopg 3: it waits for the server in Python, through the ``selectors`` that gevent's
monkey-patching makes cooperative (psycopg >= 3.1.14 picks its gevent-aware wait itself), so
under the gevent worker one greenlet's query lets the others run. A driver that waits inside
C (psycopg2 without psycogreen) blocks the whole process for every query.

Every failure a client can see is a :class:`Unavailable` (the view answers 503 with
``Retry-After``): no database configured, the pool stayed exhausted past ``pool_timeout``,
or the database cannot be reached. A connection attempt gives up after ``connect_timeout``,
so a stopped database answers in seconds, never after nginx's 35 s.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

# Seconds to wait for the database to accept a connection before calling it unreachable.
CONNECT_TIMEOUT = 2
# The tiny real query each request runs after its wait: which PostgreSQL backend (connection)
# served it, and how many connections the database has open right now.
_EVIDENCE_QUERY = (
    "SELECT pg_backend_pid(), (SELECT count(*) FROM pg_stat_activity WHERE datname = "
    "current_database())"
)


class Unavailable(Exception):
    """The database cannot serve this request now; ``error`` is the machine-readable code."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


@dataclass(frozen=True)
class PoolSettings:
    url: str
    size: int
    timeout: float


_lock = threading.Lock()
_pool: ConnectionPool | None = None
# What _pool was made for: this process (a forked child makes its own) and these settings
# (one app per process in production; tests build several).
_made_for: tuple[int, PoolSettings] | None = None


def pool(settings: PoolSettings) -> ConnectionPool:
    """This process's pool, created on first use (and again in a forked child)."""
    global _pool, _made_for
    wanted = (os.getpid(), settings)
    if _made_for == wanted and _pool is not None:
        return _pool
    with _lock:
        if _made_for != wanted or _pool is None:
            if _pool is not None and _made_for is not None and _made_for[0] == wanted[0]:
                _pool.close()  # this process's own, for other settings
            # (A pool inherited through fork is dropped, not closed: its sockets belong to
            # the parent.)
            _pool = ConnectionPool(
                settings.url,
                # Connections open on demand, up to size: an idle worker holds one, and the
                # database is not hit by every worker at start-up.
                min_size=1,
                max_size=settings.size,
                timeout=settings.timeout,
                kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
                name=f"app-{wanted[0]}",
                open=True,
            )
            _made_for = wanted
    return _pool


def wait_like_an_app(settings: PoolSettings | None, ms: int) -> dict[str, Any]:
    """Hold a pooled connection while the database waits ``ms`` (``pg_sleep``), then run a
    tiny real query; what the response reports about the connection it used."""
    if settings is None:
        raise Unavailable(
            "database_not_configured", "No database is configured (set DATABASE_URL)."
        )
    asked = time.perf_counter()
    try:
        with pool(settings).connection() as conn, _holding():
            waited = time.perf_counter() - asked
            conn.execute("SELECT pg_sleep(%s)", (ms / 1000,))
            row = conn.execute(_EVIDENCE_QUERY).fetchone()
    except PoolTimeout as exc:
        raise _timed_out(settings) from exc
    except psycopg.OperationalError as exc:
        raise Unavailable("database_unavailable", "The database cannot be reached.") from exc
    assert row is not None
    return {
        "db": {
            "backend_pid": row[0],
            "database_connections": row[1],
            "pool_size": settings.size,
            "waited_for_connection_ms": round(waited * 1000, 3),
        }
    }


class _Holders:
    """How many requests of this process hold a connection right now."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            self.count += 1
        try:
            yield
        finally:
            with self._lock:
                self.count -= 1


_holding = _Holders()


def _timed_out(settings: PoolSettings) -> Unavailable:
    """Why no connection came within the pool's timeout. Requests of this process hold every
    connection the pool may open: the database is fine, this process is busy. Fewer: the
    pool could not open the rest, so the database did not accept them."""
    if _holding.count >= settings.size:
        return Unavailable(
            "database_busy",
            f"All {settings.size} database connections of this worker process stayed in use "
            f"for {settings.timeout:g} s.",
        )
    return Unavailable("database_unavailable", "The database cannot be reached.")


def reachable(settings: PoolSettings, timeout: float) -> bool:
    """For readiness: can this process get a connection and run a query within ``timeout``?"""
    try:
        with pool(settings).connection(timeout=timeout) as conn:
            conn.execute("SELECT 1")
    except (PoolTimeout, psycopg.Error):
        return False
    return True
