"""A pytest plugin: every test must run and pass, so a skip or an xfail fails the run.

This suite's tiers need real tools (nginx, Docker, a browser); a test that skips because one is
missing would let a run that tested nothing look green. So, always, not only in CI: a skipped
test, a module skipped at collection (``pytest.skip(allow_module_level=True)``,
``pytest.importorskip``), an xfail and an unexpected pass of one are failures.
tests/conftest.py loads it; tests/unit/test_no_skips.py proves it on a throw-away suite.
"""

from __future__ import annotations

import pytest

RULE = "every test must run and pass here (tests/no_skips.py)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped or hasattr(report, "wasxfail"):
        what = "xfail" if hasattr(report, "wasxfail") else "skipped"
        report.outcome = "failed"
        report.longrepr = f"{what}, but {RULE}: {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped at collection, but {RULE}: {report.longrepr}"
