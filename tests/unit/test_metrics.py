"""The metrics as deployed: several worker processes writing files that one scrape adds up.

app/metrics.py writes its per-request series straight into prometheus_client's multiprocess
files (one 8-byte store each, not five trips through the public API). These tests run the app
in a fresh interpreter with PROMETHEUS_MULTIPROC_DIR set, as Gunicorn's config does, and read
the files back with prometheus_client's own MultiProcessCollector: if an upgrade of the pinned
prometheus-client changed the file layout, the counts here would be wrong or missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Runs in a child interpreter: serves requests in this process and in a forked child (a
# worker of its own, with its own file), then prints every sample the collector reads.
SERVE_AND_COLLECT = r"""
import json, os, signal, sys
from app import create_app, metrics
from prometheus_client import CollectorRegistry, multiprocess

client = create_app({"TESTING": True}).test_client()
for _ in range(3):
    client.get("/api/whoami")
client.get("/api/io?ms=x")
client.get("/no-such-page")
client.get("/metrics")  # the scrape itself is not counted

# Enough other label sets to grow the file past its first mapping (64 KiB): the series
# created before the growth must still be written where the collector reads them.
for n in range(int(sys.argv[1])):
    metrics._outcome(f"/grown/{n}", "GET", "200", "werkzeug")
client.get("/api/whoami")

# Forked while the parent holds the metrics' write lock (another thread could, mid-request):
# the child must not inherit it held, and must name itself in X-Worker-Pid.
metrics._writing.acquire()
child = os.fork()
if child == 0:
    signal.alarm(10)  # a child stuck on an inherited lock dies, and the parent says so
    answer = client.get("/api/whoami")
    client.get("/api/io?ms=1")
    os._exit(0 if answer.headers["X-Worker-Pid"] == str(os.getpid()) else 3)
metrics._writing.release()
_, status = os.waitpid(child, 0)
if status != 0:
    sys.exit(f"the forked child failed: wait status {status}")

registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry)
samples = [
    [s.name, s.labels, s.value]
    for family in registry.collect()
    for s in family.samples
    if not s.labels.get("route", "").startswith("/grown/")
]
print(json.dumps(samples))
"""


def collected(tmp_path: Path, grown_series: int = 400) -> list[tuple[str, dict, float]]:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", SERVE_AND_COLLECT, str(grown_series)],
        cwd=ROOT,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [tuple(sample) for sample in json.loads(result.stdout)]  # type: ignore[misc]


def value(samples, name: str, **labels: str) -> float | None:
    for sample_name, sample_labels, sample_value in samples:
        if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items()):
            return sample_value
    return None


def test_requests_from_every_process_add_up_by_route_method_and_status(tmp_path):
    samples = collected(tmp_path)
    total = "http_requests_total"
    # 3 + 1 after the growth in the parent, 1 in the forked child.
    assert value(samples, total, route="/api/whoami", method="GET", status="200") == 5
    assert value(samples, total, route="/api/io", status="400") == 1
    assert value(samples, total, route="/api/io", status="200") == 1  # the child's
    assert value(samples, total, route="unmatched", status="404") == 1
    assert value(samples, total, route="/metrics") is None


def test_the_latency_histogram_counts_each_request_once_in_its_bucket(tmp_path):
    samples = collected(tmp_path)
    name = "http_request_duration_seconds"
    whoami = {"route": "/api/whoami", "method": "GET"}
    assert value(samples, f"{name}_count", **whoami) == 5
    assert value(samples, f"{name}_bucket", le="+Inf", **whoami) == 5
    seconds = value(samples, f"{name}_sum", **whoami)
    assert seconds is not None and 0 < seconds < 5
    # Buckets are cumulative: each counts the requests at or below its bound.
    buckets = sorted(
        (float(labels["le"]), count)
        for sample_name, labels, count in samples
        if sample_name == f"{name}_bucket" and labels.get("route") == "/api/whoami"
    )
    counts = [count for _, count in buckets]
    assert counts == sorted(counts)


def test_nothing_stays_in_flight_once_every_request_is_answered(tmp_path):
    samples = collected(tmp_path, grown_series=0)
    in_flight = [s for s in samples if s[0] == "http_requests_in_flight"]
    assert in_flight, "no in-flight series was written"
    assert all(sample_value == 0 for _, _, sample_value in in_flight)


def test_requests_served_by_greenlets_write_without_the_lock_threads_need():
    """A gevent worker's requests take turns only where they would block, which a metrics
    write never does, so they skip the lock (gevent's, costly). Held here by another thread:
    a greenlet-served request is counted at once, a thread-served one once it is free."""
    from app import metrics
    from app.serving import GREENLETS

    environ = {"PATH_INFO": "/api/whoami", "REQUEST_METHOD": "GET"}
    done: list[str] = []

    def serve(kind: str) -> None:
        metrics.start(environ, kind)
        metrics.finish(environ, "/api/whoami", "200 OK", kind, 0.001)
        done.append(kind)

    with metrics._writing:
        greenlets = threading.Thread(target=serve, args=(GREENLETS,), daemon=True)
        greenlets.start()
        greenlets.join(timeout=10)
        assert done == [GREENLETS], "a greenlet-served request waited for the threads' lock"
        threads = threading.Thread(target=serve, args=("gthread",), daemon=True)
        threads.start()
        assert done == [GREENLETS]
    threads.join(timeout=10)
    assert done == [GREENLETS, "gthread"]
