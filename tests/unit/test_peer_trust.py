"""gunicorn_conf/peer_trust.py: whether a peer may set X-Forwarded-*, decided once per
address, with Gunicorn's own answer."""

from __future__ import annotations

import pytest
from gunicorn.config import Config
from gunicorn.http.message import HeaderPolicy

from gunicorn_conf import peer_trust

# Gunicorn's own check, as peer_trust captured it before installing anything.
GUNICORNS = peer_trust._gunicorns


class Peer(HeaderPolicy):
    """What Gunicorn's request classes give the check: their config and the peer's address."""

    def __init__(self, cfg: Config, peer_addr) -> None:
        self.cfg, self.peer_addr = cfg, peer_addr


def config(allowed: str) -> Config:
    cfg = Config()
    cfg.set("forwarded_allow_ips", allowed)
    return cfg


@pytest.fixture
def decisions(monkeypatch):
    """Every time the check asks Gunicorn, the address it asked about."""
    asked: list = []

    def gunicorns(policy):
        asked.append(policy.peer_addr)
        return GUNICORNS(policy)

    monkeypatch.setattr(peer_trust, "_gunicorns", gunicorns)
    return asked


PEERS = [
    ("127.0.0.1", 40000),
    ("10.1.2.3", 40000),
    ("192.168.0.1", 40000),
    ("::1", 40000, 0, 0),
    ("not an address", 1),
    "/run/gunicorn.sock",  # a Unix socket's peer is no tuple: Gunicorn trusts it
]


@pytest.mark.parametrize("allowed", ["127.0.0.1,::1", "10.0.0.0/8", "*", ""])
def test_it_answers_as_gunicorn_does_for_every_kind_of_peer(allowed):
    cfg, trusted = config(allowed), peer_trust.per_peer()
    for peer in PEERS * 2:  # the second time from what it kept
        assert trusted(Peer(cfg, peer)) is bool(GUNICORNS(Peer(cfg, peer))), (allowed, peer)
    # Not always the same answer: the cases above tell trusted from untrusted.
    if allowed == "10.0.0.0/8":
        assert [trusted(Peer(cfg, p)) for p in PEERS[:3]] == [False, True, False]


def test_it_asks_gunicorn_once_per_address(decisions):
    cfg, trusted = config("127.0.0.1"), peer_trust.per_peer()
    for port in range(100):  # nginx's connections: one address, many ports
        assert trusted(Peer(cfg, ("127.0.0.1", port)))
        assert not trusted(Peer(cfg, ("10.0.0.9", port)))
    assert [address for address, _ in decisions] == ["127.0.0.1", "10.0.0.9"]


def test_another_config_is_asked_again_and_never_given_the_first_ones_answers(decisions):
    trusted = peer_trust.per_peer()
    assert trusted(Peer(config("127.0.0.1"), ("127.0.0.1", 1)))
    assert not trusted(Peer(config("10.0.0.0/8"), ("127.0.0.1", 1)))
    assert len(decisions) == 2


def test_it_keeps_at_most_kept_addresses_and_still_answers_for_the_rest(decisions, monkeypatch):
    monkeypatch.setattr(peer_trust, "KEPT", 3)
    cfg, trusted = config("10.0.0.0/8"), peer_trust.per_peer()
    addresses = [f"10.0.0.{n}" for n in range(5)]
    for _ in range(2):
        assert all(trusted(Peer(cfg, (address, 1))) for address in addresses)
    # The first three were asked once; the last two every time.
    asked = [address for address, _ in decisions]
    assert asked == addresses + addresses[3:]


def test_install_routes_every_request_check_through_it(monkeypatch):
    monkeypatch.setattr(HeaderPolicy, "_peer_is_trusted_proxy", GUNICORNS)
    peer_trust.install()
    installed = HeaderPolicy._peer_is_trusted_proxy
    assert installed is not GUNICORNS
    cfg = config("127.0.0.1")
    assert Peer(cfg, ("127.0.0.1", 1))._peer_is_trusted_proxy()
    assert Peer(cfg, ("10.0.0.1", 1))._peer_trusted_for_forwarded() == ({}, [])
