"""The benchmark: each setup against its theoretical bound and against what a user might run
instead, side by side in one run on one machine. Not a test: it asserts nothing about speed.

    python -m harness.bench                 # full: 10 s runs, 3 interleaved rounds (~35 min)
    python -m harness.bench --short         # smoke: 1 s runs, 1 round (CI runs this)

Starts every contender natively on free loopback ports: Gunicorn sync / gthread / gevent
directly and through our nginx (its load port; the same Gunicorn processes both ways),
Flask's dev server in its three modes, waitress, and two ceilings: nginx answering by
itself, and a framework-less WSGI app under Gunicorn sync (Flask's own cost). Drives each
with wrk (a C load generator) at fixed connection counts, rounds interleaved (A B C A B C
...) so machine drift hits all alike, and keeps the median of the rounds. Writes bench.json
and bench.md (with the target ratios) into artifacts/bench/. All traffic goes to 127.0.0.1;
every run is bounded by -d.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from gunicorn_conf.cpus import usable_cpus
from harness import launch
from harness.runner import NEAR_CEILING, locust_ceiling, locust_rate

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = {"hello": "/api/whoami", "io": "/api/io?ms=50", "cpu": "/api/cpu?ms=5"}
IO_MS, CPU_MS = 50, 5
NGINX_STATIC = "nginx-static"  # the ceiling contender: nginx answering /healthz itself


@dataclass(frozen=True)
class Contender:
    name: str
    kind: str  # "setup", "setup via nginx", "peer", "ceiling"
    base: str  # URL prefix the workload paths are appended to
    pid: int  # the process whose tree is the server (CPU accounting)
    slots: int | None = None  # requests it serves at once (None: unbounded / n.a.)
    # A ceiling answers one fixed path, on the hello workload only; the others serve the app.
    fixed_path: str | None = None
    probe: str = "/readyz"  # answered once the server is idle (wait_until_idle)

    def takes_part_in(self, workload: str) -> bool:
        return self.fixed_path is None or workload == "hello"

    def url(self, workload: str) -> str:
        return self.base + (self.fixed_path or WORKLOADS[workload])


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


def run_wrk(url: str, connections: int, seconds: int, server_pid: int) -> dict[str, Any]:
    server_before = tree_cpu_seconds(server_pid)
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
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    wall = time.monotonic() - started
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = parse_wrk(result.stdout)
    figures["server_cpu"] = round((tree_cpu_seconds(server_pid) - server_before) / wall, 2)
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


def contenders(stack: ExitStack, logs: Path) -> list[Contender]:
    # "Direct" and "via nginx" hit the very same Gunicorn processes, so the difference
    # between them is the nginx hop alone. Every server logs to a file, none through a
    # supervisor's pipe (which costs CPU per line).
    direct = {
        setup: stack.enter_context(launch.gunicorn(setup, logs / f"{setup}.log"))
        for setup in launch.SETUPS
    }
    slots = {
        setup: launch.gunicorn_slots(running.configs()[setup]) for setup, running in direct.items()
    }
    app_ports = {
        setup: int(running.base_url.rsplit(":", 1)[1]) for setup, running in direct.items()
    }
    proxy = stack.enter_context(launch.nginx(app_ports, logs / "nginx.log"))
    found: list[Contender] = []
    for setup in launch.SETUPS:
        found.append(
            Contender(
                setup, "setup", direct[setup].base_url, direct[setup].process.pid, slots[setup]
            )
        )
        # CPU of the nginx path: nginx's tree only (the Gunicorn share shows in the direct row).
        found.append(
            Contender(
                f"nginx→{setup}",
                "setup via nginx",
                proxy.load_url + f"/{setup}",
                proxy.process.pid,
                slots[setup],
            )
        )
    for mode, mode_slots in launch.DEV_SLOTS.items():
        dev = stack.enter_context(launch.dev_server(mode, logs / f"dev-{mode}.log"))
        found.append(Contender(f"dev-{mode}", "peer", dev.base_url, dev.process.pid, mode_slots))
    waitress = stack.enter_context(launch.waitress(logs / "waitress.log"))
    found.append(
        Contender(
            "waitress", "peer", waitress.base_url, waitress.process.pid, launch.WAITRESS_THREADS
        )
    )
    raw = stack.enter_context(
        launch.gunicorn("sync", logs / "raw.log", app="harness.raw_wsgi:app", ready_path="/")
    )
    found.append(
        Contender(
            "raw-wsgi-sync", "ceiling", raw.base_url, raw.process.pid, fixed_path="/", probe="/"
        )
    )
    found.append(
        Contender(
            NGINX_STATIC,
            "ceiling",
            proxy.load_url,
            proxy.process.pid,
            fixed_path="/healthz",
            probe="/healthz",
        )
    )
    return found


def wait_until_idle(contender: Contender) -> None:
    """Let the previous run's queued requests drain before the next run starts: a server's
    accept queue is first in, first out, so one request answered means the queue ahead of it
    is gone. (A sync worker still serves the requests wrk abandoned at 200 connections.)"""
    launch.http_status(contender.base + contender.probe, timeout=60)


def measure(args) -> dict[str, Any]:
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    samples: dict[tuple[str, str, int], list[dict]] = {}
    locust_samples: dict[str, list[dict]] = {"ceiling": [], "hello_gthread": []}
    users = max(args.connections)
    with ExitStack() as stack:
        every = contenders(stack, logs)
        nginx_load_url = next(c.base for c in every if c.name == NGINX_STATIC)
        found = [c for c in every if not args.contenders or c.name in args.contenders]
        for round_no in range(args.rounds):
            for workload in args.workloads:
                for connections in args.connections:
                    for contender in found:  # interleaved: every contender, then the next round
                        if not contender.takes_part_in(workload):
                            continue
                        print(
                            f"  round {round_no + 1} {workload:5} c={connections:<3} "
                            f"{contender.name}",
                            flush=True,
                        )
                        wait_until_idle(contender)
                        samples.setdefault((contender.name, workload, connections), []).append(
                            run_wrk(
                                contender.url(workload), connections, args.seconds, contender.pid
                            )
                        )
            if args.locust:
                # One Locust process (FastHttpUser, as in the project's load tests): what it
                # drives against nginx's own answer (its ceiling) and against a real setup.
                print(f"  round {round_no + 1} locust {users} users", flush=True)
                locust_samples["ceiling"].append(
                    locust_ceiling(
                        host=nginx_load_url,
                        seconds=args.seconds,
                        out_dir=args.out / "locust",
                        users=users,
                    )
                )
                locust_samples["hello_gthread"].append(
                    locust_rate(
                        host=nginx_load_url,
                        user_class="Hello",
                        request_name="/api/whoami",
                        users=users,
                        seconds=args.seconds,
                        out_dir=args.out / "locust",
                        setup="gthread",
                    )
                )
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
            }
        )
    locust = {key: middle_run(runs) for key, runs in locust_samples.items() if runs}
    return {"rows": rows, "locust": locust}


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


@dataclass(frozen=True)
class Check:
    """One target from issue 8: what was measured against what, and whether it holds."""

    target: str
    measured: str
    met: bool

    def sentence(self) -> str:
        return f"{'met' if self.met else 'MISSED'}: {self.target}: {self.measured}"


def checks(rows: list[dict], locust: dict[str, dict], cpus: int) -> list[Check]:
    """The targets, as ratios of figures measured side by side in this run."""

    def get(name: str, workload: str, connections: int) -> dict | None:
        return next(
            (
                r
                for r in rows
                if (r["contender"], r["workload"], r["connections"])
                == (name, workload, connections)
            ),
            None,
        )

    def per_request_cpu_ms(row: dict) -> float:
        return 1000 * row["server_cpu"] / max(row["rps"], 0.1)

    out: list[Check] = []
    top = max(r["connections"] for r in rows)

    # 1. I/O-bound: each setup near slots / latency, capped by the CPU (the rate the same
    #    path reaches on hello, where the app does nothing but its own overhead).
    for setup in launch.SETUPS:
        row, hello = get(f"nginx→{setup}", "io", top), get(f"nginx→{setup}", "hello", top)
        if not (row and row["slots"]):
            continue
        bound = min(row["slots"], top) / (IO_MS / 1000)
        capped = min(bound, hello["rps"]) if hello else bound
        stable = row["rps_max"] / max(row["rps_min"], 0.1)
        cap_note = f" (CPU cap: {hello['rps']:g} on hello)" if hello and capped < bound else ""
        # With no more connections than slots, nothing queues: p50 there is what one request
        # really takes, sleep plus the server's own per-request path.
        unqueued = [
            r
            for r in rows
            if r["contender"] == row["contender"]
            and r["workload"] == "io"
            and r["connections"] <= row["slots"]
            and r["connections"] < top
            and r["p50_ms"]
        ]
        latency_note = ""
        if unqueued:
            alone = max(unqueued, key=lambda r: r["connections"])
            latency_note = (
                f"; unqueued at {alone['connections']} connections a request takes "
                f"p50 {alone['p50_ms']} ms, so slots / that = "
                f"{min(row['slots'], top) / (alone['p50_ms'] / 1000):.0f}"
            )
        out.append(
            Check(
                f"I/O-bound {setup} via nginx, {top} connections >= 95 % of its bound, rounds "
                f"max/min <= 1.1",
                f"{row['rps']:g} req/s = {row['rps'] / capped:.0%} of {capped:g}{cap_note}; "
                f"slots {row['slots']} / {IO_MS} ms = {bound:g}; max/min {stable:.2f}"
                + latency_note,
                row["rps"] >= 0.95 * capped and stable <= 1.1,
            )
        )

    # 2. The nginx hop on hello. On a machine the app already saturates, nginx's own CPU is
    #    taken from the app, so the hop cannot cost less than nginx's share of the CPU.
    for setup in ("gthread", "gevent"):
        direct, proxied = get(setup, "hello", top), get(f"nginx→{setup}", "hello", top)
        if not (direct and proxied and direct["rps"]):
            continue
        cost = 1 - proxied["rps"] / direct["rps"]
        nginx_ms, app_ms = per_request_cpu_ms(proxied), per_request_cpu_ms(direct)
        out.append(
            Check(
                f"nginx hop on hello, {setup}: <= 8 % of direct throughput, p99 no worse",
                f"{cost:.1%} ({proxied['rps']:g} vs {direct['rps']:g} req/s); p99 "
                f"{proxied['p99_ms']} vs {direct['p99_ms']} ms; nginx spends {nginx_ms:.3f} ms "
                f"CPU per request, the app {app_ms:.3f}: nginx's CPU share "
                f"{nginx_ms / (nginx_ms + app_ms):.1%} is the floor on this machine",
                cost <= 0.08 and proxied["p99_ms"] <= direct["p99_ms"],
            )
        )

    # 3. The right tool beats every peer on every workload.
    peers = ("dev-single", "dev-threaded", "dev-processes", "waitress")
    for setup in ("gthread", "gevent"):
        row = get(f"nginx→{setup}", "io", top)
        rivals = [r for r in (get("dev-threaded", "io", top), get("waitress", "io", top)) if r]
        if row and rivals:
            best = max(rivals, key=lambda r: r["rps"])
            out.append(
                Check(
                    f"I/O-bound: {setup} via nginx beats Werkzeug threaded and waitress",
                    f"{row['rps']:g} req/s vs the better of them, {best['contender']} "
                    f"{best['rps']:g}",
                    row["rps"] > best["rps"],
                )
            )
    sync_cpu, sync_hello = get("nginx→sync", "cpu", top), get("nginx→sync", "hello", top)
    if sync_cpu:
        bound = cpus / (CPU_MS / 1000)
        # The app's own per-request cost (hello) adds to every request's 5 ms of work.
        overhead_ms = 1000 * cpus / sync_hello["rps"] if sync_hello else 0.0
        honest = cpus / ((CPU_MS + overhead_ms) / 1000)
        dev = [r for r in (get(name, "cpu", top) for name in peers[:3]) if r]
        best_dev = max(dev, key=lambda r: r["rps"]) if dev else None
        out.append(
            Check(
                "CPU-bound: sync via nginx >= 90 % of cores / service time, beats every dev mode",
                f"{sync_cpu['rps']:g} req/s = {sync_cpu['rps'] / bound:.0%} of {cpus} cores / "
                f"{CPU_MS} ms = {bound:g}; {sync_cpu['rps'] / honest:.0%} of {honest:.0f}, the "
                f"bound with the app's own {overhead_ms:.2f} ms per request added"
                + (
                    f"; best dev mode {best_dev['contender']} {best_dev['rps']:g}"
                    if best_dev
                    else ""
                ),
                sync_cpu["rps"] >= 0.9 * bound
                and (best_dev is None or sync_cpu["rps"] > best_dev["rps"]),
            )
        )
    hello_peers = [r for r in (get(name, "hello", top) for name in peers) if r]
    setups = [
        r
        for r in rows
        if r["kind"].startswith("setup") and r["workload"] == "hello" and r["connections"] == top
    ]
    if hello_peers and setups:
        best_peer = max(hello_peers, key=lambda r: r["rps"])
        best = max(setups, key=lambda r: r["rps"])
        ratio = best["rps"] / max(best_peer["rps"], 0.1)
        out.append(
            Check(
                "hello: the best setup >= 1.5x the best peer",
                f"{best['contender']} {best['rps']:g} req/s = {ratio:.2f}x "
                f"{best_peer['contender']} {best_peer['rps']:g}",
                ratio >= 1.5,
            )
        )
    for row in setups:
        if row["p50_ms"] and row["p99_ms"]:
            tail = row["p99_ms"] / row["p50_ms"]
            out.append(
                Check(
                    f"hello tail, {row['contender']}: p99 <= 10x p50",
                    f"p99 {row['p99_ms']} ms = {tail:.1f}x p50 {row['p50_ms']} ms",
                    tail <= 10,
                )
            )

    # 4. Locust is never the bottleneck: its ceiling, and the load tests' rates below 80 %.
    ceiling, hello_run = locust.get("ceiling"), locust.get("hello_gthread")
    static = get(NGINX_STATIC, "hello", top)
    if ceiling and hello_run:
        wrk_gthread = get("nginx→gthread", "hello", top)
        versus = (
            f"; on nginx→gthread hello Locust drove {hello_run['rps']:g} where wrk drove "
            f"{wrk_gthread['rps']:g}"
            if wrk_gthread
            else ""
        )
        best_via_nginx = max(
            (r["rps"] for r in setups if r["kind"] == "setup via nginx"), default=0.0
        )
        out.append(
            Check(
                "Locust is not the bottleneck: the fastest setup via nginx below 80 % of one "
                "Locust process's ceiling",
                f"one Locust process (FastHttpUser, {ceiling['users']} users): {ceiling['rps']:g} "
                f"req/s against nginx's /healthz at {ceiling['locust_cpu_share']:.0%} of a core"
                + (f" (wrk: {static['rps']:g})" if static else "")
                + versus
                + f"; fastest setup via nginx {best_via_nginx:g} = "
                f"{best_via_nginx / ceiling['rps']:.0%} of the ceiling",
                best_via_nginx < NEAR_CEILING * ceiling["rps"],
            )
        )

    # 5. gevent's tail next to gthread's.
    gevent, gthread = get("gevent", "hello", top), get("gthread", "hello", top)
    if gevent and gthread and gthread["p99_ms"]:
        out.append(
            Check(
                "hello tail: gevent p99 within 3x gthread's",
                f"gevent {gevent['p99_ms']} ms, gthread {gthread['p99_ms']} ms = "
                f"{gevent['p99_ms'] / gthread['p99_ms']:.1f}x",
                gevent["p99_ms"] <= 3 * gthread["p99_ms"],
            )
        )
    return out


def markdown(result: dict, meta: dict) -> str:
    lines = [
        f"# Benchmark ({meta['generated']}, {meta['cpus']} CPUs, {meta['seconds']} s runs, "
        f"median of {meta['rounds']} interleaved rounds, wrk)",
        "",
        "Rerun: `make bench` (writes artifacts/bench/). Every figure below is measured in "
        "this one run; the targets are ratios between them.",
        "",
        "## Targets",
        "",
    ]
    lines += [f"- {check['sentence']}" for check in result["checks"]]
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
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 200])
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument(
        "--no-locust", dest="locust", action="store_false", help="skip the Locust ceiling runs"
    )
    parser.add_argument(
        "--contenders",
        nargs="+",
        metavar="NAME",
        help="measure only these (e.g. gevent nginx→gevent); default: all",
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
        args.seconds, args.rounds, args.connections = 1, 1, [16]
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian: apt-get install wrk)")
    if max(args.connections) > 400 or args.seconds > 60:
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
        "connections": args.connections,
    }
    write_results(args.out, meta, measure(args))
    return 0


def write_results(out: Path, meta: dict, result: dict) -> None:
    """Judge the targets, write bench.json and bench.md, and print the verdicts."""
    found = checks(result["rows"], result["locust"], meta["cpus"])
    result["checks"] = [{**asdict(c), "sentence": c.sentence()} for c in found]
    (out / "bench.json").write_text(json.dumps({"meta": meta, **result}, indent=1))
    (out / "bench.md").write_text(markdown(result, meta))
    missed = [c for c in found if not c.met]
    print(
        "\n".join(
            [
                "",
                *(c.sentence() for c in found),
                "",
                f"{len(found) - len(missed)} of {len(found)} targets met",
                f"written: {out / 'bench.md'}",
            ]
        )
    )


if __name__ == "__main__":
    sys.exit(main())
