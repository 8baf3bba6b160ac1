"""Load scenarios for the stack, black-box: HTTP only, the app is never imported.

Each user class is one scenario; every scenario can target any setup. On the command line:

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8080 --setup gevent IoBound

The web UI (compose) loads loadtest/webui.py instead, whose form picks one scenario and
one setup.

Scenarios: Hello (per-request overhead), IoBound (waits like a database call), Database (a
real PostgreSQL query through each worker's pool; --db-driver psycopg2 takes the driver that
waits in C and serializes gevent), CpuBound (pure-Python work holding the GIL), Mixed
(mostly I/O, some CPU, some hello), Isolation
(fails a request whose flask.g lost its value; counts module-global leaks as a separate
"LEAK" row, the expected demonstration under gthread and gevent) and Ceiling (nginx's own
/healthz, no app: how many requests per second this Locust process can send at all).

--setup direct sends requests without a prefix, to a server that serves the app at / (the
dev server, or one Gunicorn setup without nginx). --evidence-file PATH writes who served
each request (process, thread, greenlet, server times) as JSON lines, for the report
(loadtest/who_served.py, which also feeds the web UI's "Who served" tab).
"""

from __future__ import annotations

import uuid

# Siblings of this file (Locust puts its folder on sys.path while it loads a locustfile).
import evidence
import who_served
from locust import FastHttpUser, constant, events, tag, task

# The nginx prefixes, and "direct" for a Gunicorn or dev server with no nginx in front.
SETUPS = (*evidence.SETUPS, "direct")
# /api/db's drivers (app/db.py): the shipped one first.
DB_DRIVERS = ("psycopg", "psycopg2")

# Who served each request: the web UI's "Who served" tab and --evidence-file.
who_served.register(events)


@events.init_command_line_parser.add_listener
def _add_arguments(parser) -> None:
    parser.add_argument(
        "--setup",
        choices=SETUPS,
        default="gthread",
        help="Which Gunicorn setup the requests go to (nginx URL prefix); "
        "'direct' for a server without prefixes.",
    )
    parser.add_argument(
        "--io-ms",
        type=int,
        default=100,
        help="Simulated I/O wait per request (IoBound, Mixed, Isolation).",
    )
    parser.add_argument(
        "--cpu-ms", type=int, default=10, help="CPU burned per request (CpuBound, Mixed)."
    )
    parser.add_argument(
        "--db-driver",
        choices=DB_DRIVERS,
        default=DB_DRIVERS[0],
        help="Database's driver: psycopg (waits in Python, the shipped one) or psycopg2 "
        "(waits in C: under gevent one query at a time per process).",
    )


class StackUser(FastHttpUser):
    """Base for the scenarios: no think time, so users = requests in flight."""

    abstract = True
    wait_time = constant(0)

    @property
    def options(self):
        return self.environment.parsed_options

    @property
    def scenario(self) -> str:
        return type(self).__name__

    def context(self) -> dict:
        # Carried by every request event: loadtest/who_served.py files each answer under it.
        # Database names a driver other than the shipped one, so a run with each driver
        # keeps a row of its own in the Who served tab.
        scenario = self.scenario
        if scenario == "Database" and self.options.db_driver != DB_DRIVERS[0]:
            scenario += f" ({self.options.db_driver})"
        return {"setup": self.options.setup, "scenario": scenario}

    def get(self, endpoint: str, name: str, **kwargs):
        setup = self.options.setup
        prefix = "" if setup == "direct" else f"/{setup}"
        return self.client.get(prefix + endpoint, name=name, **kwargs)

    def hello(self) -> None:
        self.get("/api/whoami", "/api/whoami")

    def io(self) -> None:
        self.get(f"/api/io?ms={self.options.io_ms}", "/api/io")

    def cpu(self) -> None:
        self.get(f"/api/cpu?ms={self.options.cpu_ms}", "/api/cpu")


class Ceiling(StackUser):
    """The load generator's own limit: nginx answers /healthz itself, far faster than any
    setup, so the rate reached here is what one Locust process can drive. A figure from
    another scenario close to it measures Locust, not the stack (make bench records it)."""

    @task
    def healthz(self) -> None:
        self.client.get("/healthz", name="/healthz")


class Hello(StackUser):
    """The cheapest request: measures the stack's per-request overhead."""

    @task
    def whoami(self) -> None:
        self.hello()


class IoBound(StackUser):
    """Requests that mostly wait, like calls to a database or another service."""

    @task
    def io_request(self) -> None:
        self.io()


class Database(StackUser):
    """Requests that wait on a real PostgreSQL query (io_ms long) through the worker's
    connection pool: what IoBound's sleep stands for, with a real driver and a real pool."""

    @task
    def db_request(self) -> None:
        self.get(f"/api/db?ms={self.options.io_ms}&driver={self.options.db_driver}", "/api/db")


class CpuBound(StackUser):
    """Requests that compute in Python and hold the GIL the whole time."""

    @task
    def cpu_request(self) -> None:
        self.cpu()


class Mixed(StackUser):
    """A realistic blend: mostly waiting on I/O, some computing, some trivial requests."""

    @tag("io")
    @task(6)
    def io_request(self) -> None:
        self.io()

    @tag("cpu")
    @task(2)
    def cpu_request(self) -> None:
        self.cpu()

    @tag("hello")
    @task(2)
    def whoami(self) -> None:
        self.hello()


class Isolation(StackUser):
    """Fails a request if Flask's request context (flask.g) lost its value under load."""

    @task
    def isolation(self) -> None:
        token = uuid.uuid4().hex
        url = f"/api/isolation?token={token}&ms={self.options.io_ms}"
        with self.get(url, "/api/isolation", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
            leaked = response.json()["leaked"]
            if "flask_g" in leaked:
                response.failure("flask.g leaked between requests")
                return
            response.success()
        if "module_global" in leaked:
            # Not a failure: the demonstration. Its own row in the stats counts the leaks.
            self.environment.events.request.fire(
                request_type="LEAK",
                name="module_global held another request's token",
                response_time=0,
                response_length=0,
                exception=None,
                context={},
            )
