"""Another service, over HTTP: one connection pool per worker process to the delay service
(delay/), sized like the database's (app/db.py says why per process, and why by the server).

urllib3 rather than a new connection per call: connections are kept alive and reused, so a
call costs a request, not a TCP handshake. Under gevent its sockets are monkey-patched, so
a call lets the other greenlets run while it waits. The pool *blocks* when every connection
is lent out, for at most ``pool_timeout``: the same bounded queue as the database pool, where
a non-blocking pool would open connections past its size and a blocking one without a
timeout could wait forever.

Failures a client can see are :class:`app.errors.Unavailable` (a JSON 503 with
``Retry-After``): no upstream configured, every connection busy past the pool timeout, or
the service unreachable or too slow. A call's read timeout is the wait it asked for plus a
margin, so an upstream that hangs costs seconds, never nginx's 35 s.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import urllib3
from urllib3.exceptions import EmptyPoolError, HTTPError

from app.db import CONNECT_TIMEOUT
from app.errors import Unavailable
from app.settings import PoolSettings

# Seconds a call may take beyond the wait it asks the upstream for.
READ_MARGIN = 2.0

_lock = threading.Lock()
_pools: dict[tuple[int, PoolSettings], urllib3.PoolManager] = {}


def _pool(settings: PoolSettings) -> urllib3.PoolManager:
    """This process's pool (a forked child makes its own: sockets cannot cross fork())."""
    key = (os.getpid(), settings)
    pool = _pools.get(key)
    if pool is None:
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                pool = _pools[key] = urllib3.PoolManager(
                    num_pools=1, maxsize=settings.size, block=True, retries=False
                )
    return pool


def call_like_an_app(settings: PoolSettings | None, ms: int) -> dict[str, Any]:
    """GET the delay service's /delay?ms=N through this process's pool."""
    if settings is None:
        raise Unavailable(
            "upstream_not_configured", "No upstream service is configured (set UPSTREAM_URL)."
        )
    started = time.perf_counter()
    try:
        response = _pool(settings).request(
            "GET",
            f"{settings.url}/delay?ms={ms}",
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=ms / 1000 + READ_MARGIN),
            pool_timeout=settings.timeout,
        )
    except EmptyPoolError as exc:
        raise Unavailable(
            "upstream_busy",
            f"All {settings.size} connections of this worker process to the upstream service "
            f"stayed in use for {settings.timeout:g} s.",
        ) from exc
    except HTTPError as exc:  # refused, unresolvable, reset, timed out
        raise Unavailable(
            "upstream_unavailable", f"The upstream service did not answer: {type(exc).__name__}."
        ) from exc
    if response.status != 200:
        raise Unavailable(
            "upstream_unavailable", f"The upstream service answered {response.status}."
        )
    return {
        "upstream": {
            "waited_ms": response.json()["waited_ms"],
            "call_ms": round((time.perf_counter() - started) * 1000, 3),
            "pool_size": settings.size,
        }
    }
