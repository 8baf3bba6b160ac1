"""Load shapes for the web UI (pick one under "Shape class"; "Default" is a fixed user count).

Kept out of locustfile.py on purpose: Locust uses a shape class found in a locustfile
automatically, and the headless report runs fixed user counts.
"""

from __future__ import annotations

from locust import LoadTestShape


class StepRamp(LoadTestShape):
    """Add users in steps and hold each step, so each setup's saturation point shows in the
    charts as the step where requests/s stops rising and the response time climbs.

    5 users more every 20 s, up to 100 users, then stop (at most ~7 minutes).
    """

    step_users = 5
    step_seconds = 20
    max_users = 100

    def tick(self):
        step = int(self.get_run_time() // self.step_seconds) + 1
        users = step * self.step_users
        if users > self.max_users:
            return None
        return users, self.step_users  # spawn each step within a second
