"""The soak's judgement (harness/soak.py) on hand-made samples: each target can be missed."""

from __future__ import annotations

from harness.flood import Answer
from harness.soak import Sample, SetupRun, checks, judge

MIB = 2**20


def a_run(rss_end: int = 100 * MIB, fds_after: int = 20, new_pids: int = 3) -> SetupRun:
    run = SetupRun("sync", rate=100.0, paced=23.3)
    # 120 s, a sample every 5 s; pid 1 and 2 serve, then new pids replace them (recycles).
    for at in range(0, 121, 5):
        rss = 100 * MIB if at < 110 else rss_end
        pids = [1, 2] if at < 60 else [2 + n for n in range(1, new_pids + 1)]
        run.samples.append(
            Sample(float(at), {pid: {"rss": rss, "fds": 9, "connections": 3} for pid in pids})
        )
    run.baseline = {"fds": 20, "connections": 4}
    run.after = {"fds": fds_after, "connections": 4}
    return run


def answers(late_ms: float = 10.0, failed: int = 0) -> list[tuple[str, Answer]]:
    out = []
    for n in range(1200):  # 10 a second for 120 s
        sent_at = 1000.0 + n / 10
        seconds = (late_ms if sent_at - 1000 >= 60 else 10.0) / 1000
        out.append(("u", Answer(sent_at, seconds, None if n < failed else 200)))
    return out


def verdicts(run: SetupRun, sent: list) -> list[bool]:
    return [ok for ok, _ in checks(judge(run, sent, minutes=2))]


def test_a_clean_run_meets_every_target():
    row = judge(a_run(), answers(), minutes=2)
    assert row["sent"] == 1200 and row["failed"] == 0
    assert row["recycles"] == 3 and row["rss_growth_pct"] == 0
    assert row["p99_ms_first_minute"] == row["p99_ms_last_minute"] == 10
    assert verdicts(a_run(), answers()) == [True] * 5


def test_each_target_is_missed_by_what_it_is_named_for():
    assert verdicts(a_run(), answers(failed=1)) == [False, True, True, True, True]
    assert verdicts(a_run(rss_end=120 * MIB), answers()) == [True, False, True, True, True]
    assert verdicts(a_run(fds_after=20 + 129), answers()) == [True, True, False, True, True]
    assert verdicts(a_run(), answers(late_ms=13)) == [True, True, True, False, True]
    assert verdicts(a_run(new_pids=1), answers()) == [True, True, True, True, False]


def test_a_worker_just_forked_at_the_start_of_the_window_does_not_read_as_growth():
    # pid 2 is recycled at 30 s (the end of warm-up): its first reading, still importing the
    # app, is 70 MiB, then 100 like every other. One sample alone would read 85 -> 100 MiB,
    # +18 %: missed. Settled workers read 100 -> 100.
    run = a_run()
    for sample in run.samples:
        if sample.at >= 30 and 2 in sample.workers:
            sample.workers[9] = {
                **sample.workers.pop(2),
                "rss": 70 * MIB if sample.at == 30 else 100 * MIB,
            }
    row = judge(run, answers(), minutes=2)
    assert row["rss_mib_start"] == 100 and row["rss_growth_pct"] == 0
    # Growth among settled workers is still growth.
    assert not verdicts(a_run(rss_end=120 * MIB), answers())[1]
