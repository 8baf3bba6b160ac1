"""The three Gunicorn setups, as Gunicorn itself resolves them (gunicorn --print-config)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gunicorn_conf import SETUPS
from gunicorn_conf.cpus import usable_cpus

ROOT = Path(__file__).resolve().parents[2]


def resolved(setup: str, **env: str) -> dict[str, str]:
    """Every setting as Gunicorn resolves it from the config file and the environment."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GUNICORN_", "WEB_CONCURRENCY", "WSGI_APP"))
    }
    environ.update(env)
    out = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--print-config", "-c", f"python:gunicorn_conf.{setup}"],
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        check=True,
    ).stdout
    return dict(re.findall(r"^(\w+)\s+= (.*)$", out, re.M))


@pytest.mark.parametrize("setup", SETUPS)
def test_each_setup_runs_its_own_worker_class(setup):
    assert resolved(setup)["worker_class"] == setup


def test_sync_pins_one_thread_so_gunicorn_cannot_turn_it_into_gthread():
    config = resolved("sync", GUNICORN_THREADS="8")
    assert config["threads"] == "1"
    assert config["worker_class"] == "sync"


def test_worker_counts_follow_the_usable_cpus_and_the_environment_overrides_them():
    cpus = usable_cpus()
    assert resolved("sync")["workers"] == str(2 * cpus + 1)
    assert resolved("gthread")["workers"] == str(cpus)
    assert resolved("gevent")["workers"] == str(cpus)
    assert resolved("sync", WEB_CONCURRENCY="3")["workers"] == "3"
    assert resolved("gthread", GUNICORN_THREADS="4")["threads"] == "4"
    assert resolved("gevent", GUNICORN_WORKER_CONNECTIONS="50")["worker_connections"] == "50"


@pytest.mark.parametrize("setup", SETUPS)
def test_shared_settings_come_from_base_for_every_setup(setup):
    config = resolved(setup)
    assert config["timeout"] == "30"
    assert config["graceful_timeout"] == "30"
    assert config["keepalive"] == "75"
    assert config["preload_app"] == "False"
    assert config["worker_tmp_dir"] == "/dev/shm"
    assert config["control_socket_disable"] == "True"
    assert config["accesslog"] == "None"  # nginx's access line is the one per request
    assert "JsonAccessLogger" in config["logger_class"]
    assert int(config["max_requests_jitter"]) > 0


@pytest.mark.parametrize("setup", SETUPS)
def test_one_knob_names_the_app_every_setup_serves(setup):
    assert resolved(setup)["wsgi_app"] == "app:create_app()"  # the demo, by default
    assert resolved(setup, WSGI_APP=" ")["wsgi_app"] == "app:create_app()"  # compose's unset
    notes = resolved(setup, WSGI_APP="examples.notes:create_app()")
    assert notes["wsgi_app"] == "examples.notes:create_app()"
    assert notes["worker_class"] == setup  # and nothing else moves


def pool_size_handed_to_the_app(setup: str, **env: str) -> int:
    """APP_POOL_SIZE as the config module leaves it for the app (gunicorn_conf/base.py's
    tell_the_app): what Gunicorn's workers inherit."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "APP_POOL"))}
    environ.update(env)
    code = f"import os, gunicorn_conf.{setup}; print(os.environ['APP_POOL_SIZE'])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def test_each_setup_hands_the_app_a_pool_as_big_as_what_a_process_serves_at_once():
    assert pool_size_handed_to_the_app("sync") == 1
    assert pool_size_handed_to_the_app("gthread") == int(resolved("gthread")["threads"])
    assert pool_size_handed_to_the_app("gthread", GUNICORN_THREADS="4") == 4
    assert pool_size_handed_to_the_app("gevent") == 20
    for setup in SETUPS:  # the operator's own value wins
        assert pool_size_handed_to_the_app(setup, APP_POOL_SIZE="7") == 7


@pytest.mark.parametrize("setup", SETUPS)
def test_every_setup_keeps_one_listening_socket_however_many_workers(setup):
    """gunicorn_conf/base.py: with a socket per worker (reuse_port) nothing would listen while
    every worker is replaced at once (tests/integration/test_listening_socket.py)."""
    for workers in ("1", "2", "8"):
        assert resolved(setup, WEB_CONCURRENCY=workers)["reuse_port"] == "False"


def test_gunicorns_json_access_log_can_be_switched_on():
    assert resolved("gevent", GUNICORN_ACCESS_LOG="-")["accesslog"] == "-"


def test_usable_cpus_honours_a_cgroup_quota(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    quota = tmp_path / "cpu.max"
    quota.write_text("100000 100000\n")
    assert usable_cpus(str(quota)) == 1
    quota.write_text("max 100000\n")
    assert usable_cpus(str(quota)) == affinity
    quota.write_text("50000 100000\n")  # half a CPU still needs one worker
    assert usable_cpus(str(quota)) == 1
    assert usable_cpus(str(tmp_path / "missing")) == affinity


def test_the_configs_never_import_the_app_or_flask():
    """The master must not load Flask (and with it ssl) before gevent's workers patch."""
    code = (
        "import sys; import gunicorn_conf.gevent;"
        "print(sorted(m for m in ('flask', 'app', 'werkzeug', 'ssl') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


def nginx_seconds(directive: str, file: str) -> set[int]:
    text = (ROOT / "nginx" / file).read_text()
    return {int(v) for v in re.findall(rf"^\s*{directive}\s+(\d+)s;", text, re.M)}


def test_gunicorn_outlives_nginx_upstream_keepalive_so_nginx_never_reuses_a_closing_connection():
    nginx_idle = nginx_seconds("keepalive_timeout", "snippets/upstream/keepalive.conf")
    assert nginx_idle, "the upstream keep-alive snippet sets keepalive_timeout"
    for setup in SETUPS:
        assert int(resolved(setup)["keepalive"]) > max(nginx_idle)


def test_nginx_drops_idle_upstream_connections_before_a_restarting_worker_kills_them():
    nginx_idle = nginx_seconds("keepalive_timeout", "snippets/upstream/keepalive.conf")
    for setup in SETUPS:
        assert max(nginx_idle) < int(resolved(setup)["graceful_timeout"])


def test_nginx_waits_longer_than_gunicorns_worker_timeout():
    (read_timeout,) = nginx_seconds("proxy_read_timeout", "snippets/location/proxy.conf")
    assert read_timeout > int(resolved("sync")["timeout"])


@pytest.mark.parametrize("setup", SETUPS)
def test_requests_are_parsed_by_gunicorns_c_parser_unless_the_operator_says_otherwise(setup):
    """base.py: gunicorn-h1c, installed from gunicorn_conf/requirements.txt."""
    assert resolved(setup)["http_parser"] == "fast"
    assert resolved(setup, GUNICORN_HTTP_PARSER="python")["http_parser"] == "python"
    # As many header fields as the C parser reads, so both parsers refuse at the same count.
    assert resolved(setup)["limit_request_fields"] == "256"


def test_a_missing_c_parser_stops_gunicorn_at_start_with_what_to_do():
    """Gunicorn itself would find out only at the first request, and fail every one."""
    hide = "import sys; sys.modules['gunicorn_h1c'] = None; import gunicorn_conf.base"
    env = {k: v for k, v in os.environ.items() if k != "GUNICORN_HTTP_PARSER"}
    run = subprocess.run(
        [sys.executable, "-c", hide], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert run.returncode != 0
    assert "gunicorn_h1c is not installed" in run.stderr
    assert "GUNICORN_HTTP_PARSER=python" in run.stderr
    # The Python parser needs no C extension.
    env["GUNICORN_HTTP_PARSER"] = "python"
    fine = subprocess.run(
        [sys.executable, "-c", hide], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert fine.returncode == 0, fine.stderr
