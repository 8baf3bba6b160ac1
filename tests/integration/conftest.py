"""The native stack: real nginx and the three real Gunicorn setups on loopback ports.

Started once per test session with the same launcher users run (tools/native_stack.py).
"""

from __future__ import annotations

import shutil

import pytest

from tools import launch


@pytest.fixture(scope="session")
def native_stack(tmp_path_factory) -> launch.Running:
    if shutil.which("nginx") is None:
        pytest.fail("nginx is not installed: the integration tier needs a real nginx "
                    "(Debian: apt-get install nginx)")
    with launch.native_stack(tmp_path_factory.mktemp("native") / "stack.log") as stack:
        yield stack
