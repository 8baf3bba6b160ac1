"""The compose stack's PostgreSQL (the `db` service): each setup queries it through nginx, 20
simultaneous queries overlap as far as the setup allows, and the database stopped and started
again under the running stack (`docker compose stop db` / `start db`)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests
from helpers import wait_until

from harness.launch import SETUPS

SIMULTANEOUS, QUERY_MS = 20, 300
# loadtest/simultaneous.py, run inside the Locust master's container against nginx's load
# port (the published port's rate limit would shed a burst): the same summary the docs print.
MEASURE = (
    "import json, sys; from loadtest.simultaneous import measure; "
    "print(json.dumps(measure(sys.argv[1], sys.argv[2], int(sys.argv[3]))))"
)


def started(compose_stack, service: str) -> str:
    """When the service's container (re)started: a restart by Docker changes it."""
    (container,) = compose_stack.compose("ps", "--quiet", service).split()
    return subprocess.run(
        ["docker", "inspect", "--format", "{{.State.StartedAt}}", container],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_the_database_is_internal_hardened_and_keeps_its_data_in_a_volume(compose_stack):
    db = compose_stack.config()["services"]["db"]
    assert set(db["networks"]) == {"app"} and not db.get("ports")
    assert [v["target"] for v in db["volumes"] if v["type"] == "volume"] == [
        "/var/lib/postgresql/data"
    ]
    assert compose_stack.compose("exec", "-T", "db", "id", "-u").strip() == "999"


@pytest.mark.parametrize("setup", SETUPS)
def test_each_setup_queries_the_database_through_nginx(compose_stack, setup):
    response = requests.get(compose_stack.url(setup, "/api/db?ms=5"), timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["worker_class"] == setup and body["db"]["backend_pid"] > 0


def test_simultaneous_queries_overlap_as_far_as_each_setup_allows(compose_stack, figures):
    out = compose_stack.compose(
        "exec",
        "-T",
        "-w",
        "/srv",
        "locust-master",
        "python",
        "-c",
        MEASURE,
        "http://nginx:8081",
        f"/api/db?ms={QUERY_MS}",
        str(SIMULTANEOUS),
    )
    rows = json.loads(out)
    # sync: one request (and one connection) per process; gthread and gevent: one wave.
    assert rows["sync"]["max_in_flight"] <= 5
    assert rows["gthread"]["max_in_flight"] >= 15 and rows["gevent"]["max_in_flight"] >= 15
    figures(
        "e2e.database.simultaneous",
        requests=SIMULTANEOUS,
        ms=QUERY_MS,
        rows={
            s: {k: rows[s][k] for k in ("max_in_flight", "processes", "wall_seconds")}
            for s in SETUPS
        },
    )


def test_the_stack_rides_out_a_database_outage(compose_stack, figures):
    """`docker compose stop db`: queries get a fast JSON 503 through nginx, the apps stay live
    (nothing restarts them); `start db`: queries succeed again with no app restart."""
    started_at = {s: started(compose_stack, f"app-{s}") for s in SETUPS}
    compose_stack.compose("stop", "db")
    try:
        outage = [requests.get(compose_stack.url(s, "/api/db?ms=1"), timeout=15) for s in SETUPS]
        assert [r.status_code for r in outage] == [503] * len(SETUPS), [r.text for r in outage]
        assert {r.json()["error"] for r in outage} <= {"database_unavailable"}
        assert all("Retry-After" in r.headers for r in outage)
        slowest = max(r.elapsed.total_seconds() for r in outage)
        # The pool's timeout (3 s) plus the hop: far from nginx's 35 s.
        assert slowest < 6
        for s in SETUPS:
            assert requests.get(compose_stack.url(s, "/healthz"), timeout=5).status_code == 200
    finally:
        compose_stack.compose("start", "db")
    back = time.monotonic()

    def every_setup_queries() -> bool:
        return all(
            requests.get(compose_stack.url(s, "/api/db?ms=1"), timeout=10).status_code == 200
            for s in SETUPS
        )

    wait_until(every_setup_queries, timeout=90, what="every setup to query the database again")
    recovered = time.monotonic() - back
    # Nothing restarted the apps, and the stack is whole again for the tests after this one.
    assert {s: started(compose_stack, f"app-{s}") for s in SETUPS} == started_at
    compose_stack.wait_until_healthy()
    figures(
        "e2e.database.outage",
        answered_503=len(outage),
        slowest_503_seconds=round(slowest, 3),
        back_within_seconds=round(recovered, 1),
    )
