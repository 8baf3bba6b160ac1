"""The notes app's own checks, over HTTP against a running server: what its owner would run
after a deploy. The e2e tier runs them against each setup through nginx
(tests/e2e/test_your_app.py), and the integration tier natively (tests/integration/).

Each check takes a base URL (e.g. http://127.0.0.1:8080/gevent) and raises AssertionError.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import requests

TIMEOUT = 10


def check_health(base: str) -> None:
    answer = requests.get(f"{base}/healthz", timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}, answer.text


def check_a_note_is_stored_and_found(base: str) -> None:
    text = f"note {uuid.uuid4().hex}"
    created = requests.post(f"{base}/notes", json={"text": text}, timeout=TIMEOUT)
    assert created.status_code == 201 and created.json()["text"] == text, created.text
    listed = requests.get(f"{base}/notes", timeout=TIMEOUT).json()["notes"]
    assert any(note["id"] == created.json()["id"] for note in listed)
    found = requests.get(f"{base}/search", params={"q": text[5:]}, timeout=TIMEOUT).json()
    assert [note["text"] for note in found["notes"]] == [text]


def check_bad_input_gets_a_json_400(base: str) -> None:
    for answer in (
        requests.post(f"{base}/notes", json={"text": ""}, timeout=TIMEOUT),
        requests.post(f"{base}/notes", data="not json", timeout=TIMEOUT),
        requests.get(f"{base}/search", timeout=TIMEOUT),
        requests.get(f"{base}/search", params={"q": "x" * 101}, timeout=TIMEOUT),
    ):
        assert answer.status_code == 400 and answer.json()["error"], answer.text


def check_the_outbound_call_answers(base: str) -> None:
    answer = requests.get(f"{base}/quote", timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.json()["quote"], answer.text


CHECKS: dict[str, Callable[[str], None]] = {
    name.removeprefix("check_"): check
    for name, check in dict(globals()).items()
    if name.startswith("check_")
}
