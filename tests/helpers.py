"""Small helpers shared by the test tiers: polling with a deadline, what it waits for, and a
steady load to hold through a fault."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import requests

T = TypeVar("T")


def wait_until(
    check: Callable[[], T], *, timeout: float, interval: float = 0.2, what: str = "condition"
) -> T:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds.

    Exceptions count as "not yet" (a server still starting refuses connections); the last
    one is reported if the deadline passes.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = exc
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what}"
                + (f"; last error: {last_error!r}" if last_error else "")
            )
        time.sleep(interval)


def raw_http(port: int, data: bytes, timeout: float = 5) -> tuple[int | None, dict, bytes]:
    """Send exactly ``data`` to 127.0.0.1:``port``; return (status, headers, body) of the
    first response, or (None, {}, b"") when the server closed the connection without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received or not _complete(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    if not received:
        return None, {}, b""
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:])
    }
    return status, headers, body


def _complete(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return len(body) >= int(value)
    return False


def read_answer(conn: socket.socket, buffered: bytes = b"") -> tuple[bytes, bytes, bytes]:
    """One answer off a keep-alive connection: (head, body, what followed it)."""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        assert chunk, f"the connection closed mid-answer: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(rest) < length:
        chunk = conn.recv(4096)
        assert chunk, f"the connection closed mid-body: {data!r}"
        rest += chunk
    return head, rest[:length], rest[length:]


def nginx_access_entries(log_text: str) -> list[dict]:
    """nginx's JSON access-log entries (nginx/snippets/http/logging.conf) in a process's
    output, whatever prefix the supervisor put before each line. nginx flushes its log
    buffer every second: poll for an entry, do not expect it at once."""
    return [
        json.loads(line[line.index("{") :])
        for line in log_text.splitlines()
        if '"log":"nginx_access"' in line
    ]


def live_locust_workers(stats: dict) -> list[dict]:
    """The workers of a Locust master's ``/stats/requests`` answer that are still there.

    A worker stopped before it said goodbye (a scale-down) stays in the master's list as
    "missing" for about a minute (locust/runners.py, HEARTBEAT_DEAD_INTERNAL): it serves no
    users and will never be ready, so nothing should wait for it (CI runs did, and timed out)."""
    return [w for w in stats.get("workers") or [] if w.get("state") != "missing"]


def wait_for_locust_to_stop(ui: str, timeout: float = 30) -> None:
    """After ``POST /stop``: the master says "stopped" and every live worker is ready again (it
    reports "stopped" first; a run started before it is ready would spawn no users there)."""

    def stopped() -> bool:
        stats = requests.get(f"{ui}/stats/requests", timeout=5).json()
        live = live_locust_workers(stats)
        return stats["state"] == "stopped" and all(w["state"] == "ready" for w in live)

    wait_until(stopped, timeout=timeout, what="the Locust run to stop")


@dataclass(frozen=True)
class Sent:
    """One request of a SteadyLoad: when it was sent (monotonic clock), its status (None when
    no HTTP answer came: a refused or broken connection, a timeout) and how long it took."""

    url: str
    sent_at: float
    status: int | None
    seconds: float
    # The "hostname" of a JSON answer (the container that served it), when asked for.
    served_by: str | None = None
    # Why no HTTP answer came (the exception's name), or why a 200 was not JSON.
    error: str | None = None


class SteadyLoad:
    """One client thread per URL, each sending one GET after another until the block ends:
    load held through a fault, and a record of what every request met."""

    def __init__(self, urls: list[str], timeout: float = 15, hosts: bool = False) -> None:
        self.urls, self.timeout, self.hosts = urls, timeout, hosts
        self.sent: list[Sent] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(url,)) for url in urls]

    def _client(self, url: str) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                started = time.monotonic()
                host = error = None
                try:
                    response = session.get(url, timeout=self.timeout)
                    status: int | None = response.status_code
                    if self.hosts and status == 200:
                        host = response.json().get("hostname")
                except (requests.RequestException, ValueError) as exc:
                    status, error = None, f"{type(exc).__name__}: {exc}"[:300]
                seconds = time.monotonic() - started
                self.sent.append(Sent(url, started, status, seconds, host, error))

    def served_since(self, moment: float) -> set[str]:
        """The URLs that got a 200 to a request sent after ``moment``."""
        return {s.url for s in list(self.sent) if s.sent_at > moment and s.status == 200}

    def figures(self, stopped: float, started: float) -> dict[str, int]:
        """What the load met through a fault from ``stopped`` to ``started``: requests sent,
        served, refused with a 503, failed any other way."""
        sent = list(self.sent)
        return {
            "clients": len(self.urls),
            "sent": len(sent),
            "served": sum(s.status == 200 for s in sent),
            "refused_503": sum(s.status == 503 for s in sent),
            "failed_otherwise": sum(s.status not in (200, 503) for s in sent),
            "sent_while_down": sum(stopped <= s.sent_at < started for s in sent),
            "served_after_restart": sum(s.sent_at >= started and s.status == 200 for s in sent),
        }

    def __enter__(self) -> SteadyLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)


def socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` holds (Linux: /proc/PID/fd)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def tcp_sockets(port: int) -> list[tuple[str, int, str]]:
    """(state, receive queue, inode) of each IPv4 socket bound to local ``port`` (Linux
    /proc/net/tcp; state 01 is established, 0A listening, whose queue is its accept queue)."""
    sockets = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            sockets.append((fields[3], int(fields[4].split(":")[1], 16), fields[9]))
    return sockets
