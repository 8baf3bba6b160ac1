"""Request ids, metrics and the worker headers nginx logs, wired in as one set of hooks.

Every request pays for what runs here, so the three concerns share one ``before_request``,
one ``after_request`` and one ``teardown_request`` (Flask inspects every hook for a
coroutine on every call), and each reads ``request`` and ``g`` through their context-local
proxies once. What each does lives in its own module: app/request_id.py, app/metrics.py,
app/logs.py. create_app() leaves all of it out when OBSERVABILITY is off (app/settings.py),
which is how the benchmark measures its cost.
"""

from __future__ import annotations

from flask import Flask, Request, Response, g, request
from flask.ctx import _AppCtxGlobals

from app import logs, metrics, request_id
from app.serving import worker_class


def _current() -> tuple[Request, _AppCtxGlobals]:
    """The request and g objects themselves, each looked up through its proxy once."""
    return request._get_current_object(), g._get_current_object()  # type: ignore[attr-defined]


def _before() -> None:
    req, ctx = _current()
    ctx.request_id = request_id.choose(req.headers.get(request_id.HEADER, ""))
    ctx.worker_class = kind = worker_class(req.environ)
    metrics.start(req, ctx, kind)


def _after(response: Response) -> Response:
    req, ctx = _current()
    # before_request hooks are skipped for some errors raised while the request is opened.
    if "request_id" in ctx:
        response.headers[request_id.HEADER] = ctx.request_id
        logs.name_the_worker(response, ctx.worker_class)
    metrics.finish(req, ctx, response)
    return response


def _teardown(_exc: BaseException | None) -> None:
    metrics.leave(g._get_current_object())


def init_app(app: Flask) -> None:
    logs.init_app(app)
    app.register_blueprint(metrics.bp)
    app.before_request(_before)
    app.after_request(_after)
    app.teardown_request(_teardown)
