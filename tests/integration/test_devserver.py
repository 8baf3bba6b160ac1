"""Flask's development server: what the seed question's snippets really do."""

from __future__ import annotations

import pytest

from app import create_app
from harness import launch
from loadtest.evidence import simultaneous_get, summarize
from tools.devserver import run_options


@pytest.mark.parametrize("options", [{"threaded": True, "processes": 2}, {"processes": 4}])
def test_threads_and_processes_together_raise_value_error(options):
    """app.run(threaded=True, processes=2) fails; so does app.run(processes=4), because
    app.run() is threaded unless told otherwise."""
    with pytest.raises(ValueError, match="Cannot have a multi-thread and multi-process server"):
        create_app().run(host="127.0.0.1", port=launch.free_port(), use_reloader=False, **options)


def test_the_processes_mode_passes_threaded_false():
    assert run_options("processes", 4) == {"threaded": False, "processes": 4}
    assert run_options("threaded", 4) == {}  # app.run()'s own default


@pytest.fixture()
def dev(request, tmp_path):
    with launch.dev_server(request.param, tmp_path / "dev.log") as running:
        yield running


def served(running: launch.Running, count: int) -> tuple[dict, list]:
    responses = simultaneous_get([f"{running.base_url}/api/io?ms=300"] * count)
    assert [r.status_code for r in responses] == [200] * count
    return summarize([r.json() for r in responses]), responses


@pytest.mark.parametrize("dev", ["threaded"], indirect=True)
def test_app_run_is_threaded_by_default_one_new_thread_per_request(dev):
    seen, responses = served(dev, 6)
    assert seen["processes"] == 1
    assert seen["threads"] == 6 and seen["max_in_flight"] == 6
    assert {r.json()["worker_class"] for r in responses} == {"werkzeug"}


@pytest.mark.parametrize("dev", ["single"], indirect=True)
def test_threaded_false_serves_one_request_at_a_time(dev):
    seen, _ = served(dev, 3)
    assert seen["max_in_flight"] == 1 and seen["processes"] == 1


@pytest.mark.parametrize("dev", ["processes"], indirect=True)
def test_processes_mode_forks_a_child_per_request_at_most_n_at_once(dev):
    seen, responses = served(dev, 6)
    assert seen["processes"] == 6  # a fresh child for every request
    # Children overlap (a serial server would show 1), up to the 4 allowed.
    assert 1 < seen["max_in_flight"] <= 4
    server_pid = dev.process.pid  # tools.devserver runs the server in its own process
    assert all(r.json()["pid"] != server_pid and r.json()["ppid"] == server_pid for r in responses)


@pytest.mark.parametrize("dev", ["single", "threaded", "processes"], indirect=True)
def test_the_dev_server_closes_the_connection_after_every_response(dev):
    (response,) = simultaneous_get([f"{dev.base_url}/api/whoami"])
    assert response.headers["Connection"].lower() == "close"
