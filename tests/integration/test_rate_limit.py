"""Per-client rate limiting at nginx's public port; the load port is unlimited.

The hammering client connects from its own loopback address (127.0.0.2), so nginx counts it
as a client of its own and the rest of the suite, on 127.0.0.1, is never rate-limited.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

from helpers import wait_until

BURST = 100  # nginx/sites/stack.conf: limit_req ... burst=100
CLIENT = ("127.0.0.2", 0)


def hammer(url: str, count: int) -> list[tuple[int, dict, dict]]:
    """``count`` GETs back to back on one keep-alive connection from 127.0.0.2."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=5, source_address=CLIENT
    )
    results = []
    try:
        for _ in range(count):
            connection.request("GET", parts.path, headers={"Host": "localhost"})
            response = connection.getresponse()
            results.append(
                (response.status, dict(response.getheaders()), json.loads(response.read()))
            )
    finally:
        connection.close()
    return results


def test_a_client_over_its_rate_gets_429_json_and_is_served_again_after(native_stack):
    url = native_stack.url("sync", "/api/whoami")
    results = hammer(url, 3 * BURST)
    statuses = [status for status, _, _ in results]
    assert set(statuses) == {200, 429}
    assert statuses.count(200) >= BURST
    _, headers, body = next(r for r in results if r[0] == 429)
    assert body["error"] == "too_many_requests"
    assert (
        headers["Retry-After"] == "1"
    )  # when to come back (nginx/snippets/http/admission-zone.conf)
    assert headers["X-Request-ID"]  # the refusal still carries the usual headers
    # The limiter refills: the same client is served again shortly.
    wait_until(
        lambda: hammer(url, 1)[0][0] == 200,
        timeout=10,
        what="the rate limit to let the client through again",
    )


def test_the_load_port_has_no_rate_limit(native_stack):
    statuses = [s for s, _, _ in hammer(native_stack.load("sync", "/api/whoami"), 3 * BURST)]
    assert statuses == [200] * (3 * BURST)
