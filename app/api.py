"""The evidence endpoints: every response says which process, thread and greenlet served it."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import quote

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from app import db, isolation, params, request_id, upstream, work
from app.serving import execution_context

bp = Blueprint("api", __name__, url_prefix="/api")
# A path made only of these needs no percent-encoding (quote() would return it unchanged).
_URL_SAFE = re.compile(r"[A-Za-z0-9/._~-]*")


def evidence(started_at: float, **extra: Any) -> dict[str, Any]:
    """The whoami fields: who served this request, and when (server clock, epoch seconds:
    ``started_at`` is taken by the view as it starts, the finish time here)."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    environ = req.environ
    body = execution_context(environ)
    body["request_id"] = request_id.in_environ(environ)
    body["client_addr"] = req.remote_addr
    body["path"] = req.path
    body["scheme"] = req.scheme
    body["started_at"] = _to_microseconds(started_at)
    body["finished_at"] = _to_microseconds(time.time())
    body.update(extra)
    return body


def _to_microseconds(seconds: float) -> float:
    """``seconds`` to the microsecond (1764340000.123456), at a fifth of ``round(seconds, 6)``'s
    cost, which every answer would pay twice: ``round`` with digits goes through a decimal
    conversion, this is two float operations. The two can differ in the last digit (the
    product is rounded once more), far below what the server's clock resolves."""
    return round(seconds * 1_000_000) / 1_000_000


def _ms_arg() -> int:
    return params.int_arg("ms", default=100, minimum=0, maximum=current_app.config["MAX_WORK_MS"])


@bp.get("/whoami")
def whoami() -> ResponseReturnValue:
    started_at = time.time()
    return jsonify(evidence(started_at, url=_url_used()))


def _url_used() -> str:
    """The URL the client used to reach this endpoint, without the query: scheme, host and
    prefix as seen through the proxy (https://... behind TLS at nginx; ProxyFix in
    create_app). ``request.base_url`` says the same but converts it to an IRI on every call,
    which cost a sixth of this whole request (measured with cProfile); a URI is what a client
    sends anyway."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    path = req.root_path + req.path
    return f"{req.scheme}://{req.host}{path if _URL_SAFE.fullmatch(path) else quote(path)}"


@bp.get("/io")
def io_bound() -> ResponseReturnValue:
    started_at = time.time()
    ms = _ms_arg()
    work.wait_like_io(ms)
    return jsonify(evidence(started_at, work="io", ms=ms))


@bp.get("/cpu")
def cpu_bound() -> ResponseReturnValue:
    started_at = time.time()
    ms = _ms_arg()
    iterations = work.burn_cpu(ms)
    return jsonify(evidence(started_at, work="cpu", ms=ms, iterations=iterations))


@bp.get("/db")
def db_bound() -> ResponseReturnValue:
    """Wait on PostgreSQL (``pg_sleep``) through this process's connection pool: real I/O on
    a real driver, where /api/io only sleeps (app/db.py). ``driver=psycopg2`` takes the
    driver that blocks gevent, to see the difference."""
    started_at = time.time()
    ms = _ms_arg()
    driver = params.choice_arg("driver", db.DRIVERS)
    result = db.wait_like_an_app(current_app.config["DATABASE"], ms, driver)
    return jsonify(evidence(started_at, work="db", ms=ms, **result))


@bp.get("/upstream")
def upstream_bound() -> ResponseReturnValue:
    """Call another service over HTTP (the delay service, which answers after ``ms``) through
    this process's connection pool (app/upstream.py)."""
    started_at = time.time()
    ms = _ms_arg()
    result = upstream.call_like_an_app(current_app.config["UPSTREAM"], ms)
    return jsonify(evidence(started_at, work="upstream", ms=ms, **result))


@bp.get("/isolation")
def isolation_check() -> ResponseReturnValue:
    started_at = time.time()
    token = params.token_arg("token")
    ms = _ms_arg()
    result = isolation.run_experiment(token, lambda: work.wait_like_io(ms))
    return jsonify(evidence(started_at, work="isolation", ms=ms, **result))
