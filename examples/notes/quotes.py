"""The quote service the notes app calls over HTTP: a stand-in for "another service",
started by the app itself, one per worker process, on a free loopback port.

It runs in a thread (a greenlet under the gevent setup, whose monkey-patching makes
threading cooperative), answers GET / with a JSON quote after a short wait (as a real
service would), and lives as long as its process.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

QUOTES = (
    "Simple is better than complex.",
    "Errors should never pass silently.",
    "Now is better than never.",
)
WAIT_S = 0.02  # what the "remote" service takes to answer

_lock = threading.Lock()
_started: tuple[int, str] | None = None  # (pid, url): a forked child starts its own


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the app's pooled session reuses it

    def do_GET(self) -> None:
        time.sleep(WAIT_S)
        body = json.dumps({"quote": QUOTES[int(time.time()) % len(QUOTES)]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:  # quiet: the app's server logs requests
        pass


def url() -> str:
    """The service's URL in this process, started on first use."""
    global _started
    with _lock:
        if _started is None or _started[0] != os.getpid():
            server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            _started = (os.getpid(), f"http://127.0.0.1:{server.server_port}/")
        return _started[1]
