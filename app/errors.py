"""Errors as JSON values: an HTTP status, a machine-readable ``error`` code, a human ``message``.

Every error leaves the app this way, including Werkzeug's own (404, 405, 413 ...) and
unexpected exceptions, so a client never sees an HTML page or a traceback.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from app.request_id import current_request_id


class ApiError(Exception):
    """An error a client caused and can fix: raised by views, rendered as JSON."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}
        self.details = details


class Unavailable(ApiError):
    """A service the app waits on (the database, app/db.py; the upstream, app/upstream.py)
    cannot serve this request now: 503, with ``Retry-After`` so clients back off briefly."""

    RETRY_AFTER_SECONDS = 1

    def __init__(self, error: str, message: str) -> None:
        super().__init__(
            503, error, message, headers={"Retry-After": str(self.RETRY_AFTER_SECONDS)}
        )


def error_body(status: int, error: str, message: str, **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "error": error, "message": message}
    body.update(details)
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    return body


def _error_code(exc: HTTPException) -> str:
    """'Method Not Allowed' -> 'method_not_allowed'."""
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def _handle_api_error(exc: ApiError) -> ResponseReturnValue:
    body = jsonify(error_body(exc.status, exc.error, exc.message, **exc.details))
    return body, exc.status, exc.headers


def _handle_http_exception(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 500
    response = jsonify(error_body(status, _error_code(exc), exc.description or exc.name))
    response.status_code = status
    # Keep headers the exception carries, such as 405's Allow.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _handle_unexpected(exc: Exception) -> ResponseReturnValue:
    # Logged with its traceback for the operator; the client gets no internals.
    current_app.logger.exception("unhandled exception")
    body = error_body(500, "internal_server_error", "The server hit an unexpected error.")
    return jsonify(body), 500


def init_app(app: Flask) -> None:
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
