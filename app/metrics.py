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

import os
import threading
import time
from typing import Any

from flask import Blueprint, Request, Response
from flask.ctx import _AppCtxGlobals
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


# The hot path: every request pays for what runs here, so nothing is looked up twice.
# labels() validates the label values and takes the metric's lock each time it is called;
# the children it returns are cached here instead (a plain dict read; two threads filling the
# same key at once both get the same child from prometheus_client).
_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once per process and label set."""
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children.setdefault(key, metric.labels(*labels))
    return child


# The process and thread gauges change only when a process or a thread starts serving (a
# Gunicorn worker starts, the gthread pool grows), so they are set then, not on every
# request: counting /proc/self/task is a directory listing. "Seen" lives in a thread-local,
# freed with its thread; under gevent that is per greenlet, i.e. per client connection
# (nginx keeps its connections open), still not per request. The pid guards a forked child.
_seen = threading.local()


def _note_process_and_thread(kind: str) -> None:
    pid = os.getpid()
    if getattr(_seen, "pid", None) == pid:
        return
    _seen.pid = pid
    _child(PROCESSES, kind).set(1)  # this process is alive: livesum counts it once
    _child(THREADS, kind).set(_os_threads())


def start(req: Request, ctx: _AppCtxGlobals, kind: str) -> None:
    """A request begins: count it in flight (app/observability.py calls this)."""
    if req.path in UNCOUNTED:
        return
    ctx.metrics_kind = kind
    ctx.metrics_started = time.perf_counter()
    _child(IN_FLIGHT, kind).inc()
    _note_process_and_thread(kind)


def finish(req: Request, ctx: _AppCtxGlobals, response: Response) -> None:
    """A response is ready: count it by route, method and status, and time it."""
    kind = ctx.get("metrics_kind")
    if kind is None:
        return
    route = req.url_rule.rule if req.url_rule else "unmatched"
    method = req.method
    _child(REQUESTS, route, method, str(response.status_code), kind).inc()
    _child(LATENCY, route, method, kind).observe(time.perf_counter() - ctx.metrics_started)


def leave(ctx: _AppCtxGlobals) -> None:
    """The request is over, even if a view raised: in-flight can never drift upwards."""
    kind = ctx.pop("metrics_kind", None)
    if kind is not None:
        _child(IN_FLIGHT, kind).dec()
