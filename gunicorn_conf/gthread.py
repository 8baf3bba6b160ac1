"""Gunicorn, gthread worker: a few processes, each with a pool of OS threads.

Run: gunicorn -c python:gunicorn_conf.gthread
Fits: mixed and I/O-bound work with ordinary blocking libraries. Concurrency = workers x
threads. Threads share a process and its GIL: I/O waits overlap, CPU work does not, so
add processes (not threads) for CPU. Idle keep-alive connections wait in a poller and hold
no thread.
"""

# Every shared setting and hook: Gunicorn reads this module's names.
from gunicorn_conf.base import *  # noqa: F403
from gunicorn_conf.base import CPUS, env_int, tell_the_app

worker_class = "gthread"
# One process per CPU uses every core for Python; the threads supply the I/O concurrency.
workers = env_int("WEB_CONCURRENCY", CPUS)
# Requests in flight per process. More threads overlap more I/O waits but contend for the
# GIL: too few caps I/O-bound throughput at threads / wait time, too many costs ordinary
# requests throughput and tail (measured in docs/bench/bench.md). CPU-bound requests are
# the trade: the busy threads take turns on one GIL, and the OS, not arrival order, picks
# who runs next, so the more threads draw, the further their tail stretches past sync's.
# The benchmark's "CPU-bound tail" line measures both sides through the same nginx: this
# config, and the same with a few threads a worker (FEW_THREADS, harness/targets.py), whose
# tail is near sync's but whose I/O-bound throughput falls with its threads. For a
# CPU-heavy app choose sync (deploy/README.md).
threads = env_int("GUNICORN_THREADS", 32)
# Connections per process to each service the app waits on (the database, app/db.py; the
# delay service, app/upstream.py): one per thread, since every thread may be inside a call
# at once. Fewer would make threads queue for a connection while holding their
# request; the cost is workers x threads connections at the database (docs/database.md).
tell_the_app("APP_POOL_SIZE", threads)
# Open connections per process, idle keep-alive ones included (nginx's pool among them).
# A worker with every thread busy leaves a new one to a worker with a thread free first
# (post_worker_init, below), instead of queueing it behind its own threads.
worker_connections = 1000


def post_worker_init(worker):
    """The shared changes to each worker (base.py), and one of this setup's own: a worker
    whose threads are all busy leaves new connections to a worker with a thread free first
    (gunicorn_conf/fair_accept.py)."""
    from gunicorn_conf import base, fair_accept

    base.post_worker_init(worker)
    fair_accept.install(worker)
