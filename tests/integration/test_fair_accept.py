"""A gthread worker whose threads are all busy leaves new connections to a worker with a
thread free (gunicorn_conf/fair_accept.py), instead of taking them and queueing their
requests while the other worker's threads sit idle.

Which worker takes a connection is a race between processes, so the test first decides who
is busy: with one worker stopped (SIGSTOP), the other takes one slow request per thread.
Then both listen, and as many slow requests again arrive at once. Without fair_accept.py the
busy worker, whose main thread is idle, wins each race about half the time; with it, the
worker with free threads serves them all. The shipped gthread config, 2 workers of
``THREADS`` threads (8: a busy worker would win none of 8 races about once in 256 runs)."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor

import psutil
import requests
from helpers import socket_inodes, tcp_sockets, wait_until

from harness import launch

THREADS = 8
# Long enough that the first worker's threads are still busy when the second batch arrives.
REQUEST_MS = 4000


def test_a_worker_with_every_thread_busy_leaves_new_connections_to_a_worker_with_threads_free(
    tmp_path,
):
    env = {"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": str(THREADS)}
    with launch.gunicorn("gthread", tmp_path / "gthread.log", env=env) as app:
        workers = wait_until(lambda: two(app.process.pid), timeout=30, what="both workers")
        busy, free = workers
        slow = f"{app.base_url}/api/io?ms={REQUEST_MS}"
        with ThreadPoolExecutor(2 * THREADS) as pool:
            os.kill(free, signal.SIGSTOP)
            try:
                first = [pool.submit(get_pid, slow) for _ in range(THREADS)]
                wait_until(
                    lambda: held(app.port, busy) == THREADS,
                    timeout=10,
                    what=f"one worker holding {THREADS} connections",
                )
            finally:
                os.kill(free, signal.SIGCONT)
            wait_until(
                lambda: psutil.Process(free).status() == psutil.STATUS_SLEEPING,
                timeout=10,
                what="the other worker waiting for connections again",
            )
            second = [pool.submit(get_pid, slow) for _ in range(THREADS)]
            served_first = [answer.result() for answer in first]
            served_second = [answer.result() for answer in second]
    assert served_first == [busy] * THREADS
    assert served_second == [free] * THREADS, (
        f"the worker with every thread busy ({busy}) took "
        f"{served_second.count(busy)} of {THREADS} new connections"
    )


def two(master: int) -> list[int] | None:
    children = [child.pid for child in psutil.Process(master).children()]
    return children if len(children) == 2 else None


def get_pid(url: str) -> int:
    """Which worker answered, on a connection of its own."""
    response = requests.get(url, timeout=30, headers={"Connection": "close"})
    assert response.status_code == 200, response.text
    return int(response.headers["X-Worker-Pid"])


def held(port: int, worker: int) -> int:
    """The connections ``worker`` holds open on ``port``."""
    mine = socket_inodes(worker)
    return sum(1 for state, _, inode in tcp_sockets(port) if state == "01" and inode in mine)
