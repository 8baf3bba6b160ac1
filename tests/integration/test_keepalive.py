"""nginx's keep-alive pool to Gunicorn: who closes an idle connection, and what a client sees
when the app closes one just as nginx sends a request into it.

Two protections in the shipped config:

- Ordering: nginx's upstream ``keepalive_timeout`` (nginx/snippets/upstream/keepalive.conf) is
  shorter than Gunicorn's ``keepalive`` (gunicorn_conf/base.py), so nginx, not the app, closes
  an idle pooled connection, and never sends a request into one the app is closing.
- Retry: when that happens anyway (a worker recycled or killed, the order misconfigured),
  nginx retries the idempotent request on a fresh connection (``proxy_next_upstream`` in
  nginx/snippets/location/proxy.conf) instead of answering 502.

A FaultProxy (tests/fault_proxy.py) sits between nginx and each app: it records which side
closed each connection first and, on demand, resets a reused connection as a request arrives
on it (the race, made deterministic). The shipped timeouts are scaled down by SCALE, keeping
their order, so the test takes seconds. sync is not here: it closes every connection itself.
"""

from __future__ import annotations

import re
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from fault_proxy import APP, NGINX, FaultProxy
from helpers import nginx_access_entries, wait_until
from protection_switches import nginx_tweak

from gunicorn_conf import base as gunicorn_base
from harness import launch

ROOT = Path(__file__).resolve().parents[2]
KEEPALIVE_CONF = ROOT / "nginx" / "snippets" / "upstream" / "keepalive.conf"
KEEPALIVE_SETUPS = ["gthread", "gevent"]
SCALE = 15


def nginx_keepalive_seconds(conf: Path) -> int:
    (seconds,) = re.findall(r"^keepalive_timeout (\d+)s;", conf.read_text(), re.MULTILINE)
    return int(seconds)


# The shipped values (60 s and 75 s today), scaled: nginx in milliseconds, Gunicorn in whole
# seconds (its setting is an integer), rounded up so a tie can only favour Gunicorn closing last.
NGINX_KEEPALIVE_MS = round(nginx_keepalive_seconds(KEEPALIVE_CONF) * 1000 / SCALE)
GUNICORN_KEEPALIVE_S = -(-gunicorn_base.keepalive // SCALE)


def scale_nginx_keepalive(conf_dir: Path) -> None:
    conf = conf_dir / "snippets" / "upstream" / "keepalive.conf"
    text, count = re.subn(
        r"^keepalive_timeout \d+s;",
        f"keepalive_timeout {NGINX_KEEPALIVE_MS}ms;",
        conf.read_text(),
        flags=re.MULTILINE,
    )
    assert count == 1, f"{conf} no longer sets keepalive_timeout once"
    conf.write_text(text)


@dataclass
class Stack:
    nginx: launch.Running
    proxies: dict[str, FaultProxy]

    def url(self, setup: str, path: str) -> str:
        return self.nginx.load(setup, path)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    logs = tmp_path_factory.mktemp("keepalive")
    env = {"GUNICORN_KEEPALIVE": str(GUNICORN_KEEPALIVE_S)}
    with ExitStack() as running:
        proxies = {}
        for setup in KEEPALIVE_SETUPS:
            app = running.enter_context(launch.gunicorn(setup, logs / f"{setup}.log", env=env))
            app_port = app.port
            proxies[setup] = running.enter_context(FaultProxy(app_port))
        ports = {setup: proxy.port for setup, proxy in proxies.items()}
        ports["sync"] = launch.free_port()  # not exercised here; nothing listens there

        def tweak(conf_dir: Path) -> None:
            scale_nginx_keepalive(conf_dir)
            # A protection switched off (tests/protection_switches.py), if the tier asks.
            nginx_tweak(conf_dir)

        nginx = running.enter_context(launch.nginx(ports, logs / "nginx.log", tweak=tweak))
        yield Stack(nginx, proxies)


def access_line(log: str, request_id: str) -> dict | None:
    """nginx's access-log entry for one request."""
    entries = [e for e in nginx_access_entries(log) if e["request_id"] == request_id]
    return entries[0] if entries else None


@pytest.mark.parametrize("setup", KEEPALIVE_SETUPS)
def test_nginx_closes_idle_pooled_connections_before_gunicorn_does(stack, setup, figures):
    proxy = stack.proxies[setup]
    with requests.Session() as session:
        for _ in range(3):
            assert session.get(stack.url(setup, "/api/whoami"), timeout=5).status_code == 200
    # Past both (scaled) timeouts every pooled connection is closed; count who did it.
    wait_until(
        lambda: proxy.closed_first[NGINX] + proxy.closed_first[APP] >= 1 and proxy.all_closed(),
        timeout=GUNICORN_KEEPALIVE_S + 5,
        what="every pooled connection to close",
    )
    print(
        f"\n{setup}: nginx keepalive_timeout {NGINX_KEEPALIVE_MS} ms, Gunicorn keepalive "
        f"{GUNICORN_KEEPALIVE_S} s; connections closed first by {dict(proxy.closed_first)}"
    )
    assert proxy.closed_first[APP] == 0
    assert proxy.closed_first[NGINX] >= 1
    figures(
        f"keepalive.order.{setup}",
        nginx_ms=NGINX_KEEPALIVE_MS,
        gunicorn_s=GUNICORN_KEEPALIVE_S,
        closed_by_nginx=proxy.closed_first[NGINX],
        closed_by_app=proxy.closed_first[APP],
    )


@pytest.mark.parametrize("setup", KEEPALIVE_SETUPS)
def test_a_request_sent_into_a_connection_the_app_closes_is_retried_not_a_502(
    stack, setup, figures
):
    proxy = stack.proxies[setup]
    request_id = uuid.uuid4().hex
    # One client connection, so both requests reach the same nginx worker and its pool.
    with requests.Session() as session:
        assert session.get(stack.url(setup, "/api/whoami"), timeout=5).status_code == 200
        resets = proxy.resets
        proxy.arm()
        response = session.get(
            stack.url(setup, "/api/whoami"), headers={"X-Request-ID": request_id}, timeout=5
        )
    assert proxy.resets == resets + 1, "nginx did not reuse its pooled connection"
    entry = wait_until(
        lambda: access_line(stack.nginx.log(), request_id),
        timeout=5,
        what="the request in nginx's access log",
    )
    print(
        f"\n{setup}: reset under the request; client got {response.status_code}, nginx "
        f"tried upstreams {entry['upstream']} with statuses {entry['upstream_status']}"
    )
    assert response.status_code == 200
    assert response.json()["request_id"] == request_id
    # Two tries: the reset connection (nginx records a connection error as 502), then a
    # fresh one that answered.
    assert entry["upstream_status"] == "502, 200"
    figures(
        f"keepalive.race.{setup}",
        status=response.status_code,
        upstream_status=entry["upstream_status"],
    )
