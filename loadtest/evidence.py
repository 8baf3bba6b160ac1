"""What the servers' own answers say about who served a batch of requests.

Every /api/* answer carries the process, OS thread and greenlet that served it and the
server-clock start and finish times, so concurrency is measured on the server side, not
guessed from client latencies. HTTP only: nothing here imports the app.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

# The setups by their nginx prefixes (/sync/, /gthread/, /gevent/; see
# nginx/snippets/server/routes.conf): the same names as gunicorn_conf.SETUPS, which this
# black-box package cannot import (it runs in the Locust image, which holds no server code).
# tests/unit/test_evidence.py checks that they agree.
SETUPS = ("sync", "gthread", "gevent")


def max_in_flight(spans: Iterable[tuple[float, float]]) -> int:
    """Largest number of [start, end) intervals that overlap at one instant."""
    events = []
    for start, end in spans:
        events.append((start, 1))
        events.append((end, -1))
    # At equal times, ends sort before starts: back-to-back requests do not overlap.
    events.sort(key=lambda e: (e[0], e[1]))
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


def summarize(bodies: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts of requests, overlap, processes, threads and greenlets in a batch of answers."""
    processes = {(b["hostname"], b["pid"]) for b in bodies}
    return {
        "requests": len(bodies),
        "max_in_flight": max_in_flight((b["started_at"], b["finished_at"]) for b in bodies),
        "processes": len(processes),
        "threads": len({(b["hostname"], b["pid"], b["thread_id"]) for b in bodies}),
        "greenlets": len(
            {
                (b["hostname"], b["pid"], b["greenlet_id"])
                for b in bodies
                if b["greenlet_id"] is not None
            }
        ),
        "threads_per_process": max(
            (
                len({b["thread_id"] for b in bodies if (b["hostname"], b["pid"]) == p})
                for p in processes
            ),
            default=0,
        ),
        "wall_seconds": round(
            max((b["finished_at"] for b in bodies), default=0)
            - min((b["started_at"] for b in bodies), default=0),
            3,
        ),
    }


def simultaneous_get(urls: list[str], timeout: float = 30) -> list[requests.Response]:
    """GET every URL at the same moment: one thread and one fresh connection per request."""
    barrier = threading.Barrier(len(urls))

    def fetch(url: str) -> requests.Response:
        with requests.Session() as session:
            barrier.wait()
            return session.get(url, timeout=timeout)

    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        return list(pool.map(fetch, urls))
