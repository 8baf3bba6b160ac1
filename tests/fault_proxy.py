"""A TCP proxy that sits between nginx and one Gunicorn setup to watch and break connections.

It relays bytes both ways unchanged, and it records, for each connection, which side closed it
first: nginx (an idle keep-alive connection nginx gave up on) or the app (Gunicorn's own
keep-alive expiry). When armed, it resets the next connection nginx *reuses* for another
request instead of passing that request on: exactly what nginx sees when Gunicorn's
keep-alive expiry closes a connection at the moment nginx sends a request into it. Real
traffic hits that race only by chance, within microseconds; this makes it happen on demand.

Only for plain GETs without a body (a chunk that starts with a method is a new request).
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
from collections import Counter
from types import TracebackType

NGINX, APP = "nginx", "app"
_METHODS = (b"GET ", b"HEAD ")


class FaultProxy:
    def __init__(self, app_port: int) -> None:
        self.app_port = app_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.opened = 0  # connections nginx made
        self.closed_first: Counter[str] = Counter()  # NGINX / APP -> connections
        self.reused = 0  # requests that arrived on a connection that had carried one before
        self.resets = 0  # of those, reset by arm()
        self._armed = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def arm(self) -> None:
        """Reset the next connection nginx reuses, as its request arrives (once)."""
        self._armed.set()

    def __enter__(self) -> FaultProxy:
        self._spawn(self._accept)
        return self

    def __exit__(
        self, kind: type | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._listener.close()

    def all_closed(self) -> bool:
        """Every connection nginx made has ended (closed by either side, or reset)."""
        with self._lock:
            return self.opened == sum(self.closed_first.values()) + self.resets

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:  # closed: the proxy is done
                return
            self._spawn(self._relay, downstream)

    def _relay(self, downstream: socket.socket) -> None:
        with self._lock:
            self.opened += 1
        upstream = socket.create_connection(("127.0.0.1", self.app_port))
        requests = 0
        with downstream, upstream, selectors.DefaultSelector() as selector:
            selector.register(downstream, selectors.EVENT_READ, NGINX)
            selector.register(upstream, selectors.EVENT_READ, APP)
            while True:
                for key, _ in selector.select():
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        with self._lock:
                            self.closed_first[key.data] += 1
                        return
                    if key.data == APP:
                        downstream.sendall(data)
                        continue
                    if data.startswith(_METHODS):
                        requests += 1
                        if requests > 1:
                            with self._lock:
                                self.reused += 1
                            if self._armed.is_set():
                                self._armed.clear()
                                with self._lock:
                                    self.resets += 1
                                # Close with a reset, the request unread: as a kernel does
                                # when a server closes a socket with data still waiting.
                                downstream.setsockopt(
                                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                                )
                                return
                    upstream.sendall(data)
