"""The delay service (delay/) as a process on a loopback port, for the tests: stoppable and
restartable on the same port, for the outage tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from helpers import wait_until

from harness.launch import ROOT, free_port, http_status


class DelayService:
    """The delay service as a process on a fixed loopback port, stoppable and restartable."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "delay", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        wait_until(
            lambda: http_status(f"{self.url}/healthz") == 200, timeout=30, what="the delay service"
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@contextmanager
def running_delay_service() -> Iterator[DelayService]:
    """A delay service on a free port, stopped afterwards."""
    service = DelayService(free_port())
    service.start()
    try:
        yield service
    finally:
        service.stop()
