"""The demo Flask application.

Flask itself never starts a thread or a process: whatever serves this app (Gunicorn's sync,
gthread or gevent workers, or Werkzeug's dev server) owns the concurrency. This package knows
no server: it learns what serves it from the WSGI environ and the running thread / greenlet
(see :mod:`app.serving`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from app import api, errors, health, observability
from app.proxies import TrustedProxies
from app.settings import Settings


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the application; ``overrides`` (tests) win over the environment."""
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    settings = Settings.from_environ()
    app.config.from_mapping(settings.flask_config())
    if overrides:
        app.config.from_mapping(overrides)

    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        # The client's address, scheme, host and the URL prefix (/sync, ...) as the proxy
        # reports them: request.remote_addr, request.url and url_for(_external=True) are
        # then what the client used (https://host:port/sync/...), not the proxy's hop.
        # (Werkzeug's ProxyFix, with a cheaper header split: app/proxies.py.)
        app.wsgi_app = TrustedProxies(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops
        )

    if app.config["OBSERVABILITY"]:
        observability.init_app(app)
    errors.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)

    # Readiness: everything above is done, so the app can take traffic. A real app would
    # also check its database pool etc. here; this flag is what /readyz reports.
    app.extensions["ready"] = True
    return app
