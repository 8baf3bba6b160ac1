"""The app through Flask's test client: every endpoint, every bad input."""

from __future__ import annotations

import pytest

from app import create_app
from app.settings import PoolSettings, Settings


@pytest.fixture()
def client():
    return create_app({"TESTING": True}).test_client()


EVIDENCE_FIELDS = {
    "worker_class",
    "pid",
    "ppid",
    "thread_id",
    "thread_name",
    "greenlet_id",
    "hostname",
    "request_id",
    "started_at",
    "finished_at",
}


def test_whoami_reports_the_process_thread_and_timing_of_the_request(client):
    body = client.get("/api/whoami").get_json()
    assert body.keys() >= EVIDENCE_FIELDS
    assert body["greenlet_id"] is None  # no gevent here
    assert body["started_at"] <= body["finished_at"]


def test_worker_class_is_read_from_the_wsgi_environ(client):
    body = client.get("/api/whoami", environ_base={"SERVER_SOFTWARE": "Werkzeug/3.1"}).get_json()
    assert body["worker_class"] == "werkzeug"
    body = client.get(
        "/api/whoami",
        environ_overrides={"SERVER_SOFTWARE": "gunicorn/27.0.1", "wsgi.multithread": True},
    ).get_json()
    assert body["worker_class"] == "gthread"
    body = client.get(
        "/api/whoami",
        environ_overrides={"SERVER_SOFTWARE": "gunicorn/27.0.1", "wsgi.multithread": False},
    ).get_json()
    assert body["worker_class"] == "sync"


def test_io_waits_at_least_the_requested_time(client):
    body = client.get("/api/io?ms=30").get_json()
    assert body["work"] == "io" and body["ms"] == 30
    assert body["finished_at"] - body["started_at"] >= 0.029


def test_cpu_burns_the_requested_cpu_time(client):
    body = client.get("/api/cpu?ms=20").get_json()
    assert body["work"] == "cpu" and body["iterations"] > 0
    assert body["finished_at"] - body["started_at"] >= 0.019


def test_io_and_cpu_default_to_100_ms_when_ms_is_missing(client):
    assert client.get("/api/io").get_json()["ms"] == 100


@pytest.mark.parametrize(
    "endpoint", ["/api/io", "/api/cpu", "/api/db", "/api/upstream", "/api/isolation?token=t&"]
)
@pytest.mark.parametrize(
    "value",
    ["abc", "-1", "10001", "1.5", "", "1e3", "%20", "99999999999", "NaN", "0x10", "+5", "١٢"],
)
def test_a_bad_ms_value_is_a_400_that_says_what_is_allowed(client, endpoint, value):
    sep = "&" if endpoint.endswith("&") else "?"
    response = client.get(f"{endpoint.rstrip('&')}{sep}ms={value}")
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_parameter"
    assert body["parameter"] == "ms"
    assert "0 to 10000" in body["message"]


def test_a_repeated_parameter_is_a_400(client):
    response = client.get("/api/io?ms=1&ms=2")
    assert response.status_code == 400
    assert "once" in response.get_json()["message"]


def test_ms_bounds_are_inclusive(client):
    assert client.get("/api/io?ms=0").status_code == 200
    app = create_app({"TESTING": True, "MAX_WORK_MS": 5})
    assert app.test_client().get("/api/io?ms=5").status_code == 200
    assert app.test_client().get("/api/io?ms=6").status_code == 400


@pytest.mark.parametrize("token", [None, "", "a" * 65, "bad token", "x;rm", "é"])
def test_isolation_needs_a_short_safe_token(client, token):
    url = "/api/isolation?ms=0" + ("" if token is None else f"&token={token}")
    response = client.get(url)
    assert response.status_code == 400
    assert response.get_json()["parameter"] == "token"


def test_isolation_reports_every_store_intact_without_concurrency(client):
    body = client.get("/api/isolation?token=abc_123&ms=1").get_json()
    assert body["token"] == "abc_123"
    assert set(body["stores"]) == {
        "module_global",
        "dict_by_thread_ident",
        "dict_by_os_thread_id",
        "flask_g",
    }
    assert all(store["intact"] for store in body["stores"].values())
    assert body["leaked"] == []


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ready"}


def test_db_without_a_database_is_a_503_that_says_so(client):
    response = client.get("/api/db?ms=1")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.get_json()["error"] == "database_not_configured"
    assert "DATABASE_URL" in response.get_json()["message"]


def test_an_unreachable_database_is_a_fast_503_and_not_ready_but_still_live():
    """Nothing listens on port 1: the pool cannot connect. Liveness stays 200 (a restart would
    not bring the database back); readiness and the queries say why they cannot serve."""
    unreachable = PoolSettings("postgresql://nobody@127.0.0.1:1/none", 1, 0.3)
    client = create_app({"TESTING": True, "DATABASE": unreachable}).test_client()
    response = client.get("/api/db?ms=1")
    assert response.status_code == 503
    assert response.get_json()["error"] == "database_unavailable"
    assert response.headers["Retry-After"] == "1"
    assert client.get("/readyz").status_code == 503
    assert client.get("/readyz").get_json() == {"status": "not_ready", "database": "unreachable"}
    assert client.get("/healthz").status_code == 200


def test_readiness_is_503_until_the_app_is_initialised():
    app = create_app({"TESTING": True})
    app.extensions["ready"] = False
    response = app.test_client().get("/readyz")
    assert response.status_code == 503


@pytest.mark.parametrize(
    "method, url, status, error",
    [
        ("GET", "/nope", 404, "not_found"),
        ("POST", "/api/whoami", 405, "method_not_allowed"),
        ("DELETE", "/api/io", 405, "method_not_allowed"),
    ],
)
def test_http_errors_are_json_not_html(client, method, url, status, error):
    response = client.open(url, method=method)
    assert response.status_code == status
    assert response.is_json
    body = response.get_json()
    assert body["error"] == error and body["status"] == status and body["message"]


def test_405_keeps_the_allow_header(client):
    response = client.post("/api/whoami")
    assert "GET" in response.headers["Allow"]


def test_a_body_over_the_limit_is_a_413_json():
    app = create_app({"TESTING": True, "MAX_CONTENT_LENGTH": 10})

    @app.post("/echo")
    def echo():
        from flask import request

        return {"size": len(request.get_data())}

    response = app.test_client().post("/echo", data=b"x" * 100)
    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"


def test_an_unexpected_exception_is_a_500_json_without_internals():
    app = create_app({"TESTING": False, "PROPAGATE_EXCEPTIONS": False})

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    body = response.get_json()
    assert body["error"] == "internal_server_error"
    assert "secret" not in response.get_data(as_text=True)


def test_a_400_from_werkzeug_is_json_too(client):
    # A malformed JSON body parsed by a view raises Werkzeug's BadRequest.
    app = create_app({"TESTING": True})

    @app.post("/json")
    def take_json():
        from flask import request

        return {"got": request.get_json()}

    response = app.test_client().post("/json", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"


def test_debug_mode_is_off_even_when_the_environment_asks_for_it(monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    assert create_app().debug is False


class TestRequestId:
    def test_a_well_formed_id_is_kept_and_echoed(self, client):
        response = client.get("/api/whoami", headers={"X-Request-ID": "abc-123.x_y"})
        assert response.headers["X-Request-ID"] == "abc-123.x_y"
        assert response.get_json()["request_id"] == "abc-123.x_y"

    @pytest.mark.parametrize("supplied", ["a" * 129, "has space", "new\\nline", "<script>"])
    def test_a_malformed_id_is_replaced(self, client, supplied):
        response = client.get("/api/whoami", headers={"X-Request-ID": supplied})
        generated = response.headers["X-Request-ID"]
        assert generated != supplied and len(generated) == 32
        assert response.get_json()["request_id"] == generated

    def test_a_missing_id_is_generated(self, client):
        response = client.get("/api/whoami")
        assert len(response.headers["X-Request-ID"]) == 32

    def test_error_bodies_carry_the_request_id(self, client):
        response = client.get("/api/io?ms=x", headers={"X-Request-ID": "trace-1"})
        assert response.get_json()["request_id"] == "trace-1"


def test_the_client_address_comes_from_x_forwarded_for_only_behind_a_trusted_proxy():
    forwarded = {"X-Forwarded-For": "6.6.6.6"}
    direct = create_app({"TESTING": True}).test_client()
    body = direct.get(
        "/api/whoami", headers=forwarded, environ_base={"REMOTE_ADDR": "10.0.0.9"}
    ).get_json()
    assert body["client_addr"] == "10.0.0.9"  # no trusted proxy: the header is ignored
    proxied = create_app({"TESTING": True, "TRUSTED_PROXY_HOPS": 1}).test_client()
    body = proxied.get(
        "/api/whoami", headers=forwarded, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    ).get_json()
    assert body["client_addr"] == "6.6.6.6"  # what the one trusted proxy reported


def test_the_apps_log_lines_are_json_with_the_request_id(capsys):
    import json

    app = create_app({"TESTING": False, "PROPAGATE_EXCEPTIONS": False})

    @app.get("/boom")
    def boom():
        raise RuntimeError("logged, not shown")

    app.test_client().get("/boom", headers={"X-Request-ID": "trace-42"})
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["level"] == "error" and line["request_id"] == "trace-42"
    assert "RuntimeError" in line["exception"]


def test_metrics_count_requests_by_route_method_status_and_worker_class(client):
    client.get("/api/whoami")
    client.get("/api/io?ms=x")
    text = client.get("/metrics").get_data(as_text=True)
    sample = 'http_requests_total{method="GET",route="/api/io",status="400",worker_class="unknown"}'
    assert sample in text
    assert "http_request_duration_seconds_bucket" in text


def test_every_answer_names_its_worker_for_nginxs_access_log(client):
    import os

    for url in ("/api/whoami", "/api/io?ms=x", "/no-such-page"):
        response = client.get(url)
        assert response.headers["X-Worker-Pid"] == str(os.getpid())
        assert response.headers["X-Worker-Class"] == "unknown"  # the test client is no server


def test_observability_can_be_switched_off_to_measure_its_cost():
    client = create_app({"TESTING": True, "OBSERVABILITY": False}).test_client()
    response = client.get("/api/whoami")
    assert response.status_code == 200
    assert "X-Request-ID" not in response.headers and "X-Worker-Pid" not in response.headers
    assert client.get("/metrics").status_code == 404
    # Errors stay JSON: that is the API, not observability.
    assert client.get("/no-such-page").get_json()["error"] == "not_found"


def test_upstream_without_a_service_is_a_503_that_says_so(client):
    response = client.get("/api/upstream?ms=1")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.get_json()["error"] == "upstream_not_configured"


def test_an_unreachable_upstream_is_a_fast_503_and_the_app_stays_ready():
    """Nothing listens on port 1. Unlike the database, readiness does not depend on it."""
    unreachable = PoolSettings("http://127.0.0.1:1", 1, 0.3)
    client = create_app({"TESTING": True, "UPSTREAM": unreachable}).test_client()
    response = client.get("/api/upstream?ms=1")
    assert response.status_code == 503
    assert response.get_json()["error"] == "upstream_unavailable"
    assert client.get("/readyz").status_code == 200


def test_the_database_url_comes_from_the_environment_or_from_a_secret_file(tmp_path):
    """DATABASE_URL, or DATABASE_URL_FILE naming a file that holds it (a Docker secret,
    systemd's LoadCredential): a password kept out of the environment."""
    url = "postgresql://app:s3cret@db:5432/app"
    assert Settings.from_environ({"DATABASE_URL": url}).database_url == url
    secret_file = tmp_path / "database_url"
    secret_file.write_text(url + "\n")
    from_file = Settings.from_environ({"DATABASE_URL_FILE": str(secret_file)})
    assert from_file.database_url == url
    assert from_file.flask_config()["DATABASE"].url == url
    assert Settings.from_environ({}).flask_config()["DATABASE"] is None
    with pytest.raises(ValueError, match="not both"):
        Settings.from_environ({"DATABASE_URL": url, "DATABASE_URL_FILE": str(secret_file)})
    with pytest.raises(FileNotFoundError):
        Settings.from_environ({"DATABASE_URL_FILE": str(tmp_path / "missing")})
