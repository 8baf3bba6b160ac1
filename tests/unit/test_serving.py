"""How the app tells which server runs it, without importing that server."""

from __future__ import annotations

import subprocess
import sys

import gevent

from app import serving

GUNICORN = {"SERVER_SOFTWARE": "gunicorn/27.0.1"}


def test_inside_a_greenlet_the_app_reports_gevent_and_a_greenlet_id():
    worker = gevent.spawn(lambda: (serving.worker_class(GUNICORN), serving.current_greenlet_id()))
    worker.join()
    worker_class, greenlet_id = worker.value
    assert worker_class == "gevent"
    assert greenlet_id == id(worker)


def test_on_a_plain_thread_there_is_no_greenlet_even_with_greenlet_loaded():
    assert "greenlet" in sys.modules  # imported by gevent above
    assert serving.current_greenlet_id() is None
    assert serving.worker_class(GUNICORN) == "sync"


def test_an_unknown_server_is_reported_as_unknown():
    assert serving.worker_class({"SERVER_SOFTWARE": "waitress"}) == "unknown"


def test_the_app_package_imports_no_server():
    """The architecture's rule: the app never imports Gunicorn, gevent or Locust."""
    code = (
        "import sys; from app import create_app; create_app();"
        "print(sorted(m for m in ('gunicorn', 'gevent', 'greenlet', 'locust') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=serving.__file__.rsplit("/app/", 1)[0],
    )
    assert out.stdout.strip() == "[]"
