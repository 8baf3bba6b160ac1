"""One command, one report: the same scenarios against every way to serve the app.

    python -m harness.report                         # ~8 minutes; writes artifacts/report/
    python -m harness.report --seconds 2 --users 2 10 --scenarios io isolation   # a smoke run

Starts what it measures itself, on free loopback ports: the native stack (nginx + Gunicorn
sync, gthread, gevent; tools/native_stack.py) and Flask's dev server in its three modes
(tools/devserver.py). Then, for every target:

1. sends 10 simultaneous requests and records who served them (the timeline chart);
2. with the db scenario: has the launcher start a throwaway PostgreSQL for the stack,
   and sends 20 simultaneous 300 ms queries to each Gunicorn setup with the shipped driver
   and to gevent with psycopg2, the driver that waits in C (the database timeline chart);
3. runs each scenario headless with Locust, at each user count, for a fixed time.

The report folder gets report.md, report.html, report.json, charts/*.png, and Locust's own
CSV and HTML output in locust/. Every sentence under "What this shows" is generated from the
measured numbers. HTTP only: nothing here imports the app. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gunicorn_conf.cpus import usable_cpus
from harness import charts, launch
from harness.document import Document
from harness.runner import (
    NEAR_CEILING,
    SATURATED_CPU_SHARE,
    LoadRun,
    locust_ceiling,
    run_locust,
)
from loadtest.evidence import simultaneous_get, summarize
from tools.devserver import MODES as DEV_MODES

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Scenario:
    key: str
    user_class: str
    title: str
    sweep: bool  # run at every user count (charts), or only at the largest (table)
    # Needs the database: run against the Gunicorn setups only (their pools are sized for
    # their concurrency; the dev server's are not).
    database: bool = False


SCENARIOS = {
    "io": Scenario("io", "IoBound", "I/O-bound: GET /api/io?ms={io_ms}", sweep=True),
    "cpu": Scenario("cpu", "CpuBound", "CPU-bound: GET /api/cpu?ms={cpu_ms}", sweep=True),
    "mixed": Scenario(
        "mixed",
        "Mixed",
        "Mixed: 60 % io ({io_ms} ms), 20 % cpu ({cpu_ms} ms), 20 % whoami",
        sweep=False,
    ),
    "isolation": Scenario(
        "isolation", "Isolation", "Isolation: GET /api/isolation?ms={io_ms}", sweep=False
    ),
    "db": Scenario(
        "db",
        "Database",
        "Database: GET /api/db?ms={io_ms} (a real PostgreSQL, psycopg 3)",
        sweep=False,
        database=True,
    ),
}
# The database timeline: (setup, driver) pairs, the shipped driver first. gevent with
# psycopg2 (no psycogreen) is the pitfall: its wait in C holds the worker's whole loop.
DB_TIMELINES = (("sync", "psycopg"), ("gthread", "psycopg"), ("gevent", "psycopg"))
DB_PITFALL = ("gevent", "psycopg2")


@dataclass(frozen=True)
class Target:
    name: str
    host: str
    setup: str  # the locustfile's --setup: an nginx prefix, or "direct"
    description: str
    slots: int | None  # requests it can serve at once; None = unbounded (a thread each)
    # Database connections its processes hold together (workers x pool); Gunicorn only.
    pool_slots: int | None = None


def memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return 0.0


def gunicorn_targets(base_url: str, configs: dict[str, dict]) -> list[Target]:
    sync, gthread, gevent = (configs[s] for s in launch.SETUPS)
    return [
        Target(
            "sync",
            base_url,
            "sync",
            f"Gunicorn sync, {sync['workers']} workers",
            launch.gunicorn_slots(sync),
            pool_slots(sync),
        ),
        Target(
            "gthread",
            base_url,
            "gthread",
            f"Gunicorn gthread, {gthread['workers']} workers x {gthread['threads']} threads",
            launch.gunicorn_slots(gthread),
            pool_slots(gthread),
        ),
        Target(
            "gevent",
            base_url,
            "gevent",
            f"Gunicorn gevent, {gevent['workers']} workers x "
            f"{gevent['worker_connections']} connections",
            launch.gunicorn_slots(gevent),
            pool_slots(gevent),
        ),
    ]


def pool_slots(config: dict) -> int:
    return config["workers"] * config["pool_size"]


def dev_targets(urls: dict[str, str]) -> list[Target]:
    descriptions = {
        "single": "Werkzeug dev server, threaded=False",
        "threaded": "Werkzeug dev server, app.run() default (threaded)",
        "processes": f"Werkzeug dev server, processes={launch.DEV_PROCESSES}, threaded=False",
    }
    return [
        Target(f"dev-{mode}", urls[mode], "direct", description, launch.DEV_SLOTS[mode])
        for mode, description in descriptions.items()
    ]


def target_url(target: Target, path: str) -> str:
    prefix = "" if target.setup == "direct" else f"/{target.setup}"
    return f"{target.host}{prefix}{path}"


def count_waves(bodies: list[dict]) -> int:
    """Rounds of service: a request that starts after the first request of the current round
    has finished starts a new round (it had to wait for a free slot)."""
    waves, round_ends_first = 0, -math.inf
    for body in sorted(bodies, key=lambda b: b["started_at"]):
        if body["started_at"] >= round_ends_first:
            waves += 1
            round_ends_first = body["finished_at"]
        else:
            round_ends_first = min(round_ends_first, body["finished_at"])
    return waves


def who_served(target: Target, count: int, path: str) -> list[dict]:
    responses = simultaneous_get([target_url(target, path)] * count)
    bad = [r.status_code for r in responses if r.status_code != 200]
    if bad:
        raise RuntimeError(f"{target.name}: {len(bad)} of {count} simultaneous requests failed")
    return [r.json() for r in responses]


# --- Sentences generated from the numbers --------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def timeline_sentence(name: str, seen: dict[str, Any], waves: int) -> str:
    processes, threads = seen["processes"], seen["threads"]
    served = f"{_plural(processes, 'process').replace('processs', 'processes')}"
    if seen["greenlets"]:
        served += (
            f", each on one OS thread, running {_plural(seen['greenlets'], 'greenlet')} in all"
        )
    elif threads == processes:
        served += " with one OS thread each"
    else:
        served += (
            f" using {threads} OS threads (up to {seen['threads_per_process']} in one process)"
        )
    return (
        f"{name}: {seen['requests']} simultaneous requests were served by {served}, at "
        f"most {seen['max_in_flight']} at a time, in {_plural(waves, 'wave')} "
        f"({seen['wall_seconds']:.2f} s)."
    )


def io_bound(target: Target, users: int, io_ms: int) -> float:
    slots = users if target.slots is None else min(target.slots, users)
    return slots / (io_ms / 1000)


def db_bound(target: Target, users: int, io_ms: int) -> float:
    """A query holds a pool connection for its whole wait: no more at once than the pools'
    connections, the server's slots and the users."""
    return min(target.pool_slots or users, target.slots or users, users) / (io_ms / 1000)


def db_timeline_name(setup: str, driver: str) -> str:
    return setup if driver == "psycopg" else f"{setup} + {driver}"


def db_sentences(
    timelines: dict[str, list[dict]],
    runs: list[LoadRun],
    targets: dict[str, Target],
    io_ms: int,
) -> list[str]:
    """The driver pitfall from the servers' own clocks, and each setup's sustained rate."""
    out = []
    right, wrong = (
        timelines.get(db_timeline_name(*pair)) for pair in (("gevent", "psycopg"), DB_PITFALL)
    )
    if right and wrong:
        shipped, pitfall = summarize(right), summarize(wrong)
        out.append(
            f"A real database under gevent: {shipped['requests']} simultaneous "
            f"{right[0]['ms']} ms PostgreSQL queries ran {shipped['max_in_flight']} at a time "
            f"with psycopg 3 ({_plural(count_waves(right), 'wave')}, "
            f"{shipped['wall_seconds']:.2f} s) and {pitfall['max_in_flight']} at a time with "
            f"psycopg2, whose wait in C holds the worker's whole loop "
            f"({_plural(count_waves(wrong), 'wave')}, {pitfall['wall_seconds']:.2f} s)."
        )
    for run in runs:
        bound = db_bound(targets[run.target], run.users, io_ms)
        out.append(
            f"Database, {run.users} users: {run.target} served {run.rps:g} req/s, "
            f"{run.rps / bound:.0%} of its bound of {bound:g} req/s (min(pool connections, "
            f"slots, users) / {io_ms} ms), {run.failures} failures, p95 {run.p95_ms:g} ms."
        )
    return out


def io_sentences(runs: list[LoadRun], targets: dict[str, Target], io_ms: int) -> list[str]:
    top = max(r.users for r in runs)
    at_top = [r for r in runs if r.users == top]
    out = []
    for run in at_top:
        bound = io_bound(targets[run.target], run.users, io_ms)
        out.append(
            f"I/O-bound, {run.users} users: {run.target} served {run.rps:g} req/s, "
            f"{run.rps / bound:.0%} of its bound of {bound:g} req/s "
            f"(min(slots, users) / {io_ms} ms), p95 {run.p95_ms:g} ms."
        )
    best = max(at_top, key=lambda r: r.rps)
    slowest = min(at_top, key=lambda r: r.rps)
    out.append(
        f"On I/O-bound load the fastest was {best.target} ({best.rps:g} req/s), "
        f"{best.rps / max(slowest.rps, 0.1):.1f}x the slowest, {slowest.target}."
    )
    return out


def cpu_sentences(runs: list[LoadRun], cpu_ms: int, cpus: int) -> list[str]:
    top = max(r.users for r in runs)
    ceiling = cpus / (cpu_ms / 1000)
    at_top = sorted((r for r in runs if r.users == top), key=lambda r: -r.rps)
    ranking = ", ".join(f"{r.target} {r.rps:g}" for r in at_top)
    return [
        f"CPU-bound, {top} users: the ceiling is {cpus} cores / {cpu_ms} ms = {ceiling:g} "
        f"req/s (the load generator shares those cores). Measured req/s: {ranking}."
    ]


def isolation_sentences(runs: list[LoadRun]) -> list[str]:
    out = []
    leaked_g = [r for r in runs if r.leaks.get("flask_g", 0) or r.failures]
    total = sum(r.requests for r in runs)
    if leaked_g:
        out.append(
            "flask.g LEAKED or failed under: "
            + ", ".join(f"{r.target} ({r.leaks.get('flask_g', 0)})" for r in leaked_g)
        )
    else:
        out.append(
            f"flask.g kept each request's own value in all {total} isolation requests, "
            f"under every setup."
        )
    leaky = [r for r in runs if r.leaks.get("module_global", 0)]
    safe = [r.target for r in runs if not r.leaks.get("module_global", 0)]
    if leaky:
        out.append(
            "A module-level global held another request's value in "
            + ", ".join(
                f"{r.leaks['module_global']} of {r.requests} requests under {r.target}"
                for r in leaky
            )
            + (f"; in none under {', '.join(safe)}." if safe else ".")
        )
    return out


def locust_sentence(runs: list[LoadRun], ceiling: dict[str, Any] | None) -> str:
    """Whether any figure may be the load generator's limit rather than the server's: a
    Locust process near a full core, or a rate within 20 % of what one Locust process can
    drive at all here (its ceiling, measured against nginx's own /healthz)."""
    saturated = [r for r in runs if r.locust_saturated or r.near_locust_ceiling]
    peak = max(r.locust_cpu_share for r in runs)
    busiest = max(runs, key=lambda r: r.rps)
    measured = (
        f"One Locust process drove {ceiling['rps']:g} req/s against nginx's own "
        f"/healthz (its ceiling here); the busiest run, {busiest.target}/"
        f"{busiest.scenario}/{busiest.users}u, reached {busiest.rps:g} req/s = "
        f"{busiest.rps / ceiling['rps']:.0%} of it. "
        if ceiling
        else ""
    )
    if saturated:
        names = ", ".join(f"{r.target}/{r.scenario}/{r.users}u" for r in saturated)
        return (
            f"{measured}Locust may have been the limit (>= {SATURATED_CPU_SHARE:.0%} of a "
            f"core, or >= {NEAR_CEILING:.0%} of its ceiling) in: {names}. Those figures "
            f"are limited by the load generator, not the server."
        )
    return (
        f"{measured}Locust used at most {peak:.0%} of one core in any run: no figure "
        f"here was limited by the load generator."
    )


# --- The report ------------------------------------------------------------------------------


def run_row(run: LoadRun, bound: float | None = None) -> list[object]:
    seen = run.served_by
    row: list[object] = [run.target, run.users, f"{run.rps:g}"]
    if bound is not None:
        row += [f"{bound:g}", f"{run.rps / bound:.0%}"]
    return row + [
        f"{run.p50_ms:g}",
        f"{run.p95_ms:g}",
        f"{run.p99_ms:g}",
        run.failures,
        seen.get("processes", "-"),
        seen.get("threads", "-"),
        seen.get("greenlets", "-"),
        seen.get("max_in_flight", "-"),
        f"{run.locust_cpu_share:.0%}",
    ]


RUN_HEADERS = [
    "setup",
    "users",
    "req/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "failures",
    "processes",
    "OS threads",
    "greenlets",
    "max in flight",
    "Locust CPU",
]


def build_document(
    meta: dict,
    targets: list[Target],
    timelines: dict[str, list[dict]],
    runs: list[LoadRun],
    args,
    ceiling: dict[str, Any] | None = None,
    db_timelines: dict[str, list[dict]] | None = None,
) -> tuple[Document, list[str]]:
    doc = Document()
    by_name = {t.name: t for t in targets}
    doc.heading(1, "Load-test report: one Flask app, served six ways")
    doc.paragraph(
        f"Generated {meta['generated']} on a machine with {meta['cpus']} CPUs and "
        f"{meta['memory_gib']:.0f} GiB (Python {meta['python']}), by "
        f"`{meta['command']}`. Each run: {args.seconds} s, all users started at "
        f"once, no think time (users = requests in flight from the client)."
    )

    sentences = []
    for name, bodies in timelines.items():
        sentences.append(timeline_sentence(name, summarize(bodies), count_waves(bodies)))
    grouped = {key: [r for r in runs if r.scenario == key] for key in SCENARIOS}
    if grouped["io"]:
        sentences += io_sentences(grouped["io"], by_name, args.io_ms)
    if grouped["cpu"]:
        sentences += cpu_sentences(grouped["cpu"], args.cpu_ms, meta["cpus"])
    if grouped["isolation"]:
        sentences += isolation_sentences(grouped["isolation"])
    if db_timelines or grouped["db"]:
        sentences += db_sentences(db_timelines or {}, grouped["db"], by_name, args.io_ms)
    if runs:
        sentences.append(locust_sentence(runs, ceiling))
    doc.heading(2, "What this shows")
    doc.bullets(sentences)

    doc.heading(2, "The setups")
    doc.table(
        ["setup", "what serves the requests", "slots (requests at once)"],
        [[t.name, t.description, t.slots or "one new thread per request"] for t in targets],
    )

    doc.heading(2, f"{args.timeline_count} simultaneous requests: who served them")
    timeline_table(doc, timelines)
    doc.image("charts/timeline.png", "timeline of simultaneous requests per setup")
    if db_timelines:
        doc.heading(
            2,
            f"{args.db_timeline_count} simultaneous PostgreSQL queries: the driver under gevent",
        )
        doc.paragraph(
            f"`/api/db?ms={args.timeline_ms}` (`SELECT pg_sleep(…)`, then a small real query) "
            "through each worker's connection pool. psycopg 3, the shipped driver, waits in "
            "Python, which gevent makes cooperative; psycopg2 without psycogreen waits inside C, "
            "so a gevent worker serves one query at a time (docs/database.md)."
        )
        timeline_table(doc, db_timelines)
        doc.image("charts/database.png", "timeline of simultaneous queries per setup and driver")

    for key, scenario in SCENARIOS.items():
        scenario_runs = grouped[key]
        if not scenario_runs:
            continue
        top = max(r.users for r in scenario_runs)
        title = scenario.title.format(io_ms=args.io_ms, cpu_ms=args.cpu_ms)
        doc.heading(2, f"{title}, {top} users")
        at_top = [r for r in scenario_runs if r.users == top]
        if key == "io":
            doc.table(
                RUN_HEADERS[:3] + ["bound req/s", "% of bound"] + RUN_HEADERS[3:],
                [run_row(r, io_bound(by_name[r.target], r.users, args.io_ms)) for r in at_top],
            )
        elif key == "db":
            doc.table(
                RUN_HEADERS[:3] + ["bound req/s", "% of bound"] + RUN_HEADERS[3:],
                [run_row(r, db_bound(by_name[r.target], r.users, args.io_ms)) for r in at_top],
            )
        else:
            doc.table(RUN_HEADERS, [run_row(r) for r in at_top])
        if key == "isolation":
            stores = ["flask_g", "module_global", "dict_by_thread_ident", "dict_by_os_thread_id"]
            doc.paragraph(
                "Requests whose value was overwritten by another request, by where "
                "the request kept it:"
            )
            doc.table(
                ["setup", "requests", *stores],
                [[r.target, r.requests, *(r.leaks.get(s, 0) for s in stores)] for r in at_top],
            )
        if scenario.sweep and len({r.users for r in scenario_runs}) > 1:
            doc.image(f"charts/{key}-throughput.png", f"{key}: requests/s against users")
            doc.image(f"charts/{key}-p95.png", f"{key}: p95 latency against users")
            doc.paragraph("Every user count:")
            doc.table(
                RUN_HEADERS,
                [run_row(r) for r in sorted(scenario_runs, key=lambda r: (r.target, r.users))],
            )
    doc.heading(2, "Files")
    doc.paragraph(
        "report.json has every figure above; locust/ has Locust's own output for "
        "each run (JSON, CSV, HTML) and the servers' evidence (who served each "
        "request) as JSON lines; logs/ has the servers' output. The figures come from "
        "Locust's JSON: Locust 2.47 writes its _stats.csv on a one-second timer, and "
        "that file can miss the last second of a short run."
    )
    return doc, sentences


def timeline_table(doc: Document, timelines: dict[str, list[dict]]) -> None:
    rows = []
    for name, bodies in timelines.items():
        seen = summarize(bodies)
        rows.append(
            [
                name,
                seen["requests"],
                seen["processes"],
                seen["threads"],
                seen["greenlets"],
                seen["max_in_flight"],
                count_waves(bodies),
                f"{seen['wall_seconds']:.2f}",
            ]
        )
    doc.table(
        [
            "setup",
            "requests",
            "processes",
            "OS threads",
            "greenlets",
            "max in flight",
            "waves",
            "wall s",
        ],
        rows,
    )


def measure(args, out: Path) -> dict[str, Any]:
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    database = "db" in args.scenarios
    with ExitStack() as running:
        # The db scenario's PostgreSQL: the launcher's throwaway one, for this run only.
        stack = running.enter_context(
            launch.native_stack(logs / "native-stack.log", with_services=database)
        )
        devs = {
            mode: running.enter_context(launch.dev_server(mode, logs / f"dev-{mode}.log"))
            for mode in DEV_MODES
        }
        configs = stack.configs()
        targets = gunicorn_targets(stack.load_url, configs) + dev_targets(
            {mode: dev.base_url for mode, dev in devs.items()}
        )
        targets = [t for t in targets if t.name in args.targets]

        timelines = {
            t.name: who_served(t, args.timeline_count, f"/api/io?ms={args.timeline_ms}")
            for t in targets
        }
        by_name = {t.name: t for t in targets}
        db_timelines = {
            db_timeline_name(setup, driver): who_served(
                by_name[setup],
                args.db_timeline_count,
                f"/api/db?ms={args.timeline_ms}&driver={driver}",
            )
            for setup, driver in (*DB_TIMELINES, DB_PITFALL)
            if database and setup in by_name
        }
        # What one Locust process can drive here, so no figure below is mistaken for the
        # server's when it is the load generator's.
        print("  Locust's own ceiling (nginx /healthz)", flush=True)
        ceiling = locust_ceiling(
            host=stack.load_url, seconds=max(2, args.seconds), out_dir=out / "locust"
        )
        runs: list[LoadRun] = []
        for key in args.scenarios:
            scenario = SCENARIOS[key]
            user_counts = args.users if scenario.sweep else [max(args.users)]
            for users in user_counts:
                for target in targets:  # interleaved: every target at one load, then the next
                    if scenario.database and target.pool_slots is None:
                        continue
                    print(f"  {key:9} {target.name:13} {users:3} users", flush=True)
                    runs.append(
                        run_locust(
                            target=target.name,
                            host=target.host,
                            setup=target.setup,
                            user_class=scenario.user_class,
                            scenario=key,
                            users=users,
                            seconds=args.seconds,
                            out_dir=out / "locust",
                            io_ms=args.io_ms,
                            cpu_ms=args.cpu_ms,
                            keep_html=not args.no_locust_html,
                        )
                    )
    for run in runs:
        run.locust_ceiling_rps = ceiling["rps"]
    return {
        "configs": configs,
        "targets": targets,
        "timelines": timelines,
        "db_timelines": db_timelines,
        "runs": runs,
        "locust_ceiling": ceiling,
    }


def write_report(out: Path, meta: dict, measured: dict, args) -> Path:
    targets, timelines, runs = measured["targets"], measured["timelines"], measured["runs"]
    chart_dir = out / "charts"
    chart_dir.mkdir(parents=True, exist_ok=True)
    charts.timelines(
        timelines,
        f"{args.timeline_count} simultaneous GET /api/io?ms="
        f"{args.timeline_ms}\none bar per request, one lane per process / thread / "
        "greenlet",
        chart_dir / "timeline.png",
    )
    if measured["db_timelines"]:
        charts.timelines(
            measured["db_timelines"],
            f"{args.db_timeline_count} simultaneous GET /api/db?ms={args.timeline_ms} "
            "(PostgreSQL)\none bar per query, one lane per process / thread / greenlet",
            chart_dir / "database.png",
        )
    for key, scenario in SCENARIOS.items():
        rows = [r.as_dict() for r in runs if r.scenario == key]
        if scenario.sweep and len({r["users"] for r in rows}) > 1:
            title = scenario.title.format(io_ms=args.io_ms, cpu_ms=args.cpu_ms)
            charts.metric_vs_users(
                rows, "rps", "requests/s", title, chart_dir / f"{key}-throughput.png"
            )
            charts.metric_vs_users(
                rows, "p95_ms", "p95 latency (ms)", title, chart_dir / f"{key}-p95.png"
            )

    doc, sentences = build_document(
        meta,
        targets,
        timelines,
        runs,
        args,
        measured.get("locust_ceiling"),
        measured["db_timelines"],
    )
    (out / "report.md").write_text(doc.markdown())
    (out / "report.html").write_text(doc.html("Load-test report"))
    (out / "report.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "configs": measured["configs"],
                "targets": [t.__dict__ for t in targets],
                "timelines": timelines,
                "db_timelines": measured["db_timelines"],
                "runs": [r.as_dict() for r in runs],
                "locust_ceiling": measured.get("locust_ceiling"),
                "what_this_shows": sentences,
            },
            indent=1,
        )
    )
    return out / "report.md"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "report")
    parser.add_argument("--seconds", type=int, default=5, help="length of each Locust run")
    parser.add_argument("--users", type=int, nargs="+", default=[1, 5, 10, 25, 50])
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    all_targets = [*launch.SETUPS, *(f"dev-{mode}" for mode in DEV_MODES)]
    parser.add_argument("--targets", nargs="+", choices=all_targets, default=all_targets)
    parser.add_argument("--io-ms", type=int, default=100)
    parser.add_argument("--cpu-ms", type=int, default=10)
    parser.add_argument("--timeline-count", type=int, default=10)
    parser.add_argument("--timeline-ms", type=int, default=300)
    parser.add_argument(
        "--db-timeline-count",
        type=int,
        default=20,
        help="simultaneous queries per setup and driver on the database timeline",
    )
    parser.add_argument(
        "--no-locust-html",
        action="store_true",
        help="keep Locust's CSV only (its HTML is ~1 MB a run)",
    )
    args = parser.parse_args(argv)
    if not 1 <= max(args.users) <= 200 or args.seconds > 600:
        parser.error("keep the load bounded: 1-200 users, at most 600 s a run")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    meta = {
        "generated": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": usable_cpus(),
        "memory_gib": round(memory_gib(), 1),
        "python": platform.python_version(),
        "command": "python -m harness.report "
        + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    print(f"measuring into {out} ...", flush=True)
    measured = measure(args, out)
    report = write_report(out, meta, measured, args)
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
