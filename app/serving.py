"""Who is serving this request? Answered from the WSGI environ and the running thread.

The app never imports Gunicorn or gevent. It looks at what any WSGI server must tell it
(``SERVER_SOFTWARE``, ``wsgi.multithread``) and at the execution context it is running in:

* an OS thread, named by ``threading.get_native_id()`` (the kernel's thread id, which gevent's
  monkey-patching leaves alone), and
* a greenlet, if gevent is running us: ``greenlet`` is then already loaded and we are not on
  its main greenlet. We read ``sys.modules`` instead of importing it, so a sync or gthread
  worker never loads greenlet just to find out that it is not there.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Mapping
from typing import Any

HOSTNAME = socket.gethostname()
# The worker class whose requests run as greenlets on one OS thread, taking turns only where
# one would block (app/metrics.py relies on that).
GREENLETS = "gevent"


def current_greenlet_id() -> int | None:
    """The id of the greenlet running this code, or None when not inside a spawned greenlet."""
    greenlet_module = sys.modules.get("greenlet")
    if greenlet_module is None:
        return None
    current = greenlet_module.getcurrent()
    # The main greenlet (parent is None) is the plain OS thread itself: not a greenlet server.
    if current.parent is None:
        return None
    return id(current)


def worker_class(environ: Mapping[str, Any]) -> str:
    """Name the concurrency model: sync, gthread, gevent, werkzeug (dev server) or unknown."""
    return _classify(environ, current_greenlet_id())


def _classify(environ: Mapping[str, Any], greenlet_id: int | None) -> str:
    software = str(environ.get("SERVER_SOFTWARE", "")).lower()
    if software.startswith("werkzeug"):
        return "werkzeug"
    if not software.startswith("gunicorn") and "gunicorn/" not in software:
        return "unknown"
    if greenlet_id is not None:
        return GREENLETS
    if environ.get("wsgi.multithread"):
        return "gthread"
    return "sync"


def execution_context(environ: Mapping[str, Any]) -> dict[str, Any]:
    """The process, OS thread and greenlet that run the current request. Every whoami
    response carries it, so it is built in one pass: each fact is looked up once."""
    greenlet_id = current_greenlet_id()
    return {
        "worker_class": _classify(environ, greenlet_id),
        "hostname": HOSTNAME,
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "thread_id": threading.get_native_id(),
        "thread_name": threading.current_thread().name,
        "greenlet_id": greenlet_id,
        "multithread": bool(environ.get("wsgi.multithread")),
        "multiprocess": bool(environ.get("wsgi.multiprocess")),
    }
