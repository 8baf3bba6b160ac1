"""The isolation experiment: where can a request safely keep "its" value?

Each request stores its token in four places, waits, then reads all four back:

* ``module_global``: one variable for the whole process. Any concurrent request in the
  same process (another thread under gthread, another greenlet under gevent) overwrites it.
* ``dict_by_thread_ident``: a dict keyed by ``threading.get_ident()``, the "dict keyed by
  thread id" idea. Safe under gthread; under gevent it is only safe because monkey-patching
  makes ``get_ident()`` return the greenlet's id.
* ``dict_by_os_thread_id``: a dict keyed by the kernel's thread id. Under gevent all
  greenlets of a worker share one OS thread, so this one leaks there.
* ``flask_g``: Flask's application context, which lives in a ``contextvars.ContextVar``.
  Each thread and each greenlet has its own context, so it never leaks. This is why
  ``flask.request`` and ``flask.g`` are safe in every worker class.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import g

_module_global: str | None = None
_by_thread_ident: dict[int, str] = {}
_by_os_thread_id: dict[int, str] = {}

STORES = ("module_global", "dict_by_thread_ident", "dict_by_os_thread_id", "flask_g")


def _store(token: str) -> None:
    global _module_global
    _module_global = token
    _by_thread_ident[threading.get_ident()] = token
    _by_os_thread_id[threading.get_native_id()] = token
    g.isolation_token = token


def _read_back() -> dict[str, str | None]:
    # Under gevent get_ident() is a greenlet id: drop our entry so the dict cannot grow
    # without bound. The OS-thread dict has one key per thread and needs no cleanup.
    return {
        "module_global": _module_global,
        "dict_by_thread_ident": _by_thread_ident.pop(threading.get_ident(), None),
        "dict_by_os_thread_id": _by_os_thread_id.get(threading.get_native_id()),
        "flask_g": g.get("isolation_token"),
    }


def run_experiment(token: str, wait: Callable[[], None]) -> dict[str, Any]:
    """Store ``token`` everywhere, ``wait()``, and report which stores still hold it."""
    _store(token)
    wait()
    seen = _read_back()
    return {
        "token": token,
        "stores": {name: {"intact": seen[name] == token, "seen": seen[name]} for name in STORES},
        "leaked": sorted(name for name in STORES if seen[name] != token),
    }
