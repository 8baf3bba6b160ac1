"""Keeps 64 KiB of every request in a module global, as an unbounded cache does: each
worker grows by up to 100 MiB (then stops, to stay a bounded test).

Each request also takes 2 ms, so the number of requests a comparison run serves, and with it
the share of them that grew, does not depend on how fast the machine is: harness/compare.py
reports growth only while it is a steady share of every request (KEPT_KIB_PER_REQUEST), and
a capped app served fast enough would dilute that share below it."""

import json
import time

KEPT: list[bytearray] = []
CAP = 1600  # x 64 KiB = 100 MiB a worker
WORK_S = 0.002


def app(environ, start_response):
    time.sleep(WORK_S)
    if len(KEPT) < CAP:
        KEPT.append(bytearray(64 * 1024))
    body = json.dumps({"kept": len(KEPT)}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response("200 OK", headers)
    return [body]
