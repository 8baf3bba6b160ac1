"""Small helpers shared by the test tiers: polling with a deadline, and what it waits for."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
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
    import socket

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


def nginx_access_entries(log_text: str) -> list[dict]:
    """nginx's JSON access-log entries (nginx/snippets/http/logging.conf) in a process's
    output, whatever prefix the supervisor put before each line. nginx flushes its log
    buffer every second: poll for an entry, do not expect it at once."""
    return [
        json.loads(line[line.index("{") :])
        for line in log_text.splitlines()
        if '"log":"nginx_access"' in line
    ]


def wait_for_locust_to_stop(ui: str, timeout: float = 30) -> None:
    """After ``POST /stop``: the master says "stopped" and every worker is ready again (it
    reports "stopped" first; a run started before it is ready would spawn no users there)."""

    def stopped() -> bool:
        stats = requests.get(f"{ui}/stats/requests", timeout=5).json()
        workers = stats.get("workers") or []
        return stats["state"] == "stopped" and all(w["state"] == "ready" for w in workers)

    wait_until(stopped, timeout=timeout, what="the Locust run to stop")
