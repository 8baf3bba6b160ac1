"""Hostile and malformed input through nginx: each gets its documented status and a JSON
body (or, for an ignored header, a normal answer), never a 5xx, and the stack stays healthy."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
import requests
from helpers import raw_http

from harness.launch import SETUPS

H = b"Host: localhost\r\n"
WHOAMI = b"/sync/api/whoami"


def header_fields(count: int) -> bytes:
    """``count`` small header fields, one line each."""
    return b"".join(b"X-H%d: v\r\n" % i for i in range(count))


# (name, raw request, expected status, expected JSON `error`, or None for a normal answer)
CASES = [
    (
        "oversized body",
        b"POST "
        + WHOAMI
        + b" HTTP/1.1\r\n"
        + H
        + b"Content-Length: 2000000\r\n\r\n"
        + b"x" * 2_000_000,
        413,
        "payload_too_large",
    ),
    (
        "oversized header",
        b"GET " + WHOAMI + b" HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 10_000 + b"\r\n\r\n",
        400,
        "bad_request",
    ),
    (
        "oversized cookie",
        b"GET " + WHOAMI + b" HTTP/1.1\r\n" + H + b"Cookie: c=" + b"a" * 9000 + b"\r\n\r\n",
        400,
        "bad_request",
    ),
    (
        "many headers (200)",
        b"GET " + WHOAMI + b" HTTP/1.1\r\n" + H + header_fields(200) + b"\r\n",
        200,
        None,
    ),
    (
        # More than Gunicorn's parser reads (limit_request_fields, gunicorn_conf/base.py):
        # nginx passes them on, and Gunicorn's own answer is JSON too (json_errors.py).
        "too many headers (300)",
        b"GET " + WHOAMI + b" HTTP/1.1\r\n" + H + header_fields(300) + b"\r\n",
        400,
        "bad_request",
    ),
    (
        "headers over 32 KiB in all",
        b"GET "
        + WHOAMI
        + b" HTTP/1.1\r\n"
        + H
        + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 4000) for i in range(10))
        + b"\r\n",
        400,
        "bad_request",
    ),
    (
        "request line over 8 KiB",
        b"GET " + WHOAMI + b"?" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n",
        414,
        "uri_too_long",
    ),
    ("garbage request line", b"GARBAGE\r\n\r\n", 400, "bad_request"),
    ("lower-case method", b"get " + WHOAMI + b" HTTP/1.1\r\n" + H + b"\r\n", 400, "bad_request"),
    (
        "unknown method",
        b"FOO " + WHOAMI + b" HTTP/1.1\r\n" + H + b"\r\n",
        405,
        "method_not_allowed",
    ),
    (
        "POST to a GET endpoint",
        b"POST " + WHOAMI + b" HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n",
        405,
        "method_not_allowed",
    ),
    (
        "POST to the static page",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n",
        405,
        "method_not_allowed",
    ),
    (
        "HTTP/2.0 in plain text",
        b"GET " + WHOAMI + b" HTTP/2.0\r\n" + H + b"\r\n",
        400,
        "unsupported_request",
    ),
    ("missing Host (HTTP/1.1)", b"GET " + WHOAMI + b" HTTP/1.1\r\n\r\n", 400, "bad_request"),
    (
        "unknown Host",
        b"GET " + WHOAMI + b" HTTP/1.1\r\nHost: evil.example\r\n\r\n",
        421,
        "misdirected_request",
    ),
    (
        "Host with userinfo",
        b"GET " + WHOAMI + b" HTTP/1.1\r\nHost: localhost@evil.example\r\n\r\n",
        421,
        "misdirected_request",
    ),
    (
        "absolute URI to another host",
        b"GET http://evil.example" + WHOAMI + b" HTTP/1.1\r\n" + H + b"\r\n",
        421,
        "misdirected_request",
    ),
    ("path traversal", b"GET /../../etc/passwd HTTP/1.1\r\n" + H + b"\r\n", 400, "bad_request"),
    (
        "encoded path traversal",
        b"GET /sync/..%2f..%2fetc/passwd HTTP/1.1\r\n" + H + b"\r\n",
        400,
        "bad_request",
    ),
    (
        "traversal inside the static root",
        b"GET /static/../../etc/passwd HTTP/1.1\r\n" + H + b"\r\n",
        400,
        "bad_request",
    ),
    (
        "raw invalid UTF-8 in path",
        b"GET /sync/api/who\xff HTTP/1.1\r\n" + H + b"\r\n",
        400,
        "bad_request",
    ),
    (
        "raw non-ASCII in query",
        b"GET /sync/api/io?ms=\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n",
        400,
        "bad_request",
    ),
    (
        "escaped invalid UTF-8 in query",
        b"GET /sync/api/io?ms=%ff HTTP/1.1\r\n" + H + b"\r\n",
        400,
        "invalid_parameter",
    ),
    (
        "escaped NUL in path",
        b"GET /sync/api/who%00ami HTTP/1.1\r\n" + H + b"\r\n",
        400,
        "bad_request",
    ),
    (
        "bad query value",
        b"GET /sync/api/io?ms=-1 HTTP/1.1\r\n" + H + b"\r\n",
        400,
        "invalid_parameter",
    ),
    (
        "query value out of range",
        b"GET /gevent/api/cpu?ms=99999999 HTTP/1.1\r\n" + H + b"\r\n",
        400,
        "invalid_parameter",
    ),
    (
        "smuggling: Content-Length and Transfer-Encoding",
        b"POST "
        + WHOAMI
        + b" HTTP/1.1\r\n"
        + H
        + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "bad_request",
    ),
    (
        "smuggling: two Content-Lengths",
        b"POST "
        + WHOAMI
        + b" HTTP/1.1\r\n"
        + H
        + b"Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        400,
        "bad_request",
    ),
    (
        "smuggling: unknown transfer coding",
        b"POST "
        + WHOAMI
        + b" HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        400,
        "unsupported_request",
    ),
    (
        "negative Content-Length",
        b"POST " + WHOAMI + b" HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n",
        400,
        "bad_request",
    ),
    (
        "header line without a colon (ignored)",
        b"GET " + WHOAMI + b" HTTP/1.1\r\n" + H + b"BadHeader\r\n\r\n",
        200,
        None,
    ),
    (
        "absurd X-Request-ID (replaced)",
        b"GET "
        + WHOAMI
        + b" HTTP/1.1\r\n"
        + H
        + b"X-Request-ID: "
        + b"\x01<script>" * 500
        + b"\r\n\r\n",
        200,
        None,
    ),
]


@pytest.mark.parametrize("name, raw, status, error", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_gets_its_status_and_a_json_body_never_a_5xx(
    native_stack, name, raw, status, error, figures
):
    port = urlsplit(native_stack.base_url).port
    got_status, headers, body = raw_http(port, raw)
    assert got_status == status, body[:300]
    assert got_status < 500
    assert headers["content-type"].startswith("application/json"), headers
    document = json.loads(body)
    if error is not None:
        assert document["error"] == error and document["message"], document
    else:
        assert document["worker_class"] == "sync"
    figures(f"hostile.{name}", status=got_status)


def test_a_spoofed_request_id_is_replaced_before_it_reaches_the_app(native_stack):
    port = urlsplit(native_stack.base_url).port
    _, headers, body = raw_http(
        port,
        b"GET " + WHOAMI + b" HTTP/1.1\r\n" + H + b"X-Request-ID: " + b"a" * 5000 + b"\r\n\r\n",
    )
    assert len(headers["x-request-id"]) == 32
    assert json.loads(body)["request_id"] == headers["x-request-id"]


def test_a_spoofed_x_forwarded_for_never_reaches_the_app(native_stack):
    response = requests.get(
        native_stack.url("gthread", "/api/whoami"),
        timeout=5,
        headers={"X-Forwarded-For": "6.6.6.6, 7.7.7.7", "X-Real-IP": "6.6.6.6"},
    )
    assert response.json()["client_addr"] == "127.0.0.1"


def test_the_stack_is_healthy_after_the_hostile_inputs(native_stack):
    for setup in SETUPS:
        assert requests.get(native_stack.url(setup, "/readyz"), timeout=5).status_code == 200
