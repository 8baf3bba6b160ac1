"""Test tiers, by folder:

  unit/         the app through Flask's test client; the Gunicorn configs through Gunicorn;
                pure functions (benchmark targets, evidence counting) on hand-made inputs
  lint/         linters and validators on the code and on every file users copy (ruff,
                mypy, shellcheck, hadolint, yamllint, kubernetes-validate, systemd-analyze,
                nginx -t, docker compose config)
  integration/  real nginx + the three real Gunicorn setups on loopback (no Docker)
  protections/  integration tests rerun with one protection switched off: they must fail
  browser/      the page, in a real headless Chromium, against the native stack
  e2e/          the real compose stack, built and started with Docker Compose (Locust's
                web UI in the same Chromium)

A tier whose tool is missing (nginx, Docker) fails; it never skips (tests/no_skips.py).
"""

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The tests import the app package (unit tier) and tools/; run from anywhere.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import protection_switches  # noqa: E402 - needs the path above
from delay_service import running_delay_service  # noqa: E402 - needs the path above

# Skips and xfails fail the run (the hooks are picked up by name from this module).
from no_skips import pytest_make_collect_report, pytest_runtest_makereport  # noqa: E402, F401
from recorded_figures import Figures  # noqa: E402 - needs the path above

from harness import launch  # noqa: E402 - needs the path above
from harness.postgres import throwaway_postgres  # noqa: E402 - needs the path above

_FIGURES = Figures()
# Screenshots land here, where CI output can be inspected (artifacts/ is git-ignored).
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
# A real browser for the browser tier (the visualizer) and the e2e tier (Locust's web UI):
# Debian's Chromium, driven by Playwright (no browser download).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not path:
        pytest.fail(
            "Chromium is not installed: the browser tier needs it "
            "(Debian: apt-get install chromium)"
        )
    return path


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def figures() -> Figures:
    """Record a figure the docs quote: ``figures("faults.sigkill.sync", sent=200, failed=0)``
    (tests/recorded_figures.py says where it goes)."""
    return _FIGURES


@pytest.fixture(scope="session")
def session_postgres():
    """A throwaway PostgreSQL for the session's native stack (harness/postgres.py)."""
    with throwaway_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def session_delay():
    """The delay service for the session's native stack (tests/delay_service.py)."""
    with running_delay_service() as service:
        yield service


@pytest.fixture(scope="session")
def native_stack(tmp_path_factory, session_postgres, session_delay) -> launch.Running:
    """Real nginx + the three real Gunicorn setups on free loopback ports, started once per
    session with the launcher users run (tools/native_stack.py), with what they call as in
    the compose stack (PostgreSQL, the delay service); with a protection switched off in its
    own copy of the config when the protections tier asks (tests/protection_switches.py)."""
    if shutil.which("nginx") is None:
        pytest.fail(
            "nginx is not installed: this tier needs a real nginx (Debian: apt-get install nginx)"
        )
    scratch = tmp_path_factory.mktemp("native")
    services = {"DATABASE_URL": session_postgres.url, "UPSTREAM_URL": session_delay.url}
    with launch.native_stack(
        scratch / "stack.log",
        env={**services, **protection_switches.gunicorn_env()},
        nginx_source=protection_switches.nginx_source(scratch),
    ) as stack:
        yield stack


def pytest_sessionfinish(session, exitstatus):
    _FIGURES.write()
    _fail_if_gevent_patched(session)


def _fail_if_gevent_patched(session) -> None:
    """Locust and gevent must stay in their own processes: a gevent-patched pytest would
    silently turn every threaded test into a greenlet test."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("socket"):
        session.exitstatus = 1
        print(
            "\nERROR: something monkey-patched the test process with gevent "
            "(an import of locust or loadtest.locustfile / loadtest.shapes?)"
        )
