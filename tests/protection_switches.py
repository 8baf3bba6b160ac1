"""The protections docs/reliability.md claims, each with the switch that turns it off.

A test that guards a protection must fail without it. The protections tier
(tests/protections/test_protections_matter.py) proves that once per protection: it runs the
protection's tests again with ``STACK_PROTECTION_OFF=<name>`` in the environment and expects
them to fail. The fixtures that start nginx or Gunicorn read that variable here and apply
the switch to their own throw-away copy of the config (nginx is always rendered into a
scratch folder; Gunicorn takes an environment override), never to the repository's files.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OFF_VARIABLE = "STACK_PROTECTION_OFF"


@dataclass(frozen=True)
class Edit:
    """Replace the one match of ``pattern`` in one file of the nginx folder."""

    file: str  # relative to nginx/
    pattern: str
    replacement: str

    def apply(self, conf_dir: Path) -> None:
        path = conf_dir / self.file
        text, count = re.subn(self.pattern, self.replacement, path.read_text(), flags=re.M)
        if count != 1:
            raise AssertionError(f"{path}: expected one match of {self.pattern!r}, found {count}")
        path.write_text(text)


@dataclass(frozen=True)
class Protection:
    name: str
    claim: str
    tests: tuple[str, ...]  # pytest node ids that must fail without it
    nginx: tuple[Edit, ...] = ()
    gunicorn_env: dict[str, str] = field(default_factory=dict)


PROTECTIONS = (
    Protection(
        "retry",
        "nginx retries an idempotent request whose connection failed (proxy_next_upstream)",
        (
            "tests/integration/test_keepalive.py::"
            "test_a_request_sent_into_a_connection_the_app_closes_is_retried_not_a_502",
            "tests/integration/test_faults.py::"
            "test_a_killed_worker_is_replaced_and_nginx_retries_its_requests",
        ),
        nginx=(
            Edit(
                "snippets/location/proxy.conf",
                r"^proxy_next_upstream error timeout;",
                "proxy_next_upstream off;",
            ),
        ),
    ),
    Protection(
        "keepalive-order",
        "nginx closes idle upstream connections before Gunicorn does (keepalive_timeout)",
        (
            "tests/integration/test_keepalive.py::"
            "test_nginx_closes_idle_pooled_connections_before_gunicorn_does",
        ),
        nginx=(
            Edit(
                "snippets/upstream/keepalive.conf",
                r"^keepalive_timeout \S+;",
                "keepalive_timeout 300s;",
            ),
        ),
    ),
    Protection(
        "graceful-drain",
        "SIGTERM lets requests in flight finish (Gunicorn's graceful_timeout)",
        (
            "tests/integration/test_faults.py::"
            "test_sigterm_lets_requests_in_flight_finish_and_refuses_new_ones",
        ),
        gunicorn_env={"GUNICORN_GRACEFUL_TIMEOUT": "0"},
    ),
    Protection(
        "rate-limit",
        "the public port answers a client over its rate with 429",
        (
            "tests/integration/test_rate_limit.py::"
            "test_a_client_over_its_rate_gets_429_json_and_is_served_again_after",
        ),
        nginx=(Edit("snippets/server/rate-limit.conf", r"^limit_req .*;", ""),),
    ),
    Protection(
        "admission",
        "nginx refuses a setup's requests past its limit_conn at once (JSON 503, Retry-After)",
        (
            # One setup is enough to show it (each case takes half a minute).
            "tests/integration/test_overload.py::"
            "test_a_setup_offered_four_times_what_it_serves_answers_fast_and_never_hangs"
            "[sync-io]",
        ),
        nginx=(
            Edit(
                "snippets/server/routes.conf",
                r"^location /sync/    \{ limit_conn per_setup \d+; ",
                "location /sync/    { ",
            ),
        ),
    ),
    Protection(
        "host-check",
        "a request for an unknown Host is refused with 421, never proxied",
        (
            "tests/integration/test_native_stack.py::"
            "test_an_unknown_host_is_refused_with_421_and_never_proxied",
        ),
        # The catch-all server serves the routes instead of refusing.
        nginx=(
            Edit(
                "sites/stack.conf",
                r"^    include snippets/server/misdirected-request.conf;",
                "    include snippets/server/routes.conf;",
            ),
        ),
    ),
    Protection(
        "metrics-hidden",
        "the apps' /metrics is not reachable through nginx",
        ("tests/integration/test_metrics.py::test_metrics_are_not_reachable_through_nginx",),
        nginx=(
            Edit(
                "snippets/server/routes.conf",
                r"^location ~ \^/\(sync\|gthread\|gevent\)/metrics\$ \{\n    return 404;\n\}",
                "",
            ),
        ),
    ),
)
BY_NAME = {protection.name: protection for protection in PROTECTIONS}


def switched_off() -> Protection | None:
    name = os.environ.get(OFF_VARIABLE)
    if not name:
        return None
    if name not in BY_NAME:
        raise AssertionError(f"{OFF_VARIABLE}={name!r}: no such protection ({', '.join(BY_NAME)})")
    return BY_NAME[name]


def nginx_tweak(conf_dir: Path) -> None:
    """Apply the switched-off protection's edits to a rendered copy of nginx/ (none normally)."""
    protection = switched_off()
    for edit in protection.nginx if protection else ():
        edit.apply(conf_dir)


def nginx_source(scratch: Path) -> Path | None:
    """A copy of nginx/ with the switched-off protection's edits, for launchers that render
    the config themselves; None (the repository's nginx/) when nothing is switched off."""
    protection = switched_off()
    if protection is None or not protection.nginx:
        return None
    copy = scratch / "nginx-source"
    shutil.copytree(ROOT / "nginx", copy)
    nginx_tweak(copy)
    return copy


def gunicorn_env() -> dict[str, str]:
    protection = switched_off()
    return dict(protection.gunicorn_env) if protection else {}
