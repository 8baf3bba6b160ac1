"""A request that hangs under gthread or gevent: Gunicorn does not kill it, nginx ends it.

Gunicorn's ``timeout`` kills a worker whose main loop stops checking in. A sync worker's loop
*is* the request, so a hung request gets its worker killed (tests/integration/test_faults.py).
A gthread or gevent worker's loop runs beside its requests and keeps checking in: a request
that hangs there is never killed, and only nginx's proxy_read_timeout ends it for the client,
as a JSON 504 (nginx/snippets/location/proxy.conf). Meanwhile the worker keeps serving.

Here both timeouts are shortened so the test takes seconds: Gunicorn's to 2 s, nginx's read
timeout to 3 s (production: 30 s and 35 s), and the hang lasts 5 s, past both. One worker per
setup, so "the worker that hung" is the only worker.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import psutil
import pytest
import requests

from harness import launch
from harness.launch import SETUPS

GUNICORN_TIMEOUT, NGINX_READ_TIMEOUT, HANG_MS = 2, 3, 5000


def shorten_nginx_read_timeout(conf_dir: Path) -> None:
    """proxy_read_timeout down to NGINX_READ_TIMEOUT, and the retry window below it, as in
    production (10 s < 35 s): a request that timed out is not retried on another worker."""
    proxy = conf_dir / "snippets" / "location" / "proxy.conf"
    text = proxy.read_text()
    for setting, seconds in (
        ("proxy_read_timeout", NGINX_READ_TIMEOUT),
        ("proxy_next_upstream_timeout", NGINX_READ_TIMEOUT - 1),
    ):
        text, count = re.subn(rf"{setting} \d+s;", f"{setting} {seconds}s;", text)
        assert count == 1, f"proxy.conf no longer sets {setting} once"
    proxy.write_text(text)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    logs = tmp_path_factory.mktemp("hung")
    env = {"GUNICORN_TIMEOUT": str(GUNICORN_TIMEOUT), "WEB_CONCURRENCY": "1"}
    with ExitStack() as running:
        apps = {
            setup: running.enter_context(launch.gunicorn(setup, logs / f"{setup}.log", env=env))
            for setup in SETUPS
        }
        ports = {setup: app.port for setup, app in apps.items()}
        proxy = running.enter_context(
            launch.nginx(ports, logs / "nginx.log", tweak=shorten_nginx_read_timeout)
        )
        yield proxy, apps


def worker_pids(app: launch.Running) -> set[int]:
    return {child.pid for child in psutil.Process(app.process.pid).children(recursive=True)}


@pytest.mark.parametrize("setup", ["gthread", "gevent"])
def test_a_hung_request_is_not_killed_by_gunicorn_and_ends_as_nginxs_json_504(
    stack, setup, figures
):
    proxy, apps = stack
    (worker,) = worker_pids(apps[setup])
    outcome: dict = {}

    def hang() -> None:
        started = time.monotonic()
        response = requests.get(f"{proxy.base_url}/{setup}/api/io?ms={HANG_MS}", timeout=30)
        outcome.update(response=response, seconds=time.monotonic() - started)

    hung = threading.Thread(target=hang)
    hung.start()
    # While the request hangs (and past Gunicorn's timeout), the same worker answers others.
    served_meanwhile = []
    deadline = time.monotonic() + NGINX_READ_TIMEOUT
    while time.monotonic() < deadline:
        answer = requests.get(f"{proxy.base_url}/{setup}/api/whoami", timeout=5)
        assert answer.status_code == 200
        served_meanwhile.append(answer.json()["pid"])
        time.sleep(0.25)  # pacing the probe requests, not waiting for a result
    hung.join(timeout=30)

    response = outcome["response"]
    print(f"\n{setup}: hung request -> {response.status_code} after {outcome['seconds']:.1f} s")
    assert response.status_code == 504
    assert response.json()["error"] == "gateway_timeout"
    assert NGINX_READ_TIMEOUT <= outcome["seconds"] < HANG_MS / 1000
    assert set(served_meanwhile) == {worker} and len(served_meanwhile) >= 5
    # The hang outlived Gunicorn's timeout, yet the worker was not killed or replaced.
    assert worker_pids(apps[setup]) == {worker}
    assert "WORKER TIMEOUT" not in apps[setup].log()
    figures(
        f"hung.{setup}",
        status=response.status_code,
        seconds=round(outcome["seconds"], 1),
        nginx_read_timeout=NGINX_READ_TIMEOUT,
        gunicorn_timeout=GUNICORN_TIMEOUT,
        served_meanwhile=len(served_meanwhile),
    )
