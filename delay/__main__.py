"""HTTP/1.1 with keep-alive, GET only, JSON answers: just what the delay service needs."""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import re
import signal
from urllib.parse import parse_qs, urlsplit

MAX_MS = 10_000  # the app's own upper bound for ?ms= (app/settings.py)
MAX_HEAD = 8192  # request line and headers, bytes
# Longer than any client pool keeps an idle connection (the app's: app/upstream.py), so the
# client always closes first and never reuses a connection this side is closing.
IDLE_SECONDS = 75
_DIGITS = re.compile(r"[0-9]{1,9}")


def answer(status: int, body: dict[str, object], keep_alive: bool) -> bytes:
    payload = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
    head = (
        f"HTTP/1.1 {status} {reason[status]}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: {'keep-alive' if keep_alive else 'close'}"
        "\r\n\r\n"
    )
    return head.encode() + payload


def route(method: str, target: str) -> tuple[int, dict[str, object], float]:
    """(status, body, seconds to wait before answering) for one request."""
    if method != "GET":
        return 405, {"error": "method_not_allowed", "message": "Only GET is served."}, 0
    url = urlsplit(target)
    if url.path == "/healthz":
        return 200, {"status": "ok"}, 0
    if url.path != "/delay":
        return 404, {"error": "not_found", "message": f"No route {url.path[:80]!r}."}, 0
    values = parse_qs(url.query, keep_blank_values=True).get("ms", ["0"])
    if len(values) != 1 or not _DIGITS.fullmatch(values[0]) or int(values[0]) > MAX_MS:
        message = f"'ms' must be one integer from 0 to {MAX_MS}."
        return 400, {"error": "invalid_parameter", "parameter": "ms", "message": message}, 0
    ms = int(values[0])
    return 200, {"waited_ms": ms}, ms / 1000


class Connections:
    """The open connections, so that a stop ends each one cleanly: an idle one is closed at
    once, one whose request is being answered gets its answer (Connection: close) first."""

    def __init__(self) -> None:
        self.stopping = False
        self.idle: set[asyncio.StreamWriter] = set()  # waiting for their next request
        self.handlers: set[asyncio.Task[None]] = set()

    async def close(self, grace: float) -> None:
        self.stopping = True
        for writer in self.idle:
            writer.close()  # its reader sees the end of the stream; its handler returns
        if self.handlers:
            await asyncio.wait(self.handlers, timeout=grace)


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connections: Connections
) -> None:
    handler = asyncio.current_task()
    assert handler is not None
    connections.handlers.add(handler)
    try:
        while not connections.stopping:
            connections.idle.add(writer)
            try:
                # asyncio.timeout, not wait_for: on 3.11, wait_for drops a cancellation that
                # lands as the read completes, and under steady keep-alive traffic the loop
                # then serves on past a shutdown's one cancel.
                async with asyncio.timeout(IDLE_SECONDS):
                    head = await reader.readuntil(b"\r\n\r\n")
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                return  # the client closed, stayed idle too long, or the service is stopping
            except asyncio.LimitOverrunError:
                writer.write(answer(400, {"error": "head_too_large"}, keep_alive=False))
                return
            finally:
                connections.idle.discard(writer)
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            headers = dict(
                (name.strip().lower(), value.strip())
                for name, _, value in (line.partition(":") for line in lines[1:] if line)
            )
            if len(parts) != 3 or "content-length" in headers or "transfer-encoding" in headers:
                # No bodies here: a request with one cannot be framed safely, so it is the last.
                writer.write(answer(400, {"error": "bad_request"}, keep_alive=False))
                return
            keep_alive = parts[2] == "HTTP/1.1" and headers.get("connection", "") != "close"
            status, body, wait = route(parts[0], parts[1])
            if wait:
                await asyncio.sleep(wait)
            keep_alive = keep_alive and not connections.stopping
            try:
                writer.write(answer(status, body, keep_alive))
                await writer.drain()
            except ConnectionError:
                return  # the client left before its answer: nothing to tell it
            if not keep_alive:
                return
    finally:
        writer.close()
        connections.handlers.discard(handler)


async def main(host: str, port: int) -> None:
    connections = Connections()
    server = await asyncio.start_server(
        functools.partial(serve_connection, connections=connections), host, port, limit=MAX_HEAD
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"event": "delay_ready", "host": host, "port": port}), flush=True)
    await stop.wait()
    server.close()  # no new connections
    await connections.close(grace=MAX_MS / 1000)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
