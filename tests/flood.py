"""More load than a setup can serve, from one asyncio client: what every request met.

A thread per simulated client would not reach the hundreds of clients an overload needs on
a two-core machine that also runs the servers, so each client here is a coroutine on one
keep-alive connection of its own (HTTP/1.1, written by hand: one small GET, one answer with
a Content-Length, which is all nginx sends back). Aimed only at the stack's own loopback
ports; bounded in clients, time and per-request wait.

A client sends a request, waits for its answer, and sends the next one at once; after a 503
it waits ``pause_after_refusal`` first (an impatient client: shorter than the Retry-After
nginx sends). Offered load is therefore the served rate plus the refused clients coming back.
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
    answers: list[Answer] = field(default_factory=list)
    healthz_seconds: list[float] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0

    def run(self) -> Flood:
        asyncio.run(self._main())
        return self

    async def _main(self) -> None:
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
        while time.monotonic() < deadline:
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
                answer = await asyncio.wait_for(connection.get(), self.request_timeout)
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


class Connection:
    """One keep-alive HTTP/1.1 connection to the stack, sending one GET at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes):
        self.reader, self.writer, self.request = reader, writer, request

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        request = f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
        return cls(reader, writer, request)

    async def get(self) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(self.request)
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
