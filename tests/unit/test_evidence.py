"""The arithmetic behind every concurrency claim: overlap and who-served-what counts."""

from loadtest import evidence
from loadtest.evidence import max_in_flight, summarize


def test_overlapping_spans_count_once_per_instant():
    assert max_in_flight([(0, 1), (0.5, 1.5), (0.9, 2)]) == 3
    assert max_in_flight([(0, 1), (2, 3)]) == 1
    assert max_in_flight([]) == 0


def test_back_to_back_spans_do_not_overlap():
    assert max_in_flight([(0, 1), (1, 2), (2, 3)]) == 1


def body(pid, thread, greenlet, start, end):
    return {
        "hostname": "h",
        "pid": pid,
        "thread_id": thread,
        "greenlet_id": greenlet,
        "started_at": start,
        "finished_at": end,
    }


def test_summarize_counts_processes_threads_and_greenlets():
    bodies = [body(1, 10, None, 0, 1), body(1, 11, None, 0, 1), body(2, 20, None, 1, 2)]
    seen = summarize(bodies)
    assert seen == {
        "requests": 3,
        "max_in_flight": 2,
        "processes": 2,
        "threads": 3,
        "greenlets": 0,
        "threads_per_process": 2,
        "wall_seconds": 2,
    }
    greenlets = summarize([body(1, 10, g, 0, 1) for g in range(5)])
    assert (greenlets["greenlets"], greenlets["threads_per_process"]) == (5, 1)


def test_waves_count_rounds_of_service():
    from harness.report import count_waves

    one_round = [body(1, t, None, 0.00, 0.30) for t in range(5)]
    second_round = [body(1, t, None, 0.30, 0.60) for t in range(5)]
    assert count_waves(one_round) == 1
    assert count_waves(one_round + second_round) == 2
    assert count_waves([body(1, 1, None, i * 0.3, (i + 1) * 0.3) for i in range(4)]) == 4


def test_percentiles_follow_locusts_rule():
    from harness.runner import percentile

    times = {"100": 90, "200": 9, "900": 1}
    assert percentile(times, 0.50) == 100
    assert percentile(times, 0.95) == 200
    assert percentile(times, 0.99) == 200
    assert percentile(times, 1.0) == 900
    assert percentile({}, 0.5) == 0


def test_the_black_box_setup_names_agree_with_the_gunicorn_configs():
    import ast
    from pathlib import Path

    from gunicorn_conf import SETUPS

    assert evidence.SETUPS == SETUPS
    locustfile = Path(evidence.__file__).with_name("locustfile.py").read_text()
    assigned = next(
        node.value
        for node in ast.parse(locustfile).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SETUPS"
    )
    assert ast.literal_eval(assigned)[:3] == SETUPS
