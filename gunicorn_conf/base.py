"""Gunicorn settings shared by the three setups (sync.py, gthread.py, gevent.py).

Read this file with https://docs.gunicorn.org/en/stable/settings.html open. Each setup module
imports everything from here and sets only what truly differs: the worker class and its
concurrency knobs. Every value assumes the deployment this project ships: Gunicorn behind
nginx, which buffers slow clients and keeps connections to Gunicorn alive
(nginx/snippets/upstream/keepalive.conf). Measured effects of these values are in
docs/bench/bench.md; the comments below give the rule, not the figures.

Environment overrides (all optional): WSGI_APP (the app to serve), GUNICORN_BIND,
GUNICORN_TIMEOUT, GUNICORN_KEEPALIVE, WEB_CONCURRENCY (workers), GUNICORN_THREADS (gthread),
GUNICORN_WORKER_CONNECTIONS (gevent), GUNICORN_MAX_REQUESTS, GUNICORN_LOG_LEVEL,
GUNICORN_ACCESS_LOG, FORWARDED_ALLOW_IPS, PROMETHEUS_MULTIPROC_DIR.

This module must not import the app (or Flask): it runs in the master process, and for the
gevent setup nothing that opens locks or ssl may load before the worker monkey-patches.
(prometheus_client is imported only inside a hook, after the workers are forked.)
"""

import gc
import importlib.util
import json
import os
import shutil
import sys
from datetime import UTC, datetime

from gunicorn.glogging import Logger

from gunicorn_conf.cpus import usable_cpus


def env_int(name, default):
    """An integer from the environment, or ``default`` when unset or empty."""
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def tell_the_app(name, value):
    """Hand the app a fact only the server knows, through the environment its workers inherit
    (the app never imports this config, app/settings.py reads the variable). A value the
    operator set wins."""
    os.environ.setdefault(name, str(value))


# Worker counts in the setup modules are derived from this (gunicorn_conf/cpus.py).
CPUS = usable_cpus()

# --- The WSGI app ------------------------------------------------------------------------
# What to serve, in Gunicorn's own syntax: "module:variable" or "module:factory()". The one
# knob for serving your own app three ways (docs/your-app.md): WSGI_APP=yourpkg:create_app()
# natively, in compose, systemd, Kubernetes and Swarm. The module path is relative to the
# repository's root (the container's /srv), e.g. examples.notes:create_app(). Default: the
# demo app of this repository.
wsgi_app = os.environ.get("WSGI_APP", "").strip() or "app:create_app()"

# --- Server socket -----------------------------------------------------------------------
# 0.0.0.0 inside a container: only the compose network can reach it (the port is never
# published). Natively, bind to loopback (tools/native_stack.py does).
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Connections the kernel queues while every worker is busy. nginx holds slow clients, so this
# queue only absorbs bursts; the kernel caps it at net.core.somaxconn (4096 by default
# since Linux 5.4). A short backlog turns a burst into connection errors, i.e. 502s at nginx.
backlog = 2048
# One listening socket, opened by the master and shared by every worker, for all three
# setups. Gunicorn's reuse_port would give each worker a socket of its own and the master
# none: then, while every worker is being replaced at once (max_requests reached together, a
# crash), nothing listens, and each new connection is refused; nginx's retries
# (nginx/upstreams.conf) are refused too and the client gets a 502. The soak saw exactly that
# with gthread's workers on sockets of their own (docs/measuring.md); on one shared socket
# the kernel queues those connections until a worker takes them.
reuse_port = False

# --- Worker processes --------------------------------------------------------------------
# The setup modules set worker_class, workers and threads / worker_connections.
# Heartbeat limit. Under the sync worker this also kills a request running longer than this
# (the client gets a 502 from nginx). Under gthread and gevent it only catches a worker whose
# main loop stopped (a CPU-bound greenlet, a deadlock): a slow request there is *not* killed,
# and nginx's proxy_read_timeout (nginx/snippets/location/proxy.conf) is what bounds it. Above the
# app's 10 s maximum work time (app/settings.py).
timeout = env_int("GUNICORN_TIMEOUT", 30)
# On SIGTERM / SIGHUP, workers finish in-flight requests for up to this long. Compose's
# stop_grace_period and Kubernetes' terminationGracePeriodSeconds must be longer, or the
# container is SIGKILLed mid-drain.
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Seconds an idle keep-alive connection stays open (gthread and gevent; sync closes every
# connection). MUST be longer than nginx's upstream keepalive_timeout (20 s,
# nginx/snippets/upstream/keepalive.conf): if Gunicorn closes first, nginx may reuse a
# connection just as it closes and answer 502 "upstream prematurely closed connection".
keepalive = env_int("GUNICORN_KEEPALIVE", 75)
# Recycle each worker after this many requests, to bound slow memory leaks; the jitter
# staggers the restarts so workers never all restart at once. A restart costs about a second
# of that worker's capacity (exit, the master notices, the new worker imports the app), so
# keep restarts to a few a minute at full load: a low value throttles throughput and
# lengthens the tail. Gunicorn's default is 0 (never).
max_requests = env_int("GUNICORN_MAX_REQUESTS", 200000)
max_requests_jitter = max_requests // 10
# Import the app in each worker, after the fork, not in the master. Required for gevent
# (the worker must monkey-patch before the app imports ssl, threading, socket); kept for all
# three so SIGHUP reloads code the same way everywhere.
preload_app = False
# The heartbeat file is fchmod-ed on every loop; on a disk-backed or overlay filesystem that
# can stall workers. /dev/shm is memory-backed in containers and on Linux hosts.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# --- Requests ----------------------------------------------------------------------------
# Gunicorn's C parser (gunicorn-h1c, requirements.txt) reads each request's line and headers.
# Parsing is a large part of what Gunicorn itself spends on an ordinary request in Python;
# the benchmark's "C parser" lines measure what the C one saves (docs/measuring.md). "fast"
# requires it: an install without it stops at start (below) instead of serving slower
# unnoticed. GUNICORN_HTTP_PARSER=python serves with Gunicorn's Python parser where no C
# compiler is at hand.
http_parser = os.environ.get("GUNICORN_HTTP_PARSER", "fast")
if http_parser == "fast" and importlib.util.find_spec("gunicorn_h1c") is None:
    sys.exit(
        "gunicorn_conf: http_parser is 'fast' but gunicorn_h1c is not installed: "
        "pip install -r gunicorn_conf/requirements.txt, or set GUNICORN_HTTP_PARSER=python"
    )
# nginx (large_client_header_buffers 4 8k, nginx/snippets/http/basics.conf) is the one that
# limits request size, and answers in JSON. These are set so that what nginx accepts is
# rejected here as little as possible, and in JSON where it is (json_errors.py): the same
# 8 KiB line (8190 is Gunicorn's maximum), and 256 header fields, the most the C parser
# reads (nginx adds a few of its own; Gunicorn's default of 100 would refuse sooner).
limit_request_line = 8190
limit_request_fields = 256

# --- Proxy trust -------------------------------------------------------------------------
# Only the proxy may set X-Forwarded-Proto & co. Loopback natively; the compose file sets
# the app network's subnet. Never "*" unless nothing but the proxy can reach Gunicorn.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# --- Logging -----------------------------------------------------------------------------
# Errors to standard error: the container runtime / journald collects them.
errorlog = "-"
# No access log here by default: behind nginx it would be a second line for every request,
# and its cost is paid on the hot path of every worker (a JSON line, a lock, a write). nginx's
# JSON access line already holds the request id, the upstream, its timing and who served it
# (the app's X-Worker-* headers: app/logs.py, snippets/http/logging.conf). Set
# GUNICORN_ACCESS_LOG=- to log each request here too, as JSON (JsonAccessLogger below), e.g.
# when nothing is in front of Gunicorn.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# --- Control -----------------------------------------------------------------------------
# Gunicorn 25+ opens a control socket at $HOME/.gunicorn/gunicorn.ctl by default: several
# instances on one host would share that path, and a read-only container cannot create it.
# Nothing here uses gunicornc, so it is off.
control_socket_disable = True

# --- Metrics across workers --------------------------------------------------------------
# prometheus_client's multiprocess mode: each worker writes its values to files in this
# folder and the app's /metrics adds them up (app/metrics.py). One folder per setup (each
# container has its own /tmp; the native launcher gives each setup its own), emptied when
# the master starts so a restart never adds up the last run's numbers.
METRICS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")


# === Hooks and classes ===================================================================


class JsonAccessLogger(Logger):
    """One JSON object per request, with nginx's request id, so a line here joins nginx's
    JSON access log (and the app's JSON log lines) on `request_id`. Built with json.dumps:
    a quote or backslash in a URL cannot break the line, as it could in a format string."""

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        headers = dict((k.lower(), v) for k, v in req.headers)
        status = str(resp.status).split(None, 1)[0]
        self.access_log.info(
            json.dumps(
                {
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "log": "gunicorn_access",
                    "remote": environ.get("REMOTE_ADDR"),
                    "method": environ.get("REQUEST_METHOD"),
                    "path": environ.get("PATH_INFO"),
                    "query": environ.get("QUERY_STRING"),
                    "status": int(status) if status.isdigit() else status,
                    "bytes": getattr(resp, "sent", None),
                    "duration_ms": round(request_time.total_seconds() * 1000, 3),
                    "request_id": headers.get("x-request-id"),
                    "worker_class": self.cfg.worker_class_str,
                    "pid": os.getpid(),
                }
            )
        )


logger_class = JsonAccessLogger


def on_starting(server):
    """Empty the metrics folder: a restart must never add up the last run's numbers."""
    if METRICS_DIR:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
        os.makedirs(METRICS_DIR)


def post_worker_init(worker):
    """Changes to each worker, made here, once it has loaded the app and before it serves,
    so that the master loads nothing more.

    Each worker sends an answer of known length in one write, head and body together, not
    two: half the system calls and TCP segments per answer, for the worker and for nginx
    reading it. The same bytes in the same order; streamed, sendfile and HTTP/2 answers are
    written as Gunicorn writes them (gunicorn_conf/one_write.py says why and how).

    The Date header is formatted once a second, not once per answer
    (gunicorn_conf/date_header.py).

    The answers Gunicorn gives itself (a request it cannot parse) are JSON in the app's
    shape, not HTML (gunicorn_conf/json_errors.py).

    Whether a peer may set X-Forwarded-* (forwarded_allow_ips) is decided once per peer
    address, not per request (gunicorn_conf/peer_trust.py).

    Last, everything loaded so far (the app, its libraries, the server) is moved out of the
    garbage collector's sight with gc.freeze(): it lives as long as the worker, yet every
    full collection would walk all of it again while requests wait. Cycles a request leaves
    behind are still collected as before.
    """
    from gunicorn_conf import date_header, json_errors, one_write, peer_trust

    one_write.install()
    date_header.install()
    json_errors.install()
    peer_trust.install()
    gc.freeze()


def child_exit(server, worker):
    """A dead worker's live gauges (in flight, processes, threads) must stop counting."""
    if METRICS_DIR:
        from prometheus_client import multiprocess  # here, not at the top: see the docstring

        multiprocess.mark_process_dead(worker.pid)


def when_ready(server):
    """Print the resolved configuration as one JSON line, once the sockets are bound.

    Read from ``server.cfg``, so it shows what Gunicorn really uses after the config module,
    the environment and the command line were merged; tests assert it.
    """
    cfg = server.cfg
    resolved = {
        "event": "gunicorn_config",
        "worker_class": cfg.worker_class_str,
        "workers": cfg.workers,
        "threads": cfg.threads,
        "worker_connections": cfg.worker_connections,
        "usable_cpus": CPUS,
        "wsgi_app": cfg.wsgi_app,
        "bind": cfg.bind,
        "backlog": cfg.backlog,
        "reuse_port": cfg.reuse_port,
        "http_parser": cfg.http_parser,
        "limit_request_fields": cfg.limit_request_fields,
        "timeout": cfg.timeout,
        "graceful_timeout": cfg.graceful_timeout,
        "keepalive": cfg.keepalive,
        "max_requests": cfg.max_requests,
        "max_requests_jitter": cfg.max_requests_jitter,
        "preload_app": cfg.preload_app,
        "worker_tmp_dir": cfg.worker_tmp_dir,
        "forwarded_allow_ips": cfg.forwarded_allow_ips,
        "accesslog": cfg.accesslog,
        "metrics_dir": METRICS_DIR,
        "pool_size": int(os.environ["APP_POOL_SIZE"]),
        "pid": os.getpid(),
    }
    sys.stdout.write(json.dumps(resolved) + "\n")
    sys.stdout.flush()
