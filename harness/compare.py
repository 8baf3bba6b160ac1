"""`compare`: measure *your* app under the three Gunicorn setups and recommend one.

    make compare APP='examples.notes:create_app()' PATHS='/notes /search?q=a'
    python -m harness.compare --app 'examples.notes:create_app()' --path /notes

For each setting of a small grid (sync with 2 x CPUs + 1 and 4 x CPUs + 1 workers; gthread
with CPUs x 8 and CPUs x 32 threads; gevent with CPUs workers), it starts that Gunicorn
setup natively on a free loopback port with this repository's configs and only WSGI_APP
(and the setting) changed, and drives the paths with wrk at stepped connection counts
until the p99 leaves the latency budget or throughput stops growing. It measures, per
setting: the saturation point (the highest throughput whose p99 stays within the budget,
with no errors), and at one connection the server's CPU time against the wall time of a
request (how much of a request is work and how much waiting). It then recommends one
*measured* point — never an extrapolated one — and says why, and lists the pitfalls it
saw in the servers' logs (gevent's monkey-patch warnings, greenlets blocking gevent's loop,
worker timeouts) and memory growth.

Writes compare.json, compare.md and compare.png into --out (artifacts/compare/), and each
server's output into its logs/ folder (where the pitfalls were read). All
traffic goes to 127.0.0.1; every step is bounded by its duration.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from gunicorn_conf.cpus import usable_cpus
from harness import launch
from harness.bench import run_wrk, tree_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# A setting is saturated when a step adds less than this to the best throughput so far.
GROWTH = 1.05
# Settings whose saturation throughput is within this of the best are "as fast": among
# them the recommendation prefers the class that suits the app's nature (see recommend()).
BAND = 0.90
# A request is CPU-bound when the server is busy for at least this share of its wall time.
CPU_BOUND_SHARE = 0.5
# gevent's monitor thread reports a greenlet that keeps the loop for longer than this (s).
GEVENT_MAX_BLOCKING_S = 0.1


class CompareError(Exception):
    """Bad input or a server that cannot serve: one line for the user, exit code 2."""


@dataclass(frozen=True)
class Setting:
    worker_class: str
    workers: int
    threads: int = 1  # gthread
    connections: int = 0  # gevent: worker_connections

    @property
    def label(self) -> str:
        if self.worker_class == "gthread":
            return f"gthread {self.workers} × {self.threads} threads"
        if self.worker_class == "gevent":
            return f"gevent {self.workers} workers × {self.connections} connections"
        return f"sync {self.workers} workers"

    def env(self) -> dict[str, str]:
        env = {"WEB_CONCURRENCY": str(self.workers)}
        if self.worker_class == "gthread":
            env["GUNICORN_THREADS"] = str(self.threads)
        if self.worker_class == "gevent":
            env["GUNICORN_WORKER_CONNECTIONS"] = str(self.connections)
            # gevent's own monitor (off in the shipped config): a greenlet that keeps the
            # loop longer than GEVENT_MAX_BLOCKING_S is reported, with its stack.
            env["GEVENT_MONITOR_THREAD_ENABLE"] = "true"
            env["GEVENT_MAX_BLOCKING_TIME"] = str(GEVENT_MAX_BLOCKING_S)
        return env


def grid(cpus: int) -> list[Setting]:
    """The settings compared: each worker class as shipped, and one variation of its knob."""
    return [
        Setting("sync", 2 * cpus + 1),
        Setting("sync", 4 * cpus + 1),
        Setting("gthread", cpus, threads=8),
        Setting("gthread", cpus, threads=32),
        Setting("gevent", cpus, connections=1000),
    ]


@dataclass
class Measured:
    setting: Setting
    path: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    cpu_share: float = 0.0  # server CPU time / wall time of a request, at one connection
    cpu_ms: float = 0.0  # server CPU time per request
    rss_growth_mb: float = 0.0
    pitfalls: list[str] = field(default_factory=list)

    def best(self, budget_ms: float, every_step: bool = False) -> dict[str, Any] | None:
        """The saturation point: the fastest step within the budget and with no errors,
        among the steps the stepped search takes (or, for the sweep, all of them)."""
        steps = self.steps if every_step else self.steps[: searched(self.steps, budget_ms)]
        good = [s for s in steps if within(s, budget_ms)]
        return max(good, key=lambda s: s["rps"]) if good else None


def within(step: dict[str, Any], budget_ms: float) -> bool:
    return not step["errors"] and (step["p99_ms"] or 0) <= budget_ms


def searched(steps: list[dict[str, Any]], budget_ms: float) -> int:
    """How many of ``steps`` the stepped search takes."""
    return search(steps, budget_ms)[0]


def search(steps: list[dict[str, Any]], budget_ms: float) -> tuple[int, bool]:
    """(steps taken, whether the search stopped there): it stops after the first step out
    of the budget (or with errors), or after two steps in a row that add less than GROWTH
    to the best throughput so far."""
    best_rps, flat = 0.0, 0
    for taken, step in enumerate(steps, start=1):
        if not within(step, budget_ms):
            return taken, True
        flat = flat + 1 if step["rps"] < best_rps * GROWTH else 0
        best_rps = max(best_rps, step["rps"])
        if flat >= 2:
            return taken, True
    return len(steps), False


def check_app(app: str) -> None:
    """Load the app as Gunicorn will (gunicorn.util.import_app), in a throw-away process, so
    an app that cannot be imported is one clear line and not a worker boot loop."""
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from gunicorn.util import import_app; import_app(sys.argv[1])",
            app,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        lines = [line for line in probe.stderr.strip().splitlines() if line.strip()]
        raise CompareError(f"cannot load APP {app!r}: {lines[-1] if lines else 'no output'}")


def check_path(url: str, path: str, label: str) -> None:
    """The path must succeed before it is measured: compare counts only successes."""
    status = launch.http_status(url, timeout=10)
    if status is None or not 200 <= status < 300:
        raise CompareError(
            f"GET {path} answered {status or 'nothing'} under {label}: "
            "give paths that succeed (compare measures successful requests)"
        )


def worker_rss_mb(master: int) -> float:
    total = 0
    for child in psutil.Process(master).children():
        with suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total / 2**20


def measure_setting(
    app: str,
    setting: Setting,
    paths: list[str],
    seconds: int,
    budget_ms: float,
    scratch: Path,
    progress: Any,
    sweep: bool = False,
) -> list[Measured]:
    """Start ``setting`` on the app once and step the load on each path in turn (every
    step, with ``sweep``: the exhaustive grid the stepped search is checked against)."""
    log = scratch / f"{setting.worker_class}-{setting.workers}x{setting.threads}.log"
    env = {"WSGI_APP": app, **setting.env()}
    results = []
    with ExitStack() as stack:
        try:
            running = stack.enter_context(
                launch.gunicorn(setting.worker_class, log, env=env, ready_path=None)
            )
        except (RuntimeError, TimeoutError) as failed:
            first = str(failed).splitlines()[0]
            raise CompareError(f"{setting.label} did not start: {first}") from None
        master = running.process.pid
        log_from = 0
        for path in paths:
            url = running.base_url + path
            check_path(url, path, setting.label)
            measured = Measured(setting, path)
            rss_warm = 0.0
            for connections in CONNECTIONS:
                step = {
                    "connections": connections,
                    **run_wrk(url, connections, seconds, lambda: tree_cpu_seconds(master)),
                }
                measured.steps.append(step)
                progress(setting, path, step)
                if connections == 1:
                    # Growth is counted from here on: the first requests warm every worker
                    # up (imports, caches, pools), which is not a leak.
                    rss_warm = worker_rss_mb(master)
                    if step["rps"]:
                        measured.cpu_share = round(min(1.0, step["server_cpu"]), 3)
                        measured.cpu_ms = round(step["server_cpu"] * 1000 / step["rps"], 3)
                if not sweep and search(measured.steps, budget_ms)[1]:
                    break
            measured.rss_growth_mb = round(worker_rss_mb(master) - rss_warm, 1)
            # What the server logged while this path was loaded (its reports print at once;
            # the first path also gets what the workers printed as they booted).
            output = running.log()
            measured.pitfalls = pitfalls(output[log_from:], path)
            log_from = len(output)
            results.append(measured)
    return results


def pitfalls(log: str, path: str) -> list[str]:
    """What went wrong in a server's log, in plain words."""
    found = []
    patched = re.findall(r"MonkeyPatchWarning: (.+)", log)
    if patched:
        found.append(f"gevent: imported before the monkey-patch: {patched[0].strip()[:160]}")
    blocked = blocking_reports(log)
    if blocked:
        found.append(
            f"GET {path} blocked gevent's loop for over {GEVENT_MAX_BLOCKING_S * 1000:.0f} ms "
            f"({len(blocked)} report(s)), in {blocked[0]}"
        )
    timeouts = log.count("WORKER TIMEOUT")
    if timeouts:
        found.append(f"{timeouts} worker timeout(s): a request ran past Gunicorn's timeout")
    return found


def blocking_reports(log: str) -> list[str]:
    """Where each of gevent's "appears to be blocked" reports caught the loop: the innermost
    frame, and the innermost one of the app's own code when that is another."""
    places = []
    for report in re.findall(
        r"appears to be blocked.*?Blocked Stack[^\n]*\n(.*?)\nInfo:", log, re.S
    ):
        frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', report)
        if not frames:
            continue
        own = [f for f in frames if "-packages/" not in f[0] and "/lib/python" not in f[0]]
        inner = _frame(frames[-1])
        places.append(
            inner if not own or own[-1] == frames[-1] else f"{inner}, from {_frame(own[-1])}"
        )
    return places


def _frame(frame: tuple[str, str, str]) -> str:
    file, line, function = frame
    return f"{function} ({Path(file).name}:{line})"


# --- The recommendation ------------------------------------------------------------------

# Workers that keep growing after the first step are reported when they grow by more than
# this in all, and by more than KEPT_KIB_PER_REQUEST for each request served meanwhile (a
# warm-up that spreads over the workers keeps a few KiB a request; a leak keeps its size).
MEMORY_GROWTH_MB = 50.0
KEPT_KIB_PER_REQUEST = 10.0
# Among settings as fast as the best (BAND), the order of preference by the app's nature:
# CPU-bound work holds a sync worker alone, so its tail stays short; work that mostly waits
# overlaps in threads with any blocking library, and gevent must be clearly faster to be
# worth its demands (every library cooperative, no CPU-heavy request).
PREFERENCE = {"cpu": ("sync", "gthread", "gevent"), "waits": ("gthread", "gevent", "sync")}


def recommend(measured: list[Measured], budget_ms: float) -> dict[str, Any]:
    """One measured setting and its figures, with the reason, from every path's runs."""
    paths = list(dict.fromkeys(m.path for m in measured))
    settings = list(dict.fromkeys(m.setting for m in measured))
    by = {(m.setting, m.path): m for m in measured}
    top = {
        path: max((by[s, path].best(budget_ms) or {}).get("rps", 0.0) for s in settings)
        for path in paths
    }
    if not all(top.values()):
        slow = [p for p in paths if not top[p]]
        return {
            "setting": None,
            "reason": f"no setting served {', '.join(slow)} within a p99 of {budget_ms:.0f} ms "
            "without errors: raise --budget-ms, or make the request cheaper",
        }
    share = statistics.median(m.cpu_share for m in measured)
    nature = "cpu" if share >= CPU_BOUND_SHARE else "waits"

    def score(setting: Setting) -> float:
        """The setting's worst share of the best throughput over the paths."""
        return min((by[setting, p].best(budget_ms) or {}).get("rps", 0.0) / top[p] for p in paths)

    trouble = {s for s in settings if any(by[s, p].pitfalls for p in paths)}
    fit = [s for s in settings if s not in trouble] or settings
    best_score = max(score(s) for s in fit)
    band = [s for s in fit if score(s) >= BAND * best_score]
    order = PREFERENCE[nature]
    chosen = min(band, key=lambda s: (order.index(s.worker_class), -score(s)))
    points = {p: by[chosen, p].best(budget_ms) for p in paths}
    cpu_ms = max(by[chosen, p].cpu_ms for p in paths)
    wall_ms = {p: by[chosen, p].steps[0]["p50_ms"] for p in paths}
    fastest = max(fit, key=score)
    why = (
        f"{'CPU-bound' if nature == 'cpu' else 'Mostly waiting'}: the server is busy "
        f"{share:.0%} of the time while one request at a time goes through "
        f"({cpu_ms:.1f} ms of CPU a request). "
    )
    if chosen == fastest:
        why += f"{chosen.label} is the fastest setting measured"
    else:
        why += (
            f"{chosen.label} reaches {score(chosen) / best_score:.0%} of the fastest setting "
            f"measured ({fastest.label})"
        )
    fits_because = {
        ("cpu", "sync"): "a CPU-bound request holds a sync worker alone, so its tail stays short",
        ("waits", "gthread"): "its threads overlap the waits with any blocking library",
        ("waits", "gevent"): f"it is more than {1 - BAND:.0%} ahead of threads on these waits",
    }.get((nature, chosen.worker_class))
    why += f", and {fits_because}." if fits_because else "."
    passed_over = [
        cls
        for cls in order[: order.index(chosen.worker_class)]
        if cls in {s.worker_class for s in fit}
    ]
    for cls in passed_over:
        best_of_class = max(score(s) for s in fit if s.worker_class == cls)
        why += (
            f" {cls}, preferred for {'CPU-bound work' if nature == 'cpu' else 'waits'}, "
            f"reached only {best_of_class / best_score:.0%} of it."
        )
    if trouble - {chosen}:
        why += (
            " Not chosen for what their logs showed: "
            + ", ".join(sorted(s.label for s in trouble - {chosen}))
            + "."
        )
    return {
        "setting": asdict(chosen) | {"label": chosen.label},
        "nature": nature,
        "cpu_share": share,
        "expected": {
            p: {
                "rps": points[p]["rps"],
                "p99_ms": points[p]["p99_ms"],
                "connections": points[p]["connections"],
                "wall_ms_at_one_connection": wall_ms[p],
            }
            for p in paths
        },
        "reason": why,
    }


def sweep_check(
    measured: list[Measured], budget_ms: float, chosen: dict[str, Any]
) -> dict[str, Any]:
    """Per path: the best step of every setting (the exhaustive grid), and the share of it
    the stepped search's recommendation (``chosen``, from recommend()) reaches."""
    found = {}
    for path in dict.fromkeys(m.path for m in measured):
        runs = [m for m in measured if m.path == path]
        tops = [(m.best(budget_ms, every_step=True), m.setting.label) for m in runs]
        top, label = max(((b, lbl) for b, lbl in tops if b), key=lambda t: t[0]["rps"])
        expected = chosen["expected"][path]["rps"] if chosen["setting"] else 0.0
        found[path] = {
            "best_rps": top["rps"],
            "best_setting": label,
            "best_connections": top["connections"],
            "recommended_rps": expected,
            "recommended_share": round(expected / top["rps"], 3),
        }
    return found


def all_pitfalls(measured: list[Measured]) -> list[str]:
    found = []
    for m in measured:
        found += [f"{m.setting.label}: {p}" for p in m.pitfalls]
        served = sum(step["requests"] for step in m.steps[1:])
        kept_kib = m.rss_growth_mb * 1024 / served if served else 0.0
        if m.rss_growth_mb > MEMORY_GROWTH_MB and kept_kib > KEPT_KIB_PER_REQUEST:
            found.append(
                f"{m.setting.label}: the workers grew by {m.rss_growth_mb:.0f} MB while "
                f"GET {m.path} was loaded, {kept_kib:.0f} KiB for each of {served:,} "
                "requests (a leak, or a cache without a bound?)"
            )
    return found


# --- The report ----------------------------------------------------------------------------


def markdown(result: dict[str, Any]) -> str:
    meta, rec = result["meta"], result["recommendation"]
    lines = [
        f"# compare: {meta['app']}",
        "",
        f"{meta['when']}, {meta['cpus']} usable CPUs, {meta['seconds']} s steps, "
        f"{meta['duration_s'] // 60} min {meta['duration_s'] % 60} s in all, "
        f"latency budget p99 ≤ {meta['budget_ms']:.0f} ms. "
        f"Rerun: `python -m harness.compare --app '{meta['app']}' "
        + " ".join(f"--path '{p}'" for p in meta["paths"])
        + (" --sweep" if meta["sweep"] else "")
        + "`.",
        "",
        "## Recommendation",
        "",
    ]
    if rec["setting"] is None:
        lines += [f"None: {rec['reason']}", ""]
    else:
        lines += [f"**{rec['setting']['label']}**. {rec['reason']}", ""]
        lines += ["| path | expected req/s | p99 | at connections | one request alone |"]
        lines += ["|---|---|---|---|---|"]
        for path, e in rec["expected"].items():
            lines.append(
                f"| `{path}` | {e['rps']:,.0f} | {e['p99_ms']:,.0f} ms | {e['connections']} "
                f"| {e['wall_ms_at_one_connection']} ms |"
            )
        lines.append("")
    if result.get("sweep"):
        lines += ["## Against an exhaustive sweep", ""]
        lines += ["| path | recommended req/s | best of every step | share |", "|---|---|---|---|"]
        for path, s in result["sweep"].items():
            lines.append(
                f"| `{path}` | {s['recommended_rps']:,.0f} | {s['best_rps']:,.0f} "
                f"({s['best_setting']}, {s['best_connections']} connections) "
                f"| {s['recommended_share']:.0%} |"
            )
        lines.append("")
    lines += ["## Pitfalls seen", ""]
    lines += [f"- {p}" for p in result["pitfalls"]] or ["None."]
    lines += ["", "## Every setting measured", ""]
    lines += ["| setting | path | saturation req/s | its p99 | CPU share | CPU ms/request |"]
    lines += ["|---|---|---|---|---|---|"]
    for m in result["measured"]:
        best = m["best"]
        lines.append(
            f"| {m['label']} | `{m['path']}` | "
            + (f"{best['rps']:,.0f} | {best['p99_ms']:,.0f} ms" if best else "– | –")
            + f" | {m['cpu_share']:.0%} | {m['cpu_ms']} |"
        )
    lines += ["", "![throughput against connections](compare.png)", ""]
    return "\n".join(lines)


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = result["meta"]["paths"]
    figure, axes = plt.subplots(1, len(paths), figsize=(6 * len(paths), 4), squeeze=False)
    for axis, url_path in zip(axes[0], paths, strict=True):
        for m in result["measured"]:
            if m["path"] == url_path:
                steps = m["steps"]
                axis.plot(
                    [s["connections"] for s in steps],
                    [s["rps"] for s in steps],
                    marker="o",
                    label=m["label"],
                )
        axis.set_xscale("log", base=2)
        axis.set_xticks(CONNECTIONS, [str(c) for c in CONNECTIONS])
        axis.set_xlabel("connections")
        axis.set_ylabel("req/s")
        axis.set_title(f"GET {url_path}")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# --- The command -------------------------------------------------------------------------


def progress_bar(settings: list[Setting], paths: list[str]):
    """A one-line bar on standard error: each (setting, path) pair is an equal share of it,
    filled step by step (a search that stops early jumps to the next pair)."""
    pairs = [(setting, path) for setting in settings for path in paths]

    def show(setting: Setting, path: str, step: dict[str, Any]) -> None:
        index = pairs.index((setting, path))
        within_pair = (CONNECTIONS.index(step["connections"]) + 1) / len(CONNECTIONS)
        filled = round(30 * (index + within_pair) / len(pairs))
        print(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {index + 1}/{len(pairs)} "
            f"{setting.label}, GET {path}, {step['connections']} conn: "
            f"{step['rps']:,.0f} req/s, p99 {step['p99_ms']} ms   ",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", required=True, help="module:variable or module:factory()")
    parser.add_argument("--path", action="append", required=True, help="a GET path (repeat)")
    parser.add_argument("--budget-ms", type=float, default=500, help="p99 budget (500)")
    parser.add_argument("--seconds", type=int, default=3, help="length of each step (3)")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "compare")
    parser.add_argument(
        "--worker-class",
        action="append",
        choices=("sync", "gthread", "gevent"),
        help="measure only this worker class's settings (repeat; default: all three)",
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="measure every step of every setting too, and report how close the stepped "
        "search's recommendation comes to the best of them (slower)",
    )
    args = parser.parse_args(argv)
    # A stop (SIGTERM) unwinds like Ctrl-C does, so every server started is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    try:
        if shutil.which("wrk") is None:
            raise CompareError("wrk is not installed (apt-get install wrk): it drives the load")
        for path in args.path:
            if not path.startswith("/"):
                raise CompareError(f"a path starts with /: {path!r}")
        check_app(args.app)
        cpus = usable_cpus()
        settings = [
            s for s in grid(cpus) if s.worker_class in (args.worker_class or s.worker_class)
        ]
        (args.out / "logs").mkdir(parents=True, exist_ok=True)  # each server's output
        show = progress_bar(settings, args.path)
        measured: list[Measured] = []
        for setting in settings:
            measured += measure_setting(
                args.app,
                setting,
                args.path,
                args.seconds,
                args.budget_ms,
                args.out / "logs",
                show,
                sweep=args.sweep,
            )
        print(file=sys.stderr)
    except CompareError as problem:
        print(f"\ncompare: {problem}", file=sys.stderr)
        return 2
    chosen = recommend(measured, args.budget_ms)
    result = {
        "meta": {
            "app": args.app,
            "paths": args.path,
            "budget_ms": args.budget_ms,
            "seconds": args.seconds,
            "cpus": cpus,
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "duration_s": round(time.monotonic() - started),
            "sweep": args.sweep,
        },
        "recommendation": chosen,
        "sweep": sweep_check(measured, args.budget_ms, chosen) if args.sweep else None,
        "pitfalls": all_pitfalls(measured),
        "measured": [
            {
                "label": m.setting.label,
                "setting": asdict(m.setting),
                "path": m.path,
                "best": m.best(args.budget_ms),
                "cpu_share": m.cpu_share,
                "cpu_ms": m.cpu_ms,
                "rss_growth_mb": m.rss_growth_mb,
                "pitfalls": m.pitfalls,
                "steps": m.steps,
            }
            for m in measured
        ],
    }
    (args.out / "compare.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "compare.md").write_text(markdown(result))
    chart(result, args.out / "compare.png")
    rec = result["recommendation"]
    print(f"{rec['setting']['label'] if rec['setting'] else 'No recommendation'}: {rec['reason']}")
    print(f"Report: {args.out / 'compare.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
