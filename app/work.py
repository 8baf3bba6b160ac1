"""Simulated work: the two kinds that decide which worker class fits a workload."""

from __future__ import annotations

import time


def wait_like_io(ms: int) -> None:
    """Block the way a network or database call would.

    ``time.sleep`` releases the GIL, so other threads run meanwhile; under gevent it is
    monkey-patched into a greenlet switch, so other greenlets run meanwhile. That is exactly
    how a real blocking socket read behaves in each model.
    """
    time.sleep(ms / 1000)


def burn_cpu(ms: int) -> int:
    """Spend ``ms`` of this thread's CPU time in pure Python, holding the GIL.

    Measured in thread CPU time rather than wall time, so a request burns the same amount of
    CPU whether or not the machine is busy; waiting for a core makes it slower, not cheaper.
    Returns the number of loop iterations, so the work cannot be optimised away.
    """
    deadline = time.thread_time() + ms / 1000
    iterations = 0
    while time.thread_time() < deadline:
        for _ in range(1000):
            iterations += 1
    return iterations
