"""The delay service: another service the app calls over HTTP, which answers after a wait.

``GET /delay?ms=N`` answers ``{"waited_ms": N}`` after N milliseconds; ``GET /healthz`` at
once. It stands in for the services a real app waits on (an internal API, a payment
provider), so /api/upstream (app/upstream.py) measures a real outbound HTTP call: a socket,
a connection pool, timeouts. Standard library only (asyncio): one process holds thousands
of waiting requests, so it is never the bottleneck the app's setups are measured against.
Run: ``python -m delay --port 8000``.
"""
