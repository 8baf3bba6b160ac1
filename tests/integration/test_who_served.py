"""The web UI's "Who served" tab with distributed Locust: real master and workers (separate
processes, Locust's own messaging), real Gunicorn. The tab's figures themselves are
unit-tested on hand-made intervals (tests/unit/test_evidence.py); here: that the workers'
batches reach the master and merge to what one process would see, and that a malformed
batch is logged and ignored."""

from __future__ import annotations

import subprocess
import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import requests
from helpers import wait_until

from harness import launch

ROOT = Path(__file__).resolve().parents[2]
LOCUST = [sys.executable, "-m", "locust", "-f", "loadtest/webui.py,loadtest/shapes.py"]
MALFORMED = "tests/integration/locust_plugins/malformed_batches.py"
IO_MS, USERS = 300, 20


@pytest.fixture(scope="module")
def gevent_server(tmp_path_factory):
    logs = tmp_path_factory.mktemp("who-served")
    metrics = logs / "metrics"
    with launch.gunicorn(
        "gevent", logs / "gevent.log", env={"PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    ) as running:
        yield running


@contextmanager
def locust(tmp_path, host, workers=(), local=False):
    """A master (or a local runner) with its web UI, and workers loading ``workers``' extra
    locustfiles; yields the UI's URL and the master's log path."""
    web_port, master_port = launch.free_ports(2)
    common = ["--setup", "direct", "--scenario", "IoBound", "--io-ms", str(IO_MS)]
    head = [*LOCUST, "--host", host, "--web-host", "127.0.0.1", "--web-port", str(web_port)]
    if not local:
        head += [
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(master_port),
        ]
    log = tmp_path / "master.log"
    with ExitStack() as stack:
        processes = [
            subprocess.Popen(
                [*head, "--class-picker", *common],
                cwd=ROOT,
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
            )
        ]
        for number, extra in enumerate(workers):
            files = "loadtest/webui.py,loadtest/shapes.py" + (f",{extra}" if extra else "")
            command = [
                sys.executable,
                "-m",
                "locust",
                "-f",
                files,
                "--worker",
                "--master-host",
                "127.0.0.1",
                "--master-port",
                str(master_port),
            ]
            processes.append(
                subprocess.Popen(
                    command,
                    cwd=ROOT,
                    stdout=(tmp_path / f"worker{number}.log").open("w"),
                    stderr=subprocess.STDOUT,
                )
            )
        for process in processes:
            stack.callback(launch._stop, process, 10)
        ui = f"http://127.0.0.1:{web_port}"
        wait_until(
            lambda: (
                requests.get(ui + "/stats/requests", timeout=2).json()["workers"] is not None
                if not local
                else requests.get(ui + "/", timeout=2).ok
            ),
            timeout=60,
            what="the Locust web UI",
        )
        if workers:
            wait_until(
                lambda: (
                    len(requests.get(ui + "/stats/requests", timeout=2).json()["workers"])
                    == len(workers)
                ),
                timeout=60,
                what=f"{len(workers)} workers to connect",
            )
        yield ui, log


def run_io_bound(ui, host, answers=160):
    started = requests.post(
        ui + "/swarm",
        data={
            "user_count": USERS,
            "spawn_rate": USERS,
            "host": host,
            "user_classes": "Scenario",
            "setup": "direct",
            "scenario": "IoBound",
            "io_ms": IO_MS,
        },
        timeout=10,
    )
    assert started.json()["success"], started.text
    # The JSON route answers while the test runs; poll it until enough answers arrived.
    rows = wait_until(
        lambda: [
            r
            for r in requests.get(ui + "/who-served", timeout=5).json()["rows"]
            if r["requests"] >= answers
        ],
        timeout=60,
        what="the who-served figures to fill",
    )
    requests.post(ui + "/stop", timeout=10)
    return rows


def test_two_workers_merge_to_the_figures_one_process_sees(gevent_server, tmp_path):
    host = gevent_server.base_url
    workers = gevent_server.configs()["gevent"]["workers"]
    with locust(tmp_path, host, local=True) as (ui, _log):
        (alone,) = run_io_bound(ui, host)
    with locust(tmp_path, host, workers=["", ""]) as (ui, _log):
        (merged,) = run_io_bound(ui, host)
        tab = requests.get(ui + "/stats/requests", timeout=5).json()["extended_stats"]
    for seen in (alone, merged):
        assert (seen["setup"], seen["scenario"]) == ("direct", "IoBound")
        # Which worker accepts each connection is a race one worker may win every time.
        assert 1 <= seen["processes"] <= workers and seen["threads_per_process"] == 1
        # 20 users, each with one request in flight: all of them inside gevent at once.
        assert USERS * 3 // 4 <= seen["max_in_flight"] <= USERS
        assert seen["greenlets"] >= USERS * 3 // 4
        assert seen["reading"].startswith(
            f"{seen['max_in_flight']} requests in flight → {seen['processes']} process"
        )
    # The tab shows the same row, as cells.
    (cells,) = tab[0]["data"]
    assert tab[0]["key"] == "who-served" and cells["reading"] == merged["reading"]


def test_a_malformed_batch_is_logged_and_ignored_and_the_master_carries_on(gevent_server, tmp_path):
    host = gevent_server.base_url
    with locust(tmp_path, host, workers=["", MALFORMED]) as (ui, log):
        (merged,) = run_io_bound(ui, host, answers=30)
        state = requests.get(ui + "/who-served", timeout=5).json()
        assert state["malformed_batches"] >= 1
        assert "who-served: ignored a malformed batch" in log.read_text()
        # The good worker's answers still count; the master still answers its UI.
        assert merged["requests"] >= 30 and requests.get(ui + "/", timeout=5).ok
