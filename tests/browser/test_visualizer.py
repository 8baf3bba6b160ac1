"""The concurrency visualizer at /, in headless Chromium against real nginx + Gunicorn."""

from __future__ import annotations

import json

from loadtest.evidence import max_in_flight

RESULT_TIMEOUT_MS = 60_000


def run_default_timeline(page):
    """Press the button from the keyboard, as a user without a mouse would."""
    page.focus("#run-button")
    page.keyboard.press("Enter")
    page.wait_for_selector(
        "section.setup-result[data-setup=gevent][data-max-in-flight]", timeout=RESULT_TIMEOUT_MS
    )


def drawn(page, setup):
    """What the SVG shows for a setup: the bars' spans and lanes, read from the DOM."""
    bars = page.eval_on_selector_all(
        f"section[data-setup={setup}] rect.bar",
        "bars => bars.map(b => [Number(b.dataset.start), Number(b.dataset.end), b.dataset.lane])",
    )
    section = page.eval_on_selector(f"section[data-setup={setup}]", "s => ({...s.dataset})")
    summary = page.inner_text(f"section[data-setup={setup}] .summary")
    return bars, section, summary


def test_the_page_loads_from_nginx_with_no_console_errors(page):
    assert page.title().startswith("Who serves my requests?")
    assert page.is_visible("#run-button") and page.is_visible("#iso-button")
    assert page.problems == []


def test_ten_io_requests_draw_lanes_matching_each_setups_model(page, native_stack, screenshots):
    configs = native_stack.configs()
    run_default_timeline(page)

    bars, section, summary = drawn(page, "sync")
    assert len(bars) == 10
    overlap = max_in_flight((start, end) for start, end, _ in bars)
    # More than one at a time (the workers are separate processes), never more than workers.
    assert 1 < overlap <= configs["sync"]["workers"]
    assert int(section["maxInFlight"]) == overlap
    assert summary.startswith("10 requests → ") and "wave" in summary

    bars, section, summary = drawn(page, "gthread")
    overlap = max_in_flight((start, end) for start, end, _ in bars)
    assert configs["gthread"]["workers"] < overlap <= 10
    assert len({lane for _, _, lane in bars}) == overlap  # one thread per request in flight

    bars, section, summary = drawn(page, "gevent")
    assert max_in_flight((start, end) for start, end, _ in bars) == 10  # all ten at once
    assert int(section["greenlets"]) == 10 and "greenlets" in summary

    page.screenshot(path=str(screenshots / "visualizer.png"), full_page=True)
    assert page.problems == []


def test_hovering_a_bar_shows_its_request_id_and_process(page):
    run_default_timeline(page)
    bar = page.locator("section[data-setup=gthread] rect.bar").first
    bar.hover()
    tooltip = page.locator("#tooltip")
    assert tooltip.is_visible()
    text = tooltip.inner_text()
    assert "request " in text and "pid " in text and "thread " in text


def test_the_isolation_panel_shows_flask_g_intact_and_the_global_clobbered(page, screenshots):
    page.fill("#iso-form input[name=count]", "10")
    page.click("#iso-button")
    page.wait_for_selector("#iso-table tr[data-setup=gevent]", timeout=RESULT_TIMEOUT_MS)
    cells = page.eval_on_selector_all(
        "#iso-table td[data-store]",
        "cells => cells.map(c => [c.parentElement.dataset.setup, c.dataset.store, c.textContent])",
    )
    clobbered = {(setup, store): int(n) for setup, store, n in cells}
    for setup in ("sync", "gthread", "gevent"):
        assert clobbered[(setup, "flask_g")] == 0, setup
    assert clobbered[("gthread", "module_global")] > 0
    assert clobbered[("gevent", "module_global")] > 0
    assert clobbered[("gevent", "dict_by_os_thread_id")] > 0
    assert clobbered[("sync", "module_global")] == 0
    page.screenshot(path=str(screenshots / "isolation.png"), full_page=True)
    assert page.problems == [], json.dumps(page.problems)


def run_on_gevent(page, work: str) -> tuple[list, dict]:
    """Pick gevent alone and a workload from the form, send the default ten requests."""
    for setup in ("sync", "gthread"):
        page.uncheck(f"input[name=setup][value={setup}]")
    page.check(f"input[name=work][value='{work}']")
    page.click("#run-button")
    page.wait_for_selector(
        "section.setup-result[data-setup=gevent][data-max-in-flight]", timeout=RESULT_TIMEOUT_MS
    )
    bars, section, _ = drawn(page, "gevent")
    return bars, section


def test_the_page_shows_a_driver_that_blocks_gevent_next_to_one_that_does_not(page, screenshots):
    """The database workload, picked in the form: ten 300 ms PostgreSQL waits on gevent
    overlap with psycopg 3, and go one per process with psycopg2 (its waits are in C)."""
    bars, section = run_on_gevent(page, "db")
    assert max_in_flight((start, end) for start, end, _ in bars) == 10
    assert int(section["waves"]) == 1

    bars, section = run_on_gevent(page, "db?driver=psycopg2")
    processes = int(section["processes"])
    assert max_in_flight((start, end) for start, end, _ in bars) <= processes
    assert int(section["waves"]) >= 10 // processes
    page.screenshot(path=str(screenshots / "visualizer-psycopg2.png"), full_page=True)
    assert page.problems == []
