"""One id per request, shared by nginx's log, the app's log lines and the client.

nginx sets ``X-Request-ID`` (keeping a well-formed one from the client, replacing anything
else). The app accepts the header only when it has the same safe shape, so a direct caller
cannot inject log lines or megabyte ids either, and generates one when it is missing.

A generated id only has to be unique, not unguessable: 128 bits from ``random`` (reseeded in
every forked worker) cost no system call, where ``uuid.uuid4()`` reads the kernel's
randomness on every request that arrives without one.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from flask import has_request_context, request

HEADER = "X-Request-ID"
ENVIRON_HEADER = "HTTP_X_REQUEST_ID"  # the header as a WSGI server hands it to the app
# Where app/observability.py leaves the chosen id for the app (views, errors, log lines).
ENVIRON_KEY = "app.request_id"
# Same rule as nginx/snippets/http/request-id.conf: 1-128 characters from a log-safe alphabet.
VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def current_request_id() -> str | None:
    """This request's id; None outside a request, or when observability is off
    (app/settings.py)."""
    if not has_request_context():
        return None
    return in_environ(request.environ)


def in_environ(environ: Mapping[str, Any]) -> str | None:
    """The id app/observability.py chose for the request with this WSGI environ (None when
    observability is off): for code that holds the environ already, on the hot path."""
    request_id: str | None = environ.get(ENVIRON_KEY)
    return request_id


def choose(supplied: str) -> str:
    """The id for a request that arrived with ``supplied`` (empty when it had none)."""
    return supplied if VALID_ID.fullmatch(supplied) else f"{random.getrandbits(128):032x}"
