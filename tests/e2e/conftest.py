"""The compose stack, for real: `docker compose up --build --wait`, tests, `docker compose down`.

Runs under its own project name and free ports, so it never touches a stack a user has up.
Base images come from PYTHON_IMAGE / NGINX_IMAGE (CI points them at local stand-ins).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from compose_stack import PROJECT, ComposeStack, compose_up


@pytest.fixture(scope="session")
def compose_stack() -> Iterator[ComposeStack]:
    # A subnet of its own, so it cannot clash with a user's stack that is up.
    with compose_up(PROJECT, os.environ.get("E2E_APP_SUBNET", "172.31.241.0/24")) as stack:
        yield stack


def pytest_collection_modifyitems(items):
    """The swarm test last among the tests on the shared compose stack: leaving a swarm
    (`docker swarm leave --force`, its teardown) breaks name resolution inside containers that
    were already running on the engine (moby/moby#45144), and the apps look up `db` and
    `delay` by name. Only stacks started afterwards (test_your_app's) resolve again."""
    swarm = [item for item in items if item.nodeid.startswith("tests/e2e/test_swarm.py")]
    shared = [
        i for i in items if i not in swarm and "compose_stack" in getattr(i, "fixturenames", ())
    ]
    if swarm and shared:
        rest = [i for i in items if i not in swarm]
        last_shared = max(rest.index(i) for i in shared)
        items[:] = rest[: last_shared + 1] + swarm + rest[last_shared + 1 :]
