"""gunicorn_conf/json_errors.py: the answers Gunicorn gives itself, as the app's JSON."""

from __future__ import annotations

import json
import socket

import gunicorn.util

from gunicorn_conf import json_errors


def split(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    head, body = answer.split(b"\r\n\r\n", 1)
    status, *lines = head.decode("latin-1").split("\r\n")
    return status, dict(line.split(": ", 1) for line in lines), body


def test_the_answer_is_json_in_the_apps_shape_with_gunicorns_status_and_message():
    status, headers, body = split(
        json_errors.answer(431, "Request Header Fields Too Large", "Error parsing headers: 'x'")
    )
    assert status == "HTTP/1.1 431 Request Header Fields Too Large"
    assert headers["Content-Type"] == "application/json"
    assert headers["Connection"] == "close"
    assert int(headers["Content-Length"]) == len(body)
    assert json.loads(body) == {
        "status": 431,
        "error": "request_header_fields_too_large",
        "message": "Error parsing headers: 'x'",
    }


def test_what_the_client_sent_comes_back_as_a_json_string_never_as_markup():
    message = "Invalid Request Line '<script>\"\\x00</script>'"
    _, _, body = split(json_errors.answer(400, "Bad Request", message))
    assert json.loads(body)["message"] == message
    assert b"<html" not in body


def test_installed_gunicorns_own_error_writer_sends_it(monkeypatch):
    monkeypatch.setattr(gunicorn.util, "write_error", gunicorn.util.write_error)
    json_errors.install()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        gunicorn.util.write_error(ours, 400, "Bad Request", "Invalid HTTP Version 'HTTP/9'")
        ours.shutdown(socket.SHUT_WR)
        received = b"".join(iter(lambda: theirs.recv(65536), b""))
    status, _, body = split(received)
    assert status == "HTTP/1.1 400 Bad Request"
    assert json.loads(body)["error"] == "bad_request"
