"""The evidence endpoints: every response says which process, thread and greenlet served it."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request, url_for
from flask.typing import ResponseReturnValue

from app import isolation, params, work
from app.request_id import current_request_id
from app.serving import execution_context

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.before_request
def _mark_start() -> None:
    g.started_at = time.time()


def evidence(**extra: Any) -> dict[str, Any]:
    """The whoami fields: who served this request, and when (server clock, epoch seconds)."""
    body = execution_context(request.environ)
    body.update(
        request_id=current_request_id(),
        client_addr=request.remote_addr,
        path=request.path,
        scheme=request.scheme,
        started_at=round(g.started_at, 6),
        finished_at=round(time.time(), 6),
    )
    body.update(extra)
    return body


def _ms_arg() -> int:
    return params.int_arg("ms", default=100, minimum=0, maximum=current_app.config["MAX_WORK_MS"])


@bp.get("/whoami")
def whoami() -> ResponseReturnValue:
    # The URL the client would use to reach this endpoint: scheme, host and prefix as seen
    # through the proxy (https://... behind TLS at nginx).
    return jsonify(evidence(url=url_for("api.whoami", _external=True)))


@bp.get("/io")
def io_bound() -> ResponseReturnValue:
    ms = _ms_arg()
    work.wait_like_io(ms)
    return jsonify(evidence(work="io", ms=ms))


@bp.get("/cpu")
def cpu_bound() -> ResponseReturnValue:
    ms = _ms_arg()
    iterations = work.burn_cpu(ms)
    return jsonify(evidence(work="cpu", ms=ms, iterations=iterations))


@bp.get("/isolation")
def isolation_check() -> ResponseReturnValue:
    token = params.token_arg("token")
    ms = _ms_arg()
    result = isolation.run_experiment(token, lambda: work.wait_like_io(ms))
    return jsonify(evidence(work="isolation", ms=ms, **result))
