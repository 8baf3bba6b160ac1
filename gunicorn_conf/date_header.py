"""The ``Date`` header, formatted once a second instead of once per answer.

Gunicorn stamps every answer with ``Date``, formatting the clock with
``email.utils.formatdate`` each time: a few microseconds of Python per request, about 2 % of
a worker's time on a small answer (py-spy). The header has a resolution of one second
(RFC 9110 5.6.7), so every answer within the same second carries the same text: it is
formatted when the second changes and reused until the next one.

A worker's threads may race at the turn of a second; each writes a whole (second, text)
pair, and a reader takes one pair, so an answer never carries a time from another second
than the one it read. Installed in each worker by base.py's post_worker_init hook, like
one_write.py; tests/unit/test_date_header.py checks it against Gunicorn's own.
"""

import time

from gunicorn import util

_formatted = util.http_date


class _EverySecond:
    """Gunicorn's ``http_date()``, remembering the text of the current second."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = (-1, "")

    def __call__(self, timestamp: float | None = None) -> str:
        if timestamp is not None:  # a given time, not the clock's: formatted as asked
            return _formatted(timestamp)
        second = int(time.time())
        last = self._last
        if last[0] != second:
            last = self._last = (second, _formatted(second))
        return last[1]


def install() -> None:
    """Every ``Date`` Gunicorn writes from now on (HTTP/1 and HTTP/2) comes from here."""
    util.http_date = _EverySecond()
