"""The benchmark: each setup against its theoretical bound and against what a user might run
instead, side by side in one run on one machine. Not a test: it asserts nothing about speed.

    python -m harness.bench                 # full: 10 s runs, 3 interleaved rounds (~2 h)
    python -m harness.bench --short         # smoke: 1 s runs, 1 round, uWSGI not grown (CI)

Starts every contender natively on free loopback ports: Gunicorn sync / gthread / gevent
directly and through our nginx (its load port; the same Gunicorn processes both ways),
the servers people pick instead through the same nginx (uWSGI as the popular uWSGI + nginx
image ships it, uWSGI tuned, granian: harness/peers/), the gthread config with few threads
a worker through the same nginx (the other side of gthread's CPU-bound tail), Flask's dev
server in its three modes, waitress, and two ceilings: nginx answering by itself, and a
framework-less WSGI app under Gunicorn sync (Flask's own cost); with Docker, the compose
stack too. Drives each
with wrk (a C load generator) at fixed connection counts, rounds interleaved (A B C A B C
...) so machine drift hits all alike, and keeps the median of the rounds. Writes bench.json
and bench.md (with the target ratios) into artifacts/bench/. All traffic goes to 127.0.0.1;
every run is bounded by -d.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from gunicorn_conf.cpus import usable_cpus
from harness import launch
from harness.postgres import throwaway_postgres
from harness.runner import locust_ceiling, locust_rate
from harness.targets import (
    BARE_FLASK,
    CPU_MS,
    DB_MS,
    FEW_THREADS,
    GTHREAD_FEW_THREADS,
    IO_MS,
    NGINX_STATIC,
    OBSERVABILITY_OFF,
    PYTHON_PARSER,
    SECOND_PROCESS,
    UWSGI_AS_SHIPPED,
    checks,
    pair_group,
    pair_group_workload,
    per_request_cpu_ms,
)

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = {
    "hello": "/api/whoami",
    "io": f"/api/io?ms={IO_MS}",
    "cpu": f"/api/cpu?ms={CPU_MS}",
    # A real wait: PostgreSQL's, through each worker's connection pool (app/db.py). Only the
    # three setups take part (the peers serve the same app, but it is their pools, not ours).
    "db": f"/api/db?ms={DB_MS}",
    # The same query with no wait: every part of the path works (nginx, the app, the driver,
    # PostgreSQL's backend) and nothing waits, so its rate is the db workload's CPU cap.
    "db-nowait": "/api/db?ms=0",
}
SETUP_WORKLOADS = tuple(WORKLOADS)
PEER_WORKLOADS = ("hello", "io", "cpu")
DB_WORKLOADS = ("db", "db-nowait")
# What each setup's config also serves, in the paired rounds (measure_pairs), for the
# per-request cost targets (harness/targets.py): an app, and the environment it differs in.
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    OBSERVABILITY_OFF: ('app:create_app({"OBSERVABILITY": False})', {}),
    BARE_FLASK: ("harness.bare_flask:app", {}),
    # The shipped app unchanged, in a process that like the variants serves only the paired
    # rounds: the variants' reference, and with the setup's own process the rounds' A/A
    # control (targets.noise_floor).
    SECOND_PROCESS: ("app:create_app()", {}),
    # The shipped app with Gunicorn's Python HTTP parser (targets.c_parser).
    PYTHON_PARSER: ("app:create_app()", {"GUNICORN_HTTP_PARSER": "python"}),
}


@dataclass(frozen=True)
class Contender:
    name: str
    # "setup", "setup via nginx", "setup variant" (the same config serving a variant of the
    # app), "setup variant via nginx" (a variant of the config), "setup in docker", "peer",
    # "ceiling"
    kind: str
    base: str  # URL prefix the workload paths are appended to
    cpu: Callable[[], float]  # CPU seconds the server has used so far
    slots: int | None = None  # requests it serves at once (None: unbounded / n.a.)
    # Database connections its processes may hold together (workers x pool; setups only).
    pool_slots: int | None = None
    # A ceiling answers one fixed path, on the hello workload only; the others serve the app.
    fixed_path: str | None = None
    probe: str = "/readyz"  # answered once the server is idle (wait_until_idle)
    # Measured only in the paired rounds (measure_pairs), back to back with the contender its
    # target compares it with, never in the main rounds: its row is built from those runs.
    paired_only: bool = False
    # Measured on these workloads only, and only at the run's highest connection count when
    # top_only: the variants exist for one target each, judged there.
    workloads: tuple[str, ...] = PEER_WORKLOADS
    top_only: bool = False
    host: str | None = None  # the Host header, where the URL's host is not one nginx serves
    # Its live worker processes, for a server that adds them under load and drops them idle
    # (uWSGI as commonly shipped): measured grown, as steady load leaves it (grow).
    processes: Callable[[], int] | None = None

    def takes_part_in(self, workload: str, connections: int, top: int) -> bool:
        if self.top_only and connections != top:
            return False
        return workload in (("hello",) if self.fixed_path else self.workloads)

    def url(self, workload: str) -> str:
        return self.base + (self.fixed_path or WORKLOADS[workload])


def process_tree_cpu(pid: int) -> Callable[[], float]:
    return functools.partial(tree_cpu_seconds, pid)


def child_processes(pid: int) -> Callable[[], int]:
    """How many processes ``pid`` has started and not yet reaped: a master's workers."""
    return lambda: len(psutil.Process(pid).children())


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, p50 and p99 (ms), and errors from `wrk --latency` output."""

    def ms(label: str) -> float | None:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not match:
            return None
        value, unit = float(match.group(1)), match.group(2)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    requests = re.search(r"(\d+) requests in", output)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "requests": int(requests.group(1)) if requests else 0,
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(int(x) for x in socket.groups()) if socket else 0),
    }


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a server: its live process tree, plus the workers that
    already exited and were reaped (a recycled Gunicorn worker's CPU would vanish otherwise)."""
    try:
        root = psutil.Process(pid)
        own = root.cpu_times()
        total = own.user + own.system + own.children_user + own.children_system
        for process in root.children(recursive=True):
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total
    except psutil.NoSuchProcess:
        return 0.0


def run_wrk(
    url: str,
    connections: int,
    seconds: int,
    server_cpu: Callable[[], float],
    host: str | None = None,
) -> dict[str, Any]:
    server_before = server_cpu()
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run(
        [
            "wrk",
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "10s",
            *(["--header", f"Host: {host}"] if host else []),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    wall = time.monotonic() - started
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = parse_wrk(result.stdout)
    figures["server_cpu"] = round((server_cpu() - server_before) / wall, 2)
    figures["client_cpu"] = round(
        (
            client_after.ru_utime
            - client_before.ru_utime
            + client_after.ru_stime
            - client_before.ru_stime
        )
        / wall,
        2,
    )
    return figures


def contenders(
    stack: ExitStack,
    logs: Path,
    docker: bool = True,
    idle_seconds: int = 60,
    database_url: str = "",
    nginx_workers: int | None = None,
) -> tuple[list[Contender], dict[str, Any] | None]:
    """Every server, started; and, with docker, what the compose stack costs idle. The three
    setups query ``database_url`` on the db workload. The native nginx runs ``nginx_workers``
    worker processes when given, else as its config says."""

    # "Direct" and "via nginx" hit the very same Gunicorn processes, so the difference
    # between them is the nginx hop alone. Every server logs to a file, none through a
    # supervisor's pipe (which costs CPU per line). Each setup shares its metrics across its
    # workers through files, as deployed (PROMETHEUS_MULTIPROC_DIR).
    def metrics_env(name: str) -> dict[str, str]:
        # Gunicorn's config empties (and makes) the folder; the peers only use it.
        folder = logs / f"metrics-{name}"
        folder.mkdir(exist_ok=True)
        return {"PROMETHEUS_MULTIPROC_DIR": str(folder)}

    direct = {
        setup: stack.enter_context(
            launch.gunicorn(
                setup,
                logs / f"{setup}.log",
                env={**metrics_env(setup), "DATABASE_URL": database_url},
            )
        )
        for setup in launch.SETUPS
    }
    slots = {
        setup: launch.gunicorn_slots(running.configs()[setup]) for setup, running in direct.items()
    }
    pool_slots = {
        setup: running.configs()[setup]["workers"] * running.configs()[setup]["pool_size"]
        for setup, running in direct.items()
    }
    app_ports = {setup: running.port for setup, running in direct.items()}
    # The servers people pick instead (uWSGI as commonly shipped, uWSGI tuned, granian), the
    # same app and metrics setup, behind the same nginx.
    peers = [
        stack.enter_context(launch.uwsgi(config, logs / f"uwsgi-{config}.log", metrics_env(config)))
        for config in ("as-shipped", "tuned")
    ]
    peers.append(stack.enter_context(launch.granian(logs / "granian.log", metrics_env("granian"))))
    # Variants of a setup's config, each behind the same nginx as a peer (contender, setup,
    # environment, workloads):
    # gthread with FEW_THREADS a worker: the other side of gthread's CPU-bound tail
    # (harness/targets.py, cpu_bound_gthread_tail).
    config_variants = [
        (GTHREAD_FEW_THREADS, "gthread", {"GUNICORN_THREADS": str(FEW_THREADS)}, ("io", "cpu")),
    ]
    variant_peers = []
    for name, setup, env, workloads in config_variants:
        # The peer's name is its nginx location and the stem of its log and metrics folder.
        slug = name.removeprefix("nginx→").replace(" ", "-")
        running = stack.enter_context(
            launch.gunicorn(setup, logs / f"{slug}.log", env={**metrics_env(slug), **env})
        )
        peer = launch.Peer(
            slug, running.port, "http", launch.gunicorn_slots(running.configs()[setup])
        )
        variant_peers.append((name, running, peer, workloads))
    proxy = stack.enter_context(
        launch.nginx(
            app_ports,
            logs / "nginx.log",
            peers=[*(p for _, p in peers), *(peer for _, _, peer, _ in variant_peers)],
            tweak=launch.worker_processes(nginx_workers) if nginx_workers else None,
        )
    )
    proxy_cpu = process_tree_cpu(proxy.process.pid)
    found: list[Contender] = []
    for running, peer in peers:
        # CPU of the whole server side: the peer's processes and nginx.
        peer_cpu = process_tree_cpu(running.process.pid)
        found.append(
            Contender(
                f"nginx→{peer.name}",
                "peer via nginx",
                f"{proxy.peers_url}/{peer.name}",
                lambda peer_cpu=peer_cpu: peer_cpu() + proxy_cpu(),
                peer.slots,
                # uWSGI as shipped adds workers under load (grow): its master's children.
                processes=(
                    child_processes(running.process.pid) if peer.name == UWSGI_AS_SHIPPED else None
                ),
            )
        )
    for name, running, peer, workloads in variant_peers:
        variant_cpu = process_tree_cpu(running.process.pid)
        found.append(
            Contender(
                name,
                "setup variant via nginx",
                f"{proxy.peers_url}/{peer.name}",
                # Its Gunicorn and nginx: there is no direct row to hold the Gunicorn share.
                lambda variant_cpu=variant_cpu: variant_cpu() + proxy_cpu(),
                peer.slots,
                workloads=workloads,
                top_only=True,
            )
        )
    for setup in launch.SETUPS:
        found.append(
            Contender(
                setup,
                "setup",
                direct[setup].base_url,
                process_tree_cpu(direct[setup].process.pid),
                slots[setup],
                pool_slots[setup],
                workloads=SETUP_WORKLOADS,
            )
        )
        # CPU of the nginx path: nginx's tree only (the Gunicorn share shows in the direct row).
        found.append(
            Contender(
                f"nginx→{setup}",
                "setup via nginx",
                proxy.load_url + f"/{setup}",
                proxy_cpu,
                slots[setup],
                pool_slots[setup],
                workloads=SETUP_WORKLOADS,
            )
        )
        # The same config serving the app without its observability, a bare Flask app, the
        # shipped app again and the shipped app parsed by Gunicorn's Python parser: what
        # metrics, request ids and logs cost, what the app costs beyond Flask, the reference
        # they are judged against (and the A/A control) and what the C parser buys.
        for variant, (app, env) in VARIANTS.items():
            running = stack.enter_context(
                launch.gunicorn(
                    setup,
                    logs / f"{setup}-{variant}.log",
                    app=app,
                    env={**metrics_env(f"{setup}-{variant}"), **env},
                )
            )
            found.append(
                Contender(
                    f"{setup} {variant}",
                    "setup variant",
                    running.base_url,
                    process_tree_cpu(running.process.pid),
                    slots[setup],
                    workloads=("hello",),
                    top_only=True,
                    paired_only=True,
                )
            )
    for mode, mode_slots in launch.DEV_SLOTS.items():
        dev = stack.enter_context(launch.dev_server(mode, logs / f"dev-{mode}.log"))
        found.append(
            Contender(
                f"dev-{mode}", "peer", dev.base_url, process_tree_cpu(dev.process.pid), mode_slots
            )
        )
    waitress = stack.enter_context(launch.waitress(logs / "waitress.log"))
    found.append(
        Contender(
            "waitress",
            "peer",
            waitress.base_url,
            process_tree_cpu(waitress.process.pid),
            launch.WAITRESS_THREADS,
        )
    )
    raw = stack.enter_context(
        launch.gunicorn("sync", logs / "raw.log", app="harness.raw_wsgi:app", ready_path="/")
    )
    found.append(
        Contender(
            "raw-wsgi-sync",
            "ceiling",
            raw.base_url,
            process_tree_cpu(raw.process.pid),
            fixed_path="/",
            probe="/",
        )
    )
    found.append(
        Contender(
            NGINX_STATIC,
            "ceiling",
            proxy.load_url,
            proxy_cpu,
            fixed_path="/healthz",
            probe="/healthz",
        )
    )
    if docker:
        # The compose stack as users run it, through its nginx: against the native
        # nginx→setup rows, what running in containers costs. Twice: through the load port
        # published on 127.0.0.1, which the engine's userland proxy (docker-proxy, a process
        # on the host) carries from loopback into the container, its CPU counted with the
        # containers'; and at nginx's own address, the path a client on another host takes
        # once the engine's NAT rules have passed its packets on (docs/measuring.md).
        composed = stack.enter_context(launch.compose_stack(logs / "compose.log"))
        idle = measure_idle(composed, idle_seconds)
        load_port = int(composed.load_url.rsplit(":", 1)[1])
        port_proxies = [process_tree_cpu(pid) for pid in composed.port_proxy_pids(load_port)]

        def published_cpu() -> float:
            return composed.cpu_seconds() + sum(proxy() for proxy in port_proxies)

        address = f"http://{composed.nginx_address()}:{launch.NGINX_LOAD_PORT}"
        for setup in launch.SETUPS:
            for name, base, cpu, host in (
                (f"docker nginx→{setup}", composed.load_url, published_cpu, None),
                (f"docker nginx→{setup} by address", address, composed.cpu_seconds, "nginx"),
            ):
                found.append(
                    Contender(
                        name,
                        "setup in docker",
                        base + f"/{setup}",
                        cpu,
                        slots[setup],
                        workloads=("hello",),
                        top_only=True,
                        host=host,
                        # At the address: the Docker-tax target's figure, measured back to
                        # back with native nginx (measure_pairs). Through the published
                        # port: information, in the main rounds.
                        paired_only=host is not None,
                    )
                )
        return found, idle
    return found, None


def measure_idle(composed: launch.ComposeRunning, seconds: int) -> dict[str, Any]:
    """CPU the compose stack's containers use while nothing loads them (healthchecks, timers,
    heartbeats), from their cgroups, before the first load run. The engine's own share of
    each healthcheck (an exec) is not in the containers' cgroups and not counted here."""
    print(f"  idle: the compose stack for {seconds} s", flush=True)
    before, started = composed.cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    used, wall = composed.cpu_seconds() - before, time.monotonic() - started
    return {
        "seconds": round(wall, 1),
        "cpu_share": round(used / wall, 5),
        "healthcheck_interval": os.environ.get("HEALTHCHECK_INTERVAL") or "60s (default)",
    }


# uWSGI as commonly shipped starts 2 processes and, while every one is busy, adds one every
# few seconds, up to 16; idle, it drops them again (its cheaper subsystem,
# harness/peers/uwsgi-as-shipped.ini). Measured cold, a run catches it part of the way up: on
# I/O-bound load about a minute of steady load passes before all 16 serve. A server under
# steady load has grown, and that is the server measured; our setups run a fixed number.
GROW_BURST_SECONDS = 3  # the cheaper subsystem looks every 3 s (cheaper-overload's default)
GROW_FLAT_BURSTS = 3  # bursts in a row without a process added: it has stopped growing
GROW_AT_MOST_SECONDS = 150


def grow(contender: Contender, workload: str, connections: int) -> int | None:
    """Load a contender that adds processes under load (Contender.processes) with
    ``workload`` until it runs as many as it may (its slots) or has stopped adding them;
    its processes then. None for a server of fixed size: nothing to do."""
    if contender.processes is None:
        return None
    deadline = time.monotonic() + GROW_AT_MOST_SECONDS
    most, flat = contender.processes(), 0
    while most < (contender.slots or 0) and flat < GROW_FLAT_BURSTS:
        if time.monotonic() > deadline:  # a server that grows slower than any seen here
            break
        run_wrk(
            contender.url(workload),
            connections,
            GROW_BURST_SECONDS,
            contender.cpu,
            contender.host,
        )
        now = contender.processes()
        flat = 0 if now > most else flat + 1
        most = max(most, now)
    return most


def measured_run(
    contender: Contender, workload: str, connections: int, seconds: int, grown: bool = True
) -> dict:
    """One wrk run of ``contender``: once the previous run's queue has drained, and grown
    first where it grows under load (grow; the run then says how many processes served),
    unless ``grown`` is False (a smoke run: growing uWSGI takes up to a minute a run)."""
    wait_until_idle(contender)
    processes = grow(contender, workload, connections) if grown else None
    run = run_wrk(contender.url(workload), connections, seconds, contender.cpu, contender.host)
    return run if processes is None else {**run, "processes": processes}


def wait_until_idle(contender: Contender) -> None:
    """Let the previous run's queued requests drain before the next run starts: a server's
    accept queue is first in, first out, so one request answered means the queue ahead of it
    is gone. (A sync worker still serves the requests wrk abandoned at 200 connections.)"""
    launch.http_status(contender.base + contender.probe, timeout=60, host=contender.host)


def measure(args) -> dict[str, Any]:
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    samples: dict[tuple[str, str, int], list[dict]] = {}
    locust_samples: dict[str, list[dict]] = {
        key: []
        for key in (
            "ceiling",
            "hello_gthread",
            "ceiling_worker",
            "ceiling_worker_off",
            "hello_worker",
            "hello_worker_off",
        )
    }
    users = max(args.connections)
    with ExitStack() as stack:
        # The db workload's PostgreSQL: a throwaway one, on loopback, for this run only.
        database_url = (
            stack.enter_context(throwaway_postgres()).url
            if set(DB_WORKLOADS) & set(args.workloads)
            else ""
        )
        every, idle = contenders(
            stack,
            logs,
            docker=args.docker,
            idle_seconds=args.idle_seconds,
            database_url=database_url,
            nginx_workers=args.nginx_workers,
        )
        nginx_load_url = next(c.base for c in every if c.name == NGINX_STATIC)
        found = [c for c in every if not args.contenders or c.name in args.contenders]
        for round_no in range(args.rounds):
            for workload in args.workloads:
                for connections in args.connections:
                    for contender in found:  # interleaved: every contender, then the next round
                        if contender.paired_only:
                            continue  # measured back to back with its reference, below
                        if not contender.takes_part_in(workload, connections, users):
                            continue
                        print(
                            f"  round {round_no + 1} {workload:5} c={connections:<3} "
                            f"{contender.name}",
                            flush=True,
                        )
                        samples.setdefault((contender.name, workload, connections), []).append(
                            measured_run(contender, workload, connections, args.seconds, args.grow)
                        )
            if args.locust:
                # One Locust process (FastHttpUser, as in the project's load tests): what it
                # drives against nginx's own answer (its ceiling) and against a real setup.
                print(f"  round {round_no + 1} locust {users} users", flush=True)
                run = {
                    "host": nginx_load_url,
                    "seconds": args.seconds,
                    "out_dir": args.out / "locust",
                    "users": users,
                }
                hello = functools.partial(
                    locust_rate, user_class="Hello", request_name="/api/whoami", **run
                )
                locust_samples["ceiling"].append(locust_ceiling(**run))
                locust_samples["hello_gthread"].append(hello(setup="gthread"))
                # One worker behind a master (compose's topology), with and without the
                # Who served accounting (loadtest/who_served.py), back to back, the order
                # swapped every round.
                for on in (True, False)[:: 1 if round_no % 2 == 0 else -1]:
                    suffix = "" if on else "_off"
                    locust_samples[f"ceiling_worker{suffix}"].append(
                        locust_ceiling(**run, worker=True, who_served=on)
                    )
                    locust_samples[f"hello_worker{suffix}"].append(
                        hello(setup="gevent", worker=True, who_served=on)
                    )
        paired = measure_pairs(found, samples, users, args)
    rows = []
    by_name = {c.name: c for c in found}
    for (name, workload, connections), runs in samples.items():
        middle = middle_run(runs)
        rows.append(
            {
                "contender": name,
                "kind": by_name[name].kind,
                "workload": workload,
                "connections": connections,
                "rounds": middle["rounds"],
                "rps": round(statistics.median(r["rps"] for r in runs), 1),
                "rps_min": middle["rps_min"],
                "rps_max": middle["rps_max"],
                "p50_ms": middle["p50_ms"],
                "p99_ms": middle["p99_ms"],
                "errors": sum(r["errors"] for r in runs),
                "server_cpu": middle["server_cpu"],
                "client_cpu": middle["client_cpu"],
                "slots": by_name[name].slots,
                "pool_slots": by_name[name].pool_slots,
                # A server measured grown (grow): the fewest processes a run of it had.
                **(
                    {"processes": min(r["processes"] for r in runs)}
                    if all("processes" in r for r in runs)
                    else {}
                ),
            }
        )
    locust = {key: middle_run(runs) for key, runs in locust_samples.items() if runs}
    return {
        "rows": rows,
        "locust": locust,
        "idle": idle,
        **paired,
    }


def pair_groups(found: list[Contender]) -> dict[str, tuple[str, list[Contender]]]:
    """What the paired rounds measure back to back: each group's workload and contenders, by
    the group's name (its reference's, its first contender; with the workload after it where
    that is not hello: pair_group). For each setup, on hello: the shipped app and its
    variants (VARIANTS: the observability-tax and bare-Flask targets, judged against the
    shipped app in a fresh process); native nginx with the compose stack's nginx at its
    address (the Docker tax) and with the setup served directly (the nginx hop). uWSGI as
    commonly shipped with the three setups through the same nginx, on hello and on CPU-bound
    load (against uWSGI); on CPU-bound load with gthread at FEW_THREADS a worker as well (the
    CPU-bound tail, judged on the same runs' p99). A group needs its reference and one more
    contender."""
    by_name = {c.name: c for c in found}
    via_nginx = [f"nginx→{setup}" for setup in launch.SETUPS]
    uwsgi = f"nginx→{UWSGI_AS_SHIPPED}"
    candidates = [
        ("hello", names)
        for setup in launch.SETUPS
        for names in (
            [setup, *variant_names(setup)],
            [f"nginx→{setup}", f"docker nginx→{setup} by address", setup],
        )
    ]
    candidates.append(("hello", [uwsgi, *via_nginx]))
    candidates.append(("cpu", [uwsgi, *via_nginx, GTHREAD_FEW_THREADS]))
    groups: dict[str, tuple[str, list[Contender]]] = {}
    for workload, names in candidates:
        group = [by_name[n] for n in names if n in by_name]
        if len(group) >= 2 and group[0].name == names[0]:
            groups[pair_group(names[0], workload)] = (workload, group)
    return groups


def measure_pairs(found: list[Contender], samples: dict, connections: int, args) -> dict:
    """Each group of pair_groups() whose workload this run measures, back to back: at the top
    connection count, ``args.pair_rounds`` rounds of ``args.pair_seconds`` runs, the order
    rotating every round. A ratio of two rates taken seconds apart, each round, then the
    median of those ratios: drift on a shared machine moves both rates of a round alike,
    where the main rounds put minutes of other runs between them (this machine's run-to-run
    spread is as large as the 10-25 % these targets judge). Many short rounds rather than a
    few long ones: wrk opens its connections at once and keeps them, and which Gunicorn
    worker accepted each one decides a whole run (docs/measuring.md), so a run is one draw;
    the median of many is what the code costs. One variant is the shipped app itself in a
    second process, the others' reference; with the setup's own process, it says how far
    apart identical code lands (targets.noise_floor). The rows of the contenders measured
    only here (paired_only) are built from these runs. Returns, by group, the rounds' rates
    (``paired``), the p99 of the same runs in ms (``paired_p99``) and the server's CPU per
    request in ms (``paired_cpu``, targets._cpu_reading; for the variant groups only), and
    each run's errors (``paired_errors``: a round where a contender served nothing says why)."""
    tables: dict[str, dict[str, list[dict[str, float]]]] = {
        "paired": {},
        "paired_p99": {},
        "paired_cpu": {},
        "paired_errors": {},
    }
    for name, (workload, group) in pair_groups(found).items():
        if workload not in args.workloads:
            continue
        for round_no in range(args.pair_rounds):
            turn = round_no % len(group)
            rates: dict[str, float] = {}
            p99: dict[str, float] = {}
            cpu: dict[str, float] = {}
            errors: dict[str, float] = {}
            for contender in group[turn:] + group[:turn]:
                print(
                    f"  pair {round_no + 1} {workload:5} c={connections:<3} {contender.name}",
                    flush=True,
                )
                run = measured_run(contender, workload, connections, args.pair_seconds, args.grow)
                rates[contender.name] = run["rps"]
                p99[contender.name] = run["p99_ms"]
                cpu[contender.name] = round(per_request_cpu_ms(run), 4)
                errors[contender.name] = run["errors"]
                if contender.paired_only:
                    samples.setdefault((contender.name, workload, connections), []).append(run)
            tables["paired"].setdefault(name, []).append(rates)
            tables["paired_p99"].setdefault(name, []).append(p99)
            tables["paired_errors"].setdefault(name, []).append(errors)
            # Only where every contender's CPU counts the same processes: a native nginx→
            # row counts nginx alone, the compose stack's every container.
            if group[0].kind == "setup":
                tables["paired_cpu"].setdefault(name, []).append(cpu)
    return tables


def variant_names(setup: str) -> list[str]:
    """The contender names of a setup's app variants (VARIANTS)."""
    return [f"{setup} {variant}" for variant in VARIANTS]


def middle_run(runs: list[dict]) -> dict:
    """The run with the median rate, with the spread of all of them."""
    median = statistics.median(r["rps"] for r in runs)
    middle = min(runs, key=lambda r: abs(r["rps"] - median))
    return {
        **middle,
        "rps_min": min(r["rps"] for r in runs),
        "rps_max": max(r["rps"] for r in runs),
        "rounds": len(runs),
    }


def markdown(result: dict, meta: dict) -> str:
    lines = [
        f"# Benchmark ({meta['generated']}, {meta['cpus']} CPUs, {meta['seconds']} s runs, "
        f"median of {meta['rounds']} interleaved rounds, wrk)",
        "",
        f"Rerun: `{meta.get('command') or 'make bench'}` (writes artifacts/bench/ unless "
        "--out says otherwise). Every figure below is measured in this one run; the targets "
        "are ratios between them.",
        "",
        *(
            [
                "A partial run: only the targets whose wording contains "
                + " or ".join(f"“{word}”" for word in meta["only"])
                + " are judged; `make bench` judges them all.",
                "",
            ]
            if meta.get("only")
            else []
        ),
        *(
            [
                f"nginx ran {meta['nginx_workers']} worker process"
                f"{'es' if meta['nginx_workers'] > 1 else ''} here (--nginx-workers), not as "
                "its shipped config says (`worker_processes` in nginx/nginx.conf), in front of "
                "every contender via nginx alike.",
                "",
            ]
            if meta.get("nginx_workers")
            else []
        ),
        "## Targets",
        "",
    ]
    judged = [c for c in result["checks"] if not c.get("info")]
    met = sum(1 for c in judged if c["met"])
    lines += [f"{met} of {len(judged)} met.", ""]
    lines += [f"- {check['sentence']}" for check in judged]
    lines += [
        "",
        "## Where things stand (information, no verdict)",
        "",
        *(f"- {c['sentence']}" for c in result["checks"] if c.get("info")),
    ]
    lines += ["", "## All runs", ""]
    header = [
        "contender",
        "kind",
        "workload",
        "conns",
        "req/s",
        "min",
        "max",
        "p50 ms",
        "p99 ms",
        "errors",
        "server CPU",
        "wrk CPU",
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in sorted(result["rows"], key=lambda r: (r["workload"], r["connections"], -r["rps"])):
        lines.append(
            "| "
            + " | ".join(
                str(v)
                for v in (
                    r["contender"],
                    r["kind"],
                    r["workload"],
                    r["connections"],
                    r["rps"],
                    r["rps_min"],
                    r["rps_max"],
                    r["p50_ms"],
                    r["p99_ms"],
                    r["errors"],
                    r["server_cpu"],
                    r["client_cpu"],
                )
            )
            + " |"
        )
    seconds = meta.get("pair_seconds", meta["seconds"])
    paired = result.get("paired") or {}
    first_hello = next((g for g in paired if pair_group_workload(g) == "hello"), None)
    # How each back-to-back section's runs of uWSGI as shipped began (grow; --no-grow).
    uwsgi_began = ", uWSGI's once it had grown (grow)." if _grown_runs(result) else "."
    for group, rounds in paired.items():
        names = list(rounds[0])
        if group == first_hello:
            lines += [
                "",
                "## Back to back (hello, req/s)",
                "",
                "Each setup next to its app variants; native nginx next to the compose "
                "stack's and to the setup served directly; uWSGI as commonly shipped next to "
                "the three setups through the same nginx. The observability-tax, bare-Flask, "
                "Docker-tax, nginx-hop and hello-against-uWSGI targets are the medians of "
                "these rounds' ratios. The order rotated every round; each run lasted "
                f"{seconds} s" + uwsgi_began,
            ]
        elif pair_group_workload(group) != "hello":
            lines += [
                "",
                f"## Back to back ({pair_group_workload(group)}, req/s)",
                "",
                "uWSGI as commonly shipped next to the three setups and gthread with "
                f"{FEW_THREADS} threads a worker, through the same nginx, CPU-bound. The "
                "CPU-bound-against-uWSGI target is the median of these rounds' ratios, the "
                "CPU-bound tail the median of the same runs' p99 ratios (below). The order "
                f"rotated every round; each run lasted {seconds} s" + uwsgi_began,
            ]
        lines += ["", *round_table(names, rounds, "g")]
        cpu_rounds = (result.get("paired_cpu") or {}).get(group)
        if cpu_rounds:
            lines += ["", f"The same runs, {group}: the server's CPU per request (ms).", ""]
            lines += round_table(names, cpu_rounds, ".3f")
        p99_rounds = (result.get("paired_p99") or {}).get(group)
        if p99_rounds and pair_group_workload(group) != "hello":
            lines += ["", f"The same runs, {group}: p99 (ms).", ""]
            lines += round_table(names, p99_rounds, "g")
        error_rounds = (result.get("paired_errors") or {}).get(group)
        if error_rounds and any(any(r.values()) for r in error_rounds):
            lines += [
                "",
                f"The same runs, {group}: errors (non-2xx answers and wrk's socket errors).",
                "",
            ]
            lines += round_table(names, error_rounds, "g")
    idle = result.get("idle")
    if idle:
        lines += [
            "",
            "## The compose stack, idle",
            "",
            f"Its containers used {idle['cpu_share']:.2%} of one core over {idle['seconds']:g} s "
            f"(healthcheck interval {idle['healthcheck_interval']}), from their cgroups.",
        ]
    if result["locust"]:
        lines += [
            "",
            "## Locust (one process, FastHttpUser)",
            "",
            "| run | users | req/s | min | max | failures | Locust CPU |",
            "|---|---|---|---|---|---|---|",
        ]
        names = {
            "ceiling": "Ceiling: nginx's own /healthz",
            "hello_gthread": "Hello: nginx→gthread /api/whoami",
            "ceiling_worker": "Ceiling, one worker, Who served on",
            "ceiling_worker_off": "Ceiling, one worker, Who served off",
            "hello_worker": "Hello: nginx→gevent, one worker, Who served on",
            "hello_worker_off": "Hello: nginx→gevent, one worker, Who served off",
        }
        for key, run in result["locust"].items():
            lines.append(
                f"| {names[key]} | {run['users']} | {run['rps']:g} | "
                f"{run['rps_min']:g} | {run['rps_max']:g} | {run['failures']} | "
                f"{run['locust_cpu_share']:.0%} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    parser.add_argument("--short", action="store_true", help="1 s runs, 1 round: a smoke run")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--pair-rounds",
        type=int,
        default=11,
        help="rounds of each setup next to its app variants (the observability-tax and "
        "bare-Flask ratios), of native nginx next to the compose stack's (the Docker tax) and "
        "to the setup direct (the nginx hop), and of uWSGI as shipped next to the three "
        "setups via nginx (hello against uWSGI)",
    )
    parser.add_argument(
        "--pair-seconds", type=int, default=5, help="length of each run of the paired rounds"
    )
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 200])
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument(
        "--no-locust", dest="locust", action="store_false", help="skip the Locust ceiling runs"
    )
    parser.add_argument(
        "--no-grow",
        dest="grow",
        action="store_false",
        help="measure uWSGI as shipped as it stands, without loading it until it has grown "
        "first (grow; --short does so)",
    )
    parser.add_argument(
        "--no-docker",
        dest="docker",
        action="store_false",
        help="skip the compose stack (the Docker-tax rows); it needs a Docker engine",
    )
    parser.add_argument(
        "--nginx-workers",
        type=int,
        metavar="N",
        help="run the native nginx with N worker processes instead of the shipped config's "
        "worker_processes (the compose stack's nginx cannot follow: needs --no-docker)",
    )
    parser.add_argument(
        "--idle-seconds", type=int, default=60, help="how long to measure the idle compose stack"
    )
    parser.add_argument(
        "--contenders",
        nargs="+",
        metavar="NAME",
        help="measure only these (e.g. gevent nginx→gevent); default: all",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="WORD",
        help="judge only the targets whose wording contains one of these (e.g. db-bound) for a "
        "run that measures part of the benchmark; bench.md says which were left out",
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="BENCH_JSON",
        help="measure nothing: judge the targets again from an earlier "
        "bench.json and rewrite it and bench.md beside it",
    )
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads(args.render.read_text())
        meta, result = saved.pop("meta"), saved
        write_results(args.render.parent, meta, result)
        return 0
    if args.short:
        args.seconds, args.rounds, args.connections, args.idle_seconds = 1, 1, [16], 3
        args.pair_rounds, args.pair_seconds = 1, 1
        # A smoke run checks that every contender answers; growing uWSGI as shipped to its
        # 16 processes before each of its runs took about half of the short run's time.
        args.grow = False
    if args.nginx_workers is not None and (args.docker or args.nginx_workers < 1):
        parser.error("--nginx-workers needs --no-docker and a count of at least 1")
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian: apt-get install wrk)")
    if max(args.connections) > 400 or max(args.seconds, args.pair_seconds) > 60:
        parser.error("keep the load bounded: at most 400 connections and 60 s a run")
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    cpus = usable_cpus()
    meta = {
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": cpus,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "pair_rounds": args.pair_rounds,
        "pair_seconds": args.pair_seconds,
        "connections": args.connections,
        "command": rerun_command(argv if argv is not None else sys.argv[1:]),
        "only": args.only,
        "nginx_workers": args.nginx_workers,
    }
    write_results(args.out, meta, measure(args))
    return 0


def _grown_runs(result: dict) -> bool:
    """Whether the run grew uWSGI as shipped before measuring it (grow; its rows say how
    far): runs saved before measured it cold."""
    return any("processes" in row for row in result["rows"])


def round_table(names: list[str], rounds: list[dict[str, float]], number: str) -> list[str]:
    """A Markdown table of paired rounds: a row a round, a column a contender, each figure
    in the format ``number``."""
    lines = ["| round | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for count, figures in enumerate(rounds, 1):
        lines.append(f"| {count} | " + " | ".join(f"{figures[n]:{number}}" for n in names) + " |")
    return lines


def rerun_command(argv: list[str]) -> str:
    """The command that measures this run again: ``make bench`` for the whole benchmark,
    else the module with these arguments, quoted as a shell needs them (contender names have
    spaces)."""
    return "python -m harness.bench " + shlex.join(argv) if argv else "make bench"


def write_results(out: Path, meta: dict, result: dict) -> None:
    """Judge the targets, write bench.json and bench.md, and print the verdicts."""
    found = checks(
        result["rows"],
        result["locust"],
        meta["cpus"],
        result.get("idle"),
        result.get("paired"),
        result.get("paired_cpu"),
        result.get("paired_p99"),
        result.get("paired_errors"),
    )
    if meta.get("only"):
        found = [c for c in found if any(word in c.target for word in meta["only"])]
    result["checks"] = [{**asdict(c), "sentence": c.sentence()} for c in found]
    (out / "bench.json").write_text(json.dumps({"meta": meta, **result}, indent=1))
    (out / "bench.md").write_text(markdown(result, meta))
    targets = [c for c in found if not c.info]
    missed = [c for c in targets if not c.met]
    print(
        "\n".join(
            [
                "",
                *(c.sentence() for c in found),
                "",
                f"{len(targets) - len(missed)} of {len(targets)} targets met",
                f"written: {out / 'bench.md'}",
            ]
        )
    )


if __name__ == "__main__":
    sys.exit(main())
