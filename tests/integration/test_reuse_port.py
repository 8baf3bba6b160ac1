"""gthread's listening socket per worker (gunicorn_conf/reuse_port.py), on a real
Gunicorn:
each worker listens on a socket of its own and the master on none, and a worker that stops
closes its socket at once, so while it finishes its last request every new connection goes
to the other worker and none waits in the stopping worker's queue.
"""

from __future__ import annotations

import os
import signal
import threading

import psutil
import pytest
import requests
from helpers import wait_until

from gunicorn_conf import OWN_SOCKETS
from harness import launch

# Long enough that the stopping worker is still finishing it when the new connections have
# all been answered; well under graceful_timeout (30 s), so its drain waits for it.
LAST_REQUEST_MS = 8000
NEW_CONNECTIONS = 20


@pytest.fixture(params=OWN_SOCKETS)
def served(request, tmp_path):
    setup = request.param
    with launch.gunicorn(setup, tmp_path / f"{setup}.log", env={"WEB_CONCURRENCY": "2"}) as app:
        yield setup, app


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


def worker_pids(app: launch.Running) -> list[int]:
    return [child.pid for child in psutil.Process(app.process.pid).children()]


def both_listening(app: launch.Running) -> dict[int, set[int]]:
    sockets = {pid: listening_sockets(pid, app.port) for pid in worker_pids(app)}
    return sockets if len(sockets) == 2 and all(sockets.values()) else {}


def test_each_worker_listens_on_a_socket_of_its_own_and_the_master_on_none(served):
    setup, app = served
    assert app.configs()[setup]["reuse_port"] is True
    sockets = wait_until(lambda: both_listening(app), timeout=30, what="both workers")
    first, second = sockets.values()
    assert first.isdisjoint(second), "the workers share one socket"
    assert not listening_sockets(app.process.pid, app.port), "the master listens"


def test_a_stopping_worker_closes_its_socket_at_once_and_new_connections_go_to_the_other(
    served,
):
    _setup, app = served
    wait_until(lambda: both_listening(app), timeout=30, what="both workers")
    last: dict = {}

    def last_request() -> None:
        last["response"] = requests.get(
            f"{app.base_url}/api/io?ms={LAST_REQUEST_MS}", timeout=LAST_REQUEST_MS / 1000 + 30
        )

    slow = threading.Thread(target=last_request)
    slow.start()
    # The worker the kernel gave that connection to is the one that will be stopping.
    (stopping,) = wait_until(
        lambda: [
            pid
            for pid in worker_pids(app)
            if any(
                c.status == psutil.CONN_ESTABLISHED and c.laddr.port == app.port
                for c in psutil.Process(pid).net_connections("tcp")
            )
        ],
        timeout=10,
        what="the slow request to reach a worker",
    )
    os.kill(stopping, signal.SIGTERM)
    wait_until(
        lambda: not listening_sockets(stopping, app.port),
        timeout=5,
        what="the stopping worker to close its socket while its last request runs",
    )
    # Each request on a new connection: the kernel picks a socket for every one of them.
    served_by = [
        requests.get(f"{app.base_url}/api/whoami", timeout=10).json()["pid"]
        for _ in range(NEW_CONNECTIONS)
    ]
    assert stopping not in served_by
    # All answered while the stopping worker was still busy with its last request: none had
    # waited for its drain.
    assert psutil.pid_exists(stopping) and slow.is_alive()
    slow.join()
    assert last["response"].status_code == 200  # and the drain let it finish
