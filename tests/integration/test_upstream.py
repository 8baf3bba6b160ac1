"""A real outbound HTTP call: the native stack calling the delay service (delay/, started
here on a free loopback port) through /api/upstream (app/upstream.py): what each setup
overlaps, a pool kept busy past its timeout, and the service going away and back."""

from __future__ import annotations

import time

import pytest
import requests
from delay_service import running_delay_service
from helpers import SteadyLoad, wait_until

from harness import launch
from loadtest.evidence import simultaneous_get, summarize

SIMULTANEOUS, CALL_MS = 20, 300
POOL_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def delay():
    with running_delay_service() as service:
        yield service


@pytest.fixture(scope="module")
def upstream_stack(delay, tmp_path_factory):
    env = {
        "UPSTREAM_URL": delay.url,
        "APP_POOL_TIMEOUT": str(POOL_TIMEOUT),
    }
    with launch.native_stack(tmp_path_factory.mktemp("up") / "stack.log", env=env) as running:
        yield running


@pytest.mark.parametrize("setup", launch.SETUPS)
def test_each_setup_calls_the_service_and_reports_the_call(upstream_stack, setup):
    response = requests.get(upstream_stack.load(setup, "/api/upstream?ms=20"), timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["work"] == "upstream" and body["worker_class"] == setup
    assert body["upstream"]["waited_ms"] == 20 and body["upstream"]["call_ms"] >= 20


@pytest.mark.parametrize("setup", launch.SETUPS)
def test_simultaneous_calls_overlap_as_far_as_the_setup_allows(upstream_stack, setup, figures):
    url = upstream_stack.load(setup, f"/api/upstream?ms={CALL_MS}")
    responses = simultaneous_get([url] * SIMULTANEOUS)
    assert [r.status_code for r in responses] == [200] * SIMULTANEOUS
    seen = summarize([r.json() for r in responses])
    workers = upstream_stack.configs()[setup]["workers"]
    if setup == "sync":
        assert seen["max_in_flight"] <= workers
    else:
        assert seen["max_in_flight"] >= 15
    figures(
        f"upstream.simultaneous.{setup}",
        requests=SIMULTANEOUS,
        ms=CALL_MS,
        max_in_flight=seen["max_in_flight"],
        wall_seconds=seen["wall_seconds"],
    )


def test_a_busy_pool_answers_503_with_retry_after_within_its_timeout(upstream_stack, figures):
    """60 simultaneous 2.5 s calls on gevent's two processes of 20 connections each."""
    url = upstream_stack.load("gevent", "/api/upstream?ms=2500")
    responses = simultaneous_get([url] * 60, timeout=20)
    statuses = [r.status_code for r in responses]
    refused = [r for r in responses if r.status_code == 503]
    assert statuses.count(200) <= 40 and statuses.count(200) + len(refused) == 60, statuses
    assert len(refused) >= 20
    for r in refused:
        assert r.json()["error"] == "upstream_busy" and r.headers["Retry-After"] == "1"
        assert r.elapsed.total_seconds() < POOL_TIMEOUT + 2
    figures(
        "upstream.pool_exhausted.gevent",
        sent=60,
        served=statuses.count(200),
        refused=len(refused),
        slowest_refusal_seconds=round(max(r.elapsed.total_seconds() for r in refused), 3),
    )


def test_the_service_going_away_and_coming_back(upstream_stack, delay, figures):
    """Stopped under a steady load: calls get a fast JSON 503; the app stays live and ready
    (its other routes do not need the service: docs/database.md says why readiness leaves it
    out); nothing else fails. Started again: every client's calls succeed, no app restart."""
    urls = [upstream_stack.load(s, "/api/upstream?ms=20") for s in launch.SETUPS for _ in range(2)]
    with SteadyLoad(urls) as load:
        wait_until(lambda: load.served_since(0) == set(urls), timeout=30, what="steady load")
        delay.stop()
        stopped = time.monotonic()
        try:
            outage = [
                requests.get(upstream_stack.load(setup, "/api/upstream?ms=1"), timeout=15)
                for setup in launch.SETUPS
                for _ in range(3)
            ]
            assert {r.status_code for r in outage} == {503}
            assert {r.json()["error"] for r in outage} == {"upstream_unavailable"}
            for setup in launch.SETUPS:
                assert requests.get(upstream_stack.load(setup, "/healthz"), timeout=5).ok
                assert requests.get(upstream_stack.load(setup, "/readyz"), timeout=5).ok
        finally:
            delay.start()
        started = time.monotonic()
        wait_until(
            lambda: load.served_since(started) == set(urls),
            timeout=30,
            what="every client to call the restarted service",
        )
    assert {s.status for s in load.sent} <= {200, 503}, {s.status for s in load.sent}
    assert max(s.seconds for s in load.sent) < 5
    figures(
        "upstream.outage",
        answered_503=len(outage),
        slowest_503_seconds=round(max(r.elapsed.total_seconds() for r in outage), 3),
        load=load.figures(stopped, started),
    )
