"""Who served the load test: a "Who served" tab in Locust's web UI, and the report's file.

Every /api/* answer names the process, OS thread and greenlet that served it, with the
server's own start and finish times. This module is the wiring that carries those answers
from the requests to the people reading them; the figures themselves are computed by
loadtest/evidence.py (``Tally``, ``summarize``), the same code as the headless report and
``loadtest/simultaneous.py``.

* Whatever sends the requests (Locust's local runner, or each worker) turns every
  successful GET answer of the app into a compact row: setup, scenario, host, pid, thread,
  greenlet, start, finish, isolation stores clobbered.
* Workers hand their rows to the master with the report they send every few seconds anyway
  (Locust's ``report_to_master`` / ``worker_report`` events: its own messaging, no second
  channel). At most ``MAX_ROWS_PER_REPORT`` rows go per report; any beyond are counted as
  dropped and the tab says so. The master merges the batches; a malformed batch is logged
  and ignored, never allowed to stop the master.
* The master (or the local runner) serves the figures as JSON at ``/who-served`` and as the
  "Who served" tab, through Locust's documented extension points for its web UI: the
  ``extended_tabs`` / ``extended_tables`` template arguments and ``extended_stats`` in
  ``/stats/requests``, which the UI polls while a test runs (no patched assets).
* ``--evidence-file PATH`` writes the same answers as JSON lines for the headless report.

A scenario's requests say which setup and scenario they belong to through the user's
``context()`` (loadtest/locustfile.py's StackUser), so the rows need no guessing from URLs.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from evidence import Tally, compact_row  # a sibling: Locust puts this folder on sys.path
from flask import Response, request
from locust.runners import MasterRunner, WorkerRunner

logger = logging.getLogger(__name__)

TAB = "who-served"
MESSAGE_KEY = "who_served"  # the key of a worker report's batch
# A worker's report every 3 s at Locust's ceiling here (~2,300 requests/s) holds ~7,000 rows.
MAX_ROWS_PER_REPORT = 20_000
# The whoami fields the report's evidence file keeps (harness/runner.py reads them).
EVIDENCE_FIELDS = (
    "worker_class",
    "hostname",
    "pid",
    "thread_id",
    "greenlet_id",
    "started_at",
    "finished_at",
)
# The tab's columns, in order: (key of a row, title).
COLUMNS = (
    ("reading", f"What it shows (distinct counts: last {Tally.WINDOW:,} answers per row)"),
    ("setup", "Setup"),
    ("scenario", "Scenario"),
    ("requests", "Answers"),
    ("processes", "Processes"),
    ("threads", "OS threads"),
    ("greenlets", "Greenlets"),
    ("max_in_flight", "Max in flight (server clocks)"),
    ("per_process", "Answers per process"),
    ("busiest", "Busiest process"),
    ("isolation", "Isolation: global clobbered / OS-thread dict clobbered / flask.g intact"),
)


class WhoServed:
    """The state of one Locust process: what it collects, and what it shows."""

    def __init__(self, environment, evidence_path: str = "") -> None:
        self.environment = environment
        runner = environment.runner
        self.is_worker = isinstance(runner, WorkerRunner)
        self.is_master = isinstance(runner, MasterRunner)
        # Rows waiting for the next report (a worker), or merged (a master / local runner).
        self.pending: list[list[Any]] = []
        self.dropped = 0
        self.malformed = 0
        # Merged where it is shown: a master, or a local runner with the web UI.
        shown = self.is_master or (not self.is_worker and environment.web_ui is not None)
        self.tally = Tally() if shown else None
        self.evidence_file = open(evidence_path, "a", buffering=1) if evidence_path else None  # noqa: SIM115 - closed on quit

    # --- Collecting (where the requests are sent) ---------------------------------------

    def on_request(
        self, request_type, name="", response=None, context=None, exception=None, **_kwargs
    ):
        # Only the app's answers carry evidence: nginx's /healthz (Ceiling) is not even read.
        if exception is not None or request_type != "GET" or not name.startswith("/api/"):
            return
        if response is None:
            return
        if response.status_code != 200 or not context or "setup" not in context:
            return
        try:
            body = response.json()
            row = compact_row(context["setup"], context["scenario"], body)
        except ValueError:  # not JSON, or not a whoami answer
            return
        if self.evidence_file is not None:
            kept = {key: body.get(key) for key in EVIDENCE_FIELDS}
            if "leaked" in body:
                kept["leaked"] = body["leaked"]
            self.evidence_file.write(json.dumps(kept) + "\n")
        if self.is_worker:
            if len(self.pending) < MAX_ROWS_PER_REPORT:
                self.pending.append(row)
            else:
                self.dropped += 1
        elif self.tally is not None:
            self.tally.add_rows([row])

    def on_report_to_master(self, client_id, data, **_kwargs):
        data[MESSAGE_KEY] = {"rows": self.pending, "dropped": self.dropped}
        self.pending, self.dropped = [], 0

    # --- Merging (the master) -----------------------------------------------------------

    def on_worker_report(self, client_id, data, **_kwargs):
        batch = data.get(MESSAGE_KEY)
        if batch is None or self.tally is None:
            return
        try:
            if not isinstance(batch, dict):
                raise ValueError(f"a batch must be a mapping, got {type(batch).__name__}")
            dropped = batch.get("dropped", 0)
            if not isinstance(dropped, int) or dropped < 0:
                raise ValueError(f"dropped must be a count, got {dropped!r:.40}")
            self.tally.add_rows(batch.get("rows"))
            self.dropped += dropped
        except ValueError as refused:
            self.malformed += 1
            logger.warning("who-served: ignored a malformed batch from %s: %s", client_id, refused)

    def on_test_start(self, **_kwargs):
        if self.tally is not None:
            self.tally.new_run()

    def on_reset_stats(self, **_kwargs):
        if self.tally is not None:
            self.tally.reset()
        self.dropped = self.malformed = 0

    def on_quitting(self, **_kwargs):
        if self.evidence_file is not None:
            self.evidence_file.close()
            self.evidence_file = None

    # --- Showing (the web UI) -----------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "window": Tally.WINDOW,
            "dropped": self.dropped,
            "malformed_batches": self.malformed,
            "rows": self.tally.figures() if self.tally is not None else [],
        }

    def table_rows(self) -> list[dict[str, Any]]:
        """The figures as the tab's cells (text and numbers, one row per setup/scenario)."""
        rows = []
        for seen in self.state()["rows"]:
            per_process = seen["requests_per_process"]
            shown = ", ".join(f"{name} {n}" for name, n in list(per_process.items())[:4])
            if len(per_process) > 4:
                shown += f" … ({len(per_process)} processes)"
            isolation = seen.get("isolation")
            rows.append(
                {
                    **{key: seen.get(key, "") for key, _title in COLUMNS},
                    "per_process": shown,
                    "busiest": f"{seen['busiest_share']:.0%} of the answers",
                    "isolation": (
                        f"{isolation['module_global_clobbered']} / "
                        f"{isolation['os_thread_dict_clobbered']} / "
                        f"{isolation['flask_g_intact']} of {isolation['requests']}"
                        if isolation
                        else "–"
                    ),
                }
            )
        if self.dropped:
            rows.append({"reading": f"{self.dropped} answers not counted (worker batches full)"})
        return rows

    def add_to_web_ui(self, web_ui) -> None:
        web_ui.template_args["extended_tabs"] = [{"title": "Who served", "key": TAB}]
        web_ui.template_args["extended_tables"] = [
            {"key": TAB, "structure": [{"key": key, "title": title} for key, title in COLUMNS]}
        ]

        @web_ui.app.route("/who-served")
        @web_ui.auth_required_if_enabled
        def who_served() -> Response:
            return Response(json.dumps(self.state()), mimetype="application/json")

        @web_ui.app.after_request
        def add_the_tab_to_the_stats(response: Response) -> Response:
            if not request.path.endswith("/stats/requests") or response.status_code != 200:
                return response
            stats = response.get_json(silent=True)
            if isinstance(stats, dict):
                stats["extended_stats"] = [{"key": TAB, "data": self.table_rows()}]
                response.set_data(json.dumps(stats))
            return response


def register(events) -> None:
    """Wire the tab and the evidence file into a Locust process (the locustfile calls this)."""

    @events.init_command_line_parser.add_listener
    def _add_arguments(parser) -> None:
        parser.add_argument(
            "--evidence-file",
            default="",
            include_in_web_ui=False,
            help="Append who served each request to this JSON-lines file.",
        )
        parser.add_argument(
            "--no-who-served",
            action="store_true",
            include_in_web_ui=False,
            help="Do not read the answers at all (no tab, no evidence file): to measure "
            "what the accounting costs Locust.",
        )

    @events.init.add_listener
    def _init(environment, **_kwargs) -> None:
        options = environment.parsed_options
        if options is None or getattr(options, "no_who_served", False):
            return
        who = WhoServed(environment, getattr(options, "evidence_file", ""))
        events.quitting.add_listener(who.on_quitting)
        # A headless local run with no evidence file has nobody to show the answers to.
        if who.is_worker or environment.web_ui is not None or who.evidence_file is not None:
            events.request.add_listener(who.on_request)
        if who.is_worker:
            events.report_to_master.add_listener(who.on_report_to_master)
            return
        events.worker_report.add_listener(who.on_worker_report)
        events.test_start.add_listener(who.on_test_start)
        events.reset_stats.add_listener(who.on_reset_stats)
        if environment.web_ui is not None:
            who.add_to_web_ui(environment.web_ui)
