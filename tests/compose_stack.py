"""A compose project driven by the tests: `docker compose -p PROJECT ...` with its own ports and
environment (tests/e2e/conftest.py's session stack, and the your-app e2e test's own)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_until

from harness.launch import free_ports

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "flask-three-ways-e2e"  # the session stack of tests/e2e/conftest.py


@dataclass
class ComposeStack:
    env: dict[str, str]
    http_port: int
    locust_port: int
    up_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    project: str = PROJECT

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def locust_url(self) -> str:
        return f"http://127.0.0.1:{self.locust_port}"

    def url(self, setup: str, path: str) -> str:
        return f"{self.base_url}/{setup}{path}"

    def compose(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 600,
        env: dict[str, str] | None = None,
    ) -> str:
        result = subprocess.run(
            ["docker", "compose", "-p", self.project, *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            # `up --wait` fails on a service that is not healthy: say why it is not.
            why = self.why_unhealthy() if "up" in args else ""
            raise AssertionError(
                f"docker compose {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}\n{why}"
            )
        return result.stdout

    def python_in_locust(self, *args: str) -> str:
        """`python ARGS` in the Locust master's container, from the project's folder there:
        a client inside the compose network, on nginx's load port (http://nginx:8081), which
        the published port's rate limit does not slow."""
        return self.compose("exec", "-T", "-w", "/srv", "locust-master", "python", *args)

    def scale(self, service: str, replicas: int) -> None:
        """`docker compose up --scale SERVICE=N`, the containers already running left alone."""
        self.compose(
            "up", "--detach", "--wait", "--no-recreate", "--scale", f"{service}={replicas}", service
        )

    def services(self) -> list[dict[str, Any]]:
        out = self.compose("ps", "--all", "--format", "json")
        # Compose prints one JSON object per line (or, in older versions, one array).
        text = out.strip()
        if text.startswith("["):
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def config(self) -> dict[str, Any]:
        return json.loads(self.compose("config", "--format", "json"))

    def wait_until_healthy(self, timeout: float = 90, fresh: bool = False) -> None:
        """Every running service healthy again (after a test stopped one): Docker marks a
        service healthy at its next passing check, so this polls rather than `up --wait`,
        which gives up at once on a service still marked unhealthy. ``fresh``: each one's
        last check also started after this call and passed. "healthy" stays until three
        checks in a row fail, so a service that has just stopped answering still shows it."""
        since = datetime.now(UTC)

        def ok(service: dict[str, Any]) -> bool:
            if service["State"] == "exited":
                return True
            if service["State"] != "running" or service.get("Health") not in ("healthy", ""):
                return False
            return not fresh or self._passed_a_check_since(service, since)

        try:
            wait_until(
                lambda: all(ok(s) for s in self.services()),
                timeout=timeout,
                what="every service to be healthy again",
            )
        except AssertionError as failure:
            raise AssertionError(f"{failure}\n{self.why_unhealthy(ok)}") from None

    def health(self, service: dict[str, Any]) -> dict[str, Any] | None:
        """Docker's health record of a service's container (its status and last checks);
        None when it has no healthcheck."""
        return json.loads(
            subprocess.run(
                ["docker", "inspect", "--format", "{{json .State.Health}}", service["ID"]],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )

    def _passed_a_check_since(self, service: dict[str, Any], since: datetime) -> bool:
        health = self.health(service)
        if not health or not health["Log"]:
            return not health
        last = health["Log"][-1]
        # RFC 3339 with nanoseconds: cut to microseconds for fromisoformat.
        started = re.sub(r"(\.\d{6})\d*", r"\1", last["Start"]).replace("Z", "+00:00")
        return last["ExitCode"] == 0 and datetime.fromisoformat(started) > since

    def why_unhealthy(self, ok: Callable[[dict[str, Any]], bool] | None = None) -> str:
        """For a failure message: each service that is not ``ok`` (default: running and
        not healthy), its last health checks' output and its last log lines."""
        report = []
        for service in self.services():
            if ok is None:
                fine = service["State"] == "exited" or service.get("Health") in ("healthy", "")
            else:
                fine = ok(service)
            if fine:
                continue
            logs = self.compose(
                "logs", "--no-color", "--tail", "30", service["Service"], check=False
            )
            report.append(
                f"--- {service['Service']}: {service.get('Health')}\n"
                f"{json.dumps(self.health(service))}\n{logs}"
            )
        return "\n".join(report)


def require_docker() -> None:
    if shutil.which("docker") is None:
        pytest.fail("docker is not installed: the e2e tier needs Docker and Compose")
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(f"docker compose is not available: {probe.stderr.strip()}")
    info = subprocess.run(["docker", "info"], capture_output=True, text=True)
    if info.returncode != 0:
        pytest.fail(f"the Docker engine is not running: {info.stderr.strip()[:500]}")


def assert_nothing_left_behind(project: str = PROJECT) -> None:
    """`docker compose down --volumes` removes every container, network and volume the stack
    created."""
    label = f"label=com.docker.compose.project={project}"
    for kind in ("ps --all", "network ls", "volume ls"):
        left = subprocess.run(
            ["docker", *kind.split(), "--quiet", "--filter", label],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert not left, f"docker compose down left {kind.split()[0]} objects: {left}"


@contextmanager
def compose_up(
    project: str, subnet: str, *services: str, env: dict[str, str] | None = None
) -> Iterator[ComposeStack]:
    """Build and start ``services`` (all when none) as compose project ``project`` on free
    ports and its own app ``subnet``; on the way out, `down` and check nothing is left."""
    require_docker()
    http_port, locust_port = free_ports(2)
    environ = dict(
        os.environ,
        **(env or {}),
        HTTP_PORT=str(http_port),
        LOCUST_WEB_PORT=str(locust_port),
        APP_SUBNET=subnet,
    )
    stack = ComposeStack(environ, http_port, locust_port, project=project)
    stack.compose("down", "--volumes", "--remove-orphans", check=False)
    try:
        stack.compose("build", "--with-dependencies", *services)
        started = time.monotonic()
        stack.compose("up", "--detach", "--wait", "--wait-timeout", "180", *services)
        stack.up_seconds = time.monotonic() - started
        yield stack
    except AssertionError:
        print(stack.compose("logs", "--no-color", "--tail", "80", check=False))
        raise
    finally:
        stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "45", check=False)
        assert_nothing_left_behind(project)
