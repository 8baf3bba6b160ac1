"""The monitoring profile: Prometheus scraping the three setups' multiprocess metrics."""

from __future__ import annotations

import requests
from helpers import wait_until

from harness.launch import SETUPS, free_port
from loadtest.evidence import simultaneous_get


def test_prometheus_scrapes_every_setup_and_queries_return_data_for_each(compose_stack):
    env = {"PROMETHEUS_PORT": str(free_port())}
    prometheus = f"http://127.0.0.1:{env['PROMETHEUS_PORT']}"
    compose_stack.compose(
        "--profile", "monitoring", "up", "--detach", "--wait", "prometheus", env=env
    )
    try:

        def targets_up() -> dict:
            targets = requests.get(f"{prometheus}/api/v1/targets", timeout=5).json()
            up = {t["labels"]["setup"]: t["health"] for t in targets["data"]["activeTargets"]}
            return up if up == dict.fromkeys(SETUPS, "up") else {}

        wait_until(targets_up, timeout=60, what="Prometheus to scrape all three setups")
        for setup in SETUPS:
            simultaneous_get([compose_stack.url(setup, "/api/whoami")] * 10)

        def counted() -> dict:
            result = requests.get(
                f"{prometheus}/api/v1/query",
                timeout=5,
                params={"query": 'sum by (setup) (http_requests_total{route="/api/whoami"})'},
            ).json()
            values = {r["metric"]["setup"]: float(r["value"][1]) for r in result["data"]["result"]}
            return values if set(values) == set(SETUPS) and min(values.values()) >= 10 else {}

        values = wait_until(counted, timeout=60, what="a query with data for every setup")
        print(f"\nPrometheus: /api/whoami requests counted per setup: {values}")
    finally:
        compose_stack.compose(
            "--profile", "monitoring", "rm", "--stop", "--force", "prometheus", env=env, check=False
        )
