"""app/proxies.py splits X-Forwarded-* lists its own way: it must keep what Werkzeug's
ProxyFix would have kept, for every shape of value, or the client's address, scheme, host and
prefix change under the app."""

from __future__ import annotations

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from app.proxies import TrustedProxies

VALUES = [
    None,
    "",
    "203.0.113.7",
    "203.0.113.7, 10.0.0.2",
    "203.0.113.7,10.0.0.2,\t172.18.0.5 ",
    " , ,203.0.113.7,,",
    ",",
    "https",
    "example.com:8443",
    "/sync",
    '"quoted, with comma", 10.0.0.2',
    '"unclosed, 10.0.0.2',
    "a\\,b, c",
    "[2001:db8::1]:4711, 198.51.100.9",
]


def passthrough(environ, start_response):
    return []


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("trusted", [0, 1, 2, 3])
def test_it_keeps_the_value_werkzeugs_parser_keeps(value, trusted):
    ours = TrustedProxies(passthrough)._get_real_value(trusted, value)
    werkzeugs = ProxyFix(passthrough)._get_real_value(trusted, value)
    assert ours == werkzeugs


def test_the_app_sees_the_client_as_the_trusted_hop_reports_it():
    from app import create_app

    app = create_app({"TESTING": True, "TRUSTED_PROXY_HOPS": 1})
    response = app.test_client().get(
        "/api/whoami",
        headers={
            # A client-supplied value first, then the one the trusted hop (nginx) appended.
            "X-Forwarded-For": "6.6.6.6, 203.0.113.7",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "example.com",
            "X-Forwarded-Prefix": "/gevent",
        },
    )
    body = response.get_json()
    assert body["client_addr"] == "203.0.113.7"
    assert body["scheme"] == "https"
    assert body["url"] == "https://example.com/gevent/api/whoami"
