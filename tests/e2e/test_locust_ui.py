"""Locust's web UI as a user meets it after `docker compose up`: the form, a run started from
it, and the "Who served" tab (loadtest/who_served.py), in headless Chromium against the
compose stack, with one Locust worker and then two (`--scale locust-worker=2`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from helpers import live_locust_workers, wait_for_locust_to_stop, wait_until
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from harness.launch import SETUPS, boot_configs

APP_SERVICES = [f"app-{setup}" for setup in SETUPS]
IO_MS, USERS = 300, 20
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
# Answers to wait for before reading the tab: a few rounds of every user's request.
ANSWERS = 3 * USERS


@pytest.fixture()
def locust_page(browser, compose_stack):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
    page.goto(compose_stack.locust_url + "/")
    # The form on a master that has not run yet, the dashboard's tabs on one that has.
    page.wait_for_selector("form, [role=tab]")
    yield page
    context.close()


def scale_workers(compose_stack, count: int) -> None:
    compose_stack.scale("locust-worker", count)

    def live_workers() -> int:
        stats = requests.get(f"{compose_stack.locust_url}/stats/requests", timeout=5).json()
        return len(live_locust_workers(stats))

    wait_until(
        lambda: live_workers() == count,
        timeout=60,
        what=f"{count} Locust workers to register with the master",
    )


def form_values(page) -> dict[str, str]:
    return page.eval_on_selector_all(
        "form input[name], form select[name]",
        "els => Object.fromEntries(els.map(e => [e.name, e.value]))",
    )


FORM_OR_NEW = "form input[name=userCount], button:has-text('New')"


def wait_for_the_form_or_new(page, ui: str) -> None:
    """Whichever the page shows once rendered: the form (no run yet) or the "New" button (after
    one). CI runs with two workers twice saw neither for 30 s after a stop and a reload, with
    the master stopped; what the page and the master said then is kept for the next look,
    and the page is loaded once more before the test gives up."""
    try:
        page.wait_for_selector(FORM_OR_NEW, timeout=30_000)
        return
    except PlaywrightTimeout:
        stats = requests.get(f"{ui}/stats/requests", timeout=5).json()
        seen = {
            "master": stats.get("state"),
            "workers": [w.get("state") for w in stats.get("workers") or []],
            "page problems": list(page.problems),
            "buttons": page.eval_on_selector_all("button", "bs => bs.map(b => b.innerText)"),
        }
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "locust-neither-form-nor-new.png"), full_page=True)
        print(f"Locust's page showed neither its form nor New after 30 s: {seen}")
    page.reload()
    page.wait_for_selector(FORM_OR_NEW, timeout=30_000)


def start_from_the_form(
    page, setup: str, ui: str, scenario: str = "IoBound", driver: str = "psycopg"
) -> None:
    """Fill in Locust's own form (the first one, or the "New" dialog after a run) and start."""
    wait_for_the_form_or_new(page, ui)
    if not page.is_visible("form input[name=userCount]"):
        page.get_by_role("button", name="New").click()
        page.wait_for_selector("form input[name=userCount]")
    if not page.is_visible("form input[name=ioMs]"):
        page.get_by_text("Custom parameters").click()
    page.fill("form input[name=userCount]", str(USERS))
    page.fill("form input[name=spawnRate]", str(USERS))
    page.fill("form input[name=ioMs]", str(IO_MS))
    page.select_option("form select[name=setup]", setup)
    page.select_option("form select[name=dbDriver]", driver)
    label = page.eval_on_selector(
        "form select[name=scenario]",
        "(s, name) => [...s.options].map(o => o.value).find(v => v.startsWith(name + ':'))",
        scenario,
    )
    page.select_option("form select[name=scenario]", label)
    page.click("form button[type=submit]")


def read_the_tab(page, setup: str, scenario: str = "IoBound") -> dict[str, str]:
    """The "Who served" row of ``setup`` as the tab shows it, {column title: cell text}, once
    it counts ANSWERS answers (the UI refreshes it every two seconds while a test runs)."""
    page.get_by_role("tab", name="Who served").click()

    def row() -> dict[str, str] | None:
        titles = page.eval_on_selector_all("table thead th", "ths => ths.map(th => th.innerText)")
        rows = page.eval_on_selector_all(
            "table tbody tr", "trs => trs.map(tr => [...tr.cells].map(td => td.innerText))"
        )
        for cells in rows:
            shown = dict(zip(titles, cells, strict=True))
            if (shown.get("Setup"), shown.get("Scenario")) == (setup, scenario):
                return shown if int(shown["Answers"]) >= ANSWERS else None
        return None

    return wait_until(row, timeout=30, what=f"the tab to show {ANSWERS} answers from {setup}")


def run_and_read(
    page,
    compose_stack,
    setup: str,
    screenshot: Path | None = None,
    scenario: str = "IoBound",
    driver: str = "psycopg",
) -> tuple[dict, dict[str, str]]:
    """Start ``scenario`` on ``setup`` from the form, read the tab while it runs, then the
    JSON route's figures, and stop it. The tab names Database's row after its driver when
    it is not the shipped one (loadtest/locustfile.py)."""
    ui = compose_stack.locust_url
    start_from_the_form(page, setup, ui, scenario, driver)
    if driver != "psycopg":
        scenario += f" ({driver})"

    def figures(least: int):
        # The JSON route answers while the test runs: polled here until the answers arrive.
        rows = requests.get(f"{ui}/who-served", timeout=5).json()["rows"]
        return next(
            r
            for r in rows
            if (r["setup"], r["scenario"]) == (setup, scenario) and r["requests"] >= least
        )

    wait_until(lambda: figures(ANSWERS), timeout=90, what=f"{ANSWERS} answers from {setup}")
    shown = read_the_tab(page, setup, scenario)
    # Read after the tab, still within the run: never less than what the tab showed.
    seen = figures(ANSWERS)
    if screenshot is not None:
        page.screenshot(path=str(screenshot), full_page=True)
    page.get_by_role("button", name="Stop").click()
    wait_for_locust_to_stop(ui)
    # Locust's page polls the master only while it reads "running" or "spawning": when a poll
    # lands in the short "stopping" state (wider with more workers), the page keeps showing it
    # and never offers "New" (locustio/locust#2046; docs/measuring.md tells users to reload).
    # The master has stopped (above), so a reload shows what a user sees after the stop.
    page.reload()
    return seen, shown


def test_the_form_starts_right_one_scenario_on_gevent(compose_stack, browser):
    """What `docker compose up` opens: a master that has not run a test yet (restarted here,
    since earlier tests ran some)."""
    compose_stack.compose("restart", "locust-master", "locust-worker")
    wait_until(
        lambda: requests.get(f"{compose_stack.locust_url}/stats/requests", timeout=5).json()[
            "workers"
        ],
        timeout=90,
        what="the restarted Locust master and its workers",
    )
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    locust_page = context.new_page()
    problems: list[str] = []
    locust_page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    locust_page.goto(compose_stack.locust_url + "/")
    locust_page.wait_for_selector("form input[name=userCount]")
    values = form_values(locust_page)
    assert (values["userCount"], values["spawnRate"], values["setup"]) == ("50", "10", "gevent")
    assert values["scenario"].startswith("IoBound:")
    # One user class to tick (loadtest/webui.py), not every scenario at once.
    assert locust_page.locator("text=Scenario").count() >= 1
    options = locust_page.eval_on_selector(
        "form select[name=scenario]", "s => [...s.options].map(o => o.value)"
    )
    assert any(o.startswith("Ceiling:") and "measures Locust itself" in o for o in options)
    assert problems == []
    context.close()


@pytest.mark.parametrize("locust_workers", [1, 2])
def test_the_who_served_tab_shows_each_setups_model(
    locust_page, compose_stack, locust_workers, screenshots, figures
):
    config = boot_configs(compose_stack.compose("logs", "--no-color", *APP_SERVICES))
    scale_workers(compose_stack, locust_workers)
    locust_page.reload()
    sync, sync_tab = run_and_read(locust_page, compose_stack, "sync")
    # The README's picture of the tab (docs/screenshots/locust-who-served.png is a copy).
    picture = screenshots / "locust-who-served.png" if locust_workers == 1 else None
    gevent, gevent_tab = run_and_read(locust_page, compose_stack, "gevent", picture)

    # sync: a request holds its worker process; no more in flight than processes.
    workers = config["sync"]["workers"]
    assert sync["processes"] == workers and sync["max_in_flight"] <= workers
    # gevent: one greenlet per request, all 20 users' requests inside at once.
    assert gevent["max_in_flight"] >= 15 and gevent["greenlets"] >= 15
    # One OS thread in each process that served. Not necessarily every worker: which worker
    # accepts each of nginx's keep-alive connections is a race, and one gevent worker can win
    # them all (a CI run saw 1 of 2 serve every request).
    assert gevent["threads"] == gevent["processes"] <= config["gevent"]["workers"]
    # The tab shows the same figures as its JSON route, with the reading on top.
    for seen, shown in ((sync, sync_tab), (gevent, gevent_tab)):
        assert 0 < int(shown["Processes"]) <= seen["processes"]
        assert 0 < int(shown["OS threads"]) <= seen["threads"]
        assert 0 < int(shown["Max in flight (server clocks)"]) <= seen["max_in_flight"]
        first_title = next(iter(shown))
        assert first_title.startswith("What it shows")
        assert " in flight → " in shown[first_title]
    assert locust_page.problems == []
    figures(
        f"e2e.locust_ui.{locust_workers}_workers",
        io_ms=IO_MS,
        users=USERS,
        rows={
            setup: {
                k: seen[k]
                for k in (
                    "reading",
                    "processes",
                    "threads",
                    "greenlets",
                    "max_in_flight",
                    "requests",
                )
            }
            for setup, seen in (("sync", sync), ("gevent", gevent))
        },
    )


def test_the_who_served_tab_shows_the_driver_that_serializes_gevent(
    locust_page, compose_stack, screenshots, figures
):
    """The Database scenario on gevent, once with the shipped driver (psycopg 3, waits in
    Python) and once with psycopg2 (waits in C, no psycogreen): the tab shows 20 queries in
    flight against one per process, from the servers' own clocks."""
    config = boot_configs(compose_stack.compose("logs", "--no-color", *APP_SERVICES))
    scale_workers(compose_stack, 1)
    locust_page.reload()
    right, _ = run_and_read(locust_page, compose_stack, "gevent", scenario="Database")
    picture = screenshots / "locust-database-drivers.png"
    wrong, wrong_tab = run_and_read(
        locust_page, compose_stack, "gevent", picture, scenario="Database", driver="psycopg2"
    )
    assert right["max_in_flight"] >= 15 and right["greenlets"] >= 15
    # One query at a time in each process: the driver's wait in C holds the whole loop.
    assert wrong["max_in_flight"] <= config["gevent"]["workers"]
    assert int(wrong_tab["Max in flight (server clocks)"]) <= config["gevent"]["workers"]
    assert locust_page.problems == []
    # The queries psycopg2 still owes the users Locust stopped run one at a time per process,
    # the healthcheck's among them: the tests after this one start on a healthy stack, by a
    # check that passed after now (Docker's "healthy" outlives the first two failed ones).
    compose_stack.wait_until_healthy(timeout=180, fresh=True)
    figures(
        "e2e.locust_ui.database_drivers",
        io_ms=IO_MS,
        users=USERS,
        workers=config["gevent"]["workers"],
        rows={
            driver: {k: seen[k] for k in ("reading", "max_in_flight", "greenlets", "requests")}
            for driver, seen in (("psycopg", right), ("psycopg2", wrong))
        },
    )
