"""Gunicorn, gevent worker: a few processes, each running many greenlets on one OS thread.

Run: gunicorn -c python:gunicorn_conf.gevent      (needs gunicorn[gevent])
Fits: I/O-bound work with many slow waits (calls to other services, long polls). Each
request is a greenlet; monkey-patched blocking calls (socket, time.sleep, ...) switch to
another greenlet instead of blocking. Concurrency = workers x worker_connections. A
CPU-bound request blocks every other greenlet in its process until it finishes.

Monkey-patching: the worker calls gevent.monkey.patch_all() when it starts, before it loads
the app. That is only early enough because the app is not preloaded (preload_app = False in
base.py) and neither this module nor base.py imports the app: an app imported in the master
would load ssl and threading unpatched, and gevent warns (or breaks) later.
"""

# Every shared setting and hook: Gunicorn reads this module's names.
from gunicorn_conf.base import *  # noqa: F403
from gunicorn_conf.base import CPUS, env_int, tell_the_app

worker_class = "gevent"
# One process per CPU: a process runs Python on one core at a time, however many greenlets.
workers = env_int("WEB_CONCURRENCY", CPUS)
# Greenlets (simultaneous requests) per process. Each is cheap, but all share one core,
# so this is a cap against overload, not a throughput knob.
worker_connections = env_int("GUNICORN_WORKER_CONNECTIONS", 1000)
# Connections per process to each service the app waits on (the database, app/db.py; the
# delay service, app/upstream.py): bounded, not one per greenlet. Each
# PostgreSQL connection is a server process of its own, and the database runs queries on its
# own cores, so a thousand connections would not serve a thousand queries faster; 20 per
# process lets 20 queries wait at once, and further greenlets queue for a free connection for
# at most APP_POOL_TIMEOUT, then get a 503 (docs/database.md).
tell_the_app("APP_POOL_SIZE", 20)


# === Hooks: fairness between keep-alive connections ======================================


def pre_request(worker, req):
    """Note the event loop's iteration count when the request starts (see post_request)."""
    from gevent import get_hub

    req.loop_iteration = get_hub().loop.iteration


def post_request(worker, req, environ, resp):
    """Let every other greenlet run before this connection reads its next request, if this
    request never let them run itself.

    gevent switches greenlets only when a call would block. On a keep-alive connection whose
    client answers fast (nginx's pool, a load generator), the next request is often already
    in the socket buffer, so a request that never waits (hello) is followed by the next one
    without a switch, and the process's other connections wait: one busy connection starves
    the rest, and the tail grows to seconds. gevent.idle() waits until the event loop has
    nothing else pending: a fair round-robin. A request that waited (I/O) already yielded,
    and the loop has turned since it started; making it wait again would only delay its
    connection. Imported here, in the worker, after it monkey-patched.
    """
    from gevent import get_hub, idle

    if get_hub().loop.iteration == getattr(req, "loop_iteration", None):
        idle()
