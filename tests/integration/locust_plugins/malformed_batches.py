"""A Locust worker plugin for tests/integration/test_who_served.py: replaces every batch of
who-served rows this worker reports with a malformed one, as a buggy or hostile worker
would. Loaded after loadtest/webui.py, so its listener runs after loadtest/who_served.py's."""

from locust import events
from locust.runners import WorkerRunner

MALFORMED = [
    "not a mapping",
    {"rows": "not a list"},
    {"rows": [["sync", "IoBound", "h", "pid?", 1, None, 0, 1, None]]},
    {"rows": [], "dropped": -5},
]


@events.init.add_listener
def _init(environment, **_kwargs):
    if not isinstance(environment.runner, WorkerRunner):
        return
    sent = []

    @events.report_to_master.add_listener
    def _replace(client_id, data, **_kw):
        data["who_served"] = MALFORMED[len(sent) % len(MALFORMED)]
        sent.append(1)
