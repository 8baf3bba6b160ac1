"""Gunicorn, sync worker: one process per request in flight.

Run: gunicorn -c python:gunicorn_conf.sync
Fits: CPU-bound work and short requests behind a buffering proxy. A worker serves exactly one
request at a time and closes the connection after it, so concurrency = workers. Slow clients
would tie workers up, which is why it must sit behind nginx.
"""

# Every shared setting and hook: Gunicorn reads this module's names.
from gunicorn_conf.base import *  # noqa: F403
from gunicorn_conf.base import CPUS, env_int, tell_the_app

worker_class = "sync"
# Gunicorn's rule of thumb: (2 x CPUs) + 1, so one worker can wait on I/O while the others
# keep the cores busy. Counted from the CPUs this process may use, not the host's. Extra
# workers cost CPU-bound work little (only one per core runs at a time) and add I/O slots.
workers = env_int("WEB_CONCURRENCY", 2 * CPUS + 1)
# Pinned: with threads > 1 Gunicorn silently swaps the sync worker for gthread.
threads = 1
# Connections per process to each service the app waits on (the database, app/db.py; the
# delay service, app/upstream.py): a process serves one request at a time, so one
# connection is never waited for and never idle while the process works.
tell_the_app("APP_POOL_SIZE", 1)
