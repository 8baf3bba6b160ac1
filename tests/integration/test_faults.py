"""Faults under load, against real nginx + Gunicorn on loopback, each with bounded traffic.

Each test prints its counts (requests sent / failed) so CI output carries the figures. The
keep-alive race between nginx and Gunicorn has its own module (test_keepalive.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import protection_switches
import psutil
import pytest
import requests
from helpers import nginx_access_entries, socket_inodes, tcp_sockets, wait_until

from harness import launch
from harness.launch import SETUPS
from loadtest.evidence import simultaneous_get

# Short worker timeout for this module's own stack, so a hung sync request is killed in
# seconds (production: 30 s). Requests here take 20 ms; nothing else is affected.
FAULT_TIMEOUT = 2


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory):
    """A stack of this module's own: these tests kill and reload its workers. With a
    protection switched off when the protections tier asks (tests/protection_switches.py)."""
    scratch = tmp_path_factory.mktemp("faults")
    with launch.native_stack(
        scratch / "stack.log",
        env={"GUNICORN_TIMEOUT": str(FAULT_TIMEOUT), **protection_switches.gunicorn_env()},
        nginx_source=protection_switches.nginx_source(scratch),
    ) as stack:
        yield stack


def retried(entries: list[dict], setup: str) -> list[dict]:
    """Requests nginx sent to more than one upstream connection (a comma in its list)."""
    return [e for e in entries if e["setup"] == f"/{setup}" and "," in e["upstream_status"]]


def established_sockets(pid: int, port: int) -> list[int]:
    """The unread bytes waiting on each established TCP connection to ``port`` that process
    ``pid`` holds."""
    inodes = socket_inodes(pid)
    return [
        queued for state, queued, inode in tcp_sockets(port) if state == "01" and inode in inodes
    ]


def requests_in_flight(pid: int, port: int, setup: str) -> int:
    """Requests a (stopped) worker holds unanswered. A sync worker closes every connection
    after its response, so any connection it holds is a request in flight; gthread and
    gevent also keep idle keep-alive connections, so only those with a request waiting
    unread count (a lower bound: one the worker was already running is not counted)."""
    unread = established_sockets(pid, port)
    return len(unread) if setup == "sync" else sum(1 for n in unread if n > 0)


class SteadyClient:
    """A few threads sending GETs back to back until stopped; bounded to 60 s and 20,000
    requests whatever happens. Counts statuses (or exception names)."""

    def __init__(self, url: str, threads: int = 6):
        self.url, self.threads = url, threads
        self.counts: Counter = Counter()
        self.pids: Counter = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        deadline = time.monotonic() + 60
        with requests.Session() as session:
            while not self._stop.is_set() and time.monotonic() < deadline:
                with self._lock:
                    if self.total >= 20_000:
                        return
                try:
                    response = session.get(self.url, timeout=15)
                    outcome, pid = response.status_code, response.json().get("pid")
                except (requests.RequestException, ValueError) as exc:
                    outcome, pid = type(exc).__name__, None
                with self._lock:
                    self.counts[outcome] += 1
                    if pid:
                        self.pids[pid] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def failed(self) -> int:
        return self.total - self.counts[200]

    def __enter__(self) -> SteadyClient:
        for worker in self._workers:
            worker.start()
        wait_until(lambda: self.counts[200] >= 20, timeout=10, what="the client to get going")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def keep_going(self, more: int = 50) -> None:
        """Wait until ``more`` further requests have completed (however they ended)."""
        target = self.total + more
        wait_until(lambda: self.total >= target, timeout=30, what=f"{more} more requests")


@pytest.mark.parametrize("setup", SETUPS)
def test_a_graceful_reload_under_load_fails_no_request(fault_stack, setup, figures):
    master = fault_stack.configs()[setup]["pid"]
    workers = fault_stack.configs()[setup]["workers"]
    boots_before = len(re.findall(rf"{setup}\.1 .*Booting worker", fault_stack.log()))
    with SteadyClient(fault_stack.load(setup, "/api/io?ms=20")) as client:
        old_pids = set(client.pids)
        os.kill(master, signal.SIGHUP)
        wait_until(
            lambda: (
                len(re.findall(rf"{setup}\.1 .*Booting worker", fault_stack.log()))
                >= boots_before + workers
            ),
            timeout=30,
            what="new workers after SIGHUP",
        )
        wait_until(
            lambda: set(client.pids) - old_pids, timeout=30, what="a reloaded worker to serve"
        )
        client.keep_going()
    print(
        f"\n{setup} SIGHUP reload: {client.total} requests, {client.failed} failed "
        f"({dict(client.counts)})"
    )
    assert client.failed == 0
    figures(f"faults.sighup.{setup}", sent=client.total, failed=client.failed)


@pytest.mark.parametrize("setup", SETUPS)
def test_a_killed_worker_is_replaced_and_nginx_retries_its_requests(fault_stack, setup, figures):
    """The worker is first stopped (SIGSTOP) until it holds a request in flight, so the kill
    provably lands under one; nginx's log must then show that request tried twice.

    What nginx cannot retry: a response the worker had begun to write when it died (Gunicorn
    writes the head and the body in two calls, and nginx forwards the head at once). The stop
    can land between the two, so such a response may be cut; it is counted, and it is the
    only failure allowed."""
    config = fault_stack.configs()[setup]
    app_port = int(config["bind"][0].rsplit(":", 1)[1])
    # Workers a reload (the test before) told to stop may still linger and serve: wait until
    # only the current ones are left, and pick the victim among them.
    wait_until(
        lambda: len(worker_pids(config["pid"])) == config["workers"],
        timeout=30,
        what="stopping workers to exit",
    )
    with SteadyClient(fault_stack.load(setup, "/api/io?ms=20")) as client:
        in_flight, victim = 0, None
        for _ in range(20):  # a sync worker stopped between two requests holds none: next
            current = worker_pids(config["pid"])
            victim = max(current, key=lambda pid: client.pids[pid])
            os.kill(victim, signal.SIGSTOP)
            with contextlib.suppress(AssertionError):
                in_flight = wait_until(
                    lambda pid=victim: requests_in_flight(pid, app_port, setup),
                    timeout=0.5,
                    interval=0.02,
                    what="a request in flight",
                )
            if in_flight:
                break
            os.kill(victim, signal.SIGCONT)
        assert in_flight, "no worker was ever caught with a request in flight"
        log_before = len(fault_stack.log())
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: re.search(rf"{setup}\.1 .*Booting worker", fault_stack.log()[log_before:]),
            timeout=30,
            what="the master to replace the dead worker",
        )
        client.keep_going(100)

    # Each nginx worker process buffers its own access log and flushes it every second, so
    # the retries show up in parts: poll until all of them have (or the deadline passes).
    def retries_logged() -> list[dict]:
        return retried(nginx_access_entries(fault_stack.log()[log_before:]), setup)

    with contextlib.suppress(AssertionError):
        wait_until(
            lambda: len(retries_logged()) >= in_flight,
            timeout=10,
            what="nginx's log of the retried requests",
        )
    retries = retries_logged()
    print(
        f"\n{setup} SIGKILL of worker {victim} with {in_flight} request(s) in flight: "
        f"{client.total} requests, {client.failed} failed ({dict(client.counts)}); nginx "
        f"retried {len(retries)}: {[e['upstream_status'] for e in retries]}"
    )
    cut = client.counts["ChunkedEncodingError"]
    assert client.failed == cut, "a failure other than a response cut mid-body"
    assert len(retries) >= in_flight
    assert all(e["status"] == 200 and e["upstream_status"].endswith("200") for e in retries)
    assert all(e["worker_pid"] != str(victim) for e in retries)
    figures(
        f"faults.sigkill.{setup}",
        sent=client.total,
        failed=client.failed,
        in_flight=in_flight,
        retried=len(retries),
        cut=cut,
    )


def test_a_hung_sync_request_costs_its_worker_and_gets_a_json_502(fault_stack, figures):
    master = fault_stack.configs()["sync"]["pid"]
    workers_before = worker_pids(master)
    log_before = len(fault_stack.log())
    started = time.monotonic()
    response = requests.get(
        fault_stack.url("sync", f"/api/io?ms={FAULT_TIMEOUT * 3000}"), timeout=60
    )
    elapsed = time.monotonic() - started
    # Gunicorn kills the worker at `timeout` and answers a bare 500; nginx turns it into JSON.
    assert response.status_code == 502
    assert response.json()["error"] == "bad_gateway"
    (killed,) = wait_until(
        lambda: re.findall(r"WORKER TIMEOUT \(pid:(\d+)\)", fault_stack.log()[log_before:]),
        timeout=5,
        what="Gunicorn's log of the timeout",
    )
    killed = int(killed)
    # The worker that hung is gone, and a new one (a pid not there before) serves.
    new = wait_until(
        lambda: worker_pids(master) - workers_before,
        timeout=30,
        what="the master to start a replacement worker",
    )
    served_by = set()
    wait_until(
        lambda: (
            served_by.add(
                requests.get(fault_stack.url("sync", "/api/whoami"), timeout=5).json()["pid"]
            )
            or served_by & new
        ),
        timeout=30,
        what="the replacement worker to serve",
    )
    print(
        f"\nhung sync request: {response.status_code} after {elapsed:.1f} s; worker {killed} "
        f"killed, replaced by {sorted(new)}, which served"
    )
    assert killed in workers_before
    assert killed not in worker_pids(master)
    assert len(worker_pids(master)) == len(workers_before)
    figures(
        "faults.hung_sync",
        status=response.status_code,
        seconds=round(elapsed, 1),
        gunicorn_timeout=FAULT_TIMEOUT,
    )


def worker_pids(master: int) -> set[int]:
    return {child.pid for child in psutil.Process(master).children()}


def accepted_connections(port: int) -> int:
    """Connections to ``port`` that a worker has accepted (Linux /proc/net/tcp): established
    server-side sockets, minus those still waiting in the listener's accept queue."""
    sockets = tcp_sockets(port)
    established = sum(state == "01" for state, _, _ in sockets)
    waiting = sum(queued for state, queued, _ in sockets if state == "0A")
    return established - waiting


@pytest.mark.parametrize("setup", SETUPS)
def test_sigterm_lets_requests_in_flight_finish_and_refuses_new_ones(setup, tmp_path, figures):
    with launch.gunicorn(
        setup, tmp_path / f"{setup}.log", env=protection_switches.gunicorn_env()
    ) as server:
        port = urlsplit(server.base_url).port
        # Ready means one worker answers; the others may still be importing the app, and a
        # request the kernel queues for them is reset when the master closes the socket. So
        # wait until every worker has served, then the three requests are truly in flight.
        workers = server.configs()[setup]["workers"]
        served: set[int] = set()
        wait_until(
            lambda: (
                served.update(
                    r.json()["pid"]
                    for r in simultaneous_get([f"{server.base_url}/api/whoami"] * workers)
                )
                or len(served) == workers
            ),
            timeout=30,
            what=f"all {workers} workers to serve",
        )
        results: list = []

        def long_request():
            started = time.monotonic()
            try:
                r = requests.get(f"{server.base_url}/api/io?ms=2000", timeout=30)
                results.append((r.status_code, time.monotonic() - started))
            except requests.RequestException as exc:
                results.append((type(exc).__name__, time.monotonic() - started))

        clients = [threading.Thread(target=long_request) for _ in range(3)]
        for client in clients:
            client.start()
        # In flight = accepted by a worker (and not answered yet: they take 2 s).
        wait_until(
            lambda: accepted_connections(port) >= 3 and not results,
            timeout=5,
            what="the requests to be accepted",
        )
        server.process.send_signal(signal.SIGTERM)
        wait_until(lambda: _refused(port), timeout=5, what="new connections to be refused")
        for client in clients:
            client.join(timeout=35)
        code = server.process.wait(timeout=35)
        print(f"\n{setup} SIGTERM: in flight {results}, exit code {code}")
        assert [status for status, _ in results] == [200, 200, 200]
        assert all(seconds >= 2 for _, seconds in results)
        assert code == 0
        figures(
            f"faults.sigterm.{setup}",
            in_flight=len(results),
            failed=sum(status != 200 for status, _ in results),
            seconds=round(min(seconds for _, seconds in results), 1),
            exit_code=code,
        )


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True


def _slow_clients(port: int, count: int) -> list[socket.socket]:
    """Connections that send half a request line and then nothing (slowloris)."""
    sockets = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /api/whoami HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        sockets.append(s)
    return sockets


def _legit_requests(url: str, count: int) -> int:
    ok = 0
    for _ in range(count):
        with contextlib.suppress(requests.RequestException):
            ok += requests.get(url, timeout=2, headers={"Host": "localhost"}).status_code == 200
    return ok


def test_slowloris_starves_sync_exposed_directly_but_not_behind_nginx(
    fault_stack, tmp_path, figures
):
    """Why Gunicorn's docs demand a buffering proxy in front of the sync worker."""
    with launch.gunicorn("sync", tmp_path / "direct.log") as direct:
        workers = direct.configs()["sync"]["workers"]
        attackers = _slow_clients(urlsplit(direct.base_url).port, workers * 2)
        try:
            served_direct = _legit_requests(f"{direct.base_url}/api/whoami", 3)
        finally:
            for s in attackers:
                s.close()
    attackers = _slow_clients(urlsplit(fault_stack.base_url).port, workers * 2)
    try:
        served_via_nginx = _legit_requests(fault_stack.url("sync", "/api/whoami"), 3)
    finally:
        for s in attackers:
            s.close()
    print(
        f"\nslowloris ({workers * 2} slow connections): sync direct served "
        f"{served_direct}/3 legit requests, behind nginx {served_via_nginx}/3"
    )
    assert served_direct == 0
    assert served_via_nginx == 3
    figures(
        "faults.slowloris",
        slow_connections=workers * 2,
        legit=3,
        served_direct=served_direct,
        served_via_nginx=served_via_nginx,
    )
