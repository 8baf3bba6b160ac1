"""The soak: ordinary traffic for a long while, and nothing may grow or get lost.

    make soak                                  10 minutes, into artifacts/soak/
    python -m harness.soak --minutes 2         CI's version (tests/integration/test_soak.py)

The native stack (nginx + the three Gunicorn setups, tools/native_stack.py) with
``max_requests`` set low, so every worker is recycled several times during the run. First
each setup's rate on the mix (hello, 50 ms of I/O, 5 ms of CPU) is measured alone; then all
three get the mix at once, paced (an open loop, harness/flood.py), each at the share of its
own rate that keeps the whole machine near ``--load`` (70 %) busy. Every few seconds the
workers of each setup are sampled from outside (psutil): resident memory, open file
descriptors and TCP connections, and which pids serve.

What it judges (soak.md, soak.json, soak.png):

* requests sent / failed: every one answered 200;
* resident memory of the settled workers (not one just forked) in a window after warm-up and
  one at the end: grows <= 10 %;
* file descriptors and connections once the load stops: back to where they were before it
  (nginx's idle keep-alive pool to each setup may stay open: it is bounded);
* p99 in the first and the last minute: drift <= 20 %;
* worker recycles seen (new pids), at least two per setup.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from gunicorn_conf.cpus import usable_cpus
from harness import launch
from harness.flood import Flood, Paced, percentile_ms

ROOT = Path(__file__).resolve().parent.parent
MIX = ("/api/whoami", "/api/io?ms=50", "/api/cpu?ms=5")
SAMPLE_EVERY = 5.0
CALIBRATION_SECONDS = 5
REQUEST_TIMEOUT = 30
# nginx's idle keep-alive pool per upstream and per nginx worker process, read from its one
# place (nginx/snippets/upstream/keepalive.conf): each worker may keep that many connections
# open to a setup once the load stops (idle_pool counts the workers).
KEEPALIVE_CONF = ROOT / "nginx" / "snippets" / "upstream" / "keepalive.conf"
(KEEPALIVE_POOL,) = (
    int(n) for n in re.findall(r"^keepalive (\d+);", KEEPALIVE_CONF.read_text(), re.M)
)


@dataclass
class Sample:
    at: float  # seconds since the soak started
    workers: dict[int, dict[str, int]]  # pid: rss, fds, connections


@dataclass
class SetupRun:
    setup: str
    rate: float  # what the setup served alone, requests a second
    paced: float  # what it was sent during the soak
    samples: list[Sample] = field(default_factory=list)
    baseline: dict[str, int] = field(default_factory=dict)  # fds, connections before the load
    after: dict[str, int] = field(default_factory=dict)  # the same once it stopped
    idle_pool: int = KEEPALIVE_POOL  # nginx's idle connections to it, at most (idle_pool())


def idle_pool(stack: launch.Running) -> int:
    """The idle connections nginx may keep to one setup: its pool, once per nginx worker
    process (worker_processes auto: one per CPU), counted in the running stack."""
    workers = 0
    for process in psutil.Process(stack.process.pid).children(recursive=True):
        try:
            workers += process.cmdline()[:1] == ["nginx: worker process"]
        except psutil.NoSuchProcess:
            continue
    if not workers:
        raise RuntimeError("no nginx worker process found in the native stack")
    return KEEPALIVE_POOL * workers


def workers_of(master: int) -> list[psutil.Process]:
    return psutil.Process(master).children()


def process_table(master: int) -> dict[int, dict[str, int]]:
    table = {}
    for worker in workers_of(master):
        try:
            with worker.oneshot():
                table[worker.pid] = {
                    "rss": worker.memory_info().rss,
                    "fds": worker.num_fds(),
                    "connections": len(worker.net_connections(kind="tcp")),
                }
        except psutil.NoSuchProcess:  # recycled between listing and reading
            continue
    return table


def totals(master: int) -> dict[str, int]:
    """Descriptors and TCP connections of a setup's master and workers together."""
    processes = [psutil.Process(master), *workers_of(master)]
    fds = connections = 0
    for process in processes:
        try:
            fds += process.num_fds()
            connections += len(process.net_connections(kind="tcp"))
        except psutil.NoSuchProcess:
            continue
    return {"fds": fds, "connections": connections}


def calibrate(stack: launch.Running, setup: str) -> float:
    """The mix's rate with every slot of the setup busy, alone on the machine: each client
    sends the mix's paths in turn, so they are served in the soak's proportions."""
    config = stack.configs()[setup]
    clients = min(2 * launch.gunicorn_slots(config), 128)
    first, *more = [stack.load(setup, path) for path in MIX]
    flood = Flood(first, clients, CALIBRATION_SECONDS, REQUEST_TIMEOUT, more_urls=tuple(more))
    return float(flood.run().figures()["served_per_s"])


def soak(stack: launch.Running, minutes: float, load: float) -> tuple[list[SetupRun], list[Any]]:
    masters = {setup: config["pid"] for setup, config in stack.configs().items()}
    pool = idle_pool(stack)
    runs = []
    for setup in launch.SETUPS:
        rate = calibrate(stack, setup)
        runs.append(
            SetupRun(setup, rate, round(load * rate / len(launch.SETUPS), 1), idle_pool=pool)
        )
    time.sleep(SAMPLE_EVERY)  # calibration's connections settle into nginx's idle pool
    for run in runs:
        run.baseline = totals(masters[run.setup])

    seconds = minutes * 60
    paced = {
        run.setup: Paced(
            [stack.load(run.setup, path) for path in MIX], run.paced, seconds, REQUEST_TIMEOUT
        )
        for run in runs
    }

    async def main() -> None:
        started = time.monotonic()
        sender = asyncio.gather(*(p.run() for p in paced.values()))
        while not sender.done():
            for run in runs:
                table = await asyncio.to_thread(process_table, masters[run.setup])
                run.samples.append(Sample(round(time.monotonic() - started, 1), table))
            # The answers recorded so far never become garbage: out of the collector's sight.
            # Otherwise each full collection rescans all of them, and late in the run one
            # stalls this client (every request it times) for hundreds of milliseconds, in
            # every setup at once: a rising p99 that is the client's, not the servers'.
            gc.freeze()
            await asyncio.wait([sender], timeout=SAMPLE_EVERY)
        await sender
        gc.unfreeze()

    asyncio.run(main())
    time.sleep(SAMPLE_EVERY)
    for run in runs:
        run.after = totals(masters[run.setup])
    return runs, [(run.setup, paced[run.setup].answers) for run in runs]


# Worker memory is compared between two windows of this many seconds (after warm-up, and at
# the end), as the median of every settled worker's readings in each. Workers recycle every
# few seconds here, and one sample alone can catch one just forked, still importing the app:
# its memory is not the worker's (a CI run read +30 % growth from such a start).
RSS_WINDOW = 15.0
# A worker counts once it has been seen this long, or from the first sample (started before
# the load, so already settled).
SETTLED = 5.0


def settled_rss(run: SetupRun, low: float, high: float) -> float:
    """The median memory of the settled workers sampled between ``low`` and ``high`` seconds;
    of every worker sampled there if none had settled."""
    first_seen: dict[int, float] = {}
    for sample in run.samples:
        for pid in sample.workers:
            first_seen.setdefault(pid, sample.at)
    start = run.samples[0].at
    window = [s for s in run.samples if low <= s.at <= high] or run.samples[-1:]
    settled = [
        worker["rss"]
        for sample in window
        for pid, worker in sample.workers.items()
        if first_seen[pid] == start or sample.at - first_seen[pid] >= SETTLED
    ]
    return statistics.median(settled or [w["rss"] for s in window for w in s.workers.values()])


def judge(run: SetupRun, answers: Sequence[tuple[str, Any]], minutes: float) -> dict[str, Any]:
    seconds = minutes * 60
    warm = min(60.0, seconds / 4)  # first imports, pools and caches fill
    start = min(a.sent_at for _, a in answers)
    pids_seen = {pid for sample in run.samples for pid in sample.workers}
    initial = set(run.samples[0].workers)

    def window(low: float, high: float) -> list[float]:
        return [
            a.seconds for _, a in answers if low <= a.sent_at - start < high and a.status == 200
        ]

    minute = min(60.0, seconds / 2)
    p99_first = percentile_ms(window(0, minute))
    p99_last = percentile_ms(window(seconds - minute, seconds))
    end = run.samples[-1].at
    rss_first = settled_rss(run, warm, warm + RSS_WINDOW)
    rss_last = settled_rss(run, end - RSS_WINDOW, end)
    return {
        "setup": run.setup,
        "alone_per_s": round(run.rate, 1),
        "paced_per_s": run.paced,
        "sent": len(answers),
        "failed": sum(a.status != 200 for _, a in answers),
        "failed_by_status": dict(
            Counter(str(a.status or a.error) for _, a in answers if a.status != 200).most_common()
        ),
        "failed_at_s": sorted({round(a.sent_at - start) for _, a in answers if a.status != 200})[
            :20
        ],
        "rss_mib_start": round(rss_first / 2**20, 1),
        "rss_mib_end": round(rss_last / 2**20, 1),
        "rss_growth_pct": round(100 * (rss_last / rss_first - 1), 1),
        "fds_before": run.baseline["fds"],
        "fds_after": run.after["fds"],
        "connections_before": run.baseline["connections"],
        "connections_after": run.after["connections"],
        "idle_pool": run.idle_pool,
        "p99_ms_first_minute": p99_first,
        "p99_ms_last_minute": p99_last,
        "p99_drift_pct": round(100 * (p99_last / p99_first - 1), 1) if p99_first else None,
        "recycles": len(pids_seen - initial),
    }


def checks(row: dict[str, Any]) -> list[tuple[bool, str]]:
    """Each target, met or not, with its figures."""
    # Runs saved before the pool was counted per nginx worker hold no idle_pool.
    pool = row.get("idle_pool", KEEPALIVE_POOL)
    per_worker = f", {KEEPALIVE_POOL} per nginx worker" if pool != KEEPALIVE_POOL else ""
    return [
        (row["failed"] == 0, f"{row['sent']:,} requests sent, {row['failed']} failed (goal 0)"),
        (
            row["rss_growth_pct"] <= 10,
            f"worker memory {row['rss_mib_start']} -> {row['rss_mib_end']} MiB after warm-up "
            f"({row['rss_growth_pct']:+} %, goal <= 10 %)",
        ),
        (
            row["fds_after"] <= row["fds_before"] + pool
            and row["connections_after"] <= row["connections_before"] + pool,
            f"file descriptors {row['fds_before']} -> {row['fds_after']}, TCP connections "
            f"{row['connections_before']} -> {row['connections_after']} once the load stopped "
            f"(goal: back to the start, plus at most nginx's idle pool of {pool}"
            f"{per_worker})",
        ),
        (
            row["p99_drift_pct"] is not None and row["p99_drift_pct"] <= 20,
            f"p99 {row['p99_ms_first_minute']} ms in the first minute, "
            f"{row['p99_ms_last_minute']} ms in the last "
            f"({row['p99_drift_pct']:+} %, goal <= 20 %)",
        ),
        (row["recycles"] >= 2, f"{row['recycles']} worker recycles seen (goal >= 2)"),
    ]


def chart(runs: list[SetupRun], answers: list[Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (memory, tail) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for run, (_, setup_answers) in zip(runs, answers, strict=True):
        memory.plot(
            [s.at for s in run.samples],
            [statistics.median(w["rss"] for w in s.workers.values()) / 2**20 for s in run.samples],
            label=run.setup,
        )
        start = min(a.sent_at for _, a in setup_answers)
        buckets: dict[int, list[float]] = {}
        for _, a in setup_answers:
            buckets.setdefault(int((a.sent_at - start) // SAMPLE_EVERY), []).append(a.seconds)
        keys = sorted(buckets)
        tail.plot(
            [k * SAMPLE_EVERY for k in keys],
            [percentile_ms(buckets[k]) for k in keys],
            label=run.setup,
        )
    memory.set_ylabel("worker RSS, median (MiB)")
    tail.set_ylabel(f"p99 per {SAMPLE_EVERY:g} s (ms)")
    tail.set_xlabel("seconds into the soak")
    memory.legend()
    memory.set_title("Soak: memory and tail latency over time (workers recycled throughout)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def document(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"# Soak ({meta['date']}, {meta['cpus']} CPUs, {meta['minutes']:g} minutes)",
        "",
        f"Rerun: `{meta['command']}` (writes artifacts/soak/). The native stack with "
        f"`GUNICORN_MAX_REQUESTS={meta['max_requests']}`, so workers recycle throughout; the "
        f"mix {', '.join(f'`{p}`' for p in MIX)} paced at {meta['load']:.0%} of what each "
        "setup serves alone, shared out between the three running at once.",
        "",
        "![memory and p99 over time](soak.png)",
        "",
    ]
    met = sum(ok for row in rows for ok, _ in checks(row))
    lines.append(f"{met} of {sum(len(checks(r)) for r in rows)} targets met.")
    for row in rows:
        lines += ["", f"## {row['setup']}", ""]
        lines.append(
            f"Served alone {row['alone_per_s']} req/s; paced during the soak at "
            f"{row['paced_per_s']} req/s."
        )
        lines.append("")
        lines += [f"- {'met' if ok else 'MISSED'}: {text}" for ok, text in checks(row)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--load", type=float, default=0.7, help="share of the machine to use")
    parser.add_argument(
        "--max-requests", type=int, default=None, help="Gunicorn's, default 6 x seconds"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "soak")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    # Recycles throughout, but not so many that starting workers becomes the load (a new
    # worker imports the app: about a second of CPU). At 70 % here a sync worker serves ~10
    # requests a second of the soak (five share sync's part) and a gthread or gevent worker
    # ~55, so 6 x seconds recycles each sync worker about twice and each of the others ~9
    # times (a 10-minute run at 12 x seconds recycled no sync worker at all).
    max_requests = args.max_requests or max(100, int(args.minutes * 60 * 6))
    env = {"GUNICORN_MAX_REQUESTS": str(max_requests)}
    with launch.native_stack(args.out / "stack.log", env=env) as stack:
        runs, answers = soak(stack, args.minutes, args.load)
    rows = [judge(run, a, args.minutes) for run, (_, a) in zip(runs, answers, strict=True)]
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": usable_cpus(),
        "minutes": args.minutes,
        "load": args.load,
        "max_requests": max_requests,
        "command": "make soak"
        if args.minutes == 10
        else f"python -m harness.soak --minutes {args.minutes:g}",
    }
    chart(runs, answers, args.out / "soak.png")
    (args.out / "soak.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "checks": [checks(r) for r in rows]}, indent=1)
    )
    (args.out / "soak.md").write_text(document(rows, meta))
    print((args.out / "soak.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
