"""The evidence endpoints: every response says which process, thread and greenlet served it."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from app import isolation, params, work
from app.request_id import current_request_id
from app.serving import execution_context

bp = Blueprint("api", __name__, url_prefix="/api")


def evidence(started_at: float, **extra: Any) -> dict[str, Any]:
    """The whoami fields: who served this request, and when (server clock, epoch seconds:
    ``started_at`` is taken by the view as it starts, the finish time here)."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    body = execution_context(req.environ)
    body.update(
        request_id=current_request_id(),
        client_addr=req.remote_addr,
        path=req.path,
        scheme=req.scheme,
        started_at=round(started_at, 6),
        finished_at=round(time.time(), 6),
    )
    body.update(extra)
    return body


def _ms_arg() -> int:
    return params.int_arg("ms", default=100, minimum=0, maximum=current_app.config["MAX_WORK_MS"])


@bp.get("/whoami")
def whoami() -> ResponseReturnValue:
    started_at = time.time()
    # The URL the client used to reach this endpoint: scheme, host and prefix as seen through
    # the proxy (https://... behind TLS at nginx; ProxyFix in create_app). The same as
    # url_for("api.whoami", _external=True), without building it from the URL map.
    return jsonify(evidence(started_at, url=request.base_url))


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


@bp.get("/isolation")
def isolation_check() -> ResponseReturnValue:
    started_at = time.time()
    token = params.token_arg("token")
    ms = _ms_arg()
    result = isolation.run_experiment(token, lambda: work.wait_like_io(ms))
    return jsonify(evidence(started_at, work="isolation", ms=ms, **result))
