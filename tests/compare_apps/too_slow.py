"""Answers its first requests at once (so compare's readiness and path checks pass), then
takes 3 s of CPU a request: past a Gunicorn timeout of 2 s (the test sets
GUNICORN_TIMEOUT=2), the sync worker is killed mid-request."""

import json
import time

WORK_S = 3.0
FAST_FIRST = 3  # per worker process: more than compare's checks send before loading
served = 0


def app(environ, start_response):
    global served
    served += 1
    if served > FAST_FIRST:
        deadline = time.monotonic() + WORK_S
        while time.monotonic() < deadline:  # busy: a sync worker cannot heartbeat
            pass
    body = json.dumps({"served": served}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response("200 OK", headers)
    return [body]
