"""Prometheus metrics that add up across Gunicorn's worker processes (multiprocess mode)."""

from __future__ import annotations

import os
import re
import signal
import threading

import pytest
import requests
from helpers import wait_until

from harness.launch import SETUPS
from loadtest.evidence import simultaneous_get

K = 48


def scrape(stack, setup: str) -> str:
    """The setup's /metrics, straight from Gunicorn (nginx refuses it from outside)."""
    (bind,) = stack.configs()[setup]["bind"]
    response = requests.get(f"http://{bind}/metrics", timeout=5)
    assert response.status_code == 200
    return response.text


def total(text: str, metric: str, **labels: str) -> float:
    """Sum of every sample of ``metric`` whose labels include ``labels``."""
    found = 0.0
    for name, label_text, value in re.findall(r"^(\w+)\{(.*?)\} (\S+)$", text, re.M):
        sample_labels = dict(re.findall(r'(\w+)="(.*?)"', label_text))
        if name == metric and labels.items() <= sample_labels.items():
            found += float(value)
    return found


@pytest.mark.parametrize("setup", SETUPS)
def test_exactly_k_requests_spread_over_workers_are_counted_exactly_k_times(native_stack, setup):
    labels = {"route": "/api/whoami", "method": "GET", "status": "200", "worker_class": setup}
    before = total(scrape(native_stack, setup), "http_requests_total", **labels)
    pids: set[int] = set()
    sent = 0
    # 8 at a time, so several workers (and threads) share the work. Which worker accepts a
    # connection is up to the kernel and nginx's pool, so keep going (bounded) until at least
    # two have served: the count must add up across processes.
    while sent < K or (len(pids) < 2 and sent < 20 * K):
        responses = simultaneous_get([native_stack.load(setup, "/api/whoami")] * 8)
        assert [r.status_code for r in responses] == [200] * 8
        pids |= {r.json()["pid"] for r in responses}
        sent += 8
    after = scrape(native_stack, setup)
    print(
        f"\n{setup}: {sent} requests over {len(pids)} worker processes, counted "
        f"{total(after, 'http_requests_total', **labels) - before:g}"
    )
    assert len(pids) >= 2
    assert total(after, "http_requests_total", **labels) - before == sent
    hist = {"route": "/api/whoami", "method": "GET", "worker_class": setup}
    assert total(after, "http_request_duration_seconds_count", **hist) >= sent


def test_requests_in_flight_are_summed_over_workers_while_they_run(native_stack):
    done = threading.Event()

    def burst():
        simultaneous_get([native_stack.load("gevent", "/api/io?ms=1500")] * 6)
        done.set()

    threading.Thread(target=burst, daemon=True).start()
    wait_until(
        lambda: total(scrape(native_stack, "gevent"), "http_requests_in_flight") >= 6,
        timeout=5,
        what="6 requests in flight",
    )
    wait_until(done.is_set, timeout=15, what="the burst to finish")
    assert total(scrape(native_stack, "gevent"), "http_requests_in_flight") == 0


def test_a_killed_worker_stops_counting_as_a_live_process(native_stack):
    workers = native_stack.configs()["sync"]["workers"]
    served = {
        r.json()["pid"]
        for r in simultaneous_get([native_stack.load("sync", "/api/whoami")] * workers * 2)
    }
    victim = sorted(served)[0]
    os.kill(victim, signal.SIGKILL)

    def replacement_served() -> bool:
        pids = {
            r.json()["pid"]
            for r in simultaneous_get([native_stack.load("sync", "/api/whoami")] * workers * 2)
        }
        return bool(pids - served)

    wait_until(replacement_served, timeout=30, what="a replacement worker to serve")
    live = total(scrape(native_stack, "sync"), "app_worker_processes")
    print(f"\nsync: killed worker {victim}; live processes reported: {live:g} of {workers}")
    assert 1 <= live <= workers  # without child_exit's mark_process_dead: workers + 1


def test_metrics_are_not_reachable_through_nginx(native_stack):
    for setup in SETUPS:
        response = requests.get(native_stack.url(setup, "/metrics"), timeout=5)
        assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_the_metrics_report_worker_processes_and_threads(native_stack):
    text = scrape(native_stack, "gthread")
    assert total(text, "app_worker_processes", worker_class="gthread") >= 1
    # gthread workers run a thread pool: more OS threads than processes.
    assert total(text, "app_worker_threads", worker_class="gthread") > total(
        text, "app_worker_processes", worker_class="gthread"
    )
