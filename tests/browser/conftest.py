"""The visualizer page in a real browser (the browser itself: tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture()
def page(browser, native_stack):
    """A fresh page on the stack's index, recording console errors and failed requests."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: page.problems.append(f"request failed: {r.url}"))
    page.goto(native_stack.base_url + "/")
    yield page
    context.close()
