"""How many CPUs this process may really use: the one CPU count of the project.

Gunicorn's worker counts (base.py) and the benchmark's and report's bounds (harness/) all
divide by it, so they agree with each other inside a container and out of it.
"""

from __future__ import annotations

import os

CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"


def usable_cpus(cpu_max_file: str = CGROUP_CPU_MAX) -> int:
    """CPU affinity, capped by a cgroup v2 CPU quota.

    ``multiprocessing.cpu_count()`` counts the *host's* cores, even inside a container limited
    to 2 CPUs: on a 64-core host that means 129 sync workers and an OOM kill. The affinity mask
    honours ``docker run --cpuset-cpus``; ``cpu.max`` honours ``--cpus`` / Kubernetes limits.
    """
    # macOS and Windows have no affinity mask to read.
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    cpus = len(affinity) if affinity else os.cpu_count() or 1
    try:
        with open(cpu_max_file) as f:
            quota, period = f.read().split()
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) / int(period) + 0.5)))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota: affinity is all we know
    return cpus
