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
import sys
from datetime import UTC, datetime

from flask import Flask

from app.request_id import current_request_id

# Who served a response: app/observability.py adds them, nginx logs and hides them.
WORKER_CLASS_HEADER = "X-Worker-Class"
WORKER_PID_HEADER = "X-Worker-Pid"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def init_app(app: Flask) -> None:
    """The app's log lines as JSON on standard error."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    app.logger.handlers[:] = [handler]
    app.logger.setLevel(logging.INFO)
    app.logger.propagate = False
