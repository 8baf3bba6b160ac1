"""Keeps 64 KiB of every request in a module global, as an unbounded cache does: each
worker grows by up to 100 MiB (then stops, to stay a bounded test)."""

import json

KEPT: list[bytearray] = []
CAP = 1600  # x 64 KiB = 100 MiB a worker


def app(environ, start_response):
    if len(KEPT) < CAP:
        KEPT.append(bytearray(64 * 1024))
    body = json.dumps({"kept": len(KEPT)}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response("200 OK", headers)
    return [body]
