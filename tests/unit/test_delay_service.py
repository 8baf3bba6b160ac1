"""The delay service's routing (delay/__main__.py), without a socket: every request it can
get, and the answer's framing."""

from __future__ import annotations

import json

import pytest

from delay.__main__ import MAX_MS, answer, route


def test_delay_waits_the_asked_milliseconds():
    assert route("GET", "/delay?ms=250") == (200, {"waited_ms": 250}, 0.25)
    assert route("GET", "/delay") == (200, {"waited_ms": 0}, 0)
    assert route("GET", f"/delay?ms={MAX_MS}")[0] == 200


@pytest.mark.parametrize(
    "query", ["ms=-1", "ms=abc", f"ms={MAX_MS + 1}", "ms=1&ms=2", "ms=", "ms=1e3"]
)
def test_a_bad_ms_is_a_400_naming_it(query):
    status, body, wait = route("GET", f"/delay?{query}")
    assert (status, body["parameter"], wait) == (400, "ms", 0)


def test_other_paths_and_methods_are_refused_at_once():
    assert route("GET", "/healthz")[:2] == (200, {"status": "ok"})
    assert route("GET", "/nope")[0] == 404
    assert route("POST", "/delay?ms=1")[0] == 405


def test_an_answer_is_framed_for_keep_alive_or_close():
    raw = answer(200, {"waited_ms": 1}, keep_alive=True)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Connection: keep-alive" in head
    assert f"Content-Length: {len(body)}".encode() in head and json.loads(body) == {"waited_ms": 1}
    assert b"Connection: close" in answer(400, {}, keep_alive=False)
