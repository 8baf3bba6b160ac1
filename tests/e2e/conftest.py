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
