"""gunicorn_conf/reuse_port.py's rule for a worker's own socket: closed when the worker stops
accepting for good, kept when it only pauses (a real Gunicorn: tests/integration/)."""

from __future__ import annotations

from gunicorn_conf.reuse_port import close_when_draining


class Listener:
    closed = False

    def close(self) -> None:
        self.closed = True


class Worker:
    """What the patch touches on Gunicorn's gthread worker."""

    def __init__(self) -> None:
        self.alive, self.sockets, self.accepting = True, [Listener()], True

    def set_accept_enabled(self, enabled: bool) -> None:
        self.accepting = enabled


def test_a_worker_that_pauses_accepting_keeps_its_socket():
    """At worker_connections the gthread worker stops accepting until a connection ends."""
    worker = Worker()
    close_when_draining(worker)
    worker.set_accept_enabled(False)
    assert worker.accepting is False and not worker.sockets[0].closed
    worker.set_accept_enabled(True)
    assert worker.accepting is True


def test_a_worker_that_stops_closes_its_socket_as_it_stops_accepting():
    worker = Worker()
    close_when_draining(worker)
    worker.alive = False  # SIGTERM, SIGHUP, max_requests
    worker.set_accept_enabled(False)
    assert worker.accepting is False and worker.sockets[0].closed
