"""gthread: a new connection goes to the worker with the least work in hand.

Every Gunicorn worker waits on the same listening socket, and whichever wakes first takes
the next connection, busy or not. nginx then keeps each connection alive and sends request
after request down it, so a connection taken by a worker whose threads are all busy keeps
queueing behind them while a sibling has threads idle. Counted with ``ss`` under load, one of
two stock gthread workers often held two or three times the other's connections, at times
nearly all of them: requests waiting for nothing below saturation, and a worker answering at
a multiple of its sibling's latency above it. Any bound built on workers x threads assumes
they spread.

The rule, checked each time a worker would take a connection (what nginx's ``least_conn``
and HAProxy's ``leastconn`` do, from the other side):

- a worker with an idle thread takes it: the request is served now;
- a worker whose threads are all busy takes it only if no sibling has fewer requests in
  hand (in its threads or queued for them) by more than ``SLACK``, and otherwise leaves it
  to that sibling; even then it takes one connection per ``MAX_WAIT`` (at the next turn of
  its main loop, which a finished request or, at the latest, Gunicorn's one-second poll
  brings), so a slow or stuck sibling never strands connections in the kernel's queue.

Each worker publishes its requests in hand in a small table the master maps in shared
memory before it forks (``LoadTable``): one integer a worker, written when a request starts
or ends, read when a connection arrives. A worker that stops (restart, reload, shutdown)
marks its entry as leaving, and the master frees the entry when the worker is gone
(gthread.py's child_exit hook), for the next worker to take.

Used by the gthread setup (gunicorn_conf/gthread.py): ``worker_class`` names the class
below, a subclass of Gunicorn's own gthread worker that changes when, and how many at a
time, it accepts, and nothing else. sync needs nothing (one request a worker, each
connection closed after its answer); gevent's workers have no threads to fill.
tests/unit/test_least_loaded.py checks the rule, and tests/integration/test_least_loaded.py a
real setup: its busy worker leaves new connections to an idle sibling.
"""

from __future__ import annotations

import mmap
import time

from gunicorn.workers.gthread import ThreadWorker

# How many more requests in hand than its least-loaded sibling a busy worker may have and
# still take a connection. Zero would have busy workers take turns, one connection each, and
# a busy worker's main loop comes round only when it gets the GIL back from its threads: a
# burst of new connections would wait in the kernel's queue. A few keep the load within a
# few requests of even.
SLACK = 4
# Longest a busy worker leaves a waiting connection to a sibling (seconds): far longer than
# a sibling with room takes to accept, far shorter than any client waits.
MAX_WAIT = 0.05

# Table entries: a worker's requests in hand (>= 0), or one of these.
FREE = -1  # no worker: the master may hand it out
LEAVING = -2  # a stopping worker: takes no connections, not handed out until it is reaped


class LoadTable:
    """Each worker's requests in hand, in memory shared by the master and its workers.

    Made in the master (with the first worker object it creates) and inherited by every
    fork. Entries are handed out and freed by the master only, which does one thing at a
    time, so two workers never share one. Each entry has one writer, its worker; the others
    only read it, and a stale read places one connection less well, nothing more."""

    def __init__(self, entries: int) -> None:
        self._memory = mmap.mmap(-1, 8 * entries)  # anonymous: shared across fork()
        self.load = memoryview(self._memory).cast("q")
        for i in range(entries):
            self.load[i] = FREE

    def claim(self) -> int | None:
        """A free entry, now a new worker's (None when all are taken: that worker then
        accepts as stock Gunicorn does)."""
        for i, value in enumerate(self.load):
            if value == FREE:
                self.load[i] = 0
                return i
        return None

    def fewest_elsewhere(self, entry: int) -> int | None:
        """The fewest requests in hand in any other running worker (None: no other)."""
        return min((v for i, v in enumerate(self.load) if i != entry and v >= 0), default=None)


_table: LoadTable | None = None


class LeastLoadedThreadWorker(ThreadWorker):
    """Gunicorn's gthread worker, accepting by the rule in this module's docstring."""

    # The Gunicorn worker this one extends, for the logs and the boot line (base.py).
    family = "gthread"

    def __init__(self, *args, **kwargs) -> None:
        # Runs in the master, before the fork: the one place entries are handed out.
        global _table
        super().__init__(*args, **kwargs)
        self.busy = 0  # requests in hand: handed to the thread pool and not yet finished
        self._waiting_since: float | None = None
        if _table is None:
            # Room for a reload, when new workers start before the old ones leave.
            _table = LoadTable(max(8, 4 * self.cfg.workers))
        self.entry = _table.claim()

    def _publish(self) -> None:
        if self.entry is not None and _table is not None and self.alive:
            _table.load[self.entry] = self.busy

    def _ahead(self) -> bool:
        """Every thread busy, and a sibling with fewer requests in hand by more than SLACK."""
        if self.entry is None or _table is None or self.busy < self.cfg.threads:
            return False
        fewest = _table.fewest_elsewhere(self.entry)
        return fewest is not None and self.busy > fewest + SLACK

    def _holding(self) -> bool:
        """Leaving waiting connections to a sibling, for MAX_WAIT since the first one."""
        if not self._ahead():
            self._waiting_since = None
            return False
        return self._waiting_since is not None and time.monotonic() - self._waiting_since < MAX_WAIT

    def accept(self, listener) -> None:
        # Stock Gunicorn takes one connection per turn of its main loop, which under load
        # waits for the GIL behind busy threads; this takes what is waiting, up to a thread
        # pool's worth, while the rule allows.
        for _ in range(self.cfg.threads):
            if self._ahead():
                now = time.monotonic()
                if self._waiting_since is None:
                    self._waiting_since = now
                if now - self._waiting_since < MAX_WAIT:
                    # Stop watching the socket, or the poller would report it again at
                    # once; the main loop asks to watch it again on each turn (below).
                    super().set_accept_enabled(False)
                    return
            self._waiting_since = None  # not ahead, or waited long enough: take one
            before = self.nr_conns
            super().accept(listener)
            if self.nr_conns == before:
                return  # nothing was waiting

    def set_accept_enabled(self, enabled: bool) -> None:
        if not self.alive and self.entry is not None and _table is not None:
            _table.load[self.entry] = LEAVING
        super().set_accept_enabled(enabled and not self._holding())

    def enqueue_req(self, conn) -> None:
        self.busy += 1
        self._publish()
        super().enqueue_req(conn)

    def finish_request(self, conn, fs) -> None:
        self.busy -= 1
        self._publish()
        super().finish_request(conn, fs)


def release(worker) -> None:
    """Free a reaped worker's entry (the master's child_exit hook calls this)."""
    entry = getattr(worker, "entry", None)
    if _table is not None and entry is not None:
        _table.load[entry] = FREE
