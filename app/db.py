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
Gunicorn config hands the number over in ``APP_POOL_SIZE`` (gunicorn_conf/sync.py,
gthread.py, gevent.py say why each value), and app/settings.py reads it.

Why psycopg 3: it waits for the server in Python, through the ``selectors`` that gevent's
monkey-patching makes cooperative (psycopg >= 3.1.14 picks its gevent-aware wait itself), so
under the gevent worker one greenlet's query lets the others run. A driver that waits inside
C (psycopg2 without psycogreen) blocks the whole process for every query.

The wrong driver is here too, on purpose: ``driver="psycopg2"`` runs the same query through
psycopg2 without psycogreen, whose waits happen inside libpq's C code. Under gevent a query
then holds the whole worker process, so simultaneous queries run one after another; the
docs and tests measure the difference (docs/database.md, "gevent and the driver"). It is
imported only when asked for.

Every failure a client can see is an :class:`app.errors.Unavailable` (a JSON 503 with
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
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from app.errors import Unavailable
from app.settings import PoolSettings

# Seconds to wait for the database to accept a connection before calling it unreachable.
CONNECT_TIMEOUT = 2
# Seconds the pool keeps retrying a lost connection in the background before it gives up
# until the next request asks (psycopg_pool's reconnect_timeout). Its retries wait twice as
# long after each failure (1, 2, 4, 8, 16 s...), and a request only waits for them: with the
# default 300 s, a process can go on answering 503 for 16 s and more after the database is
# back. Given up after 5 s, the widest gap is 2 s and the next request starts over at once
# (tests/integration/test_database.py measures it).
RECONNECT_SECONDS = 5
# The shipped driver first; the second is the gevent pitfall, for measuring it.
DRIVERS = ("psycopg", "psycopg2")
# One statement, one round trip: the wait (pg_sleep in FROM runs first: it yields the row),
# then the tiny real query, which PostgreSQL backend (connection) served it and how many
# connections the database has open right now.
_QUERY = (
    "SELECT pg_backend_pid(), (SELECT count(*) FROM pg_stat_activity WHERE datname = "
    "current_database()) FROM pg_sleep(%s)"
)


class _RecordedConnection(psycopg.Connection[Any]):
    """A connection whose failed attempts are remembered: the pool opens connections in the
    background, so a request that timed out waiting would otherwise never learn why."""

    last_failure: psycopg.OperationalError | None = None

    @classmethod
    def connect(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            connection = super().connect(*args, **kwargs)
        except psycopg.OperationalError as exc:
            _RecordedConnection.last_failure = exc
            raise
        _RecordedConnection.last_failure = None
        return connection


def _refused_for_too_many_connections(exc: BaseException | None) -> bool:
    """PostgreSQL's "sorry, too many clients already" (SQLSTATE 53300): every connection
    max_connections allows is taken, by this app's pools or by anything else."""
    return exc is not None and (
        getattr(exc, "sqlstate", None) == "53300" or "too many clients" in str(exc)
    )


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
                reconnect_timeout=RECONNECT_SECONDS,
                kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
                connection_class=_RecordedConnection,
                name=f"app-{wanted[0]}",
                open=True,
            )
            _made_for = wanted
    return _pool


def wait_like_an_app(
    settings: PoolSettings | None, ms: int, driver: str = DRIVERS[0]
) -> dict[str, Any]:
    """Hold a pooled connection while the database waits ``ms`` (``pg_sleep``), then run a
    tiny real query; what the response reports about the connection it used."""
    if settings is None:
        raise Unavailable(
            "database_not_configured", "No database is configured (set DATABASE_URL)."
        )
    if driver == "psycopg2":
        return _wait_with_psycopg2(settings, ms)
    asked = time.perf_counter()
    try:
        row, waited = _read_one(settings, _QUERY, (ms / 1000,), asked)
    except PoolTimeout as exc:
        raise _timed_out(settings) from exc
    except psycopg.OperationalError as exc:
        raise Unavailable("database_unavailable", "The database cannot be reached.") from exc
    assert row is not None
    return _report(row, settings, waited, DRIVERS[0])


def _read_one(
    settings: PoolSettings,
    query: str,
    params: tuple[Any, ...] = (),
    asked: float | None = None,
    timeout: float | None = None,
) -> tuple[Any, float]:
    """One row of a read-only ``query`` on a pooled connection, and how long the wait for the
    connection took. A connection opened before the database restarted is dead, and so,
    likely, are the pool's other idle ones, which the pool learns only by using them: one
    failed request each. So a query that fails on its connection has the pool check them all
    (a send on a dead one fails at once; the pool replaces it) and runs once more: it only
    reads. A second failure is the database's."""
    asked = time.perf_counter() if asked is None else asked
    for attempt in (1, 2):
        try:
            with pool(settings).connection(timeout=timeout) as conn, _holding():
                waited = time.perf_counter() - asked
                return conn.execute(query, params).fetchone(), waited
        except PoolTimeout:
            raise  # no connection came: nothing was tried on one (and it is an OperationalError)
        except psycopg.OperationalError:
            if attempt == 2:
                raise
            pool(settings).check()
    raise AssertionError("unreachable")


def _report(row: Any, settings: PoolSettings, waited: float, driver: str) -> dict[str, Any]:
    return {
        "db": {
            "driver": driver,
            "backend_pid": row[0],
            "database_connections": row[1],
            "pool_size": settings.size,
            "waited_for_connection_ms": round(waited * 1000, 3),
        }
    }


# --- The pitfall: psycopg2 without psycogreen ------------------------------------------------
_psycopg2_pools: dict[tuple[int, PoolSettings], Any] = {}


def _psycopg2_pool(settings: PoolSettings) -> Any:
    import psycopg2.pool  # type: ignore[import-untyped]  # only when asked for (docstring)

    key = (os.getpid(), settings)
    with _lock:
        if key not in _psycopg2_pools:
            # minconn = maxconn: psycopg2's pool closes any connection returned beyond
            # minconn, so a smaller minconn would open a new connection for every query.
            _psycopg2_pools[key] = psycopg2.pool.ThreadedConnectionPool(
                settings.size, settings.size, settings.url, connect_timeout=CONNECT_TIMEOUT
            )
        return _psycopg2_pools[key]


def _wait_with_psycopg2(settings: PoolSettings, ms: int) -> dict[str, Any]:
    import psycopg2
    import psycopg2.pool

    asked = time.perf_counter()
    try:
        pool_ = _psycopg2_pool(settings)
        conn = pool_.getconn()
    except psycopg2.pool.PoolError as exc:  # psycopg2's pool does not wait: it refuses
        raise Unavailable(
            "database_busy",
            f"All {settings.size} psycopg2 connections of this worker process are in use.",
        ) from exc
    except psycopg2.OperationalError as exc:
        raise Unavailable("database_unavailable", "The database cannot be reached.") from exc
    waited = time.perf_counter() - asked
    broken = False
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(_QUERY, (ms / 1000,))
            row = cursor.fetchone()
    except psycopg2.OperationalError as exc:
        broken = True
        raise Unavailable("database_unavailable", "The database cannot be reached.") from exc
    finally:
        pool_.putconn(conn, close=broken)
    return _report(row, settings, waited, "psycopg2")


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
    connection the pool may open, or the last attempt to open one succeeded (the pool was
    still opening the rest): the database is fine, this process is busy. Otherwise the
    database did not accept the connections, and its refusal says why."""
    failure = _RecordedConnection.last_failure
    if _holding.count >= settings.size or failure is None:
        return Unavailable(
            "database_busy",
            f"No database connection of this worker process ({settings.size} at most) came "
            f"free within {settings.timeout:g} s.",
        )
    if _refused_for_too_many_connections(failure):
        return Unavailable(
            "database_connections_exhausted",
            "PostgreSQL refused a new connection: its max_connections is reached. The app's "
            "pools (workers x APP_POOL_SIZE, for every replica) add up to more than it "
            "allows (docs/database.md).",
        )
    return Unavailable("database_unavailable", "The database cannot be reached.")


def reachable(settings: PoolSettings, timeout: float) -> bool:
    """For readiness: can this process get a connection and run a query within ``timeout``?"""
    try:
        _read_one(settings, "SELECT 1", timeout=timeout)
    except (PoolTimeout, psycopg.Error):
        return False
    return True
