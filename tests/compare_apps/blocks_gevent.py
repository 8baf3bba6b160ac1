"""Waits inside C, where gevent cannot switch: the 200 ms wait holds the whole worker's loop,
as a C database driver's wait does. Under sync and gthread it is an ordinary wait (ctypes
releases the GIL around the call)."""

import ctypes
import json

WAIT_S = 0.200
libc = ctypes.CDLL(None)


def app(environ, start_response):
    libc.usleep(int(WAIT_S * 1_000_000))  # no monkey-patch reaches a C function
    body = json.dumps({"waited_ms": WAIT_S * 1000}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response("200 OK", headers)
    return [body]
