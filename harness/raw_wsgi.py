"""A WSGI app with no framework at all: the benchmark's measure of Flask's own cost.

gunicorn -c python:gunicorn_conf.sync harness.raw_wsgi:app
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"hello":"world"}'


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]
    )
    return [BODY]
