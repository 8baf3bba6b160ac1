"""Logging that joins on one key, the request id, at no cost per request beyond a header.

* The app's own log lines are JSON and carry the request id.
* Each response names who served it in two headers, ``X-Worker-Class`` and ``X-Worker-Pid``.
  nginx writes them into its JSON access line and hides them from clients
  (nginx/snippets/http/logging.conf, nginx/snippets/location/proxy.conf), so its one line
  per request holds the request id, the upstream, its timing and the worker, and no second
  access log is needed behind it (gunicorn_conf/base.py).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

from flask import Flask, Response, g, has_request_context


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and g.get("request_id"):
            entry["request_id"] = g.request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def name_the_worker(response: Response, kind: str) -> None:
    """The headers nginx logs (and hides): who served this response."""
    response.headers["X-Worker-Class"] = kind
    response.headers["X-Worker-Pid"] = str(os.getpid())


def init_app(app: Flask) -> None:
    """The app's log lines as JSON on standard error."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    app.logger.handlers[:] = [handler]
    app.logger.setLevel(logging.INFO)
    app.logger.propagate = False
