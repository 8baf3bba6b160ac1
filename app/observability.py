"""Request ids, metrics and the worker headers nginx logs, as one WSGI middleware.

Every request pays for what runs here, so it runs where it is cheapest: around the Flask app,
on the WSGI environ and the raw header list, not as Flask ``before_request`` /
``after_request`` / ``teardown_request`` hooks. Hooks cost a coroutine check each on every
call, a context-local lookup for every ``request`` and ``g`` access, and a scan of the header
list for every ``response.headers[...] =``; here a header is one ``list.append``. What each
concern does lives in its own module: app/request_id.py, app/metrics.py, app/logs.py.
create_app() leaves all of it out when OBSERVABILITY is off (app/settings.py), which is how
the benchmark measures its cost.

Flask's ``request`` stays the place views read from: the chosen id is put into the environ
(``request_id.ENVIRON_KEY``) before Flask builds its request, so views, error handlers and
log lines find it on ``request.environ`` under any worker class.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from flask import Flask

from app import logs, metrics, request_id
from app.serving import worker_class

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


# This process's id, as the X-Worker-Pid header carries it: read once, and again in a forked
# child, not with a system call on every request.
_pid = str(os.getpid())


def _forked() -> None:
    global _pid
    _pid = str(os.getpid())


os.register_at_fork(after_in_child=_forked)


class Observability:
    """Wraps the Flask app's WSGI callable: chooses the request id, counts and times the
    request, and adds ``X-Request-ID``, ``X-Worker-Class`` and ``X-Worker-Pid`` to the
    response (nginx logs the last two and hides them from clients)."""

    def __init__(self, wsgi_app: WSGIApplication) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        chosen = request_id.choose(environ.get(request_id.ENVIRON_HEADER, ""))
        environ[request_id.ENVIRON_KEY] = chosen
        kind = worker_class(environ)
        added = [
            (request_id.HEADER, chosen),
            (logs.WORKER_CLASS_HEADER, kind),
            (logs.WORKER_PID_HEADER, _pid),
        ]
        answered: list[str] = []

        def observed_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            # Called by Flask while its request context is still open: the matched route can
            # be read now, not after Flask returns (it drops the request from the environ).
            answered[:] = (status, metrics.route(environ))
            headers.extend(added)
            return start_response(status, headers, exc_info)

        counted = metrics.start(environ, kind)
        started = perf_counter()
        try:
            return self.wsgi_app(environ, observed_start_response)
        finally:
            # Also when the app raised (only under TESTING / PROPAGATE_EXCEPTIONS does an
            # exception leave Flask): in-flight can never drift upwards.
            if counted:
                status, route = answered or ("500", metrics.UNMATCHED)
                metrics.finish(environ, route, status, kind, perf_counter() - started)


def init_app(app: Flask) -> None:
    logs.init_app(app)
    app.register_blueprint(metrics.bp)
    app.wsgi_app = Observability(app.wsgi_app)  # type: ignore[method-assign]
