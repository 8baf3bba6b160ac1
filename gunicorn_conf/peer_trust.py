"""Whether the peer may set ``X-Forwarded-*``: decided once per peer address, not per request.

Gunicorn trusts the forwarding headers (``secure_scheme_headers``, ``forwarder_headers``) only
from an address in ``forwarded_allow_ips`` (base.py). It decides that again for every
request: it parses the peer's address with ``ipaddress`` and tests it against each allowed
network, about 2 % of a worker's time on a small answer (py-spy, gevent under hello). Behind
nginx the peer is nearly always one of a handful of addresses (nginx's), and the answer for
an address cannot change while the worker lives: its config is fixed until a reload, which
starts new workers. So the answer is kept per address.

At most ``KEPT`` addresses are kept: a Gunicorn that clients reach directly sees many, and
those past the first ``KEPT`` are decided as Gunicorn decides them, each time. Installed in
each worker by base.py's post_worker_init hook, like date_header.py;
tests/unit/test_peer_trust.py checks it against Gunicorn's own decision.
"""

from typing import Any

from gunicorn.http import message

_gunicorns = message.HeaderPolicy._peer_is_trusted_proxy
KEPT = 1024


def per_peer() -> Any:
    """Gunicorn's ``_peer_is_trusted_proxy``, remembering each address's answer for one
    config. Threads that race on an address's first request each store the same answer."""
    answers: dict[str, bool] = {}
    kept_for: list[Any] = [None]  # the config the answers are for

    def _peer_is_trusted_proxy(self: Any) -> bool:
        peer = self.peer_addr
        if not isinstance(peer, tuple):  # a Unix socket: no address to remember
            return bool(_gunicorns(self))
        if self.cfg is not kept_for[0]:  # another config (tests): start over
            answers.clear()
            kept_for[0] = self.cfg
        trusted = answers.get(peer[0])
        if trusted is None:
            trusted = bool(_gunicorns(self))
            if len(answers) < KEPT:
                answers[peer[0]] = trusted
        return trusted

    return _peer_is_trusted_proxy


def install() -> None:
    """Every request's trust check (both HTTP/1 parsers, and HTTP/2) is remembered per
    address from now on."""
    message.HeaderPolicy._peer_is_trusted_proxy = per_peer()  # type: ignore[method-assign]
