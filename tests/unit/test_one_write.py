"""gunicorn_conf/one_write.py: Gunicorn's own Response, writing a fixed-length answer's head
and body in one call, and every other answer as Gunicorn does. Each case runs a real
request, parsed by Gunicorn's parser, through both classes over a socket that records the
calls it gets; the bytes on the wire must be the same, only the number of writes differs.
(tests/integration/test_one_write.py checks real workers over TCP.)"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from gunicorn_conf import SETUPS, one_write
from gunicorn_conf.one_write import OneWriteResponse

ROOT = Path(__file__).resolve().parents[2]
STOCK = wsgi.Response
DATE = re.compile(rb"^Date: [^\r]*\r\n", re.M)


class RecordingSocket:
    """The socket a Response writes to: each call and its bytes, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    def sendall(self, data: bytes) -> None:
        self.calls.append(("sendall", bytes(data)))

    def sendfile(self, file, offset: int = 0, count: int | None = None) -> int:
        file.seek(offset)
        data = file.read(count)
        self.calls.append(("sendfile", data))
        return len(data)

    def wire(self) -> bytes:
        """What the peer receives, with the Date header (the clock) blanked."""
        return DATE.sub(b"Date: -\r\n", b"".join(data for _, data in self.calls))


def respond(response_class, method="GET", status="200 OK", headers=(), body=(), file=None):
    """One request through ``response_class`` as a Gunicorn worker runs it: parse, create,
    start_response, write each body item (or the file wrapper), close."""
    cfg = Config()
    client, server = socket.socketpair()
    with client, server:
        client.sendall(f"{method} /api/whoami HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        req = next(RequestParser(cfg, server, ("127.0.0.1", 40000)))
    sock = RecordingSocket()
    resp, environ = wsgi.create(
        req, sock, ("127.0.0.1", 40000), ("127.0.0.1", 8000), cfg, response_class=response_class
    )
    resp.start_response(status, list(headers))
    if file is not None:
        resp.write_file(environ["wsgi.file_wrapper"](file))
    for item in body:
        resp.write(item)
    resp.close()
    return sock


def both(**request):
    return respond(STOCK, **request), respond(OneWriteResponse, **request)


JSON = [("Content-Type", "application/json"), ("Content-Length", "11")]


def test_an_answer_of_known_length_leaves_in_one_write_with_gunicorns_bytes():
    stock, one = both(headers=JSON, body=[b'{"ok":true}'])
    assert len(stock.calls) == 2  # Gunicorn alone: the head, then the body
    assert [name for name, _ in one.calls] == ["sendall"]
    assert one.wire() == stock.wire()
    assert one.wire().endswith(b'\r\n\r\n{"ok":true}')


def test_a_body_in_several_pieces_carries_the_head_with_the_first():
    stock, one = both(headers=[("Content-Length", "6")], body=[b"ab", b"cd", b"ef"])
    assert len(one.calls) == len(stock.calls) - 1 == 3
    assert one.calls[0][1].endswith(b"\r\n\r\nab")
    assert one.wire() == stock.wire()


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param({"method": "HEAD", "headers": JSON, "body": [b'{"ok":true}']}, id="HEAD"),
        pytest.param({"status": "204 No Content"}, id="204"),
        pytest.param({"status": "304 Not Modified", "body": [b""]}, id="304"),
        pytest.param({"headers": [("Content-Length", "0")], "body": [b""]}, id="empty"),
    ],
)
def test_a_head_with_no_body_still_leaves_once_when_the_response_closes(request_):
    stock, one = both(**request_)
    assert len(one.calls) == 1
    assert one.wire() == stock.wire()
    assert one.wire().endswith(b"\r\n\r\n")


def test_a_streamed_answer_sends_its_head_before_the_app_has_the_rest():
    stock, one = both(body=[b"first", b"second"])  # no length: chunked
    assert b"Transfer-Encoding: chunked" in one.calls[0][1]
    assert one.calls[0][1].endswith(b"\r\n\r\n")  # the head alone, as Gunicorn sends it
    assert one.wire() == stock.wire()
    assert len(one.calls) == len(stock.calls)


def test_a_file_sent_by_sendfile_goes_after_its_head(tmp_path):
    path = tmp_path / "page.txt"
    path.write_bytes(b"file body")
    with path.open("rb") as f1, path.open("rb") as f2:
        stock = respond(STOCK, headers=[("Content-Length", "9")], file=f1)
        one = respond(OneWriteResponse, headers=[("Content-Length", "9")], file=f2)
    assert [name for name, _ in one.calls] == ["sendall", "sendfile"]
    assert one.calls[1][1] == b"file body"
    assert one.wire() == stock.wire()


@pytest.mark.parametrize("setup", SETUPS)
def test_each_setups_workers_install_it(setup):
    """A worker of each setup, once ready (the post_worker_init hook), makes every HTTP/1
    response Gunicorn builds a OneWriteResponse, takes gevent's direct path only in a gevent
    worker, formats Date once a second (date_header.py), decides the peer's trust once per
    address (peer_trust.py), freezes what it loaded (in a fresh interpreter: installing
    patches modules), and in a gthread worker only, leaves new connections to a worker with
    a thread free first (fair_accept.py: the worker's own methods are wrapped)."""
    code = (
        # What Gunicorn's gevent worker has imported by the time the hook runs.
        ("import gevent.socket\n" if setup == "gevent" else "")
        + f"import gunicorn_conf.{setup} as config\n"
        "import gc, types\n"
        # The parts of a worker the hook may touch: its config and its connection methods.
        "own = lambda *args: None\n"
        "worker = types.SimpleNamespace(cfg=types.SimpleNamespace(threads=2),\n"
        "    accept=own, enqueue_req=own, finish_request=own, set_accept_enabled=own)\n"
        "config.post_worker_init(worker=worker)\n"
        "from gunicorn import util\n"
        "from gunicorn.http import message, wsgi\n"
        "from gunicorn_conf import one_write\n"
        "print(wsgi.Response.__module__, wsgi.Response.__name__)\n"
        "print(getattr(one_write._gevent_socket, '__module__', None))\n"
        "print(type(util.http_date).__module__)\n"
        "print(message.HeaderPolicy._peer_is_trusted_proxy.__module__)\n"
        "print(gc.get_freeze_count() > 1000)\n"
        "print(sorted({getattr(worker, name).__module__ for name in\n"
        "    ('accept', 'enqueue_req', 'finish_request', 'set_accept_enabled')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    response, direct, date, trust, frozen, accept = out.stdout.splitlines()
    assert response.split() == ["gunicorn_conf.one_write", "OneWriteResponse"]
    assert direct == ("gevent._socket3" if setup == "gevent" else "None")
    assert date == "gunicorn_conf.date_header"
    assert trust == "gunicorn_conf.peer_trust"
    assert frozen == "True"
    wrapped = "['gunicorn_conf.fair_accept']" if setup == "gthread" else "['__main__']"
    assert accept == wrapped


class CountingSendall:
    """Mixed into gevent's socket class: counts the calls to gevent's own (slow) sendall."""

    calls: list[int] = []

    def sendall(self, data, flags=0):
        self.calls.append(len(data))
        return super().sendall(data, flags)


@pytest.fixture
def gevent_direct(monkeypatch):
    """send_whole() as in a gevent worker: the plain gevent socket class (here one that also
    counts its sendall calls) is the one it sends on directly."""
    from gevent import socket as gsocket

    class Plain(CountingSendall, gsocket.socket):
        pass

    CountingSendall.calls = []
    monkeypatch.setattr(one_write, "_gevent_socket", Plain)
    return Plain


def pair(plain) -> tuple:
    """A connected pair of sockets of the class ``plain``."""
    a, b = socket.socketpair()
    with a, b:
        return plain(fileno=os.dup(a.fileno())), plain(fileno=os.dup(b.fileno()))


def receive_all(sock, size: int) -> bytes:
    received = b""
    while len(received) < size:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {len(received)} of {size} bytes"
        received += chunk
    return received


def test_on_a_gevent_socket_a_small_answer_goes_straight_to_the_os_socket(gevent_direct):
    ours, theirs = pair(gevent_direct)
    with ours, theirs:
        one_write.send_whole(ours, b"HTTP/1.1 200 OK\r\n\r\nhello")
        assert receive_all(theirs, 24) == b"HTTP/1.1 200 OK\r\n\r\nhello"
    assert CountingSendall.calls == []


def test_what_the_kernel_does_not_take_at_once_is_sent_by_gevent_waiting(gevent_direct):
    import gevent

    ours, theirs = pair(gevent_direct)
    with ours, theirs:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        data = bytes(range(256)) * 8192  # 2 MiB: far more than the send buffer holds
        reader = gevent.spawn(receive_all, theirs, len(data))
        one_write.send_whole(ours, data)
        assert reader.get(timeout=10) == data
    assert len(CountingSendall.calls) == 1  # the rest, after what the kernel took at once
    assert 0 < CountingSendall.calls[0] < len(data)


def test_a_tls_socket_is_never_written_past_its_encryption(gevent_direct):
    """gevent's SSLSocket subclasses its plain socket: its bytes must go through its own
    sendall (TLS), never to the OS socket underneath."""

    class Encrypting(gevent_direct):
        sent: list[bytes] = []

        def sendall(self, data, flags=0):
            self.sent.append(bytes(data))

    ours, theirs = pair(Encrypting)
    with ours, theirs:
        one_write.send_whole(ours, b"secret")
        theirs.setblocking(False)
        with pytest.raises(BlockingIOError):
            theirs.recv(16)  # nothing reached the wire unencrypted
    assert Encrypting.sent == [b"secret"]


def test_sync_and_gthread_sockets_keep_their_own_sendall():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        one_write.send_whole(ours, b"plain")
        assert receive_all(theirs, 5) == b"plain"
