"""Prometheus metrics that stay correct across Gunicorn's worker processes.

Each worker is a separate process with its own memory, so a plain in-process counter would
report only the share of whichever worker answered the scrape. With PROMETHEUS_MULTIPROC_DIR
set (Gunicorn's config does it per setup, and cleans it at start), prometheus_client keeps
every worker's values in memory-mapped files there, and /metrics sums all of them. Without it
(tests, the dev server) the ordinary single-process registry is used.

/metrics is served by the app on its own port; nginx refuses it from outside
(nginx/snippets/server/routes.conf), and Prometheus scrapes each setup directly on the
internal network.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import struct
import threading
from typing import Any

from flask import Blueprint, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from app.serving import GREENLETS

# prometheus_client switches to multiprocess files when the variable is present at all.
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ

REQUESTS = Counter(
    "http_requests_total",
    "Requests answered, by route, method and status.",
    ["route", "method", "status", "worker_class"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time the app took per request.",
    ["route", "method", "worker_class"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# "livesum": the sum over live processes; a dead worker's share is dropped (child_exit hook).
IN_FLIGHT = Gauge(
    "http_requests_in_flight",
    "Requests being handled right now.",
    ["worker_class"],
    multiprocess_mode="livesum",
)
PROCESSES = Gauge(
    "app_worker_processes",
    "Worker processes serving the app.",
    ["worker_class"],
    multiprocess_mode="livesum",
)
THREADS = Gauge(
    "app_worker_threads",
    "OS threads in the worker processes.",
    ["worker_class"],
    multiprocess_mode="livesum",
)

bp = Blueprint("metrics", __name__)
UNCOUNTED = {"/metrics"}
UNMATCHED = "unmatched"  # the route label of requests no URL rule matched


@bp.get("/metrics")
def metrics() -> Response:
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _os_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # not Linux
        return threading.active_count()


# The hot path: every request pays for what runs here. Through prometheus_client's public
# calls one request cost five value writes at ~7,000 CPU instructions each (measured under
# valgrind): every write takes one process-wide lock, asks the kernel for the pid and formats
# two doubles. Served, the metrics were most of what observability cost (docs/bench/bench.md).
# So the per-request series are written here directly: each as a _Slot, one 8-byte store into
# the worker's metrics file at the entry prometheus_client created for it. This relies on the
# file layout of the pinned prometheus-client (app/requirements.txt: mmap_dict.py, values.py);
# tests/unit/test_metrics.py fails if an upgrade changes it. Without PROMETHEUS_MULTIPROC_DIR
# (tests, the dev server) the in-memory values are used as they are: they already have inc().
_pack_into = struct.Struct("d").pack_into


class _Slot:
    """One labelled value in this worker's metrics file, at a fixed offset. prometheus_client
    formats the entry (key, value, timestamp) when the child is created; here only the value's
    eight bytes are rewritten, whole (one copy into the mapping, never a partial write a
    concurrent scrape could read). Not safe on its own: callers hold _writing."""

    __slots__ = ("_file", "_pos", "_value")

    def __init__(self, value: Any) -> None:
        # get() makes prometheus_client check the pid first: in a forked child it moves every
        # value to the child's own file before the entry's place is read here.
        self._value = value.get()
        self._file = value._file  # MmapedDict; its mmap can be replaced when the file grows
        self._pos = value._file._positions[value._key]

    def inc(self, amount: float) -> None:
        self._value = total = self._value + amount
        _pack_into(self._file._m, self._pos, total)


def _slot(value: Any) -> Any:
    """What the hot path writes to for one prometheus_client value."""
    return _Slot(value) if MULTIPROCESS else value


class _Outcome:
    """The series one finished request updates, for one (route, method, status, worker
    class): looked up with one dict read per request."""

    __slots__ = ("requests", "latency_sum", "latency_buckets")

    def __init__(self, route: str, method: str, status: str, kind: str) -> None:
        histogram = LATENCY.labels(route, method, kind)
        self.requests = _slot(REQUESTS.labels(route, method, status, kind)._value)
        self.latency_sum = _slot(histogram._sum)
        self.latency_buckets = [_slot(bucket) for bucket in histogram._buckets]


# One lock for every write of this process, taken once when a request starts and once when it
# ends (not once per value: a request's four writes at the end share it). It is held for a few
# bytecodes, never across I/O. Built per process and per label set, on first use: a forked
# child starts over (_start_over), since its values live in a file of its own and a lock held
# at the fork would stay held. Two threads building the same entry at once both get the one
# setdefault() kept.
#
# Requests served by greenlets (serving.GREENLETS, the gevent worker class) skip the lock:
# they all run on the process's one OS thread, and a greenlet gives way only where it would
# block, which these writes never do, so no other request can run between a value's read and
# its write. There the lock is gevent's (gevent patched threading), and taking it twice cost
# more than the writes themselves (py-spy; docs/measuring.md).
_BOUNDS = LATENCY._upper_bounds
_writing = threading.Lock()
_UNGUARDED = contextlib.nullcontext()
_in_flight_slots: dict[str, Any] = {}
_outcomes: dict[tuple[str, str, str, str], _Outcome] = {}


def _in_flight(kind: str) -> Any:
    slot = _in_flight_slots.get(kind)
    if slot is None:
        slot = _in_flight_slots.setdefault(kind, _slot(IN_FLIGHT.labels(kind)._value))
    return slot


def _outcome(route: str, method: str, status: str, kind: str) -> _Outcome:
    key = (route, method, status, kind)
    outcome = _outcomes.get(key)
    if outcome is None:
        outcome = _outcomes.setdefault(key, _Outcome(*key))
    return outcome


# The process and thread gauges change only when a process or a thread starts serving (a
# Gunicorn worker starts, the gthread pool grows), so they are set then, not on every
# request: counting /proc/self/task is a directory listing. "Seen" lives in a thread-local,
# freed with its thread; under gevent that is per greenlet, i.e. per client connection
# (nginx keeps its connections open), still not per request.
_seen = threading.local()


def _start_over() -> None:
    """In a forked child: nothing of the parent's is written to, waited on or taken as seen."""
    global _writing, _seen
    _writing = threading.Lock()
    _seen = threading.local()
    _in_flight_slots.clear()
    _outcomes.clear()


# Gunicorn imports the app after it forks (preload_app is off), so this matters when a
# process that already served forks: preload, or tests/unit/test_metrics.py.
os.register_at_fork(after_in_child=_start_over)


def _note_process_and_thread(kind: str) -> None:
    if getattr(_seen, "noted", False):
        return
    _seen.noted = True
    PROCESSES.labels(kind).set(1)  # this process is alive: livesum counts it once
    THREADS.labels(kind).set(_os_threads())


def start(environ: dict[str, Any], kind: str) -> bool:
    """A request begins: count it in flight (app/observability.py calls this). False for the
    paths that are not counted (the scrape itself)."""
    if environ.get("PATH_INFO") in UNCOUNTED:
        return False
    slot = _in_flight(kind)
    with _UNGUARDED if kind == GREENLETS else _writing:
        slot.inc(1)
    _note_process_and_thread(kind)
    return True


def route(environ: dict[str, Any]) -> str:
    """The URL rule Flask matched for the request being answered, read from the request object
    Werkzeug keeps in the environ while Flask's request context is open; UNMATCHED for a 404
    (and for a request Flask never built)."""
    rule = getattr(environ.get("werkzeug.request"), "url_rule", None)
    return rule.rule if rule is not None else UNMATCHED


def finish(environ: dict[str, Any], route: str, status: str, kind: str, seconds: float) -> None:
    """The app has answered (or raised): count the request by route, method and status, time
    it, and take it out of flight. Runs in the process and thread start() ran in."""
    outcome = _outcome(route, environ.get("REQUEST_METHOD", "GET"), status[:3], kind)
    # The histogram's bucket: the first upper bound >= seconds ("le"), as observe() finds it.
    bucket = outcome.latency_buckets[bisect.bisect_left(_BOUNDS, seconds)]
    in_flight = _in_flight_slots[kind]
    with _UNGUARDED if kind == GREENLETS else _writing:
        outcome.requests.inc(1)
        outcome.latency_sum.inc(seconds)
        bucket.inc(1)
        in_flight.inc(-1)
