"""The load-test report, run for real with tiny durations: six targets, Locust, charts, and a
throwaway PostgreSQL for the db scenario."""

from __future__ import annotations

import json
import re

import pytest

from harness import report

TARGETS = ["sync", "gthread", "gevent", "dev-single", "dev-threaded", "dev-processes"]
USERS = [2, 10]
IO_MS = 100
# A short run is noisy on a 2-core machine shared with the load generator: allow 15 % over
# a theoretical bound before calling the model broken.
TOLERANCE = 1.15


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert (
        report.main(
            [
                "--out",
                str(out),
                "--seconds",
                "2",
                "--users",
                *map(str, USERS),
                "--scenarios",
                "io",
                "cpu",
                "isolation",
                "db",
                "--io-ms",
                str(IO_MS),
                "--no-locust-html",
            ]
        )
        == 0
    )
    return out, json.loads((out / "report.json").read_text())


def runs(data, scenario, users=None):
    return {
        r["target"]: r
        for r in data["runs"]
        if r["scenario"] == scenario and (users is None or r["users"] == users)
    }


def test_every_setup_has_a_row_for_every_scenario_and_user_count(built):
    _, data = built
    for scenario in ("io", "cpu"):
        for users in USERS:
            assert set(runs(data, scenario, users)) == set(TARGETS)
    assert set(runs(data, "isolation")) == set(TARGETS)
    for run in data["runs"]:
        assert run["requests"] > 0 and run["rps"] > 0, run


def test_the_report_writes_markdown_html_charts_and_locust_output(built):
    out, _ = built
    md = (out / "report.md").read_text()
    assert "## What this shows" in md and "| sync |" in md
    assert "<table>" in (out / "report.html").read_text()
    for chart in ("timeline", "database", "io-throughput", "io-p95", "cpu-throughput", "cpu-p95"):
        png = (out / "charts" / f"{chart}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000, chart
        assert f"charts/{chart}.png" in md
    assert list((out / "locust").glob("*_stats.csv"))
    assert list((out / "locust").glob("*.evidence.jsonl"))


def test_io_bound_sync_stays_under_workers_over_latency_and_threads_and_greenlets_beat_it(built):
    _, data = built
    workers = data["configs"]["sync"]["workers"]
    sync_bound = workers / (IO_MS / 1000)
    at_10 = runs(data, "io", 10)
    assert workers < 10  # the load is above sync's concurrency, so the bound binds
    assert at_10["sync"]["rps"] <= sync_bound * TOLERANCE
    assert at_10["sync"]["served_by"]["max_in_flight"] <= workers
    for setup in ("gthread", "gevent"):
        assert at_10[setup]["rps"] > sync_bound * TOLERANCE, setup
    # The single-threaded dev server serves one request at a time.
    assert at_10["dev-single"]["rps"] <= 1 / (IO_MS / 1000) * TOLERANCE


def test_isolation_never_leaks_the_request_context_and_the_global_leaks_under_concurrency(built):
    _, data = built
    isolation = runs(data, "isolation")
    for target, run in isolation.items():
        assert run["failures"] == 0, target
        assert run["leaks"]["flask_g"] == 0, target
    for target in ("gthread", "gevent", "dev-threaded"):
        assert isolation[target]["leaks"]["module_global"] > 0, target
    for target in ("sync", "dev-single", "dev-processes"):
        assert isolation[target]["leaks"]["module_global"] == 0, target


def test_the_database_timeline_shows_gevents_driver_pitfall_from_the_servers_clocks(built):
    """20 simultaneous PostgreSQL queries: psycopg 3 lets gevent's greenlets overlap them;
    psycopg2, waiting in C, holds each worker's loop: one query at a time per process."""
    _, data = built
    timelines = data["db_timelines"]
    assert set(timelines) == {"sync", "gthread", "gevent", "gevent + psycopg2"}
    gevent_workers = data["configs"]["gevent"]["workers"]
    right, wrong = timelines["gevent"], timelines["gevent + psycopg2"]
    assert len(right) == len(wrong) == 20
    assert _in_flight(right) > 2 * gevent_workers
    assert _in_flight(wrong) <= gevent_workers
    assert report.count_waves(wrong) >= len(wrong) // gevent_workers
    assert {body["db"]["driver"] for body in wrong} == {"psycopg2"}
    # sync: one query per worker process at a time.
    assert _in_flight(timelines["sync"]) <= data["configs"]["sync"]["workers"]
    line = next(s for s in data["what_this_shows"] if s.startswith("A real database under"))
    assert f"ran {_in_flight(right)} at a time with psycopg 3" in line
    assert f"and {_in_flight(wrong)} at a time with psycopg2" in line


def test_the_database_scenario_runs_on_the_gunicorn_setups_without_failures(built):
    _, data = built
    database = runs(data, "db")
    assert set(database) == {"sync", "gthread", "gevent"}
    for target, run in database.items():
        assert run["failures"] == 0 and run["requests"] > 0, target


def test_what_this_shows_is_written_from_the_measured_numbers(built):
    _, data = built
    sentences = data["what_this_shows"]
    sync_workers = data["configs"]["sync"]["workers"]
    sync_line = next(s for s in sentences if s.startswith("sync: "))
    assert f"served by {sync_workers} processes" in sync_line
    gevent_line = next(s for s in sentences if s.startswith("gevent: "))
    assert "greenlets" in gevent_line
    assert any(s.startswith("flask.g kept each request's own value") for s in sentences)
    assert any("Locust" in s for s in sentences)


def test_the_report_states_the_load_generators_own_cpu_use(built):
    _, data = built
    for run in data["runs"]:
        assert 0 < run["locust_cpu_share"] < 2
        # The flag's rule is unit-tested on known inputs (tests/unit/test_load_runs.py).
        assert isinstance(run["locust_saturated"], bool)


def test_the_report_measures_locusts_own_ceiling_and_flags_runs_near_it(built):
    _, data = built
    ceiling = data["locust_ceiling"]
    assert ceiling["requests"] > 0 and ceiling["failures"] == 0
    # Measured against nginx answering /healthz itself, and passed to every run.
    for run in data["runs"]:
        assert run["locust_ceiling_rps"] == ceiling["rps"]
        # The flag's rule is unit-tested on known inputs (tests/unit/test_load_runs.py).
        assert isinstance(run["near_locust_ceiling"], bool)
    assert any(f"drove {ceiling['rps']:g} req/s" in s for s in data["what_this_shows"])


def _in_flight(bodies: list[dict]) -> int:
    """Most requests running at one instant, from the servers' own start and finish times."""
    return max(
        sum(other["started_at"] <= body["started_at"] < other["finished_at"] for other in bodies)
        for body in bodies
    )


def test_every_number_in_the_sentences_is_the_one_in_the_json(built):
    """Each sentence's figures recomputed from report.json's raw data (the servers' own
    answers, Locust's runs), not from the code that wrote the sentence."""
    _, data = built
    sentences = data["what_this_shows"]
    for target in TARGETS:
        bodies = data["timelines"][target]
        line = next(s for s in sentences if s.startswith(f"{target}: "))
        found = re.match(
            r"\S+: (\d+) simultaneous requests were served by (\d+) process.*"
            r"at most (\d+) at a time.*\(([\d.]+) s\)\.$",
            line,
        )
        assert found, line
        requests_, processes, in_flight, wall = found.groups()
        assert int(requests_) == len(bodies)
        assert int(processes) == len({body["pid"] for body in bodies})
        assert int(in_flight) == _in_flight(bodies)
        span = max(b["finished_at"] for b in bodies) - min(b["started_at"] for b in bodies)
        assert abs(float(wall) - span) <= 0.006, (line, span)
        if target in ("gthread", "dev-threaded"):
            threads = re.search(r"using (\d+) OS threads", line)
            assert threads and int(threads[1]) == len({(b["pid"], b["thread_id"]) for b in bodies})
        if target == "gevent":
            greenlets = re.search(r"running (\d+) greenlets", line)
            assert greenlets and int(greenlets[1]) == len(
                {(b["pid"], b["greenlet_id"]) for b in bodies}
            )
    top = max(USERS)
    for run in runs(data, "io", top).values():
        line = next(s for s in sentences if f": {run['target']} served " in s)
        found = re.search(r"served ([\d.]+) req/s, (\d+)% of its bound of ([\d.]+) req/s", line)
        assert found, line
        rps, share, bound = float(found[1]), int(found[2]), float(found[3])
        assert rps == run["rps"]
        slots = data["configs"].get(run["target"], {}).get("workers")
        if run["target"] == "sync":
            assert bound == min(slots, top) / (IO_MS / 1000)
        # Formatted as the report formats it (round-half-even on the float: 0.805 → 80 %).
        assert f"{share}%" == f"{run['rps'] / bound:.0%}"
        assert f"p95 {run['p95_ms']:g} ms" in line
    cpu_line = next(s for s in sentences if s.startswith("CPU-bound"))
    for run in runs(data, "cpu", top).values():
        assert f"{run['target']} {run['rps']:g}" in cpu_line
    isolation = runs(data, "isolation")
    total = sum(run["requests"] for run in isolation.values())
    assert any(f"in all {total} isolation requests" in s for s in sentences)
