"""gunicorn_conf/least_loaded.py: the shared load table and the rule a gthread worker
accepts by, on real worker objects built as Gunicorn's master builds them.
(tests/integration/test_least_loaded.py checks a real setup over TCP.)"""

from __future__ import annotations

import os

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from gunicorn_conf import least_loaded
from gunicorn_conf.least_loaded import FREE, LEAVING, SLACK, LeastLoadedThreadWorker, LoadTable

THREADS = 8  # more than SLACK, as in the shipped config


@pytest.fixture
def workers(monkeypatch):
    """Two workers as the master makes them, sharing a fresh table."""
    monkeypatch.setattr(least_loaded, "_table", None)
    cfg = Config()
    cfg.set("threads", THREADS)
    cfg.set("workers", 2)
    made = [
        LeastLoadedThreadWorker(age, os.getpid(), [], None, 15, cfg, Logger(cfg)) for age in (1, 2)
    ]
    yield made
    for worker in made:
        worker.tmp.close()


class Done:
    """A finished request's future, as the thread pool hands it to finish_request."""

    def cancelled(self) -> bool:
        return False

    def result(self) -> bool:
        return False  # not kept alive: finish_request closes the connection


class Connection:
    def close(self, graceful: bool = False) -> None:
        pass


def start_requests(worker: LeastLoadedThreadWorker, count: int) -> None:
    """``count`` requests start (what enqueue_req counts), without a thread pool."""
    for _ in range(count):
        worker.busy += 1
        worker._publish()


def test_the_table_is_shared_with_forked_workers():
    table = LoadTable(4)
    entry = table.claim()
    child = os.fork()
    if child == 0:  # the worker's side: publish a value, and leave at once
        table.load[entry] = 1
        os._exit(0)
    os.waitpid(child, 0)
    assert table.load[entry] == 1


def test_each_worker_gets_its_own_entry_and_the_master_frees_it(workers):
    first, second = workers
    assert first.entry != second.entry
    assert least_loaded._table.load[first.entry] == 0
    least_loaded.release(first)
    assert least_loaded._table.load[first.entry] == FREE


def test_a_worker_publishes_its_requests_in_hand_as_they_start_and_finish(workers):
    first, _ = workers
    start_requests(first, 3)
    assert least_loaded._table.load[first.entry] == 3
    first.nr_conns = 1
    first.finish_request(Connection(), Done())
    assert least_loaded._table.load[first.entry] == 2


def test_a_busy_worker_leaves_connections_to_a_sibling_with_less_in_hand(workers):
    first, second = workers
    start_requests(first, THREADS + SLACK + 1)
    assert first._ahead()


def test_a_busy_worker_within_the_slack_of_its_siblings_accepts(workers):
    first, second = workers
    start_requests(second, THREADS)
    start_requests(first, THREADS + SLACK)
    assert not first._ahead()


def test_a_worker_with_an_idle_thread_always_accepts(workers):
    first, _ = workers
    start_requests(first, THREADS - 1)
    assert not first._ahead()


def test_a_busy_worker_with_less_in_hand_than_its_siblings_accepts(workers):
    first, second = workers
    start_requests(second, THREADS + 50)
    start_requests(first, THREADS)
    assert not first._ahead()


def test_a_stopping_sibling_takes_nothing(workers):
    first, second = workers
    second.alive = False
    second.set_accept_enabled(False)  # what Gunicorn's loop does when the worker stops
    assert least_loaded._table.load[second.entry] == LEAVING
    start_requests(first, THREADS + SLACK + 1)
    assert not first._ahead()


def test_a_busy_worker_takes_one_connection_per_max_wait(workers, monkeypatch):
    """accept(): a worker ahead of its sibling leaves waiting connections for MAX_WAIT, then
    takes one, then leaves the next for MAX_WAIT again; not ahead, it takes all waiting."""
    first, _ = workers
    now = [100.0]
    monkeypatch.setattr(least_loaded.time, "monotonic", lambda: now[0])
    waiting = [3]

    def stock_accept(worker, listener):  # Gunicorn's: take one waiting connection
        if waiting[0]:
            waiting[0] -= 1
            worker.nr_conns += 1

    monkeypatch.setattr(least_loaded.ThreadWorker, "accept", stock_accept)
    start_requests(first, THREADS + SLACK + 1)
    first.accept(None)
    assert waiting == [3] and first._holding()
    now[0] += least_loaded.MAX_WAIT / 2
    first.accept(None)
    assert waiting == [3] and first._holding()
    now[0] += least_loaded.MAX_WAIT / 2
    assert not first._holding()  # the main loop watches the socket again
    first.accept(None)
    assert waiting == [2] and first._holding()  # one taken; the next one waits again
    first.busy = 0  # no longer ahead
    first.accept(None)
    assert waiting == [0] and not first._holding()
