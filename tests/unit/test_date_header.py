"""gunicorn_conf/date_header.py: the Date header Gunicorn writes, formatted once a second."""

from __future__ import annotations

import pytest

from gunicorn_conf import date_header

# Gunicorn's own http_date(), as date_header captured it before installing anything.
GUNICORNS = date_header._formatted


@pytest.fixture
def clock(monkeypatch):
    """A clock the test sets (date_header reads time.time), and counts of the formatting."""
    now = [1_764_340_000.25]
    formatted: list[float] = []

    def formatting(timestamp):
        formatted.append(timestamp)
        return GUNICORNS(timestamp)

    monkeypatch.setattr(date_header.time, "time", lambda: now[0])
    monkeypatch.setattr(date_header, "_formatted", formatting)
    return now, formatted


def test_it_says_what_gunicorn_says_for_the_same_moment(clock):
    now, _ = clock
    http_date = date_header._EverySecond()
    for moment in (1_764_340_000.0, 1_764_340_000.999, 1_764_340_001.5, 951_782_400.0):
        now[0] = moment
        assert http_date() == GUNICORNS(moment)


def test_it_formats_once_a_second_and_again_when_the_second_turns(clock):
    now, formatted = clock
    http_date = date_header._EverySecond()
    first = [http_date() for _ in range(50)]
    now[0] += 0.5  # the same second
    first.append(http_date())
    now[0] += 0.5  # the next one
    second = http_date()
    assert len(set(first)) == 1
    assert second != first[0]
    assert second == "Fri, 28 Nov 2025 14:26:41 GMT"
    assert len(formatted) == 2


def test_a_given_timestamp_is_formatted_as_asked_not_from_the_cache(clock):
    _, formatted = clock
    http_date = date_header._EverySecond()
    http_date()
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert formatted[-1] == 0
