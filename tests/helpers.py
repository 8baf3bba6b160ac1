"""Small helpers shared by the test tiers: polling with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], *, timeout: float, interval: float = 0.2,
               what: str = "condition") -> T:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds.

    Exceptions count as "not yet" (a server still starting refuses connections); the last
    one is reported if the deadline passes.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}"
                                 + (f"; last error: {last_error!r}" if last_error else ""))
        time.sleep(interval)

