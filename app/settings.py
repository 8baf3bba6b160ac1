"""Configuration from the environment, read once at start-up.

Everything the app reads from the environment is listed here, with its default, so there is
one place to look. Debug mode is deliberately not configurable: it is only ever switched on
by the local dev-server launcher, never in a deployed image.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def secret(env: Mapping[str, str], name: str) -> str:
    """``name`` from the environment, or the contents of the file ``name_FILE`` names (a
    Docker or Kubernetes secret, systemd's LoadCredential), the convention of the official
    PostgreSQL image. A file keeps a password out of the environment, which every child
    process inherits and `docker inspect` shows. Both set is a mistake, and a named file that
    cannot be read stops the start-up: a wrong setting should fail loudly, not run without."""
    value, path = env.get(name, "").strip(), env.get(f"{name}_FILE", "").strip()
    if value and path:
        raise ValueError(f"set {name} or {name}_FILE, not both")
    return Path(path).read_text().strip() if path else value


@dataclass(frozen=True)
class PoolSettings:
    """Where a service the app waits on is, and the pool each worker process keeps to it."""

    url: str
    size: int
    timeout: float


@dataclass(frozen=True)
class Settings:
    # Largest request body the app accepts. nginx enforces the same limit first
    # (client_max_body_size); this is the second line for direct connections.
    max_content_length: int = 1024 * 1024
    # Upper bound for ?ms= on /api/io, /api/cpu and /api/isolation: long enough for any demo,
    # short enough that no request can outlive Gunicorn's 30 s worker timeout.
    max_work_ms: int = 10_000
    # How many proxies in front of the app set X-Forwarded-For. 1 behind our nginx (which
    # replaces the header with the real client address); 0 when nothing trusted is in front,
    # so a direct caller cannot spoof its address. Never more than the proxies you run.
    trusted_proxy_hops: int = 0
    # PostgreSQL for /api/db (app/db.py), as a libpq URL
    # (postgresql://user:password@host:port/dbname), from DATABASE_URL or from the file
    # DATABASE_URL_FILE names (secret() above). Empty: no database; /api/db answers 503 and
    # /readyz does not check one.
    database_url: str = ""
    # The delay service for /api/upstream (app/upstream.py), e.g. http://delay:8000. Empty:
    # /api/upstream answers 503.
    upstream_url: str = ""
    # Connections each worker process may hold to each of those services: what the process
    # serves at once. Each Gunicorn config hands its own value over in APP_POOL_SIZE
    # (gunicorn_conf/*.py); 1 otherwise.
    pool_size: int = 1
    # Seconds a request waits for a free connection (or for the service to accept one)
    # before it is answered 503: a bounded queue, far below nginx's proxy_read_timeout.
    pool_timeout: float = 3.0

    @classmethod
    def from_environ(cls, environ: os._Environ[str] | dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            max_content_length=int(env.get("APP_MAX_CONTENT_LENGTH", cls.max_content_length)),
            max_work_ms=int(env.get("APP_MAX_WORK_MS", cls.max_work_ms)),
            trusted_proxy_hops=int(env.get("APP_TRUSTED_PROXY_HOPS", cls.trusted_proxy_hops)),
            database_url=secret(env, "DATABASE_URL"),
            upstream_url=env.get("UPSTREAM_URL", cls.upstream_url).strip().rstrip("/"),
            pool_size=int(env.get("APP_POOL_SIZE") or cls.pool_size),
            pool_timeout=float(env.get("APP_POOL_TIMEOUT") or cls.pool_timeout),
        )

    def flask_config(self) -> dict[str, Any]:
        return {
            # Flask would switch debug on from FLASK_DEBUG in the environment; a deployed app
            # must not: debug mode propagates exceptions and, with the dev server, exposes
            # the interactive debugger. Only create_app(overrides) can turn it on.
            "DEBUG": False,
            "MAX_CONTENT_LENGTH": self.max_content_length,
            "MAX_WORK_MS": self.max_work_ms,
            "TRUSTED_PROXY_HOPS": self.trusted_proxy_hops,
            # None when no database is configured (app/db.py answers 503 then).
            "DATABASE": (
                PoolSettings(self.database_url, self.pool_size, self.pool_timeout)
                if self.database_url
                else None
            ),
            "UPSTREAM": (
                PoolSettings(self.upstream_url, self.pool_size, self.pool_timeout)
                if self.upstream_url
                else None
            ),
            # Metrics, request ids and JSON logs. Only the benchmark turns them off
            # (create_app({"OBSERVABILITY": False})), to measure what they cost per request.
            "OBSERVABILITY": True,
        }
