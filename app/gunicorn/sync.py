"""Gunicorn, sync worker: one process per request in flight.

Run: gunicorn -c app/gunicorn/sync.py
Fits: CPU-bound work and short requests behind a buffering proxy. A worker serves exactly one
request at a time and closes the connection after it, so concurrency = workers. Slow clients
would tie workers up, which is why it must sit behind nginx.
"""

import pathlib
import runpy

# The shared settings (base.py, beside this file); only what differs is set below.
globals().update(runpy.run_path(str(pathlib.Path(__file__).with_name("base.py"))))

worker_class = "sync"
# Gunicorn's rule of thumb: (2 x CPUs) + 1, so one worker can wait on I/O while the others
# keep the cores busy. Counted from the CPUs this process may use, not the host's.
# Measured (2 CPUs, /api/cpu?ms=5, 200 connections): 2, 3 and 5 workers all serve ~340
# req/s, so the extra workers cost CPU-bound work nothing and add I/O-bound slots.
workers = env_int("WEB_CONCURRENCY", 2 * CPUS + 1)  # noqa: F821 (from base.py)
# Pinned: with threads > 1 Gunicorn silently swaps the sync worker for gthread.
threads = 1
