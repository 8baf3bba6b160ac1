"""Run one headless Locust load and read back what it measured.

Each run is a separate ``locust`` process with a fixed user count and duration, so runs are
independent and the load generator's own CPU time can be measured (from the OS's account
of the finished child, ``RUSAGE_CHILDREN``) and reported next to its numbers.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.launch import free_port
from loadtest.evidence import summarize

LOCUSTFILE = Path(__file__).resolve().parent.parent / "loadtest" / "locustfile.py"
# The request name each scenario (user class) is measured by. Mixed has three; the
# isolation scenario's extra "LEAK" rows are the demonstration, not requests.
SCENARIO_REQUESTS = {
    "Hello": "/api/whoami",
    "IoBound": "/api/io",
    "Database": "/api/db",
    "CpuBound": "/api/cpu",
    "Mixed": "*",
    "Isolation": "/api/isolation",
}
# One Locust process runs on one core: above this share of it, the client may be the limit.
SATURATED_CPU_SHARE = 0.9
# A run whose rate is within 20 % of Locust's own ceiling (locust_ceiling) may be measuring
# the load generator rather than the server.
NEAR_CEILING = 0.8


@dataclass
class LoadRun:
    """What one run measured: Locust's client-side figures and the servers' own evidence."""

    target: str
    scenario: str
    users: int
    seconds: int
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    locust_cpu_share: float
    served_by: dict[str, Any] = field(default_factory=dict)
    leaks: dict[str, int] = field(default_factory=dict)
    # What one Locust process can drive on this machine (locust_ceiling), when measured.
    locust_ceiling_rps: float | None = None

    @property
    def locust_saturated(self) -> bool:
        return self.locust_cpu_share >= SATURATED_CPU_SHARE

    @property
    def near_locust_ceiling(self) -> bool:
        return bool(self.locust_ceiling_rps) and self.rps >= NEAR_CEILING * (
            self.locust_ceiling_rps or 0
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "locust_saturated": self.locust_saturated,
            "near_locust_ceiling": self.near_locust_ceiling,
        }


def percentile(response_times: dict[str, int], fraction: float) -> float:
    """Locust's own rule: the smallest recorded (rounded) time that covers ``fraction``."""
    total = sum(response_times.values())
    if not total:
        return 0.0
    covered = 0
    for ms, count in sorted((float(k), v) for k, v in response_times.items()):
        covered += count
        if covered >= fraction * total:
            return ms
    return ms


def final_stats(json_file: Path, name: str) -> dict[str, Any]:
    """Final figures for one request name ("*": every GET), from Locust's --json-file.

    Not from its _stats.csv: Locust 2.47 writes that file on a one-second timer and its
    last write can miss the end of a run (seen here: 90 requests in the CSV, 170 in the JSON
    for the same 2 s run).
    """
    entries = [
        e
        for e in json.loads(json_file.read_text())
        if e["method"] == "GET" and name in ("*", e["name"])
    ]
    if not entries:
        return {"requests": 0, "failures": 0, "p50": 0.0, "p95": 0.0, "p99": 0.0}
    requests = sum(e["num_requests"] for e in entries)
    times: dict[str, int] = {}
    for entry in entries:
        for ms, count in entry["response_times"].items():
            times[ms] = times.get(ms, 0) + count
    return {
        "requests": requests,
        "failures": sum(e["num_failures"] for e in entries),
        "p50": percentile(times, 0.50),
        "p95": percentile(times, 0.95),
        "p99": percentile(times, 0.99),
    }


def _read_evidence(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    bodies = (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if path.exists()
        else []
    )
    leaks: dict[str, int] = {}
    for body in bodies:
        for store in body.get("leaked", []):
            leaks[store] = leaks.get(store, 0) + 1
    if any("leaked" in b for b in bodies):
        leaks.setdefault("flask_g", 0)
        leaks.setdefault("module_global", 0)
    return (summarize(bodies) if bodies else {}), leaks


def _run_locust(
    *,
    host: str,
    setup: str,
    users: int,
    seconds: int,
    json_stem: Path,
    user_class: str,
    extra: list[str] | None = None,
    workers: int = 0,
) -> float:
    """Run one headless Locust process to completion, its JSON stats at ``json_stem``.json;
    the share of a core it used over its wall time (from the OS's account of the finished
    children). With ``workers``, that process is a master and the load comes from that many
    worker processes, as in compose (``extra`` goes to every process)."""
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--host",
        host,
        "--setup",
        setup,
        "--users",
        str(users),
        # All users at once (within ~10 ms), stopped at once when the time is up.
        "--spawn-rate",
        str(users * 100),
        "--run-time",
        f"{seconds}s",
        "--json-file",
        str(json_stem),
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
        *(extra or []),
        user_class,
    ]
    worker_command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker"]
    if workers:
        port = free_port()
        bind = ["--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
        after_headless = command.index("--headless") + 1
        command[after_headless:after_headless] = [
            "--master",
            *bind,
            "--expect-workers",
            str(workers),
        ]
        worker_command += [
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(port),
            "--loglevel",
            "WARNING",
            *(extra or []),
        ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    load = [subprocess.Popen(worker_command, stdout=subprocess.DEVNULL) for _ in range(workers)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
        for worker in load:  # the master tells them to quit when the run is over
            worker.wait(timeout=30)
    finally:
        for worker in load:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"locust failed for {json_stem.name}:\n{result.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return round(cpu / wall, 2)


def run_locust(
    *,
    target: str,
    host: str,
    setup: str,
    user_class: str,
    scenario: str,
    users: int,
    seconds: int,
    out_dir: Path,
    io_ms: int,
    cpu_ms: int,
    keep_html: bool = True,
) -> LoadRun:
    """Run ``user_class`` with ``users`` users for ``seconds`` against ``host``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{target}-{scenario}-{users}u"
    evidence = out_dir / f"{stem}.evidence.jsonl"
    evidence.unlink(missing_ok=True)
    extra = [
        "--io-ms",
        str(io_ms),
        "--cpu-ms",
        str(cpu_ms),
        "--csv",
        str(out_dir / stem),
        "--evidence-file",
        str(evidence),
    ]
    if keep_html:
        extra += ["--html", str(out_dir / f"{stem}.html")]
    cpu_share = _run_locust(
        host=host,
        setup=setup,
        users=users,
        seconds=seconds,
        json_stem=out_dir / stem,
        user_class=user_class,
        extra=extra,
    )

    stats = final_stats(out_dir / f"{stem}.json", SCENARIO_REQUESTS[user_class])
    served_by, leaks = _read_evidence(evidence)
    # Throughput on the server's clock: answered requests over the time from the first
    # one's start to the last one's finish. Locust's own window also holds its start-up
    # (about 0.3 s here), which would understate a short run by 15 %.
    window = served_by.get("wall_seconds") or seconds
    rps = served_by.get("requests", 0) / window
    return LoadRun(
        target=target,
        scenario=scenario,
        users=users,
        seconds=seconds,
        requests=stats["requests"],
        failures=stats["failures"],
        rps=round(rps, 1),
        p50_ms=stats["p50"],
        p95_ms=stats["p95"],
        p99_ms=stats["p99"],
        locust_cpu_share=cpu_share,
        served_by=served_by,
        leaks=leaks,
    )


def steady_rps(entry: dict[str, Any]) -> float:
    """Requests per second in the full seconds of a run, from Locust's per-second counts:
    the median, leaving out the first and last (partial) second. Falls back to the total
    over the whole window for runs too short to have a full second."""
    per_second = [
        count
        for _, count in sorted((int(t), c) for t, c in entry.get("num_reqs_per_sec", {}).items())
    ]
    full = per_second[1:-1]
    if full:
        return float(sorted(full)[len(full) // 2])
    window = max(entry["last_request_timestamp"] - entry["start_time"], 1e-3)
    return entry["num_requests"] / window


def locust_rate(
    *,
    host: str,
    user_class: str,
    request_name: str,
    users: int,
    seconds: int,
    out_dir: Path,
    setup: str = "gthread",
    worker: bool = False,
    who_served: bool = True,
) -> dict[str, Any]:
    """Requests per second one Locust process sends in ``user_class`` at ``users`` users (no
    think time), and the share of a core it used: a local runner, or with ``worker`` one
    worker behind a master (compose's topology). ``who_served=False`` turns the answers'
    accounting off (loadtest/who_served.py), to measure what it costs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    variant = ("-worker" if worker else "") + ("" if who_served else "-no-who-served")
    stem = out_dir / f"rate-{user_class}-{setup}-{users}u{variant}"
    cpu_share = _run_locust(
        host=host,
        setup=setup,
        users=users,
        seconds=seconds,
        json_stem=stem,
        user_class=user_class,
        extra=None if who_served else ["--no-who-served"],
        workers=1 if worker else 0,
    )
    entries = [e for e in json.loads(Path(f"{stem}.json").read_text()) if e["name"] == request_name]
    if not entries or not entries[0]["num_requests"]:
        raise RuntimeError(f"{stem.name} sent no {request_name} request to {host}")
    entry = entries[0]
    return {
        "rps": round(steady_rps(entry), 1),
        "requests": entry["num_requests"],
        "failures": entry["num_failures"],
        "users": users,
        "seconds": seconds,
        "locust_cpu_share": cpu_share,
    }


def locust_ceiling(
    *, host: str, seconds: int, out_dir: Path, users: int = 64, **variant: bool
) -> dict[str, Any]:
    """How many requests per second one Locust process can send on this machine: the
    Ceiling scenario (nginx answering /healthz itself, no app). Every other Locust figure
    should stay well below this, or it measures Locust. ``variant``: locust_rate's
    ``worker`` and ``who_served``."""
    return locust_rate(
        host=host,
        user_class="Ceiling",
        request_name="/healthz",
        users=users,
        seconds=seconds,
        out_dir=out_dir,
        **variant,
    )
