"""A gthread worker whose threads are all busy leaves new connections to a worker with a
thread free, for a moment, before it takes them itself.

Gunicorn's gthread worker accepts every connection it can hold (``worker_connections``, 1,000)
and queues the requests its threads cannot serve yet. Its workers share one listening socket
(base.py), and when a burst of connections arrives, the worker that is on a CPU takes them
one after another before the other is scheduled: on two cores, one worker was seen holding
all of nginx's connections while the other's threads sat idle, serving half the requests
at once that the setup has slots for (docs/measuring.md). nginx keeps its connections to the
app for many requests (nginx/snippets/upstream/keepalive.conf), so that split lasts.

With this installed, a worker whose threads are all busy does not take a new connection
when it first sees one waiting: it stops listening for ``PATIENCE`` seconds, and a worker with
a thread free, which takes connections at once, takes it meanwhile. If connections are still
waiting after that, every worker is busy, and the busy worker takes them all, as Gunicorn
would have at once (on a server where every worker is busy that is where they must go, and
they must not wait behind the requests that keep arriving on connections already accepted).
It looks again when its loop next wakes: at the next request one of its threads finishes
(then it listens again at once, as a worker with a thread free, however long the pause had
left), or within Gunicorn's one-second poll, when none does (then no thread of it was free
for the waiting request anyway).
Nothing else changes: an accepted connection is served by its worker as before, and idle
keep-alive connections hold no thread, so they do not count.

Installed in each gthread worker by gthread.py's post_worker_init. It wraps four methods of
Gunicorn's ``ThreadWorker`` (pinned in requirements.txt); tests/integration/test_fair_accept.py
fails if a busy worker takes a connection a worker with a free thread was there to take.
"""

import select
import time
from typing import Any

# How long a busy worker leaves a waiting connection to the others: far longer than an idle
# worker takes to wake for one, far shorter than a request waits for a thread when every
# worker is busy.
PATIENCE = 0.01
# At most this many connections taken in one go once the patience is over.
DRAIN_AT_MOST = 128


def install(worker: Any) -> None:
    """From now on ``worker`` (a started gthread worker, before it serves) takes a new
    connection at once only while fewer connections are in its threads' hands than it has
    threads; busy, only once it has waited ``PATIENCE`` for another worker to take it. Every
    call below runs on the worker's main thread (the poller's loop), so the state needs no
    lock."""
    threads = worker.cfg.threads
    gunicorns_accept = worker.accept
    gunicorns_enqueue = worker.enqueue_req
    gunicorns_finish = worker.finish_request
    gunicorns_set_accept = worker.set_accept_enabled
    in_hand = [0]  # connections submitted to the thread pool and not yet back from it
    deaf_until = [0.0]  # a busy worker that saw a connection waiting listens again then

    def busy() -> bool:
        return in_hand[0] >= threads

    def take_all_waiting() -> None:
        for listener in worker.sockets:
            for _ in range(DRAIN_AT_MOST):
                before = worker.nr_conns
                gunicorns_accept(listener)  # non-blocking: nothing waiting, nothing taken
                if worker.nr_conns == before:
                    break

    def set_accept_enabled(enabled: bool) -> None:
        # Gunicorn's loop turns listening on whenever it is under worker_connections.
        if enabled and deaf_until[0]:
            if not busy():  # a thread of its own came free: it listens as a free worker
                deaf_until[0] = 0.0
            elif time.monotonic() < deaf_until[0]:
                enabled = False
            else:  # the patience is over, still busy: what waits, no other worker took
                deaf_until[0] = 0.0
                waiting, _, _ = select.select(worker.sockets, [], [], 0)
                if waiting:
                    take_all_waiting()
        gunicorns_set_accept(enabled)

    def accept(listener: Any) -> None:
        if not busy():
            gunicorns_accept(listener)
            return
        deaf_until[0] = time.monotonic() + PATIENCE
        gunicorns_set_accept(False)

    def enqueue_req(conn: Any) -> None:
        in_hand[0] += 1
        gunicorns_enqueue(conn)

    def finish_request(conn: Any, future: Any) -> None:
        # Called once for each connection enqueue_req submitted, when its thread is done
        # with it (Gunicorn may submit it again from here: enqueue_req counts it again).
        in_hand[0] -= 1
        gunicorns_finish(conn, future)

    # Gunicorn looks these up on the worker each time it calls them.
    worker.set_accept_enabled = set_accept_enabled
    worker.accept = accept
    worker.enqueue_req = enqueue_req
    worker.finish_request = finish_request
