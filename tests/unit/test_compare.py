"""compare's decisions (harness/compare.py) on hand-made measurements: where the stepped
search stops, which measured setting it recommends, and what the sweep compares."""

from __future__ import annotations

import pytest

from harness.compare import Measured, Setting, pitfalls, recommend, search, sweep_check

SYNC = Setting("sync", 5)
GTHREAD = Setting("gthread", 2, threads=32)
GEVENT = Setting("gevent", 2, connections=1000)


def step(connections, rps, p99_ms=10.0, errors=0, p50_ms=5.0):
    return {
        "connections": connections,
        "rps": rps,
        "p99_ms": p99_ms,
        "errors": errors,
        "p50_ms": p50_ms,
    }


def runs(setting, rates, cpu_share, path="/", p99s=None):
    steps = [step(2**i, rps, (p99s or {}).get(2**i, 10.0)) for i, rps in enumerate(rates)]
    return Measured(setting, path, steps, cpu_share=cpu_share, cpu_ms=cpu_share * 10)


def test_the_search_stops_at_the_first_step_out_of_budget_or_after_two_flat_steps():
    assert search([step(1, 100), step(2, 190), step(4, 200, p99_ms=900)], 500) == (3, True)
    assert search([step(1, 100), step(2, 190), step(4, 150, errors=3)], 500) == (3, True)
    assert search([step(1, 100), step(2, 200), step(4, 201), step(8, 202)], 500) == (4, True)
    assert search([step(1, 100), step(2, 200), step(4, 400)], 500) == (3, False)


def test_the_best_point_is_the_fastest_searched_step_within_budget():
    m = runs(SYNC, [100, 200, 201, 202, 900], 0.1, p99s={16: 900.0})
    assert m.best(500)["rps"] == 202  # the search stopped before the 900 step
    assert m.best(500, every_step=True) is not None


def test_a_cpu_bound_app_gets_sync_when_it_is_as_fast_as_the_others():
    measured = [
        runs(SYNC, [90, 180, 190], 0.9),
        runs(GTHREAD, [90, 185, 195], 0.9),
        runs(GEVENT, [90, 180, 199], 0.9),
    ]
    chosen = recommend(measured, 500)
    assert chosen["nature"] == "cpu" and chosen["setting"]["worker_class"] == "sync"
    assert chosen["expected"]["/"]["rps"] == 190  # a measured step of the chosen setting


def test_an_app_that_waits_gets_gthread_unless_gevent_is_clearly_faster():
    close = [
        runs(SYNC, [20, 40, 80], 0.05),
        runs(GTHREAD, [20, 400, 800], 0.05),
        runs(GEVENT, [20, 400, 850], 0.05),
    ]
    assert recommend(close, 500)["setting"]["worker_class"] == "gthread"
    ahead = [
        runs(SYNC, [20, 40, 80], 0.05),
        runs(GTHREAD, [20, 400, 700], 0.05),
        runs(GEVENT, [20, 400, 900], 0.05),
    ]
    assert recommend(ahead, 500)["setting"]["worker_class"] == "gevent"


def test_a_setting_whose_log_showed_a_pitfall_is_not_recommended():
    gevent = runs(GEVENT, [20, 400, 2000], 0.05)
    gevent.pitfalls = ["GET / blocked gevent's loop for over 100 ms"]
    chosen = recommend([runs(GTHREAD, [20, 400, 700], 0.05), gevent], 500)
    assert chosen["setting"]["worker_class"] == "gthread"
    assert "gevent" in chosen["reason"]


def test_no_setting_within_budget_means_no_recommendation_and_says_why():
    slow = [runs(SYNC, [5], 0.9, p99s={1: 900.0}), runs(GTHREAD, [5], 0.9, p99s={1: 900.0})]
    chosen = recommend(slow, 500)
    assert chosen["setting"] is None and "500 ms" in chosen["reason"]


def test_the_sweep_compares_the_recommendation_with_the_best_of_every_step():
    # sync's search stops at 4 connections (two flat steps); a later step would be faster.
    sync = runs(SYNC, [90, 180, 181, 182, 400], 0.9)
    measured = [sync, runs(GTHREAD, [90, 150, 160], 0.9)]
    check = sweep_check(measured, 500, recommend(measured, 500))["/"]
    assert (check["recommended_rps"], check["best_rps"]) == (182, 400)
    assert check["recommended_share"] == pytest.approx(182 / 400, abs=0.001)


def test_gevents_blocking_report_is_read_down_to_the_apps_own_frame():
    log = """
================================================================================
Fri Nov 27 10:00:00 2026 : Greenlet <Greenlet at 0x7f: _handle> appears to be blocked
    Reported by <gevent.util.PeriodicMonitoringThread at 0x7f>
Blocked Stack (for thread id 0x7f):
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/workers/base_async.py", line 56, in handle
    self.handle_request(listener_name, req, client, addr)
  File "/srv/tests/compare_apps/blocks_gevent.py", line 14, in app
    libc.usleep(int(WAIT_S * 1_000_000))

Info:
"""
    (found,) = pitfalls(log, "/search")
    assert found.startswith("GET /search blocked gevent's loop for over 100 ms (1 report(s))")
    assert found.endswith("in app (blocks_gevent.py:14)")
    assert pitfalls(
        "MonkeyPatchWarning: Monkey-patching ssl after ssl has already been imported", "/"
    )[0].startswith("gevent: imported before the monkey-patch")
    assert pitfalls("[CRITICAL] WORKER TIMEOUT (pid:12)", "/") == [
        "1 worker timeout(s): a request ran past Gunicorn's timeout"
    ]


def test_the_progress_bar_fills_by_setting_and_path(capsys):
    from harness.compare import CONNECTIONS, progress_bar

    show = progress_bar([SYNC, GEVENT], ["/a", "/b"])
    show(SYNC, "/a", step(CONNECTIONS[-1], 10))
    assert "[" + "#" * 8 + "." * 22 + "] 1/4 sync 5 workers, GET /a" in capsys.readouterr().err
    show(GEVENT, "/b", step(CONNECTIONS[-1], 10))
    assert "[" + "#" * 30 + "] 4/4" in capsys.readouterr().err
