"""Stopping the stack's containers gracefully (Gunicorn as PID 1)."""

from __future__ import annotations

import subprocess
import threading
import time

import requests
from helpers import wait_until

IN_FLIGHT_IN_CONTAINER = """
established = waiting = 0
for line in open("/proc/net/tcp").read().splitlines()[1:]:
    f = line.split()
    if int(f[1].split(":")[1], 16) != 8000:
        continue
    if f[3] == "01":
        established += 1
    elif f[3] == "0A":
        waiting = int(f[4].split(":")[1], 16)
print(established - waiting)
"""


def test_stopping_an_app_container_drains_its_request_in_flight(compose_stack, figures):
    """Gunicorn is PID 1 and gets SIGTERM itself: `docker compose stop` lets a long request
    finish and the container exits 0 by graceful drain, not 137 by SIGKILL. The service is
    started again afterwards, for the tests that run after this one."""
    result = {}

    def long_request():
        r = requests.get(compose_stack.url("sync", "/api/io?ms=3000"), timeout=60)
        result["status"] = r.status_code

    client = threading.Thread(target=long_request)
    client.start()
    wait_until(
        lambda: (
            int(
                compose_stack.compose(
                    "exec", "-T", "app-sync", "python", "-c", IN_FLIGHT_IN_CONTAINER
                )
            )
            >= 1
        ),
        timeout=10,
        what="the request to be accepted by a sync worker",
    )
    started = time.monotonic()
    compose_stack.compose("stop", "app-sync")
    stop_seconds = time.monotonic() - started
    client.join(timeout=60)
    (container,) = compose_stack.compose("ps", "--all", "--quiet", "app-sync").split()
    exit_code = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.ExitCode}}", container],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"\ncompose stop app-sync: request {result}, exit code {exit_code}, {stop_seconds:.1f} s")
    compose_stack.compose("start", "app-sync")
    compose_stack.wait_until_healthy()
    assert result == {"status": 200}
    assert exit_code == "0"
    assert stop_seconds < 30  # drained, not the 40 s grace period ending in SIGKILL
    figures(
        "e2e.compose_stop",
        in_flight=1,
        failed=int(result != {"status": 200}),
        exit_code=int(exit_code),
        seconds=round(stop_seconds, 1),
    )
