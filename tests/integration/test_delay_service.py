"""The delay service (delay/) as a process: how it stops. It is stopped and started under load
by the outage tests, and by Compose on every `docker compose down`, so a stop must end it
promptly and cleanly, answering what it already started."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from delay_service import running_delay_service
from helpers import read_answer, wait_until

STOP_SECONDS = 5  # generous: a clean stop takes well under a second here


@contextmanager
def steady_keep_alive_load(port: int, connections: int) -> Iterator[list[int]]:
    """Clients each sending request after request on one connection until told to stop;
    yields a list counting the answers."""
    done = threading.Event()
    answers = [0] * connections

    def client(index: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=STOP_SECONDS) as conn:
            buffered = b""
            while not done.is_set():
                try:
                    conn.sendall(b"GET /delay?ms=0 HTTP/1.1\r\nHost: delay\r\n\r\n")
                    _, _, buffered = read_answer(conn, buffered)
                except (OSError, AssertionError):
                    return  # the service stopped and closed the connection
                answers[index] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    try:
        yield answers
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=STOP_SECONDS)


def test_a_stop_under_steady_keep_alive_traffic_ends_the_service_promptly():
    """Every connection busy with request after request: SIGTERM still ends the process (on
    3.11 asyncio.wait_for lost the shutdown's cancel in exactly this case, and it served on)."""
    with running_delay_service() as service, steady_keep_alive_load(service.port, 16) as answers:
        wait_until(lambda: all(answers), timeout=30, what="every client to be answered")
        assert service.process is not None
        service.process.terminate()
        assert service.process.wait(timeout=STOP_SECONDS) == 0
        service.process = None


def test_a_stop_answers_the_request_in_flight_then_closes():
    """A request already being waited on gets its answer, marked Connection: close, and the
    connection ends; nothing the service started is dropped."""
    with running_delay_service() as service:
        with socket.create_connection(("127.0.0.1", service.port), timeout=STOP_SECONDS) as conn:
            # Pipelined: the service reads the second request straight after answering the
            # first, with no await in between, so once the first answer is here the second
            # one is being waited on.
            conn.sendall(
                b"GET /healthz HTTP/1.1\r\nHost: delay\r\n\r\n"
                b"GET /delay?ms=1000 HTTP/1.1\r\nHost: delay\r\n\r\n"
            )
            head, _, buffered = read_answer(conn)
            assert head.startswith(b"HTTP/1.1 200")
            assert service.process is not None
            service.process.terminate()
            head, body, rest = read_answer(conn, buffered)
            assert head.startswith(b"HTTP/1.1 200") and body == b'{"waited_ms": 1000}'
            assert b"Connection: close" in head
            assert rest == b"" and conn.recv(1) == b"", "the connection stays open"
        assert service.process.wait(timeout=STOP_SECONDS) == 0
        service.process = None
