"""The notes example (examples/notes/: the "your own app" of docs/your-app.md) through Flask's
test client: what it stores and finds, its answers to bad input, its outbound call."""

from __future__ import annotations

import pytest

from examples.notes import MAX_QUERY, create_app


@pytest.fixture()
def client(tmp_path):
    return create_app(str(tmp_path / "notes.sqlite3")).test_client()


def test_a_note_is_stored_listed_and_found(client):
    created = client.post("/notes", json={"text": "  buy 50% more milk_now  "})
    assert created.status_code == 201 and created.get_json()["text"] == "buy 50% more milk_now"
    client.post("/notes", json={"text": "buy 50 more milk"})
    listed = client.get("/notes").get_json()["notes"]
    assert [n["text"] for n in listed] == ["buy 50 more milk", "buy 50% more milk_now"]
    # LIKE's wildcards in the query are literal characters, not patterns.
    assert [n["text"] for n in client.get("/search?q=50%").get_json()["notes"]] == [
        "buy 50% more milk_now"
    ]
    assert client.get("/search?q=k_n").get_json()["notes"][0]["text"].endswith("milk_now")


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("post", "/notes", {"json": {"text": ""}}),
        ("post", "/notes", {"json": {"text": 5}}),
        ("post", "/notes", {"json": {"text": "x" * 501}}),
        ("post", "/notes", {"json": ["text"]}),
        ("post", "/notes", {"data": "not json", "content_type": "application/json"}),
        ("get", "/search", {}),
        ("get", f"/search?q={'x' * (MAX_QUERY + 1)}", {}),
    ],
)
def test_bad_input_gets_a_json_400_and_stores_nothing(client, method, path, body):
    answer = getattr(client, method)(path, **body)
    assert answer.status_code == 400 and answer.get_json()["error"]
    assert client.get("/notes").get_json()["notes"] == []


def test_unknown_routes_and_methods_answer_json(client):
    assert client.get("/nope").get_json()["status"] == 404
    assert client.delete("/notes").get_json()["status"] == 405


def test_the_quote_comes_over_http_from_the_service_the_app_started(client):
    answer = client.get("/quote")
    assert answer.status_code == 200 and answer.get_json()["quote"].endswith(".")


def test_the_health_route_reads_the_database(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_a_quote_service_that_does_not_answer_gets_a_json_503(client, monkeypatch):
    from examples.notes import quotes

    monkeypatch.setattr(quotes, "url", lambda: "http://127.0.0.1:9/")  # discard: nothing listens
    answer = client.get("/quote")
    assert answer.status_code == 503 and "did not answer" in answer.get_json()["error"]
