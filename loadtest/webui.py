"""The locustfile of the web UI (compose's Locust image loads it, with shapes.py).

Locust's user-class picker starts with every class ticked: opened as it is, one click on
Start would run all seven scenarios at once and blur the very difference the UI is there to
show. So the UI gets one user class, ``Scenario``, and the form's "scenario" parameter picks
which of loadtest/locustfile.py's scenarios it runs (their own tasks and weights, not a
copy). Compose presets the form (docker-compose.yml, locust-master): IoBound on gevent,
50 users at 10 a second, enough to show the difference in under a minute. The Ceiling
scenario is labelled for what it measures: Locust itself.

    locust -f loadtest/webui.py,loadtest/shapes.py --host http://127.0.0.1:8081 \\
        --class-picker --setup gevent --scenario IoBound
"""

from __future__ import annotations

import random

# A sibling: its scenarios and their parameters (--setup, --io-ms, --cpu-ms, --db-driver).
# Imported as a module, so its user classes do not become this locustfile's classes too.
import locustfile as scenarios
from locust import events, task

# Each scenario as the form's drop-down shows it: "Name: what it shows".
LABELS = {
    "IoBound": "waits like a database call (io_ms): where threads and greenlets shine",
    "Database": "a real PostgreSQL query (io_ms); db_driver psycopg2 shows gevent's pitfall",
    "CpuBound": "computes in Python (cpu_ms), holding the GIL",
    "Hello": "the cheapest request: the stack's own cost",
    "Mixed": "mostly I/O, some CPU, some hello",
    "Isolation": "flask.g against a module global and a dict keyed by OS thread",
    "Ceiling": "measures Locust itself, not the stack (nginx answers /healthz alone)",
}
CHOICES = tuple(f"{name}: {text}" for name, text in LABELS.items())


def scenario_choice(value: str) -> str:
    """A scenario's name ("IoBound") or its label, as its label (argparse's type)."""
    name = value.split(":", 1)[0].strip()
    if name not in LABELS:
        return value  # argparse then names the valid choices
    return f"{name}: {LABELS[name]}"


@events.init_command_line_parser.add_listener
def _add_arguments(parser) -> None:
    parser.add_argument(
        "--scenario",
        type=scenario_choice,
        choices=CHOICES,
        default=CHOICES[0],
        help="Which scenario the users run (loadtest/locustfile.py).",
    )


class Scenario(scenarios.StackUser):
    """Runs the scenario picked in the form: that scenario class's own tasks and weights."""

    @property
    def scenario(self) -> str:
        return self.options.scenario.split(":", 1)[0]

    def on_start(self) -> None:
        self.scenario_tasks = getattr(scenarios, self.scenario).tasks

    @task
    def chosen(self) -> None:
        random.choice(self.scenario_tasks)(self)
