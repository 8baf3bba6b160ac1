"""Faults under load, against real nginx + Gunicorn on loopback, each with bounded traffic.

Each test prints its counts (requests sent / failed) so CI output carries the figures.
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
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from helpers import wait_until

from harness import launch
from harness.launch import SETUPS
from loadtest.evidence import simultaneous_get

# Short worker timeout for this module's own stack, so a hung sync request is killed in
# seconds (production: 30 s). Requests here take 20 ms; nothing else is affected.
FAULT_TIMEOUT = 2
# Gunicorn's keep-alive cut to 1 s, far below nginx's 60 s upstream keepalive_timeout: the
# misordering behind the classic "upstream prematurely closed connection" 502, made to
# happen every second instead of every 75.
FAULT_KEEPALIVE = 1


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory):
    """A stack of this module's own: these tests kill and reload its workers."""
    with launch.native_stack(
        tmp_path_factory.mktemp("faults") / "stack.log",
        env={"GUNICORN_TIMEOUT": str(FAULT_TIMEOUT), "GUNICORN_KEEPALIVE": str(FAULT_KEEPALIVE)},
    ) as stack:
        yield stack


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
def test_a_graceful_reload_under_load_fails_no_request(fault_stack, setup):
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


@pytest.mark.parametrize("setup", SETUPS)
def test_a_killed_worker_is_replaced_and_nginx_retries_its_requests(fault_stack, setup):
    with SteadyClient(fault_stack.load(setup, "/api/io?ms=20")) as client:
        victim = client.pids.most_common(1)[0][0]
        log_before = len(fault_stack.log())
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: re.search(rf"{setup}\.1 .*Booting worker", fault_stack.log()[log_before:]),
            timeout=30,
            what="the master to replace the dead worker",
        )
        client.keep_going(100)
    print(
        f"\n{setup} SIGKILL of worker {victim}: {client.total} requests, {client.failed} "
        f"failed ({dict(client.counts)})"
    )
    assert client.failed == 0


@pytest.mark.parametrize("setup", ["gthread", "gevent"])
def test_pauses_around_gunicorns_keepalive_expiry_cause_no_502(fault_stack, setup):
    """Requests after idle gaps just around Gunicorn's keep-alive expiry, when nginx reuses a
    pooled connection Gunicorn is closing. nginx retries such a request on a fresh connection
    (proxy_next_upstream), so the client never sees the race. The gaps are the stimulus
    (the idle time under test), not a wait for anything."""
    statuses = Counter()
    gaps = [FAULT_KEEPALIVE + offset for offset in (-0.1, -0.05, -0.02, 0, 0.02, 0.05, 0.1)] * 2
    with requests.Session() as session:
        for gap in gaps:
            response = session.get(fault_stack.load(setup, "/api/whoami"), timeout=10)
            statuses[response.status_code] += 1
            time.sleep(gap)
    races = len(
        re.findall(
            rf"(reset by peer|prematurely closed).*GET /{setup}/api/whoami", fault_stack.log()
        )
    )
    print(
        f"\n{setup} keep-alive expiry: {sum(statuses.values())} requests after gaps of "
        f"{min(gaps):.2f}-{max(gaps):.2f} s, statuses {dict(statuses)}, races nginx hit "
        f"and retried: {races}"
    )
    assert statuses == Counter({200: len(gaps)})


def test_a_hung_sync_request_costs_its_worker_and_gets_a_json_502(fault_stack):
    started = time.monotonic()
    response = requests.get(
        fault_stack.url("sync", f"/api/io?ms={FAULT_TIMEOUT * 3000}"), timeout=60
    )
    elapsed = time.monotonic() - started
    print(f"\nhung sync request: {response.status_code} after {elapsed:.1f} s")
    # Gunicorn kills the worker at `timeout` and answers a bare 500; nginx turns it into JSON.
    assert response.status_code == 502
    assert response.json()["error"] == "bad_gateway"
    assert "WORKER TIMEOUT" in fault_stack.log()
    # And the setup keeps serving.
    assert requests.get(fault_stack.url("sync", "/api/whoami"), timeout=5).status_code == 200


def accepted_connections(port: int) -> int:
    """Connections to ``port`` that a worker has accepted (Linux /proc/net/tcp): established
    server-side sockets, minus those still waiting in the listener's accept queue."""
    established, waiting = 0, 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state = int(fields[1].split(":")[1], 16), fields[3]
        if local_port != port:
            continue
        if state == "01":
            established += 1
        elif state == "0A":
            waiting = int(fields[4].split(":")[1], 16)
    return established - waiting


@pytest.mark.parametrize("setup", SETUPS)
def test_sigterm_lets_requests_in_flight_finish_and_refuses_new_ones(setup, tmp_path):
    with launch.gunicorn(setup, tmp_path / f"{setup}.log") as server:
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


def test_slowloris_starves_sync_exposed_directly_but_not_behind_nginx(fault_stack, tmp_path):
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
