"""Gunicorn, gthread worker: a few processes, each with a pool of OS threads.

Run: gunicorn -c app/gunicorn/gthread.py
Fits: mixed and I/O-bound work with ordinary blocking libraries. Concurrency = workers x
threads. Threads share a process and its GIL: I/O waits overlap, CPU work does not, so
add processes (not threads) for CPU. Idle keep-alive connections wait in a poller and hold
no thread.
"""

import pathlib
import runpy

# The shared settings (base.py, beside this file); only what differs is set below.
globals().update(runpy.run_path(str(pathlib.Path(__file__).with_name("base.py"))))

worker_class = "gthread"
# One process per CPU uses every core for Python; the threads supply the I/O concurrency.
workers = env_int("WEB_CONCURRENCY", CPUS)  # noqa: F821 (from base.py)
# Requests in flight per process. More threads overlap more I/O waits but contend for the
# GIL. Measured (make bench, 2 CPUs, 200 connections): 8 threads capped /api/io?ms=50 at
# 300 req/s, below Flask's own threaded dev server (~900); 32 serve ~1,190 (93 % of their
# 1,280 bound) for ~10 % less hello throughput; 64 lost a third of hello throughput to GIL
# contention. A database pool per process needs as many connections as this.
threads = env_int("GUNICORN_THREADS", 32)  # noqa: F821
# Open connections per process, idle keep-alive ones included (nginx's pool among them).
worker_connections = 1000
