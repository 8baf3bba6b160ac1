"""Load scenarios for the stack, black-box: HTTP only, the app is never imported.

Every scenario can target any setup: pick it in the web UI ("Custom parameters": setup) or
with --setup on the command line. Each user class is one scenario; the web UI's class picker
(--class-picker) selects them.

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8080 --setup gevent
"""

from __future__ import annotations

import uuid

from locust import FastHttpUser, constant, events, task

SETUPS = ("sync", "gthread", "gevent")


@events.init_command_line_parser.add_listener
def _add_arguments(parser) -> None:
    parser.add_argument("--setup", choices=SETUPS, default="gthread",
                        help="Which Gunicorn setup the requests go to (URL prefix).")
    parser.add_argument("--io-ms", type=int, default=100,
                        help="Simulated I/O wait per request, for the io scenario.")
    parser.add_argument("--cpu-ms", type=int, default=10,
                        help="CPU burned per request, for the cpu scenario.")


class StackUser(FastHttpUser):
    """Base for the scenarios: no think time, so users = requests in flight."""

    abstract = True
    wait_time = constant(0)

    def path(self, endpoint: str) -> str:
        return f"/{self.environment.parsed_options.setup}{endpoint}"


class Hello(StackUser):
    """The cheapest request: measures the stack's per-request overhead."""

    @task
    def whoami(self) -> None:
        self.client.get(self.path("/api/whoami"), name="/api/whoami")


class IoBound(StackUser):
    """Requests that mostly wait, like calls to a database or another service."""

    @task
    def io(self) -> None:
        ms = self.environment.parsed_options.io_ms
        self.client.get(self.path(f"/api/io?ms={ms}"), name="/api/io")


class CpuBound(StackUser):
    """Requests that compute in Python and hold the GIL the whole time."""

    @task
    def cpu(self) -> None:
        ms = self.environment.parsed_options.cpu_ms
        self.client.get(self.path(f"/api/cpu?ms={ms}"), name="/api/cpu")


class Isolation(StackUser):
    """Fails a request if Flask's request context (flask.g) lost its value under load."""

    @task
    def isolation(self) -> None:
        token = uuid.uuid4().hex
        url = self.path(f"/api/isolation?token={token}&ms=50")
        with self.client.get(url, name="/api/isolation", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
            elif not response.json()["stores"]["flask_g"]["intact"]:
                response.failure("flask.g leaked between requests")
            else:
                response.success()
