"""The benchmark: each setup against its theoretical bound and against what a user might run
instead, side by side in one run on one machine. Not a test: it asserts nothing about speed.

    python -m loadtest.bench                 # full: 10 s runs, 3 interleaved rounds (~35 min)
    python -m loadtest.bench --short         # smoke: 1 s runs, 1 round (CI runs this)

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from tools import launch

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = {"hello": "/api/whoami", "io": "/api/io?ms=50", "cpu": "/api/cpu?ms=5"}
IO_MS, CPU_MS = 50, 5


@dataclass(frozen=True)
class Contender:
    name: str
    kind: str  # "setup", "setup via nginx", "peer", "ceiling"
    base: str  # URL prefix the workload paths are appended to
    pid: int  # the process whose tree is the server (CPU accounting)
    slots: int | None = None  # requests it serves at once (None: unbounded / n.a.)
    only: tuple[str, ...] = ()  # workloads it takes part in (empty: all)


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
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)
    requests = re.search(r"(\d+) requests in", output)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": ms("50"), "p99_ms": ms("99"),
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
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency",
         "--timeout", "10s", url], capture_output=True, text=True, timeout=seconds + 60)
    wall = time.monotonic() - started
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = parse_wrk(result.stdout)
    figures["server_cpu"] = round((tree_cpu_seconds(server_pid) - server_before) / wall, 2)
    figures["client_cpu"] = round((client_after.ru_utime - client_before.ru_utime
                                   + client_after.ru_stime - client_before.ru_stime) / wall, 2)
    return figures


def contenders(stack: ExitStack, logs: Path) -> list[Contender]:
    # "Direct" and "via nginx" hit the very same Gunicorn processes, so the difference
    # between them is the nginx hop alone. Every server logs to a file, none through a
    # supervisor's pipe (which costs CPU per line).
    direct = {setup: stack.enter_context(launch.gunicorn(setup, logs / f"{setup}.log"))
              for setup in launch.SETUPS}
    configs = {setup: running.configs()[setup] for setup, running in direct.items()}
    slots = {
        "sync": configs["sync"]["workers"],
        "gthread": configs["gthread"]["workers"] * configs["gthread"]["threads"],
        "gevent": configs["gevent"]["workers"] * configs["gevent"]["worker_connections"],
    }
    app_ports = {setup: int(running.base_url.rsplit(":", 1)[1])
                 for setup, running in direct.items()}
    proxy = stack.enter_context(launch.nginx(app_ports, logs / "nginx.log"))
    found: list[Contender] = []
    for setup in launch.SETUPS:
        found.append(Contender(setup, "setup", direct[setup].base_url,
                               direct[setup].process.pid, slots[setup]))
        # CPU of the nginx path: nginx's tree only (the Gunicorn share shows in the direct row).
        found.append(Contender(f"nginx→{setup}", "setup via nginx",
                               proxy.load_url + f"/{setup}", proxy.process.pid, slots[setup]))
    for mode in ("single", "threaded", "processes"):
        dev = stack.enter_context(launch.dev_server(mode, logs / f"dev-{mode}.log"))
        found.append(Contender(f"dev-{mode}", "peer", dev.base_url, dev.process.pid,
                               {"single": 1, "threaded": None, "processes": 4}[mode]))
    waitress = stack.enter_context(launch.waitress(logs / "waitress.log"))
    found.append(Contender("waitress", "peer", waitress.base_url, waitress.process.pid, 4))
    raw = stack.enter_context(launch.gunicorn("sync", logs / "raw.log", app="tools.raw_wsgi:app",
                                              ready_path="/"))
    found.append(Contender("raw-wsgi-sync", "ceiling", raw.base_url, raw.process.pid,
                           only=("hello",)))
    found.append(Contender("nginx-static", "ceiling", proxy.load_url, proxy.process.pid,
                           only=("hello",)))
    return found


def wait_until_idle(contender: Contender) -> None:
    """Let the previous run's queued requests drain before the next run starts: a server's
    accept queue is first in, first out, so one request answered means the queue ahead of it
    is gone. (A sync worker still serves the requests wrk abandoned at 200 connections.)"""
    probe = contender.base + ("/healthz" if contender.name == "nginx-static" else
                              "/" if contender.name == "raw-wsgi-sync" else "/readyz")
    launch.http_status(probe, timeout=60)


def url_for(contender: Contender, workload: str) -> str:
    if contender.name == "nginx-static":
        return contender.base + "/healthz"
    if contender.name == "raw-wsgi-sync":
        return contender.base + "/"
    return contender.base + WORKLOADS[workload]


def measure(args) -> dict[str, Any]:
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    samples: dict[tuple[str, str, int], list[dict]] = {}
    with ExitStack() as stack:
        found = [c for c in contenders(stack, logs)
                 if not args.contenders or c.name in args.contenders]
        for round_no in range(args.rounds):
            for workload in args.workloads:
                for connections in args.connections:
                    for contender in found:  # interleaved: every contender, then the next round
                        if contender.only and workload not in contender.only:
                            continue
                        print(f"  round {round_no + 1} {workload:5} c={connections:<3} "
                              f"{contender.name}", flush=True)
                        wait_until_idle(contender)
                        samples.setdefault((contender.name, workload, connections), []).append(
                            run_wrk(url_for(contender, workload), connections, args.seconds,
                                    contender.pid))
    rows = []
    by_name = {c.name: c for c in found}
    for (name, workload, connections), runs in samples.items():
        rps = [r["rps"] for r in runs]
        median = statistics.median(rps)
        middle = min(runs, key=lambda r: abs(r["rps"] - median))
        rows.append({
            "contender": name, "kind": by_name[name].kind, "workload": workload,
            "connections": connections, "rounds": len(runs), "rps": round(median, 1),
            "rps_min": min(rps), "rps_max": max(rps),
            "p50_ms": middle["p50_ms"], "p99_ms": middle["p99_ms"],
            "errors": sum(r["errors"] for r in runs), "server_cpu": middle["server_cpu"],
            "client_cpu": middle["client_cpu"], "slots": by_name[name].slots,
        })
    return {"rows": rows}


def ratios(rows: list[dict], cpus: int) -> list[str]:
    """The issue-8 targets, as sentences with their measured ratios."""
    def get(name, workload, connections):
        return next((r for r in rows if (r["contender"], r["workload"], r["connections"])
                     == (name, workload, connections)), None)

    out = []
    top = max(r["connections"] for r in rows)
    for setup in launch.SETUPS:
        row = get(f"nginx→{setup}", "io", top)
        if row and row["slots"]:
            bound = min(row["slots"], top) / (IO_MS / 1000)
            stable = row["rps_max"] / max(row["rps_min"], 0.1)
            out.append(f"I/O-bound, {setup} via nginx at {top} connections: {row['rps']:g} req/s"
                       f" = {row['rps'] / bound:.0%} of its bound {bound:g} (target >= 95 %); "
                       f"rounds max/min {stable:.2f} (target <= 1.1)")
    for setup in ("gthread", "gevent"):
        direct, proxied = get(setup, "hello", top), get(f"nginx→{setup}", "hello", top)
        if direct and proxied and direct["rps"]:
            out.append(f"nginx hop on hello, {setup}: {1 - proxied['rps'] / direct['rps']:.1%} "
                       f"of direct throughput (target <= 8 %); p99 {proxied['p99_ms']} ms via "
                       f"nginx vs {direct['p99_ms']} ms direct")
    sync_cpu = get("nginx→sync", "cpu", top)
    if sync_cpu:
        bound = cpus / (CPU_MS / 1000)
        out.append(f"CPU-bound, sync via nginx: {sync_cpu['rps']:g} req/s = "
                   f"{sync_cpu['rps'] / bound:.0%} of cores / service time {bound:g} "
                   "(target >= 90 %)")
    peers = [r for r in rows if r["kind"] == "peer" and r["workload"] == "hello"
             and r["connections"] == top]
    setups = [r for r in rows if r["kind"].startswith("setup") and r["workload"] == "hello"
              and r["connections"] == top]
    if peers and setups:
        best_peer, best = max(peers, key=lambda r: r["rps"]), max(setups, key=lambda r: r["rps"])
        out.append(f"hello: best setup {best['contender']} {best['rps']:g} req/s = "
                   f"{best['rps'] / max(best_peer['rps'], 0.1):.2f}x the best peer "
                   f"{best_peer['contender']} {best_peer['rps']:g} (target >= 1.5x)")
    for row in setups:
        if row["p50_ms"] and row["p99_ms"]:
            out.append(f"hello tail, {row['contender']}: p99 {row['p99_ms']} ms = "
                       f"{row['p99_ms'] / row['p50_ms']:.1f}x p50 (target <= 10x)")
    return out


def markdown(result: dict, meta: dict) -> str:
    lines = [f"# Benchmark ({meta['generated']}, {meta['cpus']} CPUs, {meta['seconds']} s runs, "
             f"median of {meta['rounds']} interleaved rounds, wrk)", "", "## Targets", ""]
    lines += [f"- {sentence}" for sentence in result["ratios"]] + ["", "## All runs", ""]
    header = ["contender", "kind", "workload", "conns", "req/s", "min", "max", "p50 ms",
              "p99 ms", "errors", "server CPU", "wrk CPU"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in sorted(result["rows"], key=lambda r: (r["workload"], r["connections"], -r["rps"])):
        lines.append("| " + " | ".join(str(v) for v in (
            r["contender"], r["kind"], r["workload"], r["connections"], r["rps"], r["rps_min"],
            r["rps_max"], r["p50_ms"], r["p99_ms"], r["errors"], r["server_cpu"],
            r["client_cpu"])) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    parser.add_argument("--short", action="store_true", help="1 s runs, 1 round: a smoke run")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 200])
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS),
                        default=list(WORKLOADS))
    parser.add_argument("--contenders", nargs="+", metavar="NAME",
                        help="measure only these (e.g. gevent nginx→gevent); default: all")
    args = parser.parse_args(argv)
    if args.short:
        args.seconds, args.rounds, args.connections = 1, 1, [16]
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian: apt-get install wrk)")
    if max(args.connections) > 400 or args.seconds > 60:
        parser.error("keep the load bounded: at most 400 connections and 60 s a run")
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    cpus = len(psutil.Process().cpu_affinity() or [0])
    meta = {"generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": cpus,
            "seconds": args.seconds, "rounds": args.rounds, "connections": args.connections}
    result = measure(args)
    result["ratios"] = ratios(result["rows"], cpus)
    (args.out / "bench.json").write_text(json.dumps({"meta": meta, **result}, indent=1))
    (args.out / "bench.md").write_text(markdown(result, meta))
    print("\n".join(["", *result["ratios"], "", f"written: {args.out / 'bench.md'}"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
