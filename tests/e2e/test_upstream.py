"""The compose stack's delay service (the `delay` service, delay/): each setup calls it through
nginx, and the stack rides out `docker compose stop delay` / `start delay`."""

from __future__ import annotations

import pytest
import requests
from helpers import wait_until

from harness.launch import SETUPS


@pytest.mark.parametrize("setup", SETUPS)
def test_each_setup_calls_the_delay_service_through_nginx(compose_stack, setup):
    response = requests.get(compose_stack.url(setup, "/api/upstream?ms=20"), timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["upstream"]["waited_ms"] == 20


def test_the_stack_rides_out_the_delay_service_stopping(compose_stack, figures):
    """Stopped: calls get a fast JSON 503 through nginx and the apps stay ready (readiness
    leaves the upstream out); started: calls succeed again."""
    compose_stack.compose("stop", "delay")
    try:
        outage = [
            requests.get(compose_stack.url(s, "/api/upstream?ms=1"), timeout=15) for s in SETUPS
        ]
        assert [r.status_code for r in outage] == [503] * len(SETUPS), [r.text for r in outage]
        assert {r.json()["error"] for r in outage} == {"upstream_unavailable"}
        # Fast: the connect timeout (2 s) and a bounded name lookup, far from nginx's 35 s.
        assert max(r.elapsed.total_seconds() for r in outage) < 6
        for s in SETUPS:
            assert requests.get(compose_stack.url(s, "/readyz"), timeout=5).status_code == 200
    finally:
        compose_stack.compose("start", "delay")

    def every_setup_calls() -> bool:
        return all(
            requests.get(compose_stack.url(s, "/api/upstream?ms=1"), timeout=10).ok for s in SETUPS
        )

    wait_until(every_setup_calls, timeout=60, what="every setup to call the delay service again")
    compose_stack.wait_until_healthy()
    figures(
        "e2e.upstream.outage",
        answered_503=len(outage),
        slowest_503_seconds=round(max(r.elapsed.total_seconds() for r in outage), 3),
    )
