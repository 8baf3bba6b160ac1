"""The knob natively: WSGI_APP names another app (the notes example, examples/notes/) and the
native stack (tools/native_stack.py: nginx + the three Gunicorn setups, every other setting
unchanged) serves it; it passes its own checks (examples/notes/checks.py) on each setup
through nginx. The compose version is tests/e2e/test_your_app.py."""

from __future__ import annotations

import pytest

from examples.notes.checks import CHECKS
from harness import launch

WSGI_APP = "examples.notes:create_app()"


@pytest.fixture(scope="module")
def notes_stack(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("notes")
    env = {"WSGI_APP": WSGI_APP, "NOTES_DB": str(scratch / "notes.sqlite3")}
    with launch.native_stack(scratch / "stack.log", env=env, ready_path="/healthz") as running:
        yield running


def test_every_setup_serves_the_app_the_knob_names(notes_stack):
    configs = notes_stack.configs()
    assert {s: (configs[s]["worker_class"], configs[s]["wsgi_app"]) for s in launch.SETUPS} == {
        s: (s, WSGI_APP) for s in launch.SETUPS
    }


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("setup", launch.SETUPS)
def test_the_app_passes_its_own_checks_through_nginx(notes_stack, setup, check):
    CHECKS[check](f"{notes_stack.base_url}/{setup}")
