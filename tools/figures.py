"""Every measured figure in the docs, written from the committed artifact that measured it.

    python -m tools.figures --check     # exit 1 if a generated block disagrees with its artifact
    python -m tools.figures --write     # rewrite the blocks from the artifacts
    python -m tools.figures --adopt     # take the last test run's figures, then --write

A doc quotes measured figures only inside a generated block:

    <!-- figures: NAME -->
    ...written by BLOCKS[NAME] from its artifact...
    <!-- /figures -->

and each block says which artifact it comes from. The artifacts, all committed:

- docs/bench/bench.json            ``make bench`` (wrk; harness/bench.py)
- docs/bench/app-cost/bench.json   the per-request cost targets alone (command in its meta)
- docs/bench/docker-tax/bench.json the Docker-tax targets alone (command in its meta)
- docs/bench/against-uwsgi/bench.json and docs/bench/nginx-one-worker/bench.json
                                   the against-uWSGI targets alone, behind nginx as shipped
                                   and with one worker (commands in their meta)
- docs/report/report.json          ``make report`` (Locust; harness/report.py)
- docs/figures/tests.json          what the fault, hostile-input and e2e tests measured on
  their last full run (tests/recorded_figures.py writes artifacts/figures/tests.json;
  ``--adopt`` copies it)

tests/lint/test_figures.py runs ``--check`` and also fails on a measured-looking figure
(req/s, a percentage, a ratio, a p99, a count like 200/0) written outside a block, unless
STATED lists it as a setting or an input rather than a measurement.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "docs" / "bench" / "bench.json"
# A partial benchmark run: the db workloads only (harness/bench.py --only db-bound).
DB_BENCH = ROOT / "docs" / "bench" / "database" / "bench.json"
# The per-request cost targets measured alone, after the last change to the app's hot path.
APP_COST_BENCH = ROOT / "docs" / "bench" / "app-cost" / "bench.json"
DOCKER_TAX_BENCH = ROOT / "docs" / "bench" / "docker-tax" / "bench.json"
# The against-uWSGI targets alone, behind nginx as shipped and behind one nginx worker (the
# uWSGI image's own nginx), run back to back (commands in their meta).
AGAINST_UWSGI_BENCH = ROOT / "docs" / "bench" / "against-uwsgi" / "bench.json"
NGINX_ONE_WORKER_BENCH = ROOT / "docs" / "bench" / "nginx-one-worker" / "bench.json"
SOAK = ROOT / "docs" / "soak" / "soak.json"
REPORT = ROOT / "docs" / "report" / "report.json"
TESTS = ROOT / "docs" / "figures" / "tests.json"
TESTS_RECORDED = ROOT / "artifacts" / "figures" / "tests.json"
DOCS = [
    "README.md",
    "docs/measuring.md",
    "docs/reliability.md",
    "docs/database.md",
    "deploy/README.md",
]
SETUPS = ["sync", "gthread", "gevent"]

BLOCK = re.compile(r"(<!-- figures: (\S+) -->\n)(.*?)(<!-- /figures -->)", re.DOTALL)


def num(x: float) -> str:
    """Figures as the docs write them: 1,797 / 453 / 48.3 / 9.7."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def link(artifact: Path, doc: str) -> str:
    """A relative markdown link from ``doc`` to ``artifact``: to its markdown rendering when
    the run wrote one (bench.md, report.md; same run, same figures)."""
    if artifact.with_suffix(".md").exists():
        artifact = artifact.with_suffix(".md")
    depth = len(Path(doc).parts) - 1
    target = "../" * depth + str(artifact.relative_to(ROOT))
    return f"[{artifact.relative_to(ROOT)}]({target})"


class Sources:
    def __init__(self) -> None:
        self.bench = json.loads(BENCH.read_text())
        self.report = json.loads(REPORT.read_text())
        self.tests = json.loads(TESTS.read_text())
        self.db_bench = json.loads(DB_BENCH.read_text())
        self.app_cost_bench = json.loads(APP_COST_BENCH.read_text())
        self.docker_tax_bench = json.loads(DOCKER_TAX_BENCH.read_text())
        self.against_uwsgi_bench = json.loads(AGAINST_UWSGI_BENCH.read_text())
        self.nginx_one_worker_bench = json.loads(NGINX_ONE_WORKER_BENCH.read_text())
        self.soak = json.loads(SOAK.read_text())

    def row(self, contender: str, workload: str, connections: int = 200) -> dict[str, Any]:
        for row in self.bench["rows"]:
            if (row["contender"], row["workload"], row["connections"]) == (
                contender,
                workload,
                connections,
            ):
                return row
        raise KeyError(f"bench.json has no row {contender} / {workload} / {connections}")

    def run(self, target: str, scenario: str) -> dict[str, Any]:
        runs = [r for r in self.report["runs"] if r["scenario"] == scenario]
        top = max(r["users"] for r in runs)
        (run,) = [r for r in runs if r["target"] == target and r["users"] == top]
        return run

    def test(self, key: str) -> dict[str, Any]:
        if key not in self.tests:
            raise KeyError(f"{TESTS.relative_to(ROOT)} has no {key!r}: run the tests, --adopt")
        return self.tests[key]


# --- the report (Locust) ------------------------------------------------------------------


def _waves(bodies: list[dict]) -> int:
    from harness.report import count_waves

    return count_waves(bodies)


def _setup_label(src: Sources, target: str) -> str:
    config = src.report["configs"].get(target)
    if target == "sync":
        return f"Gunicorn sync, {config['workers']} workers"
    if target == "gthread":
        return f"Gunicorn gthread, {config['workers']} × {config['threads']} threads"
    if target == "gevent":
        return f"Gunicorn gevent, {config['workers']} workers"
    return {
        "dev-single": "dev server, `threaded=False`",
        "dev-threaded": "dev server, `app.run()` (threaded)",
        "dev-processes": f"dev server, `processes={_dev_processes(src)}`",
    }[target]


def _dev_processes(src: Sources) -> int:
    for target in src.report["targets"]:
        if target["name"] == "dev-processes":
            return int(target["slots"])
    raise KeyError("report.json has no dev-processes target")


def _report_arg(src: Sources, name: str) -> Any:
    """One of the report's settings, read back from the command line it recorded."""
    from harness.report import parse_args

    return getattr(parse_args(shlex.split(src.report["meta"]["command"])[3:]), name)


def _bound(src: Sources, target: str, users: int, io_ms: int) -> float:
    slots = next(t["slots"] for t in src.report["targets"] if t["name"] == target)
    return (users if slots is None else min(slots, users)) / (io_ms / 1000)


def report_io_table(src: Sources, doc: str, targets: list[str], p95: bool) -> str:
    io_ms = _report_arg(src, "io_ms")
    users = src.run("sync", "io")["users"]
    header = f"| `/api/io?ms={io_ms}`, {users} users | req/s | bound (slots ÷ {io_ms} ms) |"
    rule = "|---|---|---|"
    if p95:
        header, rule = header + " p95 ms |", rule + "---|"
    lines = [header, rule]
    for target in targets:
        run = src.run(target, "io")
        cells = [_setup_label(src, target), num(run["rps"]), num(_bound(src, target, users, io_ms))]
        if p95:
            cells.append(num(run["p95_ms"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def block_readme_timeline(src: Sources, doc: str) -> str:
    timelines = src.report["timelines"]
    sync = timelines["sync"]
    count, ms = len(sync), sync[0]["ms"]
    sync_processes = len({body["pid"] for body in sync})
    together = [s for s in ("gthread", "gevent") if _waves(timelines[s]) == 1]
    words = {10: "Ten"}.get(count, str(count))
    return (
        f"{words} simultaneous {ms} ms requests per setup, one bar per request on the lane of "
        f"the process, thread or greenlet that served it: {sync_processes} sync workers take "
        f"{_waves(sync)} waves; {' and '.join(together)} serve all {count} at once "
        f"({link(REPORT, doc)})."
    )


def block_measuring_report(src: Sources, doc: str) -> str:
    cpu_ms, cpus = _report_arg(src, "cpu_ms"), src.report["meta"]["cpus"]
    ceiling = src.report["locust_ceiling"]["rps"]
    busiest = max(r["rps"] for r in src.report["runs"])
    cpu_runs = {t: src.run(t, "cpu") for t in [t["name"] for t in src.report["targets"]]}
    gunicorn = sorted(SETUPS, key=lambda t: -cpu_runs[t]["rps"])
    dev = [cpu_runs[t]["rps"] for t in cpu_runs if t.startswith("dev-")]
    users = cpu_runs["sync"]["users"]
    tails = sorted(SETUPS, key=lambda t: cpu_runs[t]["p99_ms"])
    return (
        f"Under sustained load the difference is throughput. From the full report "
        f"({link(REPORT, doc)}, `python -m harness.report`, {cpus} CPUs, "
        f"{src.run('sync', 'io')['seconds']} s per run; one Locust process drives "
        f"{num(ceiling)} req/s here and the busiest run used {busiest / ceiling:.0%} of that):\n\n"
        + report_io_table(
            src,
            doc,
            ["sync", "gthread", "gevent", "dev-single", "dev-threaded", "dev-processes"],
            p95=True,
        )
        + f"\n\nFor CPU-bound requests (`/api/cpu?ms={cpu_ms}`, {users} users) the {cpus} cores "
        f"are the limit ({num(cpus / (cpu_ms / 1000))} req/s): "
        + ", ".join(f"{t} {num(cpu_runs[t]['rps'])}" for t in gunicorn)
        + f" req/s, against {num(min(dev))}–{num(max(dev))} for the dev-server modes; p99 "
        + ", ".join(f"{t} {num(cpu_runs[t]['p99_ms'])} ms" for t in tails)
        + " (a CPU-bound request holds its greenlet's whole process, or the GIL)."
    )


# --- the e2e tier's "What it shows" table ------------------------------------------------


def block_measuring_simultaneous(src: Sources, doc: str) -> str:
    seen = src.test("e2e.simultaneous")
    rows, workers, threads = seen["rows"], seen["workers"], seen["threads"]
    count = seen["requests"]
    columns = ["requests", "max_in_flight", "processes", "threads", "greenlets", "wall_seconds"]
    lines = [
        f"`GET {seen['path']}`, {count} at once through nginx's load port in the compose stack "
        f"(recorded by `tests/e2e/test_compose_stack.py` on {seen['recorded'][:10]}, "
        f"{link(TESTS, doc)}):",
        "",
        "| setup | requests | max in flight | processes | OS threads | greenlets | wall time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {s} | " + " | ".join(str(rows[s][c]) for c in columns) + " |" for s in SETUPS]
    sync_waves = -(-count // workers["sync"])
    slots = workers["gthread"] * threads
    in_flight = int(rows["gthread"]["max_in_flight"])
    gthread_short = (
        f" In this run {in_flight}: a worker serves only the connections it accepted, and nginx"
        " sends a burst down the idle connections it already holds first, wherever earlier"
        " requests left them; only new connections go to a worker with a thread free"
        " (gunicorn_conf/fair_accept.py)."
        if in_flight < min(slots, count)
        else ""
    )
    lines += [
        "",
        f"- **sync**: one request per worker process; with {workers['sync']} workers, "
        f"{count} requests queue in {sync_waves} waves.",
        f"- **gthread**: up to workers × threads ({workers['gthread']} × {threads} = {slots}) "
        f"at once, each in its own OS thread: {-(-count // slots)} waves.{gthread_short}",
        f"- **gevent**: all {count} at once, as greenlets on a single OS thread per process.",
    ]
    return "\n".join(lines)


# --- the benchmark -----------------------------------------------------------------------


def _check(src: Sources, start: str, bench: dict[str, Any] | None = None) -> dict[str, Any]:
    (check,) = [c for c in (bench or src.bench)["checks"] if c["target"].startswith(start)]
    return check


def block_measuring_bench(src: Sources, doc: str) -> str:
    gevent_io = src.row("nginx→gevent", "io")
    uwsgi_io = src.row("nginx→uwsgi-as-shipped", "io")
    # Our best and its ratio as the target judged them: from the rounds back to back with
    # uWSGI where the run has them (harness/targets.py), else from the rows' medians.
    hello_target, hello_best, hello_how = _against_uwsgi(src, "hello")
    cpu_target, cpu_best, cpu_how = _against_uwsgi(src, "cpu")
    grown = (
        f"grown to {uwsgi_io['processes']} of its {uwsgi_io['slots']} processes, which are "
        "the limit"
        if "processes" in uwsgi_io
        else f"measured cold, before it had grown to its {uwsgi_io['slots']} processes"
    )
    return (
        f"- **Against the servers people pick instead**, through the same nginx: on I/O-bound "
        f"load gevent serves {gevent_io['rps'] / uwsgi_io['rps']:.0f}× what uWSGI as commonly "
        f"shipped does ({grown}), with {gevent_io['errors'] or 'no'} errors; on CPU-bound load "
        f"the cores are the limit ({cpu_best.group(2)}× for our best, {cpu_best.group(1)}"
        f"{cpu_how}, where the target is {cpu_target}×); on hello, uWSGI's C core and "
        f"granian's Rust one are faster ({hello_best.group(2)}× for our best, "
        f"{hello_best.group(1)}{hello_how}, where the target is {hello_target}×): "
        f"{gunicorn_in_python(src.bench)}."
    )


def _against_uwsgi(
    src: Sources, workload: str, bench: dict[str, Any] | None = None
) -> tuple[str, re.Match[str], str]:
    """Our best against uWSGI as shipped on ``workload`` as the target judged it in ``bench``
    (default: the whole benchmark): its floor, the best setup and ratio, and how it was
    measured (back to back where the run has the rounds, harness/targets.py; else from the
    rows' medians)."""
    check = _check(src, f"{workload}, 200 connections: our best", bench)
    target = re.search(r">= ([\d.]+)x", check["target"])
    best = re.match(r"(nginx→\w+)\b.*?= ([\d.]+)x uWSGI", check["measured"])
    assert target and best
    how = ", median of rounds back to back" if "back to back" in check["measured"] else ""
    return target.group(1), best, how


def block_measuring_nginx_workers(src: Sources, doc: str) -> str:
    """Hello against uWSGI as shipped behind nginx as shipped and behind one nginx worker:
    the two partial runs' back-to-back rounds, each server's median rate in each, and our
    best's ratio as the target judged it."""
    shipped, one = src.against_uwsgi_bench, src.nginx_one_worker_bench
    uwsgi = "nginx→uwsgi-as-shipped"

    def medians(bench: dict[str, Any]) -> dict[str, float]:
        rounds = bench["paired"][uwsgi]  # hello's rounds: the group bears uWSGI's name alone
        return {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}

    def best(bench: dict[str, Any], workload: str) -> str:
        _, found, _ = _against_uwsgi(src, workload, bench)
        return f"{found.group(2)}× ({found.group(1)})"

    def target(workload: str) -> str:
        return _against_uwsgi(src, workload, shipped)[0]

    before, after = medians(shipped), medians(one)
    servers = [uwsgi] + [f"nginx→{setup}" for setup in SETUPS]
    change = {name: after[name] / before[name] - 1 for name in servers}
    moves = ", ".join(
        f"{name.removeprefix('nginx→')} {num(before[name])} → {num(after[name])} req/s "
        f"({change[name]:+.0%})"
        for name in servers
    )
    most = min(servers, key=change.__getitem__)
    why = (
        f"every server served hello slower behind one worker, {most.removeprefix('nginx→')} "
        "the most"
        if all(value < 0 for value in change.values())
        else "not every server served hello slower behind one worker"
    )
    return (
        "- **Behind one nginx worker**, the against-uWSGI targets alone run twice, the "
        f"second with `--nginx-workers 1`. On hello, median rates behind nginx as shipped → "
        f"behind one worker: {moves}: {why}. Our best against uWSGI as shipped: "
        f"{best(shipped, 'hello')} → {best(one, 'hello')} (target {target('hello')}×); on "
        f"CPU-bound load {best(shipped, 'cpu')} → {best(one, 'cpu')} (target "
        f"{target('cpu')}×). Each ratio is the median of rounds back to back; the rates' "
        f"changes compare two runs minutes apart ({link(AGAINST_UWSGI_BENCH, doc)}, "
        f"{link(NGINX_ONE_WORKER_BENCH, doc)})."
    )


def _has_line(bench: dict[str, Any], start: str) -> bool:
    """Whether a run judged or stated the target that starts with ``start``."""
    return any(c["target"].startswith(start) for c in bench["checks"])


def gunicorn_in_python(bench: dict[str, Any]) -> str:
    """Why Gunicorn is slower on hello, in the words that fit the run quoted: a run that
    measured the C parser (its "C parser" lines) served with it."""
    if _has_line(bench, "C parser"):
        return "past its C parser, Gunicorn handles each request in Python"
    return (
        "Gunicorn parsed HTTP in Python in this run (its C parser is used since, "
        "gunicorn_conf/base.py)"
    )


def block_measuring_per_request(src: Sources, doc: str) -> str:
    """The per-request cost targets (observability, bare Flask: their latest run alone, and
    the whole benchmark's too, which measures them amid everything else; Docker: the whole
    benchmark's), per setup."""
    cost, docker = src.app_cost_bench, src.docker_tax_bench

    def ratios(start: str, bench: dict[str, Any]) -> str:
        return _per_setup_share(src, bench, start, r"^(\d+%)", judged=True)

    def stated(bench: dict[str, Any], start: str, words: str) -> str:
        """An info line's ratios per setup, in ``words`` ({shares}), if the run has it."""
        if not _has_line(bench, start):
            return ""
        return words.format(shares=_per_setup_share(src, bench, start, r"^(\d+%)"))

    # The A/A control, and what Gunicorn's C HTTP parser buys.
    floor = stated(
        cost,
        "noise floor",
        " The variants are judged against the shipped app in a second process that, like "
        "them, serves only these rounds; the setup's own process, which served the run's "
        "other runs before, serves {shares} of that rate: identical code, so this is how far "
        "from 100 % noise and a process's history land here.",
    )
    parser = stated(
        cost,
        "C parser",
        " They also serve the shipped config with Gunicorn's Python HTTP parser in place of "
        "its C one (http_parser, gunicorn_conf/base.py): the shipped config serves {shares} "
        "of that rate.",
    )
    cpu = _cpu_readings(src, cost)

    return (
        "- **What the app's own additions cost**, each setup's shipped app against the same "
        "config serving it with observability off (target ≥ 90 %): "
        f"{ratios('observability tax', cost)}; against a bare Flask app (target ≥ 85 %): "
        f"{ratios('per-request cost', cost)}. Both are medians of the ratios of "
        f"{cost['meta']['pair_rounds']} rounds run back to back (the order rotating), since "
        "this machine's run-to-run spread is as large as these effects; each round's figures "
        f"are in that run's table ({link(APP_COST_BENCH, doc)}, these targets alone, measured "
        f"after the last change to the app's hot path).{cpu}{floor}{parser} The whole "
        "benchmark's run measures "
        f"the same ratios ({src.bench['meta']['pair_rounds']} rounds) amid its other runs: "
        f"against observability off {ratios('observability tax', src.bench)}; against a bare "
        f"Flask app {ratios('per-request cost', src.bench)}"
        f" ({link(BENCH, doc)}; {spread(src.bench)}). **What Docker costs**, the "
        "compose stack's nginx against the same setup natively through nginx (target ≥ 75 %), "
        "at nginx's address, the path a client on another host takes: "
        f"{ratios('Docker tax', docker)}; through the port published on 127.0.0.1, which the "
        f"engine's userland proxy carries: {proxied(src, docker)} ({link(DOCKER_TAX_BENCH, doc)}, "
        f"these targets alone; the whole benchmark's run: at the address "
        f"{ratios('Docker tax', src.bench)}, through the published port "
        f"{proxied(src, src.bench)}, {link(BENCH, doc)})."
    )


def _cpu_readings(src: Sources, bench: dict[str, Any]) -> str:
    """The same two comparisons in the server's CPU per request, if the run recorded it
    (targets._cpu_reading), as a sentence; empty for runs that did not."""
    pattern = r"in CPU per request (\d+%)"
    if not re.search(pattern, _check(src, "observability tax, sync:", bench)["measured"]):
        return ""
    return (
        " The same runs' CPU per request, which this machine's drift moves far less than the "
        "rates: against observability off "
        f"{_per_setup_share(src, bench, 'observability tax', pattern)}; against a bare Flask "
        f"app {_per_setup_share(src, bench, 'per-request cost', pattern)}."
    )


def proxied(src: Sources, bench: dict[str, Any]) -> str:
    """Each setup's share through the published port, out of its Docker-tax check (beside
    the judged figure, so never marked missed)."""
    return _per_setup_share(src, bench, "Docker tax", r"published on 127\.0\.0\.1 (\d+%)")


def _per_setup_share(
    src: Sources, bench: dict[str, Any], start: str, pattern: str, judged: bool = False
) -> str:
    """ "sync 94%, gthread 97%, ...": the first group of ``pattern`` in each setup's check
    ``start`` of ``bench``; with ``judged``, a missed check says so."""
    found = []
    for setup in SETUPS:
        check = _check(src, f"{start}, {setup}:", bench)
        share = re.search(pattern, check["measured"])
        assert share, check["measured"]
        missed = judged and not check["met"]
        found.append(f"{setup} {share.group(1)}{' (missed)' if missed else ''}")
    return ", ".join(found)


def spread(bench: dict[str, Any]) -> str:
    """How far apart one run's rounds were on the per-request cost targets: the widest range
    of a setup's round ratios, in points."""
    widest = 0
    for check in bench["checks"]:
        if check["target"].startswith(("observability tax", "per-request cost")):
            found = re.search(r"each round's ratio (\d+)% to (\d+)%", check["measured"])
            if found:
                widest = max(widest, int(found.group(2)) - int(found.group(1)))
    return f"one setup's rounds there spread over up to {widest} points"


def block_measuring_locust(src: Sources, doc: str) -> str:
    ceiling = src.bench["locust"]["ceiling"]
    return (
        f"One Locust process drives {num(ceiling['rps'])} req/s here against nginx's own answer, "
        f"at {ceiling['locust_cpu_share']:.0%} of a core ({link(BENCH, doc)}; wrk drives tens of "
        "thousands), so compose runs one Locust worker and the report flags any run near that "
        "ceiling; `--scale locust-worker=N` adds workers, one core each."
    )


def block_decision_guide(src: Sources, doc: str) -> str:
    from harness.targets import FEW_THREADS, GTHREAD_FEW_THREADS

    cpu = {s: src.row(f"nginx→{s}", "cpu") for s in SETUPS}
    io = {s: src.row(f"nginx→{s}", "io") for s in SETUPS}
    hello = src.row("nginx→gevent", "hello")
    dev_io = {m: src.row(f"dev-{m}", "io") for m in ("single", "threaded")}
    dev_hello = src.row("dev-threaded", "hello")
    uwsgi = {w: src.row("nginx→uwsgi-as-shipped", w) for w in ("io", "hello")}
    tuned_io, granian_io = src.row("nginx→uwsgi-tuned", "io"), src.row("nginx→granian", "io")
    granian_hello = src.row("nginx→granian", "hello")
    few = {w: src.row(GTHREAD_FEW_THREADS, w) for w in ("cpu", "io")}
    cpu_check = _check(src, "CPU-bound: sync via nginx")["measured"]
    own = re.search(r"(\d+)% of (\d+), the bound with the app's own ([\d.]+) ms", cpu_check)
    bound = re.search(r"of (\d+) cores / (\d+) ms = (\d+)", cpu_check)
    gevent_cap = re.search(r"= (\d+)% of", _check(src, "I/O-bound gevent via nginx")["measured"])
    assert own and bound and gevent_cap
    order = sorted(SETUPS, key=lambda s: -cpu[s]["rps"])
    # The cap is the same run's hello rate through nginx: when that median caught a slow
    # round, the I/O-bound rate reads above it, and "105 % of what the cores allow" is no
    # sentence to print.
    cap_share = int(gevent_cap.group(1))
    gevent_vs_cap = (
        f"{cap_share} % of what the two cores allow"
        if cap_share <= 100
        else f"at the ceiling the two cores set (above the cap, hello through nginx, which "
        f"read {num(hello['rps'])} req/s in the same run)"
    )
    best_tuned = max(tuned_io["rps"], granian_io["rps"]) / io["gevent"]["rps"]
    # The 4-thread tail as the target judged it: the median of rounds back to back with sync
    # where the run has them (harness/targets.py), else the rows' p99.
    few_back_to_back = re.search(
        rf"with {FEW_THREADS} threads a worker p99 = ([\d.]+)x",
        _check(src, "CPU-bound tail")["measured"],
    )
    few_tail = (
        f"{few_back_to_back.group(1)}× sync's (p99, median of rounds back to back)"
        if few_back_to_back
        else f"{few['cpu']['p99_ms'] / cpu['sync']['p99_ms']:.2f}× sync's (p99 "
        f"{num(few['cpu']['p99_ms'])} ms)"
    )
    uwsgi_grown = (
        f", grown to {uwsgi['io']['processes']} processes" if "processes" in uwsgi["io"] else ""
    )
    rows = [
        f"| CPU-bound (`/api/cpu?ms={bound.group(2)}`) | **sync**, `2 × CPUs + 1` workers | the "
        f"cores are the ceiling ({bound.group(3)} req/s, {own.group(2)} with Flask's and "
        f"Gunicorn's own {own.group(3)} ms a request): "
        + ", ".join(f"{s} {num(cpu[s]['rps'])}" for s in order)
        + f" req/s — but sync keeps the tail short (p99 {num(cpu['sync']['p99_ms'])} ms) where "
        f"gevent's is {num(cpu['gevent']['p99_ms'])} ms and gthread's "
        f"{num(cpu['gthread']['p99_ms'])}: a CPU-bound request holds its greenlet's whole "
        f"process, or the GIL. gthread with {FEW_THREADS} threads a worker brings its tail to "
        f"{few_tail} and gives up the I/O-bound load for it "
        f"({num(few['io']['rps'])} req/s against {num(io['gthread']['rps'])} with 32). |",
        f"| I/O-bound, ordinary blocking libraries (`/api/io?ms=50`) | **gthread**, `CPUs` "
        f"workers × 32 threads | throughput = workers × threads ÷ latency: "
        f"{num(io['gthread']['rps'])} req/s with {io['gthread']['slots'] // 32} × 32, where "
        f"Flask's threaded dev server serves {num(dev_io['threaded']['rps'])}. Fewer threads cap "
        "this at threads ÷ latency; many more contend for the GIL. Size a database pool to the "
        "threads |",
        f"| many slow waits (calls to other services, long polls) | **gevent**, `CPUs` workers | "
        f"{num(io['gevent']['rps'])} req/s, {gevent_vs_cap}, "
        f"p99 {num(io['gevent']['p99_ms'])} ms; needs gevent-friendly (monkey-patchable) "
        "libraries and no CPU-heavy requests |",
        f"| uWSGI or granian instead of Gunicorn? | **Gunicorn, as configured here**, unless "
        f"ordinary requests dominate and you own the tuning | uWSGI as the popular uWSGI + nginx "
        f"image ships it serves {num(uwsgi['io']['rps'])} req/s on the I/O-bound load"
        f"{uwsgi_grown} (gevent: "
        f"{io['gevent']['rps'] / uwsgi['io']['rps']:.0f}× that, "
        f"{io['gevent']['errors'] or 'no'} errors) and a p99 of "
        f"{uwsgi['hello']['p99_ms'] / 1000:.1f} s on hello: {uwsgi['io']['slots']} processes at "
        f"most, 100 waiting. Its C core and granian's Rust one do serve hello faster through the "
        f"same nginx ({num(uwsgi['hello']['rps'])} and {num(granian_hello['rps'])} req/s against "
        f"gevent's {num(hello['rps'])}: {gunicorn_in_python(src.bench)}), tie on CPU-bound load, "
        f"and, tuned to 2 × 32 threads, reach {best_tuned:.0%} of gevent on I/O-bound load. |",
        f"| anything in production | never the dev server | `threaded=False` serves "
        f"{num(dev_io['single']['rps'])} req/s on this load; `app.run()` spawns a thread per "
        f"request without limit ({num(dev_io['threaded']['rps'])} req/s, then p99 "
        f"{dev_hello['p99_ms'] / 1000:.1f} s on hello), has no worker recycling, graceful "
        "reload or timeout, and closes every connection |",
    ]
    return (
        "| workload | pick | why, in numbers |\n|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\nFrom {link(BENCH, doc)}."
    )


def block_decision_guide_database(src: Sources, doc: str) -> str:
    """The database-heavy row: which class, driver and pool, from the real-PostgreSQL tests
    (the benchmark's db rows join it once a full run has them)."""
    rows = {setup: src.test(f"database.simultaneous.{setup}") for setup in SETUPS}
    wrong = src.test("database.psycopg2.gevent")
    busy = src.test("database.pool_exhausted.gevent")
    first = rows["sync"]
    bench = {
        (r["contender"], r["workload"]): r
        for r in src.db_bench["rows"]
        if r["connections"] == max(src.db_bench["meta"]["connections"])
    }
    from harness.targets import DB_MS

    sustained = (
        f"{max(src.db_bench['meta']['connections'])} connections of "
        f"{DB_MS} ms queries through nginx: "
        + ", ".join(
            f"{setup} {num(bench[(f'nginx→{setup}', 'db')]['rps'])} req/s "
            f"({num(bench[(f'nginx→{setup}', 'db-nowait')]['rps'])} with no wait)"
            for setup in SETUPS
        )
    )
    return (
        "| workload | pick | why, in numbers |\n|---|---|---|\n"
        f"| database-heavy (`/api/db`, a real PostgreSQL) | **gthread** (a pool of `threads` "
        f"connections per process) or **gevent** with a driver that waits in Python (psycopg 3; "
        f"a bounded pool, 20 per process) — never gevent with one that waits in C | "
        f"{first['requests']} simultaneous {first['ms']} ms queries: gthread "
        f"{rows['gthread']['max_in_flight']} at once ({num(rows['gthread']['wall_seconds'])} s), "
        f"gevent {rows['gevent']['max_in_flight']} ({num(rows['gevent']['wall_seconds'])} s), sync "
        f"{rows['sync']['max_in_flight']} ({num(rows['sync']['wall_seconds'])} s); gevent with "
        f"psycopg2 and no psycogreen: {wrong['max_in_flight']} at once, "
        f"{num(wrong['wall_seconds'])} s. Pool: what a process serves at once, every process of "
        f"every replica within `max_connections`; past the pool a request waits the pool timeout "
        f"and gets a 503 ({busy['refused']} of {busy['sent']} in the busy-pool test, the slowest "
        f"after {num(busy['slowest_refusal_seconds'])} s). Sustained, {sustained} |\n\n"
        f"From the integration tests against a real PostgreSQL ({link(TESTS, doc)}) and a "
        f"benchmark run of the db workload ({link(DB_BENCH, doc)}); "
        f"[docs/database.md](../docs/database.md) has the arithmetic."
    )


def block_sync_waves(src: Sources, doc: str) -> str:
    sync = src.report["timelines"]["sync"]
    workers = len({body["pid"] for body in sync})
    wall = max(b["finished_at"] for b in sync) - min(b["started_at"] for b in sync)
    return (
        f"The sync worker serves one request per worker: with {workers} workers, request "
        f"{workers + 1} waits (measured: {len(sync)} simultaneous {sync[0]['ms']} ms requests took "
        f"{_waves(sync)} waves, {wall:.2f} s; {link(REPORT, doc)})."
    )


# --- the fault and hostile-input tiers ---------------------------------------------------


def _per_setup(src: Sources, key: str, setups: list[str] = SETUPS) -> str:
    return ", ".join(
        f"{s} {src.test(f'{key}.{s}')['sent']}/{src.test(f'{key}.{s}')['failed']}" for s in setups
    )


def block_reliability_faults(src: Sources, doc: str) -> str:
    kill = {s: src.test(f"faults.sigkill.{s}") for s in SETUPS}
    term = {s: src.test(f"faults.sigterm.{s}") for s in SETUPS}
    hung_sync, slow = src.test("faults.hung_sync"), src.test("faults.slowloris")
    hung = {s: src.test(f"hung.{s}") for s in ("gthread", "gevent")}
    order = {s: src.test(f"keepalive.order.{s}") for s in ("gthread", "gevent")}
    race = {s: src.test(f"keepalive.race.{s}") for s in ("gthread", "gevent")}
    stop = src.test("e2e.compose_stop")
    first = next(iter(hung.values()))
    rows = [
        "| graceful reload (`SIGHUP` to the master) under steady load | new workers take over, "
        f"old ones finish | {_per_setup(src, 'faults.sighup')} |",
        "| a worker `SIGKILL`ed under load, caught first (`SIGSTOP`) with requests in flight | "
        "the master replaces it; nginx retries each of its idempotent requests on another "
        "connection (`proxy_next_upstream`; the app listed again as `backup`, four times: the "
        "retry budget), as its access log's upstream statuses show. A response the worker had "
        "begun writing when it died is cut: nginx has forwarded its head and cannot retry it | "
        + ", ".join(
            f"{s} {k['sent']}/{k['failed']} ({k['in_flight']} in flight, {k['retried']} retried"
            + (f", {k['cut']} cut mid-response" if k.get("cut") else "")
            + ")"
            for s, k in kill.items()
        )
        + " |",
        f"| graceful shutdown (`SIGTERM`) with {term['sync']['in_flight']} requests of "
        f"{term['sync']['seconds']:g} s in flight | they finish (200), new connections are "
        "refused, exit code 0 | "
        + ", ".join(f"{s} {t['in_flight']}/{t['failed']}" for s, t in term.items())
        + " |",
        "| a sync request hung past Gunicorn's `timeout` | the worker is killed and replaced "
        "(its pid gone, a new pid serving); the client gets a JSON 502 (Gunicorn's bare 500 is "
        f"replaced by nginx) | 1 request, JSON {hung_sync['status']} after "
        f"{hung_sync['seconds']:g} s (timeout set to {hung_sync['gunicorn_timeout']} s for the "
        "test) |",
        "| a gthread or gevent request hung past Gunicorn's `timeout` (`test_hung_requests.py`) "
        "| not killed: there `timeout` is a heartbeat the worker's own loop keeps sending. "
        "nginx's `proxy_read_timeout` ends it for the client as a JSON 504, and the same worker "
        "serves other requests meanwhile | "
        + "; ".join(
            f"{s}: JSON {h['status']} after {h['seconds']:g} s, {h['served_meanwhile']} served "
            "meanwhile"
            for s, h in hung.items()
        )
        + f" (nginx's read timeout {first['nginx_read_timeout']} s for the test; Gunicorn's "
        f"{first['gunicorn_timeout']} s) |",
        "| an idle pooled connection (`test_keepalive.py`; both keep-alive timeouts scaled "
        "down, order kept) | nginx closes it before Gunicorn does, so it never sends a "
        "request into a connection Gunicorn is closing | "
        + "; ".join(
            f"{s}: {o['closed_by_nginx']} closed by nginx, {o['closed_by_app']} by Gunicorn"
            for s, o in order.items()
        )
        + " |",
        "| the classic race anyway: the app closes a kept-alive connection as a request "
        "arrives on it (a proxy resets it on cue) | nginx retries on a fresh connection; no "
        "502 | "
        + "; ".join(
            f"{s}: {r['status']}, upstream statuses {r['upstream_status']}" for s, r in race.items()
        )
        + " |",
        f"| slowloris ({slow['slow_connections']} connections trickling headers) | sync exposed "
        f"directly serves {slow['served_direct']}/{slow['legit']} legitimate requests; behind "
        f"nginx {slow['served_via_nginx']}/{slow['legit']} | — |",
        "| `docker compose stop` of an app with a request in flight | Gunicorn is PID 1, drains, "
        f"exits {stop['exit_code']} (not 137) | {stop['in_flight']}/{stop['failed']} |",
        "| 200 simultaneous I/O-bound requests per setup | queued, none lost | native: "
        f"{_per_setup(src, 'burst.native')}; in containers: {_per_setup(src, 'burst.compose')} |",
    ]
    return (
        f"From the last full test run ({link(TESTS, doc)}, recorded by the tests themselves):\n\n"
        "| fault | what happens | requests sent / failed |\n|---|---|---|\n" + "\n".join(rows)
    )


def block_reliability_hostile(src: Sources, doc: str) -> str:
    statuses = [v["status"] for k, v in src.tests.items() if k.startswith("hostile.")]
    client_errors = sum(400 <= s < 500 for s in statuses)
    answered = sum(s == 200 for s in statuses)
    assert client_errors + answered == len(statuses), "a hostile input got neither 4xx nor 200"
    return (
        f"Hostile input through nginx: {len(statuses)} raw requests (oversized body / headers / "
        "cookie / request line, too many headers, garbage request lines, unknown methods, "
        "HTTP/2.0 in clear text, missing or foreign `Host`, absolute URIs, path traversal, raw "
        "and escaped invalid UTF-8, NUL, bad query values, three request-smuggling shapes, a "
        "5,000-byte `X-Request-ID`…) each get their documented status (a 4xx for "
        f"{client_errors} of them; the {answered} that are valid requests, such as an oversized "
        "`X-Request-ID` that nginx replaces, a 200) and a JSON body, never a 5xx; a spoofed "
        f"`X-Forwarded-For` never reaches the app ({link(TESTS, doc)})."
    )


def block_reliability_overload(src: Sources, doc: str) -> str:
    """What each setup met when offered about four times what it serves
    (tests/integration/test_overload.py)."""
    workloads = {"io": "I/O-bound, 300 ms", "cpu": "CPU-bound, 20 ms"}
    rows = []
    for setup in SETUPS:
        for workload, label in workloads.items():
            key = f"overload.{setup}.{workload}"
            if key not in src.tests:
                continue
            f = src.test(key)
            in_nginx = f["refused_nginx_max_ms"]  # nginx logs whole milliseconds
            in_nginx_text = "under 1 ms" if in_nginx < 1 else f"{num(in_nginx)} ms at most"
            rows.append(
                f"| {setup} | {label} | {f['limit']} | {num(f['unloaded_per_s'])}/s | "
                f"{num(f['offered'])} ({num(f['offered_per_s'])}/s) | {num(f['served'])} | "
                f"{num(f['refused_503'])} | {f['failed_otherwise']} | "
                f"{num(f['served_p99_ms'])} ms (max {num(f['served_max_ms'])}) | "
                f"{num(f['refused_p99_ms'])} ms (in nginx: {in_nginx_text}) | "
                f"{f['goodput_pct']} % | "
                f"{num(f['healthz_max_ms'])} ms | {num(f['after_max_ms'])} ms |"
            )
    assert rows, "docs/figures/tests.json has no overload.* figures: run the tests, --adopt"
    seconds = {src.test(k)["surge_seconds"] for k in src.tests if k.startswith("overload.")}
    return (
        f"From the last full test run ({link(TESTS, doc)}), native nginx and Gunicorn on 2 "
        f"CPUs, each surge {'/'.join(map(str, sorted(seconds)))} s of sending (then the "
        "admitted requests finish). Times are the "
        "client's, on the same two cores as the servers; a refusal's time inside nginx is "
        "its access log's:\n\n"
        "| setup | requests | limit | served unloaded | offered | served | refused (503) | "
        "failed otherwise | served p99 | refused p99 | goodput | nginx /healthz, slowest | "
        "first requests after, slowest |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )


def block_reliability_soak(src: Sources, doc: str) -> str:
    """The committed `make soak` run (harness/soak.py), per setup."""
    meta, rows = src.soak["meta"], src.soak["rows"]
    met = sum(ok for row in src.soak["checks"] for ok, _ in row)
    total = sum(len(row) for row in src.soak["checks"])
    lines = [
        f"From `{meta['command']}` ({link(SOAK, doc)}: {meta['minutes']:g} minutes, "
        f"`GUNICORN_MAX_REQUESTS={meta['max_requests']}`), {met} of {total} targets met:",
        "",
        "| setup | sent / failed | worker memory after warm-up | descriptors, connections "
        "(before → after the load) | p99, first → last minute | worker recycles |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['setup']} | {num(row['sent'])} / {row['failed']} | "
            f"{row['rss_mib_start']} → {row['rss_mib_end']} MiB ({row['rss_growth_pct']:+} %) | "
            f"{row['fds_before']} → {row['fds_after']}, {row['connections_before']} → "
            f"{row['connections_after']} | {num(row['p99_ms_first_minute'])} → "
            f"{num(row['p99_ms_last_minute'])} ms ({row['p99_drift_pct']:+} %) | "
            f"{row['recycles']} |"
        )
    return "\n".join(lines)


def block_who_served(src: Sources, doc: str) -> str:
    """What the Locust UI's "Who served" tab read in the e2e browser test, per worker count."""
    one, two = (src.test(f"e2e.locust_ui.{n}_workers") for n in (1, 2))
    readings = {
        n: "; ".join(f"{setup}: *{seen['reading']}*" for setup, seen in run["rows"].items())
        for n, run in ((1, one), (2, two))
    }
    return (
        f"IoBound at {one['io_ms']} ms with {one['users']} users, started from the form in a "
        f"real browser against the compose stack, the tab read — with one Locust worker: "
        f"{readings[1]}; with two: {readings[2]} ({link(TESTS, doc)})."
    )


def block_locust_database_drivers(src: Sources, doc: str) -> str:
    """The Database scenario on gevent with each driver, read in the Locust UI's tab."""
    run = src.test("e2e.locust_ui.database_drivers")
    right, wrong = run["rows"]["psycopg"], run["rows"]["psycopg2"]
    return (
        f"Database at {run['io_ms']} ms with {run['users']} users on gevent, from the form in a "
        f"real browser against the compose stack: with psycopg, *{right['reading']}*; with "
        f"`db_driver` psycopg2, *{wrong['reading']}* ({link(TESTS, doc)})."
    )


def block_database_overlap(src: Sources, doc: str) -> str:
    """20 simultaneous /api/db queries per setup, from the integration test."""
    rows = {setup: src.test(f"database.simultaneous.{setup}") for setup in SETUPS}
    first = rows["sync"]
    lines = [
        f"{first['requests']} simultaneous `/api/db?ms={first['ms']}` through nginx, natively "
        f"against a real PostgreSQL (tests/integration/test_database.py, {link(TESTS, doc)}):",
        "",
        "| setup | most queries in flight at once | database connections used | all answered in |",
        "|---|---|---|---|",
    ]
    for setup, row in rows.items():
        lines.append(
            f"| {setup} | {row['max_in_flight']} | {row['database_connections']} | "
            f"{num(row['wall_seconds'])} s |"
        )
    return "\n".join(lines)


def block_database_driver(src: Sources, doc: str) -> str:
    """The same 20 simultaneous queries through psycopg2 (waits in C), gevent and gthread."""
    right = src.test("database.simultaneous.gevent")
    wrong = {setup: src.test(f"database.psycopg2.{setup}") for setup in ("gevent", "gthread")}
    return (
        f"The same {right['requests']} simultaneous `/api/db?ms={right['ms']}` on gevent: with "
        f"psycopg 3, {right['max_in_flight']} in flight at once, all answered in "
        f"{num(right['wall_seconds'])} s; with `driver=psycopg2`, "
        f"{wrong['gevent']['max_in_flight']} in flight at once (one per process, "
        f"{wrong['gevent']['processes']} processes), all answered in "
        f"{num(wrong['gevent']['wall_seconds'])} s. Under gthread psycopg2 overlaps them "
        f"anyway ({wrong['gthread']['max_in_flight']} in flight, "
        f"{num(wrong['gthread']['wall_seconds'])} s): it releases the GIL while it waits, and "
        f"only gevent needs the wait itself to be cooperative ({link(TESTS, doc)})."
    )


def block_database_limits(src: Sources, doc: str) -> str:
    """The pool kept busy past its timeout, and the database stopped and started again."""
    busy = src.test("database.pool_exhausted.gevent")
    outage = src.test("database.outage")
    long_ = src.test("database.reconnect")
    compose = src.test("e2e.database.outage")
    limit = src.test("database.max_connections")
    return (
        f"- **Pool busy** (gevent, two processes of 20 connections, pool timeout 1 s): of "
        f"{busy['sent']} simultaneous 2.5 s queries, {busy['served']} were served and "
        f"{busy['refused']} answered 503 `database_busy`, the slowest refusal after "
        f"{num(busy['slowest_refusal_seconds'])} s.\n"
        f"- **Database stopped** (every setup, pool timeout 1 s): {outage['answered_503']} of "
        f"{outage['sent_during_outage']} queries answered 503 `database_unavailable`, the "
        f"slowest after {num(outage['slowest_503_seconds'])} s; `/readyz` 503, `/healthz` 200. "
        f"Started again, every setup served queries within {num(outage['back_within_seconds'])} s, "
        f"with no restart.\n"
        f"- **A long outage** (the database stopped {num(long_['outage_seconds'])} s, one "
        f"process's pool): {long_['refused_during_outage']} queries answered 503 meanwhile; "
        f"started again, it served a query within {num(long_['back_within_seconds'])} s "
        f"(left to itself, psycopg_pool retries 1, 2, 4, 8, 16 s apart; `RECONNECT_SECONDS` "
        f"bounds it).\n"
        f"- **The compose stack's database stopped** (`docker compose stop db`): "
        f"{compose['answered_503']} of {compose['answered_503']} queries answered 503, the "
        f"slowest after {num(compose['slowest_503_seconds'])} s (the name `db` no longer "
        f"resolves); after `start db`, every setup queried it again within "
        f"{num(compose['back_within_seconds'])} s, no app container restarted.\n"
        f"- **Pools past max_connections** (a PostgreSQL allowing {limit['max_connections']}, "
        f"one gthread process whose pool may open 32): of {limit['sent']} simultaneous "
        f"queries, {limit['served']} were served and {limit['refused']} answered 503 "
        f"`database_connections_exhausted`, naming max_connections ({link(TESTS, doc)})."
    )


def block_database_timeline(src: Sources, doc: str) -> str:
    """The report's database timeline: gevent with each driver, from the servers' clocks."""
    from loadtest.evidence import summarize

    def waves(bodies: list[dict]) -> str:
        count = _waves(bodies)
        return f"{count} wave{'' if count == 1 else 's'}"

    timelines = src.report["db_timelines"]
    right, wrong = timelines["gevent"], timelines["gevent + psycopg2"]
    shipped, pitfall = summarize(right), summarize(wrong)
    return (
        f"The report draws it from the servers' own clocks ({link(REPORT, doc)}): "
        f"{shipped['requests']} simultaneous {right[0]['ms']} ms queries on gevent, one bar each "
        f"on the lane of the greenlet that ran it — {shipped['max_in_flight']} at a time in "
        f"{waves(right)} with psycopg 3, {pitfall['max_in_flight']} at a time in "
        f"{waves(wrong)} with psycopg2.\n\n"
        f"![{shipped['requests']} simultaneous PostgreSQL queries per setup and driver]"
        f"({'../' * (len(Path(doc).parts) - 1)}docs/report/charts/database.png)"
    )


def block_database_scaled(src: Sources, doc: str) -> str:
    """`--scale app-gthread=2` in compose: the pools added up against max_connections."""
    run = src.test("e2e.database.scaled")
    per_service: dict[str, list[int]] = {}
    for container, pool in sorted(run["pools"].items()):
        service = re.sub(r"^.*?(app-\w+)-\d+$", r"\1", container)
        per_service.setdefault(service, []).append(pool)
    parts = ", ".join(
        f"{service} {' + '.join(map(str, pools))}" for service, pools in per_service.items()
    )
    return (
        f"Measured with `--scale app-gthread=2` ({run['usable_cpus']} CPUs): the pools add up to "
        f"{parts} = {run['total']} connections, within max_connections {run['max_connections']} "
        f"less {run['reserved']} reserved. Sent as many simultaneous queries as each setup's "
        "pools may hold, all at the same moment ("
        + ", ".join(f"{n} to {setup}" for setup, n in run["queries"].items())
        + f"), every query was answered 200, both gthread replicas served, and PostgreSQL held "
        f"at most {run['peak_connections']} connections to the app's database meanwhile (pools "
        "open connections as requests need them) "
        f"({link(TESTS, doc)})."
    )


def block_upstream(src: Sources, doc: str) -> str:
    """The delay service: overlap per setup, a busy pool, the service stopped, natively and in
    compose."""
    rows = {setup: src.test(f"upstream.simultaneous.{setup}") for setup in SETUPS}
    busy = src.test("upstream.pool_exhausted.gevent")
    outage, compose = src.test("upstream.outage"), src.test("e2e.upstream.outage")
    first = rows["sync"]
    overlap = "; ".join(
        f"{setup} {row['max_in_flight']} at once, all answered in {num(row['wall_seconds'])} s"
        for setup, row in rows.items()
    )
    return (
        f"- {first['requests']} simultaneous `/api/upstream?ms={first['ms']}` through nginx: "
        f"{overlap}.\n"
        f"- Pool busy (gevent, 60 simultaneous 2.5 s calls, pool timeout 1 s): "
        f"{busy['served']} served, {busy['refused']} answered 503 `upstream_busy`, the slowest "
        f"refusal after {num(busy['slowest_refusal_seconds'])} s.\n"
        f"- Service stopped: natively {outage['answered_503']} calls answered 503 "
        f"`upstream_unavailable`, the slowest after {num(outage['slowest_503_seconds'])} s; in "
        f"compose (`docker compose stop delay`) {compose['answered_503']}, the slowest after "
        f"{num(compose['slowest_503_seconds'])} s (the name lookup's 1 s bound, `dns_opt` in "
        f"docker-compose.yml); `/readyz` stayed 200; started again, calls "
        f"succeeded with no app restart ({link(TESTS, doc)})."
    )


def block_swarm(src: Sources, doc: str) -> str:
    """The three-node swarm: a rolling update, a worker drained, a worker lost."""
    update = src.test("e2e.swarm.rolling_update")
    drain = src.test("e2e.swarm.drain")
    lost = src.test("e2e.swarm.node_lost")

    def row(event: str, figures: dict, back: str) -> str:
        return (
            f"| {event} | {figures['sent']:,} | {figures['failed']} | "
            f"{num(figures['slowest_seconds'])} s | {back} |"
        )

    return "\n".join(
        [
            "| event | requests | failed | slowest answer | back to the declared replicas |",
            "|---|---|---|---|---|",
            row(
                "rolling update of all three setups at once (`service update --force`)",
                update,
                f"every task replaced in {num(update['seconds'])} s",
            ),
            row(
                f"worker drained ({drain['tasks_moved']} tasks on it)",
                drain,
                f"{num(drain['converged_seconds'])} s",
            ),
            row(
                f"worker killed: engine, containerd and its {lost['tasks_lost']} tasks, SIGKILL",
                lost,
                f"declared down after {num(lost['declared_down_seconds'])} s; replicas "
                f"running elsewhere after {num(lost['converged_seconds'])} s",
            ),
            "",
            f"The slowest answers while a node is lost are requests nginx first sent to a task "
            f"on it and retried on another. In this run, answers cut short by the kill: "
            f"{lost.get('cut_short', 0)}"
            + (
                f"; requests the node had not acknowledged when it died (nginx waits them out, "
                f"above): {lost['unacknowledged']}"
                if "unacknowledged" in lost  # counted since the test tells them apart
                else ""
            )
            + f" ({link(TESTS, doc)}).",
        ]
    )


BLOCKS: dict[str, Callable[[Sources, str], str]] = {
    "upstream": block_upstream,
    "swarm": block_swarm,
    "database-overlap": block_database_overlap,
    "database-limits": block_database_limits,
    "database-driver": block_database_driver,
    "who-served": block_who_served,
    "readme-timeline": block_readme_timeline,
    "measuring-simultaneous": block_measuring_simultaneous,
    "measuring-report": block_measuring_report,
    "measuring-bench": block_measuring_bench,
    "measuring-locust": block_measuring_locust,
    "measuring-per-request": block_measuring_per_request,
    "measuring-nginx-workers": block_measuring_nginx_workers,
    "reliability-faults": block_reliability_faults,
    "reliability-hostile": block_reliability_hostile,
    "reliability-overload": block_reliability_overload,
    "reliability-soak": block_reliability_soak,
    "decision-guide": block_decision_guide,
    "decision-guide-database": block_decision_guide_database,
    "database-scaled": block_database_scaled,
    "database-timeline": block_database_timeline,
    "locust-database-drivers": block_locust_database_drivers,
    "sync-waves": block_sync_waves,
}


def render(doc: str, text: str, src: Sources) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(2)
        if name not in BLOCKS:
            raise KeyError(f"{doc}: unknown figures block {name!r}")
        return match.group(1) + BLOCKS[name](src, doc) + "\n" + match.group(4)

    return BLOCK.sub(replace, text)


def stale(src: Sources | None = None) -> list[str]:
    """The docs whose generated blocks disagree with their artifacts."""
    src = src or Sources()
    return [
        doc
        for doc in DOCS
        if render(doc, (ROOT / doc).read_text(), src) != (ROOT / doc).read_text()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--adopt", action="store_true")
    args = parser.parse_args(argv)
    if args.adopt:
        TESTS.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TESTS_RECORDED, TESTS)
    if args.check:
        docs = stale()
        for doc in docs:
            print(f"{doc}: a figures block disagrees with its artifact (--write rewrites it)")
        return 1 if docs else 0
    src = Sources()
    for doc in DOCS:
        path = ROOT / doc
        path.write_text(render(doc, path.read_text(), src))
    return 0


if __name__ == "__main__":
    sys.exit(main())
