"""Docker Swarm: the stack in deploy/swarm deploys, and a rolling update of the app while a
bounded client sends requests through nginx fails none of them.

Runs on a single-node swarm this test creates and leaves again. This machine has no IPVS,
so the stack uses what works everywhere: dnsrr endpoints and nginx resolving the tasks.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter

import pytest
import requests
from helpers import wait_until

from harness.launch import ROOT, free_port

STACK = "flask-three-ways-e2e-swarm"


def docker(*args: str, env: dict | None = None, timeout: float = 300) -> str:
    result = subprocess.run(
        ["docker", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout
    )
    assert result.returncode == 0, f"docker {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def detached() -> list[str]:
    """`--detach=true` where the CLI has the flag (Docker 26+, which warns without it); older
    CLIs (Debian bookworm's 20.10) have no flag and always return without waiting."""
    return ["--detach=true"] if "--detach" in docker("stack", "deploy", "--help") else []


@pytest.fixture()
def swarm_stack(compose_stack):
    """The images come from the compose tier's build; the swarm is ours to create."""
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
    created = state != "active"
    if created:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    port = free_port()
    env = {**compose_stack.env, "HTTP_PORT": str(port)}
    try:
        docker("stack", "deploy", *detached(), "-c", "deploy/swarm/stack.yml", STACK, env=env)
        base = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: requests.get(f"{base}/gthread/readyz", timeout=2).status_code == 200,
            timeout=120,
            what="the swarm stack to answer through nginx",
        )
        yield base
    finally:
        subprocess.run(["docker", "stack", "rm", STACK], capture_output=True)
        if created:
            wait_until(
                lambda: (
                    not docker(
                        "ps", "-q", "--filter", f"label=com.docker.stack.namespace={STACK}"
                    ).strip()
                ),
                timeout=60,
                what="the stack's containers to go",
            )
            subprocess.run(["docker", "swarm", "leave", "--force"], capture_output=True)


def test_a_rolling_update_under_load_fails_no_request(swarm_stack):
    url = f"{swarm_stack}/gthread/api/io?ms=20"
    counts: Counter = Counter()
    hosts: Counter = Counter()
    stop = threading.Event()
    lock = threading.Lock()

    def client() -> None:  # bounded: 120 s or 20,000 requests, whichever comes first
        deadline = time.monotonic() + 120
        with requests.Session() as session:
            while (
                not stop.is_set() and time.monotonic() < deadline and sum(counts.values()) < 20_000
            ):
                try:
                    response = session.get(url, timeout=15)
                    outcome = response.status_code
                    host = response.json().get("hostname") if outcome == 200 else None
                except (requests.RequestException, ValueError) as exc:
                    outcome, host = type(exc).__name__, None
                with lock:
                    counts[outcome] += 1
                    if host:
                        hosts[host] += 1

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: counts[200] >= 50, timeout=30, what="the client to get going")
        before = set(hosts)
        # Blocks until the update has converged: every task replaced, start-first.
        docker("service", "update", "--force", "--detach=false", f"{STACK}_app-gthread")
        target = sum(counts.values()) + 100
        wait_until(lambda: sum(counts.values()) >= target, timeout=30, what="more requests")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    sent, failed = sum(counts.values()), sum(counts.values()) - counts[200]
    print(
        f"\nswarm rolling update: {sent} requests sent, {failed} failed ({dict(counts)}); "
        f"tasks before {len(before)}, tasks that served after: {len(set(hosts) - before)}"
    )
    assert set(hosts) - before, "no new task served: the update did not happen"
    assert failed == 0
