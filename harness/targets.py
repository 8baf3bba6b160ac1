"""The benchmark's targets: each one a small function judging figures measured side by side in
one run (harness/bench.py measures them). Pure: rows in, verdicts out, so the judging is unit-
tested on hand-made rows with known answers (tests/unit/test_bench_targets.py).

A target whose rows are missing is MISSED ("missing data"), never silently dropped: a run
that did not measure something has not shown it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from gunicorn_conf import SETUPS
from harness.runner import NEAR_CEILING

IO_MS, CPU_MS = 50, 5
DB_MS = IO_MS  # the db workload's wait in PostgreSQL: the same as io's sleep, to compare
NGINX_STATIC = "nginx-static"  # the ceiling contender: nginx answering /healthz itself
# The app variants each setup's config also serves (harness/bench.py's VARIANTS).
OBSERVABILITY_OFF = "observability off"
BARE_FLASK = "bare Flask"
# The shipped app itself, again, in processes of its own that serve only the paired rounds,
# like the variants: the reference the variant targets are judged against (like against like:
# same code, same config, same history). The shipped setup's own process has served every
# other workload of the run before; its ratio to this one is an A/A control, what this
# machine's noise and a process's history make of "no difference" (noise_floor).
SECOND_PROCESS = "second process"
# The shipped app and config with Gunicorn's Python HTTP parser instead of its C one
# (http_parser, gunicorn_conf/base.py): what the C parser buys (c_parser).
PYTHON_PARSER = "Python parser"
PEERS = ("dev-single", "dev-threaded", "dev-processes", "waitress")
DEV_MODES = PEERS[:3]
# The servers people pick instead, behind the same nginx (harness/launch.py, harness/peers/).
UWSGI_AS_SHIPPED = "uwsgi-as-shipped"
SERVER_PEERS = (UWSGI_AS_SHIPPED, "uwsgi-tuned", "granian")
# gthread with few threads a worker, behind the same nginx (the contender's name): what the
# CPU-bound tail looks like when a worker's threads are few, and what it costs on I/O-bound
# load (cpu_bound_gthread_tail).
FEW_THREADS = 4
GTHREAD_FEW_THREADS = f"nginx→gthread {FEW_THREADS} threads"


# Ours against uWSGI as commonly shipped, per workload: the floor of the ratio.
AGAINST_UWSGI_AS_SHIPPED = {"hello": 0.8, "cpu": 1.0, "io": 20.0}
# The workloads the paired rounds measure back to back (harness/bench.py's pair_groups).
PAIRED_WORKLOADS = ("hello", "cpu")


def pair_group(reference: str, workload: str) -> str:
    """The name of the paired rounds of ``reference``'s group on ``workload``: the reference's
    own on hello (as in runs saved before other workloads were paired), with the workload
    after it on the others."""
    return reference if workload == "hello" else f"{reference} {workload}"


def pair_group_workload(group: str) -> str:
    """The workload of the paired rounds named ``group`` (pair_group's inverse)."""
    last = group.rsplit(" ", 1)[-1]
    return last if last in PAIRED_WORKLOADS else "hello"


Row = dict[str, Any]


@dataclass(frozen=True)
class Check:
    """One target: what was measured against what, and whether it holds. An ``info`` check
    judges nothing: it states where something stands (a comparison worth reading, with no
    bar to clear), and is never counted as met or missed."""

    target: str
    measured: str
    met: bool
    info: bool = False
    # Met by the trade the target allows instead of its bar (a choice shown by measurement,
    # which the docs state), not by clearing the bar itself.
    trade: bool = False

    def sentence(self) -> str:
        if self.info:
            verdict = "info"
        elif not self.met:
            verdict = "MISSED"
        else:
            verdict = "met as a stated trade" if self.trade else "met"
        return f"{verdict}: {self.target}: {self.measured}"


class Runs:
    """The run's rows, looked up by (contender, workload, connections); connections default
    to the highest count measured (where the targets are judged)."""

    def __init__(
        self,
        rows: list[Row],
        locust: dict[str, Row],
        cpus: int,
        idle: Row | None = None,
        paired: dict[str, list[dict[str, float]]] | None = None,
        paired_cpu: dict[str, list[dict[str, float]]] | None = None,
        paired_p99: dict[str, list[dict[str, float]]] | None = None,
        paired_errors: dict[str, list[dict[str, float]]] | None = None,
    ) -> None:
        self.rows = rows
        # Rounds of rates measured back to back, by group (harness/bench.py's pair_groups:
        # on hello a setup and its app variants; native nginx, the compose stack's and the
        # setup direct; uWSGI as shipped and the setups via nginx; the last also CPU-bound),
        # the server's CPU per request in the same runs (ms; the variant groups only; none
        # before 2026-12), their p99 (ms; none before 2026-12-07's second run) and their
        # errors (none before 2026-12-08).
        self.paired = paired or {}
        self.paired_cpu = paired_cpu or {}
        self.paired_p99 = paired_p99 or {}
        self.paired_errors = paired_errors or {}
        self.by_key = {(r["contender"], r["workload"], r["connections"]): r for r in rows}
        self.top = max((r["connections"] for r in rows), default=0)
        self.locust = locust
        self.cpus = cpus
        self.idle = idle

    def get(self, contender: str, workload: str, connections: int | None = None) -> Row | None:
        return self.by_key.get((contender, workload, connections or self.top))

    def need(self, *keys: tuple[str, str]) -> list[Row] | None:
        """Every (contender, workload) row at the top connection count, or None if any is
        missing."""
        found = [self.get(contender, workload) for contender, workload in keys]
        return None if any(row is None for row in found) else found  # type: ignore[return-value]

    def missing(self, target: str, *keys: tuple[str, str]) -> Check:
        absent = [f"{c} {w}" for c, w in keys if self.get(c, w) is None]
        return Check(target, f"missing data: no row for {', '.join(absent)}", False)


def per_request_cpu_ms(row: Row) -> float:
    return 1000 * row["server_cpu"] / max(row["rps"], 0.1)


# --- The targets -----------------------------------------------------------------------


# I/O-bound: the least share of its bound a setup must serve (issue 13, target 6).
SLOT_SHARE = 0.90
CPU_CAP_SHARE = 0.95


def io_bound_near_its_bound(runs: Runs, setup: str) -> Check:
    """I/O-bound: a setup serves near slots / latency, capped by the CPU (its rate on hello
    through the same path, where the app does nothing but its own overhead).

    The share depends on which bound applies: SLOT_SHARE of the slot bound (gthread; sync
    too), where every request also holds its slot for the server's own per-request path and
    its turn on the GIL; CPU_CAP_SHARE of the CPU cap (gevent), which already counts that
    path."""
    target = (
        f"I/O-bound {setup} via nginx, {runs.top} connections >= {SLOT_SHARE * 100:.0f} % of "
        f"its slot bound or {CPU_CAP_SHARE * 100:.0f} % of its CPU cap, no errors, "
        "rounds max/min <= 1.1"
    )
    keys = ((f"nginx→{setup}", "io"), (f"nginx→{setup}", "hello"))
    found = runs.need(*keys)
    if found is None or not found[0]["slots"]:
        return runs.missing(target, *keys)
    row, hello = found
    bound = min(row["slots"], runs.top) / (IO_MS / 1000)
    capped = min(bound, hello["rps"])
    stable = _spread(row)
    cap_note = f" (CPU cap: {hello['rps']:g} on hello)" if capped < bound else ""
    # With no more connections than slots nothing queues: p50 there is what one request
    # really takes, the wait plus the server's own per-request path.
    unqueued = [
        r
        for r in runs.rows
        if r["contender"] == row["contender"]
        and r["workload"] == "io"
        and r["connections"] <= row["slots"]
        and r["connections"] < runs.top
        and r["p50_ms"]
    ]
    latency_note = ""
    if unqueued:
        alone = max(unqueued, key=lambda r: r["connections"])
        latency_note = (
            f"; unqueued at {alone['connections']} connections a request takes "
            f"p50 {alone['p50_ms']} ms, so slots / that = "
            f"{min(row['slots'], runs.top) / (alone['p50_ms'] / 1000):.0f}"
        )
    share = CPU_CAP_SHARE if capped < bound else SLOT_SHARE
    return Check(
        target,
        f"{row['rps']:g} req/s = {row['rps'] / capped:.0%} of {capped:g}{cap_note}; "
        f"slots {row['slots']} / {IO_MS} ms = {bound:g}; {row['errors']} errors; "
        f"max/min {stable:.2f}" + latency_note,
        row["rps"] >= share * capped and row["errors"] == 0 and stable <= 1.1,
    )


def db_bound_near_its_bound(runs: Runs, setup: str) -> Check:
    """Database-bound: a setup serves near its pools' connections / query time (a request
    holds one connection for its whole query), capped by what its server can serve at once
    and by the CPU, with no errors. The CPU cap is the same query with no wait (db-nowait):
    nginx, the app, the driver and PostgreSQL's backend all do their work there, on the same
    cores, and nothing waits; hello would leave the database's share out."""
    target = f"db-bound {setup} via nginx, {runs.top} connections >= 90 % of its bound, no errors"
    keys = ((f"nginx→{setup}", "db"), (f"nginx→{setup}", "db-nowait"))
    found = runs.need(*keys)
    if found is None or not found[0].get("pool_slots"):
        return runs.missing(target, *keys)
    row, nowait = found
    at_once = min(row["pool_slots"], row["slots"] or runs.top, runs.top)
    bound = at_once / (DB_MS / 1000)
    # A no-wait rate below the waiting rate measured something other than the CPU (the same
    # requests served faster with a wait in them): it caps nothing, and the bound decides.
    if nowait["rps"] < min(row["rps"], bound):
        capped = bound
        cap_note = f" (no CPU cap: with no wait it served {nowait['rps']:g}, less than this)"
    else:
        capped = min(bound, nowait["rps"])
        cap_note = f" (CPU cap: {nowait['rps']:g} with no wait)" if capped < bound else ""
    return Check(
        target,
        f"{row['rps']:g} req/s = {row['rps'] / capped:.0%} of {capped:g}{cap_note}; "
        f"{at_once} connections at once (pools {row['pool_slots']}, server slots "
        f"{row['slots']}) / {DB_MS} ms = {bound:g}; {row['errors'] + nowait['errors']} errors; "
        f"p99 {row['p99_ms']} ms",
        row["rps"] >= 0.9 * capped and row["errors"] == 0 and nowait["errors"] == 0,
    )


def nginx_hop_on_hello(runs: Runs, setup: str) -> Check:
    """The nginx hop costs little. On a machine the app already saturates, nginx's own CPU is
    taken from the app, so the hop cannot cost less than nginx's share of the CPU: the
    sentence says which side of that floor the measurement fell."""
    target = f"nginx hop on hello, {setup}: <= 8 % of direct throughput, p99 no worse"
    keys = ((setup, "hello"), (f"nginx→{setup}", "hello"))
    found = runs.need(*keys)
    if found is None or not found[0]["rps"]:
        return runs.missing(target, *keys)
    direct, proxied = found
    # Back to back with the setup served directly (harness/bench.py's measure_pairs): the
    # median of the rounds' ratios; in runs saved before it measured them so, the rows'.
    rounds = _rounds_with(runs, f"nginx→{setup}", f"nginx→{setup}", setup)
    if rounds:
        ratio, measured = _median_of_rounds(rounds, f"nginx→{setup}", setup)
        cost = 1 - ratio
        head = f"{cost:.1%}: nginx→{setup} against {setup} {measured}"
    else:
        cost = 1 - proxied["rps"] / direct["rps"]
        head = f"{cost:.1%} ({proxied['rps']:g} vs {direct['rps']:g} req/s)"
    nginx_ms, app_ms = per_request_cpu_ms(proxied), per_request_cpu_ms(direct)
    share = nginx_ms / (nginx_ms + app_ms)
    side = "at or below" if cost <= share else "above"
    return Check(
        target,
        f"{head}; p99 "
        f"{proxied['p99_ms']} vs {direct['p99_ms']} ms; nginx spends {nginx_ms:.3f} ms CPU per "
        f"request, the app {app_ms:.3f}: the cost is {side} nginx's CPU share ({share:.1%}), "
        "the floor where nginx and the app share the cores",
        cost <= 0.08 and proxied["p99_ms"] <= direct["p99_ms"],
    )


def io_bound_beats_the_threaded_peers(runs: Runs, setup: str) -> Check:
    target = f"I/O-bound: {setup} via nginx beats Werkzeug threaded and waitress"
    keys = ((f"nginx→{setup}", "io"), ("dev-threaded", "io"), ("waitress", "io"))
    found = runs.need(*keys)
    if found is None:
        return runs.missing(target, *keys)
    row, *rivals = found
    best = max(rivals, key=lambda r: r["rps"])
    return Check(
        target,
        f"{row['rps']:g} req/s vs the better of them, {best['contender']} {best['rps']:g}",
        row["rps"] > best["rps"],
    )


def cpu_bound_sync_near_the_cores(runs: Runs) -> Check:
    target = (
        "CPU-bound: sync via nginx >= 90 % of cores / (service time + the app's own cost per "
        "request), beats every dev mode"
    )
    keys = (("nginx→sync", "cpu"), ("nginx→sync", "hello"), *((m, "cpu") for m in DEV_MODES))
    found = runs.need(*keys)
    if found is None:
        return runs.missing(target, *keys)
    row, hello, *dev = found
    bound = runs.cpus / (CPU_MS / 1000)
    # The app's own per-request cost (hello) adds to every request's 5 ms of work.
    overhead_ms = 1000 * runs.cpus / hello["rps"]
    honest = runs.cpus / ((CPU_MS + overhead_ms) / 1000)
    best_dev = max(dev, key=lambda r: r["rps"])
    return Check(
        target,
        f"{row['rps']:g} req/s = {row['rps'] / bound:.0%} of {runs.cpus} cores / {CPU_MS} ms = "
        f"{bound:g}; {row['rps'] / honest:.0%} of {honest:.0f}, the bound with the app's own "
        f"{overhead_ms:.2f} ms per request added; best dev mode {best_dev['contender']} "
        f"{best_dev['rps']:g}",
        row["rps"] >= 0.9 * honest and row["rps"] > best_dev["rps"],
    )


def cpu_bound_gthread_tail(runs: Runs) -> Check:
    """On CPU-bound load a gthread worker's threads share one GIL, and which waiting thread
    gets it next is the operating system's pick, not first come, first served: a request can
    lose that draw many times over, so the tail grows with the threads that draw. sync's
    one-at-a-time workers finish requests in the order they came.

    The issue allows a stated trade instead of the bar: the same config with FEW_THREADS a
    worker, measured through the same nginx, must bring the tail within the bar and must cost
    I/O-bound throughput. Both hold: the shipped 32 threads are a choice for waiting work
    (gunicorn_conf/gthread.py), not a tail left unexplained.

    The p99 ratios are the medians of the CPU-bound paired rounds' (pair_group), where the
    three ran back to back: a p99 on this machine moves by a factor of two between runs
    minutes apart. Without those rounds (runs saved before), the rows' p99."""
    target = (
        "CPU-bound tail: gthread via nginx p99 <= 1.5x sync's, or the trade shown: with "
        f"{FEW_THREADS} threads a worker it is, and I/O-bound throughput falls"
    )
    gthread = _tail_against_sync(runs, "nginx→gthread")
    if gthread is None:
        return runs.missing(target, ("nginx→gthread", "cpu"), ("nginx→sync", "cpu"))
    tail, measured = gthread
    measured = f"gthread {measured}"
    if tail <= 1.5:
        return Check(target, measured, True)
    few = _tail_against_sync(runs, GTHREAD_FEW_THREADS)
    io = runs.need((GTHREAD_FEW_THREADS, "io"), ("nginx→gthread", "io"))
    if few is None or io is None:
        absent = runs.missing(
            target,
            (GTHREAD_FEW_THREADS, "cpu"),
            (GTHREAD_FEW_THREADS, "io"),
            ("nginx→gthread", "io"),
        ).measured
        return Check(target, f"{measured}; the trade: {absent}", False)
    (few_tail, few_measured), (few_io, shipped_io) = few, io
    shown = few_tail <= 1.5 and few_io["rps"] < shipped_io["rps"]
    return Check(
        target,
        f"{measured}; with {FEW_THREADS} threads a worker {few_measured}, and I/O-bound "
        f"{few_io['rps']:g} req/s against {shipped_io['rps']:g} with the shipped threads",
        shown,
        trade=True,
    )


def _tail_against_sync(runs: Runs, contender: str) -> tuple[float, str] | None:
    """``contender``'s CPU-bound p99 over sync's, both via nginx, and the sentence that says
    so: the median of the CPU-bound paired rounds (pair_group), or without them (runs saved
    before) the rows'. None where neither was measured."""
    sync = "nginx→sync"
    rounds = _rounds_with(
        runs, pair_group(f"nginx→{UWSGI_AS_SHIPPED}", "cpu"), contender, sync, "paired_p99"
    )
    if rounds:
        ratios = sorted(r[contender] / r[sync] for r in rounds)
        ratio = statistics.median(ratios)
        return ratio, (
            f"p99 = {ratio:.2f}x {sync}'s, median of {len(ratios)} "
            f"round{'s' * (len(ratios) != 1)} back to back (each round's ratio "
            f"{ratios[0]:.2f}x to {ratios[-1]:.2f}x; median p99 {contender} "
            f"{statistics.median(r[contender] for r in rounds):g} vs {sync} "
            f"{statistics.median(r[sync] for r in rounds):g} ms)"
        )
    found = runs.need((contender, "cpu"), (sync, "cpu"))
    if found is None or not (found[0]["p99_ms"] and found[1]["p99_ms"]):
        return None
    ours, theirs = found
    ratio = ours["p99_ms"] / theirs["p99_ms"]
    return ratio, (
        f"p99 {ours['p99_ms']} ms = {ratio:.2f}x sync's {theirs['p99_ms']} ms (p50 "
        f"{ours['p50_ms']} vs {theirs['p50_ms']} ms)"
    )


def hello_best_setup_beats_the_peers(runs: Runs) -> Check:
    target = "hello: the best setup >= 1.5x the best peer"
    peers = [r for r in (runs.get(name, "hello") for name in PEERS) if r]
    setups = setup_rows(runs, "hello")
    if not peers or not setups:
        return runs.missing(target, *((name, "hello") for name in PEERS))
    best_peer = max(peers, key=lambda r: r["rps"])
    best = max(setups, key=lambda r: r["rps"])
    ratio = best["rps"] / max(best_peer["rps"], 0.1)
    return Check(
        target,
        f"{best['contender']} {best['rps']:g} req/s = {ratio:.2f}x "
        f"{best_peer['contender']} {best_peer['rps']:g}",
        ratio >= 1.5,
    )


def hello_tail(runs: Runs, contender: str) -> Check:
    """Information: how far each setup's hello tail is from its median. (A bar of 10x was
    never near what is measured, so it judged nothing.)"""
    target = f"hello tail, {contender}: p99 against p50"
    row = runs.get(contender, "hello")
    if not (row and row["p50_ms"] and row["p99_ms"]):
        return Check(target, f"missing data: no row for {contender} hello", False, info=True)
    tail = row["p99_ms"] / row["p50_ms"]
    return Check(
        target, f"p99 {row['p99_ms']} ms = {tail:.1f}x p50 {row['p50_ms']} ms", True, info=True
    )


def locust_is_not_the_bottleneck(runs: Runs) -> Check:
    target = (
        "Locust is not the bottleneck: the fastest setup via nginx below 80 % of one "
        "Locust process's ceiling"
    )
    ceiling, hello_run = runs.locust.get("ceiling"), runs.locust.get("hello_gthread")
    if not (ceiling and hello_run):
        return Check(target, "missing data: no Locust runs (--no-locust?)", False)
    static, wrk_gthread = runs.get(NGINX_STATIC, "hello"), runs.get("nginx→gthread", "hello")
    versus = (
        f"; on nginx→gthread hello Locust drove {hello_run['rps']:g} where wrk drove "
        f"{wrk_gthread['rps']:g}"
        if wrk_gthread
        else ""
    )
    fastest = max(
        (r["rps"] for r in setup_rows(runs, "hello") if r["kind"] == "setup via nginx"),
        default=0.0,
    )
    return Check(
        target,
        f"one Locust process (FastHttpUser, {ceiling['users']} users): {ceiling['rps']:g} "
        f"req/s against nginx's /healthz at {ceiling['locust_cpu_share']:.0%} of a core"
        + (f" (wrk: {static['rps']:g})" if static else "")
        + versus
        + f"; fastest setup via nginx {fastest:g} = {fastest / ceiling['rps']:.0%} of the "
        "ceiling",
        fastest < NEAR_CEILING * ceiling["rps"],
    )


# What reading the app's answers for the "Who served" tab may cost one Locust worker.
WHO_SERVED_COST_CAP = 0.10


def who_served_costs_locust_little(runs: Runs) -> Check:
    """One Locust worker's ceiling with the Who served accounting (loadtest/who_served.py) >=
    90 % of it without, in one run; and, for information, the same on an app answer, where
    every answer is read."""
    target = (
        "the Who served tab's accounting: one Locust worker's ceiling with it >= "
        f"{1 - WHO_SERVED_COST_CAP:.0%} of it without"
    )
    with_it, without = runs.locust.get("ceiling_worker"), runs.locust.get("ceiling_worker_off")
    if not (with_it and without):
        return Check(target, "missing data: no Locust worker runs (--no-locust?)", False)
    ratio = with_it["rps"] / max(without["rps"], 0.1)
    measured = (
        f"{ratio:.0%}: {with_it['rps']:g} vs {without['rps']:g} req/s (Ceiling, one worker "
        f"behind a master, {with_it['users']} users)"
    )
    hello, hello_off = runs.locust.get("hello_worker"), runs.locust.get("hello_worker_off")
    if hello and hello_off:
        measured += (
            f"; on nginx→gevent hello, every answer read: {hello['rps']:g} vs "
            f"{hello_off['rps']:g} req/s = {hello['rps'] / max(hello_off['rps'], 0.1):.0%}"
        )
    return Check(target, measured, ratio >= 1 - WHO_SERVED_COST_CAP)


def gevent_tail_next_to_gthreads(runs: Runs) -> Check:
    """Information: gevent's hello tail next to gthread's (a 3x bar judged nothing: gevent's
    is the shorter one)."""
    target = "hello tail: gevent p99 next to gthread's"
    keys = (("gevent", "hello"), ("gthread", "hello"))
    found = runs.need(*keys)
    if found is None or not found[1]["p99_ms"]:
        return Check(target, "missing data: no gevent or gthread hello row", False, info=True)
    gevent, gthread = found
    return Check(
        target,
        f"gevent {gevent['p99_ms']} ms, gthread {gthread['p99_ms']} ms = "
        f"{gevent['p99_ms'] / gthread['p99_ms']:.1f}x",
        True,
        info=True,
    )


def hello_ratio(runs: Runs, target: str, ours: str, theirs: str, floor: float) -> Check:
    """A hello throughput ratio, ours / theirs, against a floor."""
    keys = ((ours, "hello"), (theirs, "hello"))
    found = runs.need(*keys)
    if found is None or not found[1]["rps"]:
        return runs.missing(target, *keys)
    mine, other = found
    ratio = mine["rps"] / other["rps"]
    return Check(
        target,
        f"{ratio:.0%} ({ours} {mine['rps']:g} vs {theirs} {other['rps']:g} req/s; p99 "
        f"{mine['p99_ms']} vs {other['p99_ms']} ms)",
        ratio >= floor,
    )


def paired_ratio(runs: Runs, target: str, setup: str, variant: str, floor: float) -> Check:
    """The shipped app's hello rate against a variant's, as the median of the ratios of the
    rounds in which both ran back to back (harness/bench.py's measure_pairs). The shipped app
    is the one in the second process (SECOND_PROCESS), which like every variant serves only
    these rounds; in rounds without it (runs saved before), the setup's own process. Without
    such rounds, the rows' medians (hello_ratio)."""
    other = f"{setup} {variant}"
    ours = _shipped(runs, setup, other)
    rounds = _rounds_with(runs, setup, ours, other)
    if not rounds:
        return hello_ratio(runs, target, setup, other, floor)
    ratio, measured = _median_of_rounds(rounds, ours, other)
    return Check(target, measured + _cpu_reading(runs, setup, ours, other), ratio >= floor)


def _shipped(runs: Runs, setup: str, other: str) -> str:
    """The shipped app the paired rounds compare ``other`` with: the one in the second
    process, like against like; in runs saved before it was measured, the setup's own."""
    fresh = f"{setup} {SECOND_PROCESS}"
    return fresh if _rounds_with(runs, setup, fresh, other) else setup


def paired_info(runs: Runs, target: str, group: str, ours: str, other: str) -> Check:
    """Two contenders' median ratio from the paired rounds of ``group``, without a verdict."""
    rounds = _rounds_with(runs, group, ours, other)
    if not rounds:
        return Check(target, f"missing data: no paired rounds with {other}", False, info=True)
    measured = _median_of_rounds(rounds, ours, other)[1] + _cpu_reading(runs, group, ours, other)
    return Check(target, measured, True, info=True)


def _rounds_with(
    runs: Runs, group: str, ours: str, other: str, table: str = "paired"
) -> list[dict[str, float]]:
    """The paired rounds of ``group`` (named by pair_group) in which both ``ours`` and
    ``other`` were measured, from ``table``: the rates (``paired``), or the CPU per request
    (``paired_cpu``) or the p99 (``paired_p99``) of the same runs."""
    by_group: dict[str, list[dict[str, float]]] = getattr(runs, table)
    return [r for r in by_group.get(group, []) if r.get(ours) and r.get(other)]


def _median_of_rounds(rounds: list[dict[str, float]], ours: str, other: str) -> tuple[float, str]:
    ratios = sorted(r[ours] / r[other] for r in rounds)
    ratio = statistics.median(ratios)
    return ratio, (
        f"{ratio:.0%}, median of {len(ratios)} round{'s' * (len(ratios) != 1)} back to back "
        "(each round's ratio "
        f"{ratios[0]:.0%} to {ratios[-1]:.0%}; median rates {ours} "
        f"{statistics.median(r[ours] for r in rounds):g} vs {other} "
        f"{statistics.median(r[other] for r in rounds):g} req/s)"
    )


def _cpu_reading(runs: Runs, group: str, ours: str, other: str) -> str:
    """The same comparison in the server's CPU per request, from the same runs: the variant's
    CPU per request over the shipped app's, the rate the shipped app would keep where the
    cores are the limit. A server's CPU per request moves little when this machine's speed
    drifts between two runs, where its rate moves a lot: the steadier reading of the two,
    stated beside the verdict, which judges the rates as the target says."""
    rounds = _rounds_with(runs, group, ours, other, "paired_cpu")
    if not rounds:
        return ""
    ratios = sorted(r[other] / r[ours] for r in rounds)
    return (
        f"; in CPU per request {statistics.median(ratios):.0%} (rounds {ratios[0]:.0%} to "
        f"{ratios[-1]:.0%}; median {ours} {statistics.median(r[ours] for r in rounds):.3f} "
        f"vs {other} {statistics.median(r[other] for r in rounds):.3f} ms)"
    )


def _spread(row: Row) -> float:
    """How far apart a row's rounds were: the fastest round's rate over the slowest's."""
    return row.get("rps_max", row["rps"]) / max(row.get("rps_min", row["rps"]), 0.1)


def noise_floor(runs: Runs, setup: str) -> Check:
    """The A/A control of the paired rounds: the setup's own process, which has served every
    other workload of the run, against the same app in a second process (SECOND_PROCESS), the
    variant targets' reference. No verdict: it says how far from 100 % identical code lands
    here, i.e. how close to its floor a variant target can be judged at all."""
    target = (
        f"noise floor, {setup}: the shipped app's process that served the whole run against "
        "the same app in a second process (identical code; the variant targets' reference)"
    )
    return paired_info(runs, target, setup, setup, f"{setup} {SECOND_PROCESS}")


def c_parser(runs: Runs, setup: str) -> Check:
    """What Gunicorn's C HTTP parser buys on hello: the shipped config against the same with
    its Python parser (PYTHON_PARSER), in the paired rounds. No verdict: it says what the
    choice in gunicorn_conf/base.py is worth here, next to the noise floor."""
    target = (
        f"C parser, {setup}: the shipped config (Gunicorn's C HTTP parser) against the same "
        "with its Python parser"
    )
    other = f"{setup} {PYTHON_PARSER}"
    return paired_info(runs, target, setup, _shipped(runs, setup, other), other)


def observability_tax(runs: Runs, setup: str) -> Check:
    """Metrics, request ids and JSON logs cost at most 10 % of hello throughput."""
    return paired_ratio(
        runs,
        f"observability tax, {setup}: the shipped app >= 90 % of it with observability off",
        setup,
        OBSERVABILITY_OFF,
        0.90,
    )


def holds_its_own_against_bare_flask(runs: Runs, setup: str) -> Check:
    """The app's own per-request path costs little beyond Flask's."""
    return paired_ratio(
        runs,
        f"per-request cost, {setup}: the shipped app >= 85 % of a bare Flask jsonify app",
        setup,
        BARE_FLASK,
        0.85,
    )


def docker_tax(runs: Runs, setup: str) -> Check:
    """The stack's own cost of running in containers: hello through the compose stack's
    nginx, at nginx's address (the path a client on another host takes once the engine's
    NAT has passed it on), at >= 75 % of the same setup natively through the same nginx
    config. Through the port published on 127.0.0.1 the engine's userland proxy
    (docker-proxy) carries every connection too: the host's cost, not the stack's, shown
    beside it with the CPU it adds per request (docs/measuring.md, "What Docker costs")."""
    target = (
        f"Docker tax, {setup}: the compose stack's nginx, at its address, >= 75 % of native nginx"
    )
    native = f"nginx→{setup}"
    at_address, published = f"docker nginx→{setup} by address", f"docker nginx→{setup}"
    # Back to back with native nginx (harness/bench.py's measure_pairs); in runs saved before
    # it measured them so, the rows' medians.
    rounds = _rounds_with(runs, native, at_address, native)
    if rounds:
        ratio, measured = _median_of_rounds(rounds, at_address, native)
        check = Check(target, measured, ratio >= 0.75)
    else:
        check = hello_ratio(runs, target, at_address, native, 0.75)
    rows = runs.need((at_address, "hello"), (published, "hello"), (native, "hello"))
    if rows is None:
        return check
    by_address, proxied, native_row = rows
    return Check(
        target,
        f"{check.measured}; through the port published on 127.0.0.1 "
        f"{proxied['rps'] / max(native_row['rps'], 0.1):.0%} ({proxied['rps']:g} req/s): the "
        f"containers and the engine's userland proxy spend {per_request_cpu_ms(proxied):.3f} ms "
        f"CPU per request there, the containers {per_request_cpu_ms(by_address):.3f} ms at the "
        "address",
        check.met,
    )


def idle_cost(runs: Runs) -> Check:
    """The whole default stack, idle, uses under 1 % of one core (inside its containers)."""
    target = "idle cost: the compose stack's containers use < 1 % of one core while idle"
    if not runs.idle:
        return Check(
            target, "missing data: the compose stack was not measured (--no-docker?)", False
        )
    share = runs.idle["cpu_share"]
    return Check(
        target,
        f"{share:.2%} of a core over {runs.idle['seconds']:g} s (healthcheck interval "
        f"{runs.idle['healthcheck_interval']}; the engine's share of each check is not counted)",
        share < 0.01,
    )


def best_setup_via_nginx(runs: Runs, workload: str) -> Row | None:
    rows = [r for r in setup_rows(runs, workload) if r["kind"] == "setup via nginx"]
    return max(rows, key=lambda r: r["rps"], default=None)


def against_uwsgi_as_shipped(runs: Runs, workload: str) -> Check:
    """Our best setup through nginx against uWSGI as the popular uWSGI + nginx image ships it,
    through the same nginx; on I/O-bound load, with no errors of ours."""
    floor = AGAINST_UWSGI_AS_SHIPPED[workload]
    clean = " with no errors" if workload == "io" else ""
    target = (
        f"{workload}, {runs.top} connections: our best setup via nginx >= {floor:g}x uWSGI as "
        f"commonly shipped{clean}"
    )
    paired = _against_uwsgi_back_to_back(runs, target, floor, workload)
    if paired is not None:
        return paired
    ours, theirs = (
        best_setup_via_nginx(runs, workload),
        runs.get(f"nginx→{UWSGI_AS_SHIPPED}", workload),
    )
    if ours is None or theirs is None:
        return runs.missing(
            target, (f"nginx→{UWSGI_AS_SHIPPED}", workload), ("nginx→<setup>", workload)
        )
    ratio = ours["rps"] / max(theirs["rps"], 0.1)
    return Check(
        target,
        f"{ours['contender']} {ours['rps']:g} req/s ({ours['errors']} errors, p99 "
        f"{ours['p99_ms']} ms) = {ratio:.3g}x uWSGI as shipped {theirs['rps']:g} req/s "
        f"({theirs['errors']} errors, p99 {theirs['p99_ms']} ms)"
        + _grown(runs, workload)
        + (_io_ceiling(runs, theirs["rps"], floor) if workload == "io" else ""),
        ratio >= floor and (workload != "io" or ours["errors"] == 0),
    )


def _io_ceiling(runs: Runs, theirs: float, floor: float) -> str:
    """Where the I/O-bound lead over uWSGI is out of reach by arithmetic, say so: no server
    answers more than connections / wait requests a second on this workload (Little's law,
    every connection always waiting on one request), so against a uWSGI that serves more
    than that ceiling / floor, no server meets the floor."""
    ceiling = runs.top / (IO_MS / 1000)
    most = ceiling / max(theirs, 0.1)
    if most >= floor:
        return ""
    return (
        f"; out of reach by arithmetic: no server serves more than {runs.top} connections / "
        f"{IO_MS} ms = {ceiling:g} req/s here, {most:.3g}x uWSGI's rate; {floor:g}x needs "
        f"uWSGI below {ceiling / floor:g} req/s"
    )


def _grown(runs: Runs, workload: str) -> str:
    """How grown uWSGI as shipped was when measured on ``workload``, where the run grew it
    before each of its runs (harness/bench.py's grow; runs saved before measured it cold)."""
    row = runs.get(f"nginx→{UWSGI_AS_SHIPPED}", workload)
    if row is None or "processes" not in row:
        return ""
    return (
        f"; uWSGI as shipped measured grown: each of its runs began once it had stopped adding "
        f"processes ({row['processes']} of its {row['slots']} at least, in the main rounds)"
    )


def _against_uwsgi_back_to_back(
    runs: Runs, target: str, floor: float, workload: str
) -> Check | None:
    """``workload`` against uWSGI as shipped from the paired rounds, where each setup via
    nginx ran back to back with it (harness/bench.py's measure_pairs): our best is the setup
    with the highest median ratio, and each setup's median is given. None without such rounds
    (a workload not paired, runs saved before), where the rows' medians decide. Three
    significant figures: a ratio just under its floor never prints as the floor."""
    uwsgi = f"nginx→{UWSGI_AS_SHIPPED}"
    group = pair_group(uwsgi, workload)
    by_setup = {
        name: rounds
        for name in (f"nginx→{setup}" for setup in SETUPS)
        if (rounds := _rounds_with(runs, group, name, uwsgi))
    }
    if not by_setup:
        return None

    def median_ratio(name: str) -> float:
        return statistics.median(r[name] / r[uwsgi] for r in by_setup[name])

    best = max(by_setup, key=median_ratio)
    rounds = by_setup[best]
    ratio, ratios = median_ratio(best), sorted(r[best] / r[uwsgi] for r in rounds)
    others = ", ".join(f"{name} {median_ratio(name):.3g}x" for name in by_setup if name != best)
    return Check(
        target,
        f"{best} = {ratio:.3g}x uWSGI as shipped, median of {len(ratios)} "
        f"round{'s' * (len(ratios) != 1)} back to back "
        f"(each round's ratio {ratios[0]:.3g}x to {ratios[-1]:.3g}x; median rates {best} "
        f"{statistics.median(r[best] for r in rounds):g} vs {uwsgi} "
        f"{statistics.median(r[uwsgi] for r in rounds):g} req/s)"
        + _left_out(runs, group, best, uwsgi)
        + (f"; the other setups {others}" if others else "")
        + _grown(runs, workload),
        ratio >= floor,
    )


def _left_out(runs: Runs, group: str, ours: str, other: str) -> str:
    """The rounds of ``group`` a ratio of ``ours`` to ``other`` cannot use, said: those where
    either served nothing (a rate of 0), with that run's errors where the run recorded them
    (``paired_errors``; none before 2026-12-08)."""
    errors = runs.paired_errors.get(group, [])
    empty = []
    for number, rates in enumerate(runs.paired.get(group, []), 1):
        idle = [name for name in (ours, other) if name in rates and not rates[name]]
        if idle:
            counted = errors[number - 1] if number <= len(errors) else {}
            empty.append(
                f"round {number}, where "
                + " and ".join(
                    name + (f" ({counted[name]:g} errors)" if name in counted else "")
                    for name in idle
                )
                + " served nothing"
            )
    return f"; left out: {'; '.join(empty)}" if empty else ""


def where_the_peers_stand(runs: Runs, workload: str) -> Check:
    """Information, not a target: every server peer through the same nginx against our best
    setup there."""
    target = f"{workload}, {runs.top} connections: the peers via nginx against our best"
    ours = best_setup_via_nginx(runs, workload)
    peers = [r for r in (runs.get(f"nginx→{name}", workload) for name in SERVER_PEERS) if r]
    if ours is None or not peers:
        return Check(target, "missing data: no peer or setup row", False, info=True)
    parts = [
        f"{r['contender']} {r['rps']:g} req/s ({r['errors']} errors) = "
        f"{r['rps'] / max(ours['rps'], 0.1):.2f}x"
        for r in peers
    ]
    return Check(
        target, f"{'; '.join(parts)} of {ours['contender']} {ours['rps']:g}", True, info=True
    )


def setup_rows(runs: Runs, workload: str) -> list[Row]:
    """Every shipped setup's row (direct and via nginx) for a workload, at the top count."""
    return [
        r
        for r in runs.rows
        if r["kind"] in ("setup", "setup via nginx")
        and r["workload"] == workload
        and r["connections"] == runs.top
    ]


def _every_target(runs: Runs) -> Iterator[Check]:
    per_setup: list[Callable[[Runs, str], Check]] = [
        io_bound_near_its_bound,
        db_bound_near_its_bound,
        observability_tax,
        holds_its_own_against_bare_flask,
        noise_floor,
        c_parser,
        docker_tax,
    ]
    for judge in per_setup:
        for setup in SETUPS:
            yield judge(runs, setup)
    for setup in ("gthread", "gevent"):
        yield nginx_hop_on_hello(runs, setup)
    for setup in ("gthread", "gevent"):
        yield io_bound_beats_the_threaded_peers(runs, setup)
    yield cpu_bound_sync_near_the_cores(runs)
    yield cpu_bound_gthread_tail(runs)
    yield hello_best_setup_beats_the_peers(runs)
    for setup in SETUPS:
        for contender in (setup, f"nginx→{setup}"):
            yield hello_tail(runs, contender)
    yield locust_is_not_the_bottleneck(runs)
    yield who_served_costs_locust_little(runs)
    yield idle_cost(runs)
    yield gevent_tail_next_to_gthreads(runs)
    for workload in AGAINST_UWSGI_AS_SHIPPED:
        yield against_uwsgi_as_shipped(runs, workload)
        yield where_the_peers_stand(runs, workload)


def checks(
    rows: list[Row],
    locust: dict[str, Row],
    cpus: int,
    idle: Row | None = None,
    paired: dict[str, list[dict[str, float]]] | None = None,
    paired_cpu: dict[str, list[dict[str, float]]] | None = None,
    paired_p99: dict[str, list[dict[str, float]]] | None = None,
    paired_errors: dict[str, list[dict[str, float]]] | None = None,
) -> list[Check]:
    """Every target, judged from the rows of one run (missing rows: MISSED)."""
    return list(
        _every_target(Runs(rows, locust, cpus, idle, paired, paired_cpu, paired_p99, paired_errors))
    )
