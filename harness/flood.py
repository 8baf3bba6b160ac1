"""Hundreds of HTTP clients from one asyncio process: what every request met.

A thread per simulated client would not reach the hundreds of clients an overload needs on
a two-core machine that also runs the servers, so each client here is a coroutine on one
keep-alive connection of its own (HTTP/1.1, written by hand: one small GET, one answer with
a Content-Length, which is all nginx sends back). Aimed only at the stack's own loopback
ports; bounded in clients, time and per-request wait. Black-box: HTTP only, no app import.

Two ways to load a setup:

* ``Flood`` (the overload test, tests/integration/test_overload.py): each client sends a
  request, waits for its answer and sends the next one at once; after a 503 it waits
  ``pause_after_refusal`` first (an impatient client: shorter than the Retry-After nginx
  sends). Offered load is the served rate plus the refused clients coming back.
* ``Paced`` (the soak, harness/soak.py): requests sent at a fixed rate, whatever the answers
  take, each on a free connection of a pool, cycling through a mix of paths.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    """One request: when it was sent (monotonic), how long it took, its status (None: no
    HTTP answer within the wait: a hang, or a broken connection) and, for a refusal, its
    JSON ``error`` code and Retry-After header."""

    sent_at: float
    seconds: float
    status: int | None
    error: str | None = None
    retry_after: str | None = None


@dataclass
class Flood:
    url: str
    clients: int
    seconds: float
    # Longest a request may take before it counts as hung (status None).
    request_timeout: float
    pause_after_refusal: float = 0.5
    # nginx's own liveness, polled throughout on a connection of its own.
    healthz_url: str | None = None
    # More paths on the same host and port: each client then cycles through url and these.
    more_urls: tuple[str, ...] = ()
    answers: list[Answer] = field(default_factory=list)
    healthz_seconds: list[float] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0

    def run(self) -> Flood:
        asyncio.run(self.main())
        return self

    async def main(self) -> None:
        """The flood, as a coroutine: for running several at once in one event loop."""
        # Every client connects first, so the surge starts with all of them ready: hundreds of
        # connections opened at once would otherwise put the client's own delay into the
        # first requests' times.
        connections = await asyncio.gather(
            *(Connection.open(self.url) for _ in range(self.clients))
        )
        self.started = time.monotonic()
        deadline = self.started + self.seconds
        probe = asyncio.create_task(self._poll_healthz(deadline)) if self.healthz_url else None
        await asyncio.gather(*(self._client(deadline, c) for c in connections))
        # The surge is over once its last request has been answered (no client sends a new
        # one after the deadline; the ones in flight finish).
        self.ended = time.monotonic()
        if probe is not None:
            await probe

    async def _client(self, deadline: float, connection: Connection | None) -> None:
        cycle = [request_bytes(url) for url in (self.url, *self.more_urls)]
        sent = 0
        while time.monotonic() < deadline:
            request = cycle[sent % len(cycle)]
            sent += 1
            sent_at = time.monotonic()
            if connection is None:
                try:
                    connection = await asyncio.wait_for(
                        Connection.open(self.url), self.request_timeout
                    )
                except (TimeoutError, OSError):
                    self.answers.append(Answer(sent_at, time.monotonic() - sent_at, None))
                    await asyncio.sleep(self.pause_after_refusal)
                    continue
            try:
                answer = await asyncio.wait_for(connection.get(request), self.request_timeout)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                answer = None
            seconds = time.monotonic() - sent_at
            if answer is None:
                self.answers.append(Answer(sent_at, seconds, None))
                connection.close()
                connection = None
                continue
            status, headers, body = answer
            error = None
            if status != 200:
                try:
                    error = json.loads(body).get("error")
                except ValueError:
                    error = "not json"
            self.answers.append(Answer(sent_at, seconds, status, error, headers.get("retry-after")))
            if headers.get("connection", "").lower() == "close":
                connection.close()
                connection = None
            if status == 503:
                await asyncio.sleep(self.pause_after_refusal)
        if connection is not None:
            connection.close()

    async def _poll_healthz(self, deadline: float) -> None:
        assert self.healthz_url is not None
        connection = await Connection.open(self.healthz_url)
        try:
            while time.monotonic() < deadline:
                sent_at = time.monotonic()
                status, _, _ = await asyncio.wait_for(connection.get(), 5)
                assert status == 200, status
                self.healthz_seconds.append(time.monotonic() - sent_at)
                await asyncio.sleep(0.05)
        finally:
            connection.close()

    def figures(self) -> dict[str, float | int]:
        """Offered, served, refused (JSON 503), failed otherwise; p99 of the served and of
        the refusals, in ms; served per second over the surge."""
        served = [a for a in self.answers if a.status == 200]
        refused = [a for a in self.answers if a.status == 503]
        # Requests are sent for `seconds`; the ones admitted by then are served until `ended`.
        duration = self.ended - self.started
        return {
            "clients": self.clients,
            "seconds": round(duration, 1),
            "offered": len(self.answers),
            "offered_per_s": round(len(self.answers) / self.seconds, 1),
            "served": len(served),
            "served_per_s": round(len(served) / duration, 1),
            "refused_503": len(refused),
            "failed_otherwise": len(self.answers) - len(served) - len(refused),
            "served_p99_ms": percentile_ms([a.seconds for a in served]),
            "served_max_ms": round(max((a.seconds for a in served), default=0) * 1000, 1),
            "refused_p99_ms": percentile_ms([a.seconds for a in refused]),
            "refused_max_ms": round(max((a.seconds for a in refused), default=0) * 1000, 1),
            "healthz_max_ms": round(max(self.healthz_seconds, default=0) * 1000, 1),
            "healthz_checks": len(self.healthz_seconds),
        }


def percentile_ms(values: list[float], q: int = 99) -> float:
    if len(values) < 2:
        return round(max(values, default=0) * 1000, 1)
    return round(statistics.quantiles(values, n=100)[q - 1] * 1000, 1)


# Reuse a pooled connection only if it was used this recently (Paced._one says why).
IDLE_CONNECTION_SECONDS = 10


def request_bytes(url: str) -> bytes:
    """A GET for ``url``'s path and query, as this module sends it."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()


class Connection:
    """One keep-alive HTTP/1.1 connection to the stack, sending one GET at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes):
        self.reader, self.writer, self.request = reader, writer, request
        self.last_used = time.monotonic()

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer, request_bytes(url))

    async def get(self, request: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        """Send ``request`` (default: the GET for the URL the connection was opened with)
        and read its answer."""
        self.writer.write(request or self.request)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise ValueError(f"an answer without Content-Length: {headers}")
        body = await self.reader.readexactly(int(headers["content-length"]))
        return status, headers, body

    def close(self) -> None:
        self.writer.close()


@dataclass
class Paced:
    """``rate`` requests a second for ``seconds``, sent on schedule whatever the answers take
    (an open loop: a slow server does not slow the senders down), cycling through ``urls``
    (one host and port). Each request takes an idle connection of a pool, or opens one."""

    urls: list[str]
    rate: float
    seconds: float
    request_timeout: float
    answers: list[tuple[str, Answer]] = field(default_factory=list)

    async def run(self) -> None:
        # A few connections ready before the first request, as a running client would have.
        idle = list(await asyncio.gather(*(Connection.open(self.urls[0]) for _ in range(8))))
        requests = [request_bytes(url) for url in self.urls]
        started = time.monotonic()
        total = int(self.rate * self.seconds)
        # Only the requests still in flight: a finished task is dropped at once, so a long
        # run does not pile up hundreds of thousands of them for the collector to scan.
        in_flight: set[asyncio.Task[None]] = set()
        for number in range(total):
            delay = started + number / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            index = number % len(self.urls)
            task = asyncio.create_task(self._one(idle, self.urls[index], requests[index]))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        while in_flight:
            await asyncio.gather(*in_flight)
        for connection in idle:
            connection.close()

    async def _one(self, idle: list[Connection], url: str, request: bytes) -> None:
        sent_at = time.monotonic()
        # Like any HTTP client's pool: a connection idle for longer than the server keeps one
        # (nginx's keepalive_timeout, 15 s: nginx/snippets/http/basics.conf) is dropped, not
        # reused, or a request would race nginx closing it.
        while idle and sent_at - idle[-1].last_used > IDLE_CONNECTION_SECONDS:
            idle.pop().close()
        connection = idle.pop() if idle else None
        try:
            if connection is None:
                connection = await asyncio.wait_for(Connection.open(url), self.request_timeout)
            status, headers, _ = await asyncio.wait_for(
                connection.get(request), self.request_timeout
            )
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as failure:
            if connection is not None:
                connection.close()
            name = type(failure).__name__
            self.answers.append((url, Answer(sent_at, time.monotonic() - sent_at, None, name)))
            return
        self.answers.append((url, Answer(sent_at, time.monotonic() - sent_at, status)))
        if headers.get("connection", "").lower() == "close":
            connection.close()
        else:
            connection.last_used = time.monotonic()
            idle.append(connection)
