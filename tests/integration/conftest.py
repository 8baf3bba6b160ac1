"""The native stack: real nginx and the three real Gunicorn setups on loopback ports.

Started once per test session with the same launcher users run (tools/native_stack.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from helpers import free_port, wait_until
from stack_client import SETUPS, boot_configs

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class NativeStack:
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def configs(self) -> dict[str, dict[str, Any]]:
        return boot_configs(self.log())

    def url(self, setup: str, path: str) -> str:
        return f"{self.base_url}/{setup}{path}"


def _ready(stack: NativeStack) -> bool:
    if requests.get(f"{stack.base_url}/healthz", timeout=2).status_code != 200:
        return False
    if not all(requests.get(stack.url(s, "/readyz"), timeout=2).status_code == 200
               for s in SETUPS):
        return False
    return set(stack.configs()) == set(SETUPS)


@pytest.fixture(scope="session")
def native_stack(tmp_path_factory) -> NativeStack:
    if shutil.which("nginx") is None:
        pytest.fail("nginx is not installed: the integration tier needs a real nginx "
                    "(Debian: apt-get install nginx)")
    http_port = free_port()
    app_ports = [free_port() for _ in SETUPS]
    log_path = tmp_path_factory.mktemp("native") / "stack.log"
    with log_path.open("w") as log:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "tools.native_stack", "--http-port", str(http_port),
             "--app-ports", *map(str, app_ports)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ),
        )
    stack = NativeStack(f"http://127.0.0.1:{http_port}", log_path)
    def started() -> bool:
        if launcher.poll() is not None:
            pytest.fail(f"the native stack exited early:\n{stack.log()[-3000:]}")
        return _ready(stack)

    try:
        wait_until(started, timeout=60, what="native stack to answer on every setup")
        yield stack
    finally:
        launcher.send_signal(signal.SIGTERM)
        try:
            launcher.wait(timeout=45)
        except subprocess.TimeoutExpired:
            launcher.kill()
            raise
