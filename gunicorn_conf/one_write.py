"""A response's head and body leave in one write, not two.

Gunicorn writes a response as the app hands it over: the head (status line and headers) goes
out in one ``send()`` the moment the first body bytes arrive, and those bytes in a second.
For the small answers an API mostly gives, that is two system calls where one would do, two
TCP segments, and two wake-ups for nginx to read one answer. Both ends pay for it on every
request; under load the sends are the largest single item in a worker's profile (py-spy).
Other servers coalesce the same way (aiohttp, Pitchfork).

What changes is when the head's bytes are handed to the kernel, never which bytes: the head
is built by Gunicorn's own code, held, and sent with the first body bytes that follow in the
same ``write()``. So only a response whose length is known is held (``Content-Length``).
Everything else is written as Gunicorn writes it:

- a chunked (streamed) answer, whose head should leave before the app has the rest;
- a file sent by ``sendfile(2)``, which cannot carry the head;
- HTTP/2, whose own response class Gunicorn picks per connection;
- the error pages Gunicorn answers itself.

A head with no body to follow (HEAD, 204, 304, an empty body) leaves when the response
closes, as it would have. The benchmark (docs/bench/bench.md) measures the CPU a request
costs; tests/unit/test_one_write.py and tests/integration/test_one_write.py check the bytes
and the segments.

Under gevent the one write also skips gevent's Python wrappers. gevent's ``sendall`` is four
Python calls around the OS socket's ``send()``, there to wait when the kernel's buffer is
full; for an answer that fits the buffer, which is nearly every answer, it never waits. So a
gevent worker calls the OS socket's own non-blocking ``send()`` first, and hands whatever it
did not take (nothing, usually) to gevent's ``sendall``, which waits as it always does. Same
bytes, same errors; only plain gevent sockets take this path, never TLS ones (gevent's
SSLSocket is a subclass: its bytes must go through TLS).

Installed in each worker of all three setups by base.py's post_worker_init hook: Gunicorn
builds every HTTP/1 response through ``gunicorn.http.wsgi.create``, which uses that module's
``Response`` class.
"""

import sys

from gunicorn.http import wsgi


class _KeepBytes:
    """Takes the socket's place while Gunicorn builds the head: keeps the bytes it is given
    instead of sending them."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = b""

    def sendall(self, data: bytes) -> None:
        self.data += data


class OneWriteResponse(wsgi.Response):
    """Gunicorn's HTTP/1 response, holding a fixed-length head until its body is written."""

    _held: bytes | None = None  # the head, built and not sent yet
    _head_alone = False  # set while a file goes out by sendfile(2)

    def send_headers(self) -> None:
        if self.headers_sent or self.chunked or self._head_alone:
            super().send_headers()
            return
        sock, keep = self.sock, _KeepBytes()
        self.sock = keep
        try:
            super().send_headers()
        finally:
            self.sock = sock
        self._held = keep.data

    def _emit_body(self, data: bytes) -> None:
        held, self._held = self._held, None
        if held is None:
            super()._emit_body(data)
        else:
            # Not chunked (send_headers holds no chunked head): the body goes as it is.
            send_whole(self.sock, held + data)

    def _send_held(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self.sock.sendall(held)

    def sendfile(self, respiter: wsgi.FileWrapper) -> bool:
        self._send_held()
        self._head_alone = True
        return super().sendfile(respiter)

    def close(self) -> None:
        super().close()
        self._send_held()


# gevent's plain socket class in a gevent worker (install() finds it); None elsewhere.
_gevent_socket: type | None = None


def send_whole(sock, data: bytes) -> None:
    """``sock.sendall(data)``; on a plain gevent socket, the OS socket's ``send()`` first."""
    if type(sock) is not _gevent_socket:
        sock.sendall(data)
        return
    try:
        sent = sock._sock.send(data)  # gevent keeps its OS socket non-blocking
    except BlockingIOError:
        sent = 0
    if sent < len(data):
        sock.sendall(memoryview(data)[sent:])


def install() -> None:
    """Make every HTTP/1 response Gunicorn builds from now on a OneWriteResponse. A gevent
    worker has imported gevent.socket by now (Gunicorn's gevent worker does, to serve); a
    sync or gthread worker never loads gevent."""
    global _gevent_socket
    wsgi.Response = OneWriteResponse
    gevent_socket = sys.modules.get("gevent.socket")
    _gevent_socket = getattr(gevent_socket, "socket", None)
