"""The report's flags for runs where Locust, not the server, may have been the limit: judged
on hand-made runs with known answers (harness/runner.py)."""

from __future__ import annotations

import pytest

from harness.runner import LoadRun


def run(rps: float, cpu_share: float, ceiling: float | None) -> LoadRun:
    return LoadRun(
        target="gthread",
        scenario="Hello",
        users=50,
        seconds=10,
        requests=int(rps * 10),
        failures=0,
        rps=rps,
        p50_ms=10,
        p95_ms=20,
        p99_ms=30,
        locust_cpu_share=cpu_share,
        locust_ceiling_rps=ceiling,
    )


@pytest.mark.parametrize(
    "cpu_share, saturated", [(0.5, False), (0.89, False), (0.9, True), (1.3, True)]
)
def test_a_locust_process_near_a_full_core_is_flagged_saturated(cpu_share, saturated):
    assert run(100, cpu_share, 1000).locust_saturated is saturated
    assert run(100, cpu_share, 1000).as_dict()["locust_saturated"] is saturated


@pytest.mark.parametrize(
    "rps, ceiling, near",
    [(700, 1000, False), (799, 1000, False), (800, 1000, True), (950, 1000, True)],
)
def test_a_run_within_20_percent_of_locusts_ceiling_is_flagged(rps, ceiling, near):
    assert run(rps, 0.3, ceiling).near_locust_ceiling is near


def test_without_a_measured_ceiling_no_run_is_flagged_near_it():
    assert run(5000, 0.3, None).near_locust_ceiling is False
