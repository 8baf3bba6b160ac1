"""Your own app in the compose stack, with only the knob changed (docs/your-app.md): the
notes example (examples/notes/) built into the app image through APP_SOURCE /
APP_REQUIREMENTS, served by WSGI_APP three ways behind nginx, and passing its own checks
(examples/notes/checks.py) on each setup.

Its own compose project, ports, subnet and image tag, so the demo stack of the other e2e
tests is never touched."""

from __future__ import annotations

import os

import pytest
from compose_stack import compose_up

from examples.notes.checks import CHECKS
from harness.launch import SETUPS, boot_configs

PROJECT = "flask-three-ways-your-app-e2e"
# Everything a user sets to serve their own app instead of the demo, and nothing else.
KNOB = {
    "APP_SOURCE": "examples/notes",
    "APP_REQUIREMENTS": "examples/notes/requirements.txt",
    "WSGI_APP": "examples.notes:create_app()",
    "HEALTHCHECK_PATH": "/healthz",
    "APP_IMAGE": "flask-three-ways/notes:e2e",
}


@pytest.fixture(scope="module")
def notes_stack():
    # nginx and what it depends on (the three app services); no Locust, no Prometheus.
    subnet = os.environ.get("E2E_YOUR_APP_SUBNET", "172.31.242.0/24")
    with compose_up(PROJECT, subnet, "nginx", env=KNOB) as stack:
        yield stack


def test_every_setup_serves_the_app_the_knob_names(notes_stack):
    services = [f"app-{setup}" for setup in SETUPS]
    configs = boot_configs(notes_stack.compose("logs", "--no-color", *services))
    assert {setup: configs[setup]["wsgi_app"] for setup in SETUPS} == {
        setup: KNOB["WSGI_APP"] for setup in SETUPS
    }
    # Healthy means the image's healthcheck got a 200 from the app's own HEALTHCHECK_PATH.
    health = {s["Service"]: s["Health"] for s in notes_stack.services()}
    assert all(health[service] == "healthy" for service in services), health


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("setup", SETUPS)
def test_the_app_passes_its_own_checks_through_nginx(notes_stack, setup, check):
    CHECKS[check](f"{notes_stack.base_url}/{setup}")
