"""gunicorn_conf/fair_accept.py's rules, step by step, on a stand-in for Gunicorn's gthread
worker with a real listening socket: what a busy worker does with a connection it sees
waiting, and what it does once its patience is over. (tests/integration/test_fair_accept.py
shows the result with real workers racing for connections.)"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from gunicorn_conf import fair_accept


class StandIn:
    """The parts of Gunicorn's ThreadWorker that fair_accept.py wraps, doing what Gunicorn's
    do to the state it reads: accept one connection (non-blocking; none waiting, nothing
    taken) and hand it to the thread pool, take it back, listen or not."""

    def __init__(self, listener: socket.socket, threads: int) -> None:
        self.cfg = type("Cfg", (), {"threads": threads})()
        self.sockets = [listener]
        self.nr_conns = 0
        self._accepting = True
        self.in_pool: list[socket.socket] = []

    def accept(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        self.nr_conns += 1
        self.enqueue_req(conn)

    def enqueue_req(self, conn: socket.socket) -> None:
        self.in_pool.append(conn)

    def finish_request(self, conn: socket.socket, future: object) -> None:
        self.in_pool.remove(conn)

    def set_accept_enabled(self, enabled: bool) -> None:
        self._accepting = enabled


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    """fair_accept's monotonic clock, moved by the test."""
    now = [1000.0]
    monkeypatch.setattr(fair_accept.time, "monotonic", lambda: now[0])
    return now


def connect(listener: socket.socket) -> socket.socket:
    return socket.create_connection(listener.getsockname())


def test_a_worker_with_a_thread_free_takes_a_connection_at_once(listener, clock):
    worker = StandIn(listener, threads=2)
    fair_accept.install(worker)
    with connect(listener):
        worker.accept(listener)
        assert worker.nr_conns == 1 and worker._accepting


def test_a_busy_worker_leaves_a_waiting_connection_for_its_patience_then_takes_all(listener, clock):
    worker = StandIn(listener, threads=1)
    fair_accept.install(worker)
    with connect(listener), connect(listener), connect(listener):
        worker.accept(listener)  # its one thread now holds the first
        worker.accept(listener)  # the second, seen waiting: left to the others
        assert worker.nr_conns == 1 and not worker._accepting
        clock[0] += fair_accept.PATIENCE / 2
        worker.set_accept_enabled(True)  # Gunicorn's loop, under worker_connections
        assert worker.nr_conns == 1 and not worker._accepting
        clock[0] += fair_accept.PATIENCE
        worker.set_accept_enabled(True)  # still waiting: nobody else took them
        assert worker.nr_conns == 3 and worker._accepting
        assert len(worker.in_pool) == 3


def test_after_its_patience_a_busy_worker_takes_nothing_another_worker_took(listener, clock):
    worker = StandIn(listener, threads=1)
    fair_accept.install(worker)
    with connect(listener), connect(listener):
        worker.accept(listener)
        worker.accept(listener)
        taken_elsewhere, _ = listener.accept()  # another worker, meanwhile
        taken_elsewhere.close()
        clock[0] += fair_accept.PATIENCE
        worker.set_accept_enabled(True)
        assert worker.nr_conns == 1 and worker._accepting


@pytest.mark.parametrize(
    "elapsed",
    [fair_accept.PATIENCE / 10, fair_accept.PATIENCE],
    ids=["before the patience is over", "after it"],
)
def test_a_worker_whose_thread_came_free_during_its_patience_listens_as_a_free_one(
    listener, clock, elapsed
):
    worker = StandIn(listener, threads=1)
    fair_accept.install(worker)
    with connect(listener), connect(listener):
        worker.accept(listener)
        worker.accept(listener)  # busy: left to the others
        assert not worker._accepting
        worker.finish_request(worker.in_pool[0], None)  # its thread is free again
        clock[0] += elapsed
        worker.set_accept_enabled(True)  # Gunicorn's loop, woken by the finished request
        # Listening, and nothing taken in one go: the poller hands it what waits, one at a
        # time, as to any worker with a thread free.
        assert worker._accepting and worker.nr_conns == 1
        worker.accept(listener)
        assert worker.nr_conns == 2
