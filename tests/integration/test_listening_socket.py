"""One listening socket per setup, opened by the Gunicorn master and shared by its workers
(``reuse_port = False``, gunicorn_conf/base.py says why). With sockets of their own, the
master holds none, so while every worker is being replaced at once nothing listens and each
new connection is refused: the soak saw 502s for exactly that (docs/measuring.md)."""

from __future__ import annotations

import os

import psutil
import pytest
import requests
from helpers import wait_until

from gunicorn_conf import SETUPS
from harness import launch


def listening_sockets(pid: int, port: int) -> set[int]:
    """The inodes of the sockets process ``pid`` holds that listen on loopback ``port``."""
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:["):
            held.add(int(link[len("socket:[") : -1]))
    listening = set()
    with open(f"/proc/{pid}/net/tcp") as table:
        for line in list(table)[1:]:
            fields = line.split()
            local_port, state, inode = int(fields[1].split(":")[1], 16), fields[3], int(fields[9])
            if state == "0A" and local_port == port:  # 0A: LISTEN
                listening.add(inode)
    return held & listening


@pytest.mark.parametrize("setup", SETUPS)
def test_the_master_holds_the_one_listening_socket_and_every_worker_shares_it(setup, tmp_path):
    with launch.gunicorn(setup, tmp_path / f"{setup}.log", env={"WEB_CONCURRENCY": "2"}) as app:
        assert app.configs()[setup]["reuse_port"] is False
        master = app.process.pid
        (socket,) = listening_sockets(master, app.port)

        def workers_on_it() -> list[int]:
            workers = [child.pid for child in psutil.Process(master).children()]
            on_it = [pid for pid in workers if listening_sockets(pid, app.port) == {socket}]
            return on_it if len(on_it) == len(workers) == 2 else []

        workers = wait_until(workers_on_it, timeout=30, what="both workers on the master's socket")
        # Every worker replaced at once: the socket stays, so the next request is queued
        # until a new worker takes it, never refused.
        for pid in workers:
            psutil.Process(pid).kill()
        assert requests.get(app.base_url + "/api/whoami", timeout=30).status_code == 200
        assert listening_sockets(master, app.port) == {socket}
