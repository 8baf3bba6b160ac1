"""Trusting the proxy in front of the app: Werkzeug's ProxyFix, with a cheaper list split.

ProxyFix reads the client's address, scheme, host and URL prefix from the ``X-Forwarded-*``
headers nginx sets (nginx/snippets/location/proxy.conf), keeping the value the trusted hop
added. It parses each header with ``werkzeug.http.parse_list_header``, a character-by-
character Python loop that handles quoted items; with four headers that loop was a tenth of
the whole app's time per request (cProfile, hello). These headers hold addresses, schemes,
hosts and paths, which never contain a quote: for a value without one, splitting on commas
gives exactly what the loop gives (it only treats ``\\`` and ``,`` specially inside quotes),
and anything quoted still goes to Werkzeug's parser. tests/unit/test_proxies.py checks both
agree.
"""

from __future__ import annotations

from werkzeug.middleware.proxy_fix import ProxyFix


class TrustedProxies(ProxyFix):
    def _get_real_value(self, trusted: int, value: str | None) -> str | None:
        if not (trusted and value):
            return None
        if '"' in value:
            return super()._get_real_value(trusted, value)
        values = [item for item in (part.strip(" \t") for part in value.split(",")) if item]
        return values[-trusted] if len(values) >= trusted else None
