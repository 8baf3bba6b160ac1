"""Every request is ~10 ms of pure-Python CPU work, and no waiting."""

import json
import time

WORK_S = 0.010


def app(environ, start_response):
    deadline = time.thread_time() + WORK_S
    n = 0
    while time.thread_time() < deadline:
        n += 1
    body = json.dumps({"spins": n}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response("200 OK", headers)
    return [body]
