"""The compose stack's PostgreSQL (the `db` service): each setup queries it through nginx, 20
simultaneous queries overlap as far as the setup allows, a scaled app service's pools still
fit max_connections, and the database stopped and started again under the running stack
(`docker compose stop db` / `start db`)."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
import requests
from helpers import wait_until

from harness.launch import SETUPS

SIMULTANEOUS, QUERY_MS = 20, 300
APP_SERVICES = [f"app-{setup}" for setup in SETUPS]
# loadtest/simultaneous.py, run inside the Locust master's container against nginx's load
# port (the published port's rate limit would shed a burst): the same summary the docs print.
MEASURE = (
    "import json, sys; from loadtest.simultaneous import measure; "
    "print(json.dumps(measure(sys.argv[1], sys.argv[2], int(sys.argv[3]))))"
)
# One burst to every setup at once, {setup: count} in argv[3]: every answer's body (who served
# it, the database's connections then) and status, per setup.
BURST_BODIES = (
    "import json, sys; from loadtest.evidence import simultaneous_get; "
    "url, path, counts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]); "
    "setups = [s for s, n in counts.items() for _ in range(n)]; "
    "answers = simultaneous_get([f'{url}/{s}{path}' for s in setups]); "
    "print(json.dumps([{'setup': s, 'status': r.status_code, **r.json()} "
    "for s, r in zip(setups, answers)]))"
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
    out = compose_stack.python_in_locust(
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


def last_boot_config_per_container(log_text: str) -> dict[str, dict]:
    """The config each app container printed at its last boot, by container (compose logs'
    prefix): a container restarted by an earlier test printed one per start."""
    found = re.findall(r'^(\S+)\s+\|\s+(\{"event": "gunicorn_config".*\})\s*$', log_text, re.M)
    return {container: json.loads(config) for container, config in found}


def psql(compose_stack, query: str) -> str:
    return compose_stack.compose(
        "exec", "-T", "db", "psql", "--username=app", "--dbname=app", "-tAc", query
    ).strip()


def gthread_hosts(compose_stack) -> set[str]:
    """The running app-gthread containers' hostnames (Docker's default: the short id)."""
    return {c[:12] for c in compose_stack.compose("ps", "--quiet", "app-gthread").split()}


def scale_gthread(compose_stack, replicas: int) -> None:
    """`--scale app-gthread=N`, then nginx reloaded (SIGHUP to its master, what `docker
    compose kill -s HUP nginx` sends): nginx resolves the service's name when it loads its
    config, so the reload is what adds (or drops) the replicas' addresses. Returns once
    nginx sends gthread's requests to exactly the running replicas."""
    compose_stack.scale("app-gthread", replicas)
    compose_stack.compose("kill", "-s", "HUP", "nginx")
    expected = gthread_hosts(compose_stack)
    assert len(expected) == replicas

    def served_by_exactly_those() -> bool:
        answers = [
            requests.get(compose_stack.url("gthread", "/api/whoami"), timeout=5) for _ in range(8)
        ]
        return all(r.status_code == 200 for r in answers) and (
            {r.json()["hostname"] for r in answers} == expected
        )

    wait_until(served_by_exactly_those, timeout=30, what=f"nginx to reach {replicas} replica(s)")


def test_a_scaled_app_service_still_fits_the_databases_connections(compose_stack, figures):
    """`docker compose up --scale app-gthread=2` (the setup with the biggest pools): every app
    process's pool, added up, stays within PostgreSQL's max_connections less its reserve;
    with as many queries at once as the pools may hold, every one is served and the database
    never holds more connections than that sum. (Past it, a query is answered 503
    database_connections_exhausted, naming the cause: tests/integration/test_database.py.)"""
    scale_gthread(compose_stack, 2)
    try:

        def gthread_replicas() -> dict[str, dict]:
            configs = last_boot_config_per_container(
                compose_stack.compose("logs", "--no-color", *APP_SERVICES)
            )
            return configs if sum("app-gthread" in c for c in configs) == 2 else {}

        configs = wait_until(gthread_replicas, timeout=60, what="both gthread replicas' boot")
        pools = {c: cfg["workers"] * cfg["pool_size"] for c, cfg in configs.items()}
        limit = int(psql(compose_stack, "SHOW max_connections"))
        reserved = int(psql(compose_stack, "SHOW superuser_reserved_connections"))
        assert sum(pools.values()) <= limit - reserved, pools
        # As many simultaneous queries to each setup as its replicas' pools may hold, all sent
        # at the same moment, through nginx's load port.
        counts = {
            setup: sum(p for c, p in pools.items() if f"app-{setup}" in c) for setup in SETUPS
        }
        answers = json.loads(
            compose_stack.python_in_locust(
                "-c",
                BURST_BODIES,
                "http://nginx:8081",
                f"/api/db?ms={QUERY_MS}",
                json.dumps(counts),
            )
        )
        assert {a["status"] for a in answers} == {200}, [a for a in answers if a["status"] != 200][
            :3
        ]
        # nginx reached both gthread replicas.
        assert {a["hostname"] for a in answers if a["setup"] == "gthread"} == gthread_hosts(
            compose_stack
        )
        peak = max(a["db"]["database_connections"] for a in answers)
        # Besides the pools, only the healthcheck's pg_isready may hold a session then.
        assert peak <= sum(pools.values()) + 1, (peak, pools)
    finally:
        scale_gthread(compose_stack, 1)
    figures(
        "e2e.database.scaled",
        pools=pools,
        usable_cpus=max(cfg["usable_cpus"] for cfg in configs.values()),
        total=sum(pools.values()),
        max_connections=limit,
        reserved=reserved,
        queries=counts,
        peak_connections=peak,
    )
