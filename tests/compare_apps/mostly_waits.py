"""Every request waits 50 ms (as on a database or another service) and works ~0.1 ms."""

import json
import time

WAIT_S = 0.050


def app(environ, start_response):
    time.sleep(WAIT_S)  # cooperative under gevent: the worker monkey-patches time.sleep
    body = json.dumps({"waited_ms": WAIT_S * 1000}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response("200 OK", headers)
    return [body]
