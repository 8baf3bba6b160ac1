"""The arithmetic behind every concurrency claim: overlap and who-served-what counts."""

import ast
from pathlib import Path

from loadtest import evidence
from loadtest.evidence import max_in_flight, summarize

LOADTEST = Path(evidence.__file__).parent


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
        "requests_per_process": {"h:1": 2, "h:2": 1},
        "busiest_share": 0.667,
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
    from gunicorn_conf import SETUPS

    assert evidence.SETUPS == SETUPS
    # The locustfile takes them from evidence.py (it cannot import gunicorn_conf).
    assert "SETUPS = (*evidence.SETUPS," in LOADTEST.joinpath("locustfile.py").read_text()


def scenario_classes() -> list[str]:
    """The user classes loadtest/locustfile.py defines (read, not imported: importing
    Locust would gevent-patch pytest)."""
    tree = ast.parse(LOADTEST.joinpath("locustfile.py").read_text())
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and node.bases
        and getattr(node.bases[0], "id", "") == "StackUser"
    ]


def test_the_web_uis_form_offers_every_scenario_and_only_those():
    tree = ast.parse(LOADTEST.joinpath("webui.py").read_text())
    labels = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "LABELS"
    )
    offered = ast.literal_eval(labels)
    assert sorted(offered) == sorted(scenario_classes())
    assert "Locust itself" in offered["Ceiling"]
    assert next(iter(offered)) == "IoBound"  # the form's default


# --- The "Who served" tally (loadtest/who_served.py feeds it; the tab shows it) ----------


def row(setup, pid, thread, greenlet, start, end, host="h", scenario="IoBound", leaked=None):
    return [setup, scenario, host, pid, thread, greenlet, start, end, leaked]


def only(tally):
    (figures,) = tally.figures()
    return figures


def test_the_tally_counts_like_summarize_overlaps_touching_ends_and_hosts():
    tally = evidence.Tally()
    # Two hosts with the same pid are two processes; touching ends do not overlap.
    tally.add_rows(
        [
            row("sync", 7, 70, None, 0.0, 1.0, host="a"),
            row("sync", 7, 70, None, 0.5, 1.5, host="b"),
            row("sync", 7, 70, None, 1.0, 2.0, host="a"),
            row("sync", 8, 80, None, 1.5, 2.5, host="a"),
        ]
    )
    seen = only(tally)
    assert (seen["setup"], seen["scenario"], seen["requests"]) == ("sync", "IoBound", 4)
    assert (seen["processes"], seen["threads"], seen["greenlets"]) == (3, 3, 0)
    assert seen["max_in_flight"] == 2
    assert seen["requests_per_process"] == {"a:7": 2, "b:7": 1, "a:8": 1}
    assert seen["busiest_share"] == 0.5
    assert seen["reading"] == "2 requests in flight → 3 processes × 1 thread"


def test_greenlets_are_counted_per_process_and_read_as_such():
    tally = evidence.Tally()
    tally.add_rows([row("gevent", pid, 1, g, 0.0, 0.3) for pid in (1, 2) for g in range(25)])
    seen = only(tally)
    assert (seen["processes"], seen["threads_per_process"], seen["greenlets"]) == (2, 1, 50)
    assert seen["reading"] == "50 requests in flight → 2 processes × 1 thread × 50 greenlets"


def test_the_window_bounds_memory_but_not_the_whole_run_counts():
    tally = evidence.Tally(window=10)
    # A burst of 6 at once early on, then 100 answers one after another.
    tally.add_rows([row("gthread", 1, t, None, 0.0, 1.0) for t in range(6)])
    tally.add_rows([row("gthread", 1, 99, None, 2.0 + i, 3.0 + i) for i in range(100)])
    seen = only(tally)
    assert len(tally.groups[("gthread", "IoBound")].recent) == 10 == seen["window"]
    assert seen["requests"] == 106 and seen["requests_per_process"] == {"h:1": 106}
    assert seen["max_in_flight"] == 6  # measured before the window dropped the burst
    assert seen["threads"] == 1  # the distinct counts cover the window only


def test_isolation_answers_count_each_store_clobbered_and_flask_g_intact():
    tally = evidence.Tally()
    tally.add_rows(
        [
            row("gevent", 1, 1, 5, 0, 1, scenario="Isolation", leaked=["module_global"]),
            row(
                "gevent",
                1,
                1,
                6,
                0,
                1,
                scenario="Isolation",
                leaked=["dict_by_os_thread_id", "module_global"],
            ),
            row("gevent", 1, 1, 7, 0, 1, scenario="Isolation", leaked=[]),
        ]
    )
    assert only(tally)["isolation"] == {
        "requests": 3,
        "module_global_clobbered": 2,
        "os_thread_dict_clobbered": 1,
        "flask_g_intact": 3,
    }


def test_a_malformed_batch_is_refused_whole_and_the_tally_is_unchanged():
    tally = evidence.Tally()
    good = row("sync", 1, 1, None, 0, 1)
    for bad in (
        "not a list",
        [good, ["sync"]],  # too short
        [good, row("sync", "1", 1, None, 0, 1)],  # pid not a number
        [good, row("sync", 1, 1, None, 2, 1)],  # finished before it started
        [good, row(None, 1, 1, None, 0, 1)],  # no setup
        [good, row("sync", 1, 1, "g", 0, 1)],  # greenlet id not an int
        [good, row("sync", 1, 1, None, 0, 1, leaked=["rm -rf"])],  # unknown store
    ):
        try:
            tally.add_rows(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(f"accepted {bad!r}")
    assert tally.figures() == []
    # Nor can a batch make the tally grow without bound through made-up groups.
    too_many = [row(f"setup{n}", 1, 1, None, 0, 1) for n in range(evidence.Tally.MAX_GROUPS + 1)]
    try:
        tally.add_rows(too_many)
    except ValueError as refused:
        assert "groups" in str(refused)
    else:
        raise AssertionError("a batch of too many groups was accepted")
    assert tally.figures() == []


def test_a_new_run_starts_its_own_groups_afresh_and_keeps_the_others():
    tally = evidence.Tally()
    tally.add_rows([row("sync", 1, 1, None, 0, 1), row("gevent", 2, 1, 9, 0, 1)])
    tally.new_run()
    tally.add_rows([row("gevent", 3, 1, 9, 5, 6), row("gevent", 3, 1, 10, 5, 6)])
    figures = {f["setup"]: f for f in tally.figures()}
    assert figures["gevent"]["requests"] == 2 and figures["gevent"]["processes"] == 1
    assert figures["sync"]["requests"] == 1  # an earlier run's group, still readable
    assert [f["setup"] for f in tally.figures()] == ["gevent", "sync"]  # newest first
    tally.reset()
    assert tally.figures() == []


def test_a_whoami_body_becomes_a_compact_row_and_back():
    body = {
        "hostname": "h",
        "pid": 3,
        "thread_id": 4,
        "greenlet_id": None,
        "started_at": 1.5,
        "finished_at": 1.75,
        "worker_class": "sync",
        "url": "x",
    }
    tally = evidence.Tally()
    tally.add_rows([evidence.compact_row("sync", "Hello", body)])
    assert only(tally)["requests"] == 1
    try:
        evidence.compact_row("sync", "Hello", {"status": "ok"})
    except ValueError as refused:
        assert "not a whoami answer" in str(refused)
    else:
        raise AssertionError("a body without the evidence fields was accepted")
