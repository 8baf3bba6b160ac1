"""A real gthread setup leaves new connections to the worker that can serve them
(gunicorn_conf/least_loaded.py).

Stock Gunicorn lets whichever worker wakes first take a new connection, so a worker whose
every thread is busy takes about half of them, and those requests wait for its threads
while a sibling sits idle. Here every thread of one worker (A) is kept busy, and new
connections arrive together. A busy worker with more requests in hand than its sibling (by
more than SLACK) may take one connection per MAX_WAIT at most, so nearly all of them must be
answered by the other worker (B). (With stock Gunicorn's worker about half are A's; the
chance that nine or ten of ten land on B by luck is about 1 %.)
"""

from __future__ import annotations

import json
import re
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import read_answer, wait_until

from gunicorn_conf.least_loaded import SLACK
from harness import launch

# Per worker: A's lead over B stays above SLACK while B serves all the new connections.
THREADS = 16
NEW_CONNECTIONS = 10
assert THREADS > NEW_CONNECTIONS + SLACK


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("idle-first")
    env = {
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": str(THREADS),
        # One metrics folder for both workers: B's /metrics shows A's requests in flight.
        "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics"),
    }
    (folder / "metrics").mkdir()
    with launch.gunicorn("gthread", folder / "gthread.log", env=env) as running:
        yield running


def connect(server) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=20)


def send(sock: socket.socket, path: str) -> None:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())


def ask(sock: socket.socket, path: str) -> bytes:
    send(sock, path)
    head, body, _ = read_answer(sock)
    assert head.startswith(b"HTTP/1.1 200 "), head
    return body


def pid_of(sock: socket.socket) -> int:
    return json.loads(ask(sock, "/api/whoami"))["pid"]


def test_a_busy_worker_leaves_new_connections_to_an_idle_sibling(server):
    a_pid, a_connections, tried = None, [], 0
    try:
        # 1. Connections to one worker, A, one for each of its threads (those that reach B
        # are closed).
        while len(a_connections) < THREADS:
            tried += 1
            assert tried <= 400, "could not give one worker enough connections"
            sock = connect(server)
            pid = pid_of(sock)
            a_pid = a_pid or pid
            if pid == a_pid:
                a_connections.append(sock)
            else:
                sock.close()

        # 2. Every thread of A busy for seconds (I/O: A's main loop stays free to accept).
        for sock in a_connections:
            send(sock, "/api/io?ms=4000")
        in_flight = re.compile(r'^http_requests_in_flight\{worker_class="gthread"\} (\S+)$', re.M)

        def requests_in_flight() -> float:
            with connect(server) as sock:
                return float(in_flight.search(ask(sock, "/metrics").decode())[1])

        wait_until(
            lambda: requests_in_flight() >= THREADS,
            timeout=10,
            what="A's threads to be busy (a probe that reaches A waits for them too)",
        )

        # 3. New connections, all at once: who answers each?
        def new_connection_answered_by(_: int) -> int:
            with connect(server) as sock:
                return pid_of(sock)

        with ThreadPoolExecutor(NEW_CONNECTIONS) as pool:
            pids = list(pool.map(new_connection_answered_by, range(NEW_CONNECTIONS)))
        assert len(set(pids) - {a_pid}) == 1, pids  # one sibling: B
        assert pids.count(a_pid) <= 1, (
            f"{pids.count(a_pid)} of {NEW_CONNECTIONS} new connections went to the worker whose "
            "threads were all busy"
        )
    finally:
        for sock in a_connections:
            sock.close()
