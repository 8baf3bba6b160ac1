"""The answers Gunicorn gives itself, before the app sees a request, in the app's JSON shape.

A request Gunicorn cannot parse (a malformed line or header, too many header fields, a bad
chunk size) never reaches Flask: Gunicorn answers it with a small HTML page of its own. Behind
nginx most of them never get that far, since nginx refuses them first with its own JSON
(nginx/snippets/server/json-errors.conf); but a client that reaches Gunicorn directly, or a
request nginx accepts and Gunicorn's parser does not (more header fields than the C parser
reads, base.py), would get HTML where every other error of the stack is JSON.

This writes the same status, reason and message as JSON instead, with the app's fields
(``status``, ``error``, ``message``: app/errors.py): the error code is the reason phrase in
snake case, as the app names Werkzeug's. The message is Gunicorn's own, which says what was
wrong; it is built by Gunicorn from the request, so it goes out JSON-escaped, never as markup.

Installed in each worker by base.py's post_worker_init hook: Gunicorn's workers call
``gunicorn.util.write_error`` by module attribute for every such answer.
"""

from __future__ import annotations

import json

from gunicorn import util


def error_code(reason: str) -> str:
    """'Request Header Fields Too Large' -> 'request_header_fields_too_large'."""
    return "_".join(reason.lower().split())


def answer(status: int, reason: str, message: str) -> bytes:
    """The whole HTTP answer: Gunicorn closes the connection after it, and says so."""
    body = json.dumps({"status": status, "error": error_code(reason), "message": message})
    data = body.encode() + b"\n"
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode("latin-1") + data


def write_error(sock, status_int: int, reason: str, mesg: str) -> None:
    util.write_nonblock(sock, answer(status_int, reason, mesg))


def install() -> None:
    util.write_error = write_error
