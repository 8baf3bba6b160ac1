"""The report's sentences and counts, on hand-made inputs with known answers (the real report
is built and checked in tests/integration/test_report.py)."""

from __future__ import annotations

from harness import report
from harness.runner import LoadRun


def run(target: str, rps: float, cpu: float = 0.2, users: int = 50, **kwargs) -> LoadRun:
    fields = dict(
        scenario="io",
        seconds=5,
        requests=int(rps * 5),
        failures=0,
        p50_ms=100.0,
        p95_ms=120.0,
        p99_ms=130.0,
        locust_cpu_share=cpu,
    )
    fields.update(kwargs)
    return LoadRun(target, users=users, rps=rps, **fields)


def body(start: float, end: float) -> dict:
    return {"started_at": start, "finished_at": end}


def test_waves_count_rounds_of_service_from_the_servers_own_times():
    # Two slots, 0.3 s requests: two start at once, the third waits for a free slot.
    assert report.count_waves([body(0, 0.3), body(0, 0.3), body(0.3, 0.6)]) == 2
    # All at once is one wave; touching ends (start == the first finish) start a new one.
    assert report.count_waves([body(0, 0.3)] * 10) == 1
    assert report.count_waves([body(0, 1), body(1, 2), body(2, 3)]) == 3


def test_the_timeline_sentence_names_processes_threads_and_greenlets():
    seen = {
        "requests": 10,
        "processes": 2,
        "threads": 2,
        "greenlets": 10,
        "max_in_flight": 10,
        "threads_per_process": 1,
        "wall_seconds": 0.314,
    }
    assert report.timeline_sentence("gevent", seen, 1) == (
        "gevent: 10 simultaneous requests were served by 2 processes, each on one OS thread, "
        "running 10 greenlets in all, at most 10 at a time, in 1 wave (0.31 s)."
    )
    sync = {
        **seen,
        "processes": 5,
        "threads": 5,
        "greenlets": 0,
        "max_in_flight": 5,
        "wall_seconds": 0.62,
    }
    assert "by 5 processes with one OS thread each, at most 5 at a time, in 2 waves" in (
        report.timeline_sentence("sync", sync, 2)
    )


def test_isolation_sentences_count_leaks_per_setup():
    runs = [
        run("sync", 10, scenario="isolation", requests=100, leaks={"module_global": 0}),
        run("gevent", 10, scenario="isolation", requests=100, leaks={"module_global": 37}),
    ]
    first, second = report.isolation_sentences(runs)
    assert first == (
        "flask.g kept each request's own value in all 200 isolation requests, under every setup."
    )
    assert second == (
        "A module-level global held another request's value in 37 of 100 "
        "requests under gevent; in none under sync."
    )
    leaked = [run("gthread", 10, requests=50, leaks={"flask_g": 3})]
    assert report.isolation_sentences(leaked)[0] == "flask.g LEAKED or failed under: gthread (3)"


def test_the_locust_sentence_flags_runs_near_the_ceiling_or_a_full_core():
    ceiling = {"rps": 1000.0}
    calm = [run("sync", 100, cpu=0.25, locust_ceiling_rps=1000.0)]
    sentence = report.locust_sentence(calm, ceiling)
    assert "drove 1000 req/s" in sentence and "= 10% of it" in sentence
    assert sentence.endswith(
        "at most 25% of one core in any run: no figure here was limited by the load generator."
    )
    # 800 of a 1000 ceiling is within 20 %; 95 % of a core is saturated.
    near = [run("gevent", 800, locust_ceiling_rps=1000.0), run("sync", 10, cpu=0.95)]
    flagged = report.locust_sentence(near, ceiling)
    assert "Locust may have been the limit" in flagged
    assert "gevent/io/50u, sync/io/50u" in flagged


def test_the_database_sentences_compare_the_drivers_and_judge_each_setup_against_its_pools():
    def query(pid: int, start: float, greenlet: int) -> dict:
        return {
            "pid": pid,
            "hostname": "h",
            "thread_id": pid,
            "greenlet_id": greenlet,
            "started_at": start,
            "finished_at": start + 0.3,
            "ms": 300,
        }

    # psycopg 3: four queries at once on two processes; psycopg2: one at a time per process.
    right = [query(1 + i % 2, 0.0, i) for i in range(4)]
    wrong = [query(1 + i % 2, 0.3 * (i // 2), i) for i in range(4)]
    gevent = report.Target("gevent", "h", "gevent", "", slots=2000, pool_slots=40)
    sync = report.Target("sync", "h", "sync", "", slots=5, pool_slots=5)
    sentences = report.db_sentences(
        {"gevent": right, "gevent + psycopg2": wrong},
        [run("gevent", 380.0, scenario="db"), run("sync", 49.0, scenario="db")],
        {"gevent": gevent, "sync": sync},
        100,
    )
    assert sentences[0] == (
        "A real database under gevent: 4 simultaneous 300 ms PostgreSQL queries ran 4 at a time "
        "with psycopg 3 (1 wave, 0.30 s) and 2 at a time with psycopg2, whose wait in C holds "
        "the worker's whole loop (2 waves, 0.60 s)."
    )
    # The bound: min(pool connections, slots, users) / wait: 40 / 0.1 s and 5 / 0.1 s.
    assert "gevent served 380 req/s, 95% of its bound of 400 req/s" in sentences[1]
    assert "sync served 49 req/s, 98% of its bound of 50 req/s" in sentences[2]
