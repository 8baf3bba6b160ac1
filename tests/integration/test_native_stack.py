"""Real nginx in front of the three real Gunicorn setups: routing, ids, and who serves what."""

from __future__ import annotations

import json
import re
import uuid

import pytest
import requests
from helpers import wait_until

from harness.launch import SETUPS, gunicorn_slots
from loadtest.evidence import simultaneous_get, summarize

SIMULTANEOUS = 20
IO_MS = 300


@pytest.mark.parametrize("setup", SETUPS)
def test_each_prefix_reaches_the_app_under_its_own_worker_class(native_stack, setup):
    response = requests.get(native_stack.url(setup, "/api/whoami"), timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["worker_class"] == setup
    assert body["path"] == "/api/whoami"  # the prefix is stripped by nginx


@pytest.mark.parametrize("setup", SETUPS)
def test_each_setup_prints_its_resolved_config_as_one_json_line_at_boot(native_stack, setup):
    config = native_stack.configs()[setup]
    assert config["workers"] >= 1
    assert config["timeout"] == 30 and config["graceful_timeout"] == 30
    assert config["keepalive"] == 75
    assert config["preload_app"] is False
    if setup == "sync":
        assert config["threads"] == 1
    if setup == "gthread":
        assert config["threads"] > 1


def test_a_client_request_id_round_trips_through_nginx_and_the_app(native_stack):
    request_id = f"test-{uuid.uuid4().hex}"
    response = requests.get(
        native_stack.url("gthread", "/api/whoami"), headers={"X-Request-ID": request_id}, timeout=5
    )
    assert response.headers["X-Request-ID"] == request_id
    assert response.json()["request_id"] == request_id
    # nginx logs it, with who served the request, in one JSON line per request (Gunicorn
    # writes no second access line); clients never see the worker headers.
    # (nginx writes its line after the response is sent: poll the log briefly.)
    (line,) = wait_until(
        lambda: json_log_lines(native_stack, request_id, 1),
        timeout=5,
        what=f"nginx to log {request_id}",
    )
    assert line["log"] == "nginx_access"
    assert line["upstream"] == native_stack.configs()["gthread"]["bind"][0]
    assert line["setup"] == "/gthread"
    assert line["worker_class"] == "gthread"
    assert line["worker_pid"] == str(response.json()["pid"])
    assert not {"x-worker-class", "x-worker-pid"} & {h.lower() for h in response.headers}


def json_log_lines(stack, request_id: str, count: int) -> list[dict]:
    """The JSON access-log lines (honcho prefixes each line) that carry ``request_id``."""
    lines = []
    for line in stack.log().splitlines():
        _, _, payload = line.partition(" | ")
        if request_id in payload and payload.startswith("{"):
            lines.append(json.loads(payload))
    return lines if len(lines) >= count else []


def test_nginx_generates_a_request_id_when_absent_or_malformed(native_stack):
    for headers in ({}, {"X-Request-ID": "x" * 500}, {"X-Request-ID": "bad id\t<>"}):
        response = requests.get(native_stack.url("sync", "/api/whoami"), headers=headers, timeout=5)
        generated = response.headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
        assert response.json()["request_id"] == generated


def test_the_response_carries_exactly_one_request_id_header(native_stack):
    response = requests.get(native_stack.url("gevent", "/api/whoami"), timeout=5)
    raw_headers = response.raw.headers.getlist("X-Request-ID")
    assert len(raw_headers) == 1


def test_a_bad_query_value_is_a_400_json_through_nginx(native_stack):
    for setup in SETUPS:
        response = requests.get(native_stack.url(setup, "/api/io?ms=abc"), timeout=5)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_parameter"


def test_an_unknown_host_is_refused_with_421_and_never_proxied(native_stack):
    response = requests.get(
        native_stack.url("sync", "/api/whoami"), headers={"Host": "evil.example"}, timeout=5
    )
    assert response.status_code == 421
    assert response.json()["error"] == "misdirected_request"


def test_the_index_page_is_served_by_nginx_and_version_banners_are_off(native_stack):
    response = requests.get(native_stack.base_url + "/", timeout=5)
    assert response.status_code == 200
    assert "/gevent/api/whoami" in response.text
    assert response.headers["Server"] == "nginx"
    app_response = requests.get(native_stack.url("sync", "/api/whoami"), timeout=5)
    assert app_response.headers["Server"] == "nginx"  # Gunicorn's banner does not leak


def test_nginx_errors_are_json(native_stack):
    missing = requests.get(native_stack.base_url + "/no-such-page", timeout=5)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    too_big = requests.post(
        native_stack.url("sync", "/api/whoami"), data=b"x" * (2 << 20), timeout=10
    )
    assert too_big.status_code == 413 and too_big.json()["error"] == "payload_too_large"


def test_the_gevent_workers_patch_before_anything_is_imported_unpatched(native_stack):
    assert "MonkeyPatchWarning" not in native_stack.log()


# --- Who serves 20 simultaneous requests: the concurrency model, from the server's clock ---


def serve_simultaneously(native_stack, setup: str, path: str) -> list[dict]:
    responses = simultaneous_get([native_stack.load(setup, path)] * SIMULTANEOUS)
    assert [r.status_code for r in responses] == [200] * SIMULTANEOUS
    return [r.json() for r in responses]


def test_sync_never_has_more_requests_in_flight_than_workers(native_stack):
    workers = native_stack.configs()["sync"]["workers"]
    seen = summarize(serve_simultaneously(native_stack, "sync", f"/api/io?ms={IO_MS}"))
    assert seen["max_in_flight"] <= workers
    assert seen["max_in_flight"] > 1  # the workers do run side by side
    assert seen["threads_per_process"] == 1
    assert seen["greenlets"] == 0


def test_gthread_overlaps_more_requests_than_workers_in_distinct_threads(native_stack):
    config = native_stack.configs()["gthread"]
    seen = summarize(serve_simultaneously(native_stack, "gthread", f"/api/io?ms={IO_MS}"))
    assert config["workers"] < seen["max_in_flight"] <= gunicorn_slots(config)
    assert seen["threads"] > config["workers"]
    assert seen["greenlets"] == 0


def test_gevent_overlaps_all_requests_inside_one_os_thread_per_process(native_stack):
    seen = summarize(serve_simultaneously(native_stack, "gevent", f"/api/io?ms={IO_MS}"))
    assert seen["max_in_flight"] == SIMULTANEOUS
    assert seen["threads_per_process"] == 1
    assert seen["greenlets"] == SIMULTANEOUS


# --- Isolation: a global leaks between concurrent requests, flask.g never does -----------


def isolation_results(native_stack, setup: str) -> list[dict]:
    urls = [
        native_stack.load(setup, f"/api/isolation?token=t{i}-{uuid.uuid4().hex[:8]}&ms={IO_MS}")
        for i in range(SIMULTANEOUS)
    ]
    responses = simultaneous_get(urls)
    assert [r.status_code for r in responses] == [200] * SIMULTANEOUS
    return [r.json() for r in responses]


def leaks(results: list[dict], store: str) -> int:
    return sum(not r["stores"][store]["intact"] for r in results)


@pytest.mark.parametrize("setup", SETUPS)
def test_flask_g_never_leaks_between_concurrent_requests(native_stack, setup):
    assert leaks(isolation_results(native_stack, setup), "flask_g") == 0


@pytest.mark.parametrize("setup", ["gthread", "gevent"])
def test_a_module_global_leaks_under_threads_and_greenlets(native_stack, setup):
    results = isolation_results(native_stack, setup)
    assert leaks(results, "module_global") > 0
    # The leaked value is another request's token, not garbage.
    tokens = {r["token"] for r in results}
    assert {r["stores"]["module_global"]["seen"] for r in results} <= tokens


def test_a_module_global_is_safe_under_sync_because_nothing_runs_concurrently(native_stack):
    assert leaks(isolation_results(native_stack, "sync"), "module_global") == 0


def test_a_dict_keyed_by_os_thread_leaks_under_gevent_but_thread_ident_does_not(native_stack):
    results = isolation_results(native_stack, "gevent")
    assert leaks(results, "dict_by_os_thread_id") > 0
    assert leaks(results, "dict_by_thread_ident") == 0  # gevent patches get_ident()


def test_dicts_keyed_by_thread_are_safe_under_gthread(native_stack):
    results = isolation_results(native_stack, "gthread")
    assert leaks(results, "dict_by_thread_ident") == 0
    assert leaks(results, "dict_by_os_thread_id") == 0


@pytest.mark.parametrize("setup", SETUPS)
def test_200_simultaneous_io_bound_requests_all_succeed(native_stack, setup, figures):
    """A burst far above every setup's concurrency queues (backlog, nginx) instead of failing:
    no 502 from an overflowing listen backlog, no timeout."""
    responses = simultaneous_get([native_stack.load(setup, "/api/io?ms=50")] * 200, timeout=60)
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 200, {s: statuses.count(s) for s in set(statuses)}
    figures(f"burst.native.{setup}", sent=len(statuses), failed=len(statuses) - 200)


@pytest.mark.parametrize("setup", SETUPS)
def test_gunicorn_itself_sends_no_version_banner(native_stack, setup):
    (bind,) = native_stack.configs()[setup]["bind"]
    response = requests.get(f"http://{bind}/api/whoami", timeout=5)
    assert response.headers["Server"] == "gunicorn"  # no version, even when reached directly
