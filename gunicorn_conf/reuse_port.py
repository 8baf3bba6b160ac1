"""A listening socket per worker (Gunicorn's ``reuse_port``), so the kernel, not a race,
decides which worker takes a new connection. Used by the gthread setup (gthread.py says why
only there).

On one shared socket every worker waits for the next connection and the first to wake takes
it, whether or not it is the busier one. nginx then keeps that connection alive, so the split
lasts for as long as nginx's pool does: at times nearly every connection on one worker, its
threads queueing requests while the other worker's core idles. With SO_REUSEPORT each worker
binds a socket of its own to the same address, and the kernel hands each new connection to
one of them by a hash of its addresses: an even split, decided before any worker wakes, and
no connection held back (docs/measuring.md).

Two things change with sockets of their own, and this module handles both:

* When to use them (``wanted``). Only when each worker can bind: a TCP address, not one
  handed over by systemd (LISTEN_FDS, deploy/systemd/), which Gunicorn would then ignore;
  and only with more than one worker, since the master holds no socket then, and a lone
  worker's restart would leave nothing listening for a moment. ``GUNICORN_REUSE_PORT=0``
  keeps one shared socket anyway (the benchmark measures both side by side).
* A worker that stops. The kernel keeps hashing new connections to a socket until it is
  closed, and Gunicorn's gthread worker closes its socket only once it has drained (its
  in-flight requests done, nginx's idle connections closed, up to graceful_timeout). A
  connection queued there meanwhile would wait for the drain, then be reset.
  ``close_when_draining`` closes it as the worker stops accepting instead, so new
  connections go to the other workers at once. The few already in its queue at that moment
  are moved to a sibling by the kernel where net.ipv4.tcp_migrate_req is 1 (compose and the
  Swarm stack set it; otherwise they are reset, and nginx retries an idempotent request).

One thing is lost: a second Gunicorn started by mistake with this config on the same
address (same user) joins the group and takes a share of the connections, instead of
failing with "address already in use". Check what listens (`ss -ltnp`) when two may run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence


def wanted(bind: str | Sequence[str], workers: int) -> bool:
    """Whether each worker should bind a socket of its own (see the module docstring)."""
    addresses = [bind] if isinstance(bind, str) else list(bind)
    handed_over = bool(os.environ.get("LISTEN_FDS"))
    tcp = all(not a.startswith(("unix:", "fd://")) for a in addresses)
    turned_off = os.environ.get("GUNICORN_REUSE_PORT", "").strip() == "0"
    return tcp and not handed_over and workers > 1 and not turned_off


def close_when_draining(worker) -> None:
    """Close the worker's own sockets when it stops accepting for good (SIGTERM, SIGHUP,
    max_requests), not when it has drained.

    Gunicorn's gthread worker calls ``set_accept_enabled(False)`` both when it has as many
    connections as ``worker_connections`` (it accepts again later: the socket must stay)
    and once its main loop has ended (``alive`` is then False): only the second closes."""
    set_accept_enabled = worker.set_accept_enabled

    def set_accept_enabled_then_close(enabled: bool) -> None:
        set_accept_enabled(enabled)
        if not enabled and not worker.alive:
            for listener in worker.sockets:
                listener.close()  # Gunicorn's own close at the end is then a no-op

    worker.set_accept_enabled = set_accept_enabled_then_close
