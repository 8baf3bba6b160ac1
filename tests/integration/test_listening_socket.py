"""One listening socket per setup, opened by the Gunicorn master and shared by its workers
(``reuse_port = False``, gunicorn_conf/base.py says why). With sockets of their own, the
master holds none, so while every worker is being replaced at once nothing listens and each
new connection is refused: the soak saw 502s for exactly that (docs/measuring.md)."""

from __future__ import annotations

import psutil
import pytest
import requests
from helpers import socket_inodes, tcp_sockets, wait_until

from gunicorn_conf import SETUPS
from harness import launch


def listening_sockets(pid: int, port: int) -> set[str]:
    """The inodes of the sockets process ``pid`` holds that listen on loopback ``port``."""
    listening = {inode for state, _, inode in tcp_sockets(port) if state == "0A"}  # LISTEN
    return listening & socket_inodes(pid)


@pytest.mark.parametrize("setup", SETUPS)
def test_the_master_holds_the_one_listening_socket_and_every_worker_shares_it(setup, tmp_path):
    with launch.gunicorn(setup, tmp_path / f"{setup}.log", env={"WEB_CONCURRENCY": "2"}) as app:
        assert app.configs()[setup]["reuse_port"] is False
        master = app.process.pid
        (shared,) = listening_sockets(master, app.port)

        def workers_on_it() -> list[int]:
            workers = [child.pid for child in psutil.Process(master).children()]
            on_it = [pid for pid in workers if listening_sockets(pid, app.port) == {shared}]
            return on_it if len(on_it) == len(workers) == 2 else []

        workers = wait_until(workers_on_it, timeout=30, what="both workers on the master's socket")
        # Every worker replaced at once: the socket stays, so the next request is queued
        # until a new worker takes it, never refused.
        for pid in workers:
            psutil.Process(pid).kill()
        assert requests.get(app.base_url + "/api/whoami", timeout=30).status_code == 200
        assert listening_sockets(master, app.port) == {shared}
