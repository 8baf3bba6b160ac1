"""What the servers' own answers say about who served a batch of requests.

Every /api/* answer carries the process, OS thread and greenlet that served it and the
server-clock start and finish times, so concurrency is measured on the server side, not
guessed from client latencies. HTTP only: nothing here imports the app.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
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


# The isolation experiment's stores (app/isolation.py) that the figures count: a module
# global and a dict keyed by the OS thread (both clobbered by concurrent requests in one
# process, or one OS thread), and flask.g (never).
ISOLATION_STORES = ("module_global", "dict_by_os_thread_id", "flask_g")


def summarize(bodies: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts of requests, overlap, processes, threads and greenlets in a batch of answers;
    requests per process; and, for isolation answers (they carry ``leaked``), how many found
    each store clobbered by another request."""
    per_process = Counter(f"{b['hostname']}:{b['pid']}" for b in bodies)
    processes = {(b["hostname"], b["pid"]) for b in bodies}
    seen: dict[str, Any] = {
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
        "requests_per_process": dict(per_process.most_common()),
        "busiest_share": busiest_share(per_process),
    }
    checked = [b["leaked"] for b in bodies if b.get("leaked") is not None]
    if checked:
        seen["isolation"] = isolation_counts(
            Counter(s for leaked in checked for s in leaked), len(checked)
        )
    return seen


def busiest_share(per_process: Mapping[str, int]) -> float:
    """The busiest process's share of the requests (1.0: one process served them all)."""
    total = sum(per_process.values())
    return round(max(per_process.values()) / total, 3) if total else 0.0


def isolation_counts(leaks: Mapping[str, int], requests: int) -> dict[str, int]:
    """Of ``requests`` isolation answers, how many found each store clobbered (``leaks``:
    store -> answers that listed it), and how many kept their token in flask.g."""
    return {
        "requests": requests,
        "module_global_clobbered": leaks.get("module_global", 0),
        "os_thread_dict_clobbered": leaks.get("dict_by_os_thread_id", 0),
        "flask_g_intact": requests - leaks.get("flask_g", 0),
    }


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def reading(seen: Mapping[str, Any]) -> str:
    """The figures read as the report reads them: what was in flight at once, and who held
    it ("50 requests in flight → 2 processes × 1 thread × 50 greenlets")."""
    if not seen.get("requests"):
        return "no answers yet"
    parts = [
        _count(seen["processes"], "process", "processes"),
        _count(seen["threads_per_process"], "thread", "threads"),
    ]
    if seen["greenlets"]:
        parts.append(_count(seen["greenlets"], "greenlet", "greenlets"))
    in_flight = _count(seen["max_in_flight"], "request", "requests")
    return f"{in_flight} in flight → " + " × ".join(parts)


# --- Who served, while a load test runs: bounded and mergeable --------------------------

# The evidence fields, in the order a compact row carries them after (setup, scenario).
ROW_FIELDS = ("hostname", "pid", "thread_id", "greenlet_id", "started_at", "finished_at")
ROW_LENGTH = 2 + len(ROW_FIELDS) + 1  # ... and the isolation stores found clobbered, or None


def compact_row(setup: str, scenario: str, body: Mapping[str, Any]) -> list[Any]:
    """One answer as a short list (what a Locust worker sends its master), or ValueError
    when the body is not a whoami answer."""
    try:
        row = [setup, scenario, *(body[field] for field in ROW_FIELDS)]
    except (KeyError, TypeError) as missing:
        raise ValueError(f"not a whoami answer: no {missing}") from None
    leaked = body.get("leaked")
    row.append(None if leaked is None else [s for s in leaked if s in ISOLATION_STORES])
    return row


def _checked_row(row: Any) -> tuple[tuple[str, str], dict[str, Any]]:
    if not isinstance(row, (list, tuple)) or len(row) != ROW_LENGTH:
        raise ValueError(f"a row must be a list of {ROW_LENGTH} values, got {row!r:.80}")
    setup, scenario, hostname, pid, thread_id, greenlet_id, started, finished, leaked = row
    if not (isinstance(setup, str) and isinstance(scenario, str) and isinstance(hostname, str)):
        raise ValueError(f"setup, scenario and hostname must be strings: {row!r:.80}")
    numbers = (pid, thread_id, started, finished)
    if not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
        raise ValueError(f"pid, thread id and times must be numbers: {row!r:.80}")
    if not (greenlet_id is None or isinstance(greenlet_id, int)) or finished < started:
        raise ValueError(f"bad greenlet id or a finish before the start: {row!r:.80}")
    if leaked is not None and not (
        isinstance(leaked, list) and all(s in ISOLATION_STORES for s in leaked)
    ):
        raise ValueError(f"leaked must be null or a list of {ISOLATION_STORES}: {row!r:.80}")
    body = dict(zip(ROW_FIELDS, row[2:-1], strict=True))
    body["leaked"] = leaked
    return (setup[:40], scenario[:40]), body


class _Group:
    """One (setup, scenario): the last ``window`` answers, and whole-run counts."""

    def __init__(self, window: int) -> None:
        self.recent: deque[dict[str, Any]] = deque(maxlen=window)
        self.requests = 0
        self.per_process: Counter[str] = Counter()
        self.leaks: Counter[str] = Counter()
        self.checked = 0
        self.peak = 0  # the most in flight in any window seen so far
        self.unmeasured = 0  # answers added since the peak was last measured

    def add(self, body: dict[str, Any]) -> None:
        self.recent.append(body)
        self.requests += 1
        self.per_process[f"{body['hostname']}:{body['pid']}"] += 1
        if body["leaked"] is not None:
            self.checked += 1
            self.leaks.update(body["leaked"])
        self.unmeasured += 1
        # Measure before the window can drop an answer that was never measured.
        if self.unmeasured * 2 >= (self.recent.maxlen or 1):
            self.measure_peak()

    def measure_peak(self) -> None:
        spans = ((b["started_at"], b["finished_at"]) for b in self.recent)
        self.peak = max(self.peak, max_in_flight(spans))
        self.unmeasured = 0

    def figures(self) -> dict[str, Any]:
        self.measure_peak()
        seen = summarize(list(self.recent))
        seen.pop("isolation", None)
        seen.update(
            requests=self.requests,
            window=len(self.recent),
            max_in_flight=self.peak,
            requests_per_process=dict(self.per_process.most_common()),
            busiest_share=busiest_share(self.per_process),
        )
        if self.checked:
            seen["isolation"] = isolation_counts(self.leaks, self.checked)
        return seen


class Tally:
    """Who served a running load test, per (setup, scenario), from compact rows: what the
    Locust master merges from its workers' batches and the "Who served" tab shows
    (loadtest/who_served.py). Memory is bounded: distinct processes, threads, greenlets and
    the wall time come from the last ``window`` answers of each group; requests, requests per
    process, isolation counts and the most in flight cover the whole run."""

    WINDOW = 10_000
    # 4 setups (with "direct") x 8 scenarios (Database once per driver) is 32: more groups than
    # this are not a real run.
    MAX_GROUPS = 64

    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        self.groups: dict[tuple[str, str], _Group] = {}
        self.stale: set[tuple[str, str]] = set()  # groups of an earlier run, not yet fed

    def add_rows(self, rows: Iterable[Any]) -> int:
        """Merge a batch of compact rows; ValueError (nothing merged) if any is malformed."""
        if not isinstance(rows, (list, tuple)):
            raise ValueError(f"a batch must be a list of rows, got {type(rows).__name__}")
        checked = [_checked_row(row) for row in rows]
        new_keys = {key for key, _ in checked} - self.groups.keys()
        if len(self.groups) + len(new_keys) > self.MAX_GROUPS:
            raise ValueError(f"more than {self.MAX_GROUPS} setup/scenario groups")
        for key, body in checked:
            group = self.groups.get(key)
            if group is None or key in self.stale:
                self.stale.discard(key)
                self.groups.pop(key, None)  # re-inserted last: the newest group
                group = self.groups[key] = _Group(self.window)
            group.add(body)
        return len(checked)

    def new_run(self) -> None:
        """A new load test starts: each group it feeds starts afresh; the others stay, so a
        run on sync and then one on gevent can be read side by side."""
        self.stale = set(self.groups)

    def reset(self) -> None:
        """Forget every group (Locust's "Reset stats")."""
        self.groups.clear()
        self.stale = set()

    def figures(self) -> list[dict[str, Any]]:
        """One entry per (setup, scenario), the newest group first, with its reading."""
        found = []
        for (setup, scenario), group in reversed(self.groups.items()):
            seen = group.figures()
            found.append({"setup": setup, "scenario": scenario, "reading": reading(seen), **seen})
        return found


def simultaneous_get(urls: list[str], timeout: float = 30) -> list[requests.Response]:
    """GET every URL at the same moment: one thread and one fresh connection per request."""
    barrier = threading.Barrier(len(urls))

    def fetch(url: str) -> requests.Response:
        with requests.Session() as session:
            barrier.wait()
            return session.get(url, timeout=timeout)

    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        return list(pool.map(fetch, urls))
