"""Docker Swarm across three nodes: deploy/swarm/stack.yml, as shipped, on a swarm of one
manager and two workers (tests/swarm_cluster.py: each node a Docker Engine of its own), with
all three setups, under a steady client load through nginx on the manager:

1. a rolling update of every setup at once,
2. a worker drained (what an operator does before maintenance),
3. a worker lost outright: its engine, containerd and containers SIGKILLed together.

Each time: requests failed (the goal is 0: these GETs are idempotent, and nginx retries one
on another task when its task is gone; asserted for the update and the drain, and for the
lost node every request except the two kinds no proxy can retry: an answer the node was cut
off in the middle of sending, and a request it had not yet acknowledged when it died), how
long until the lost replicas run elsewhere, and the stack back to the replicas it declares.
Figures go to deploy/README.md ("From one node to many").

The tests run in order on one cluster: each starts from where the one before left it.
This machine has no IPVS, so the stack uses what works everywhere: dnsrr endpoints and nginx
resolving the tasks (VXLAN overlay networking works).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import requests
from helpers import Sent, SteadyLoad, wait_until
from swarm_cluster import Cluster, Node, docker, swarm_cluster

from harness.launch import ROOT, SETUPS

STACK = "flask"
SERVICES = [f"{STACK}_app-{setup}" for setup in SETUPS]
NGINX = f"{STACK}_nginx"
# The images `docker compose build` makes (docker-compose.yml), which stack.yml runs.
IMAGES = ["flask-three-ways/app:local", "flask-three-ways/nginx:local"]
# Two clients per setup, each sending one short I/O request after another.
CLIENTS_PER_SETUP, REQUEST = 2, "api/io?ms=20"
# How long the lost replicas may take to run elsewhere: Swarm declares a node down after
# missing heartbeats (5 s apart), then starts each task, which is healthy after its first
# checks (2 s apart) on two busy cores. Generous; the figures say what it took.
CONVERGE_SECONDS = 120


@pytest.fixture(scope="module")
def cluster(compose_stack) -> Iterator[Cluster]:
    """The images come from the compose tier's build; the cluster and the stack are ours."""
    with swarm_cluster(IMAGES) as cluster:
        manager = cluster.manager
        docker("cp", str(ROOT / "deploy" / "swarm"), f"{manager.name}:/stack")
        manager.docker("stack", "deploy", "--compose-file", "/stack/stack.yml", STACK)
        wait_until(
            lambda: (
                all(len(cluster.running_tasks(s)) == replicas(cluster, s) for s in SERVICES)
                and cluster.running_tasks(NGINX) == [manager.name]
            ),
            timeout=240,
            what="every app service to run its replicas, and nginx on the manager",
        )
        wait_until(
            lambda: all(
                requests.get(f"{base(cluster)}/{setup}/readyz", timeout=5).status_code == 200
                for setup in SETUPS
            ),
            timeout=120,
            what="every setup to answer through nginx",
        )
        yield cluster


def base(cluster: Cluster) -> str:
    """nginx, published in mode host on the manager's own address."""
    return f"http://{cluster.manager.address}:8080"


def replicas(cluster: Cluster, service: str) -> int:
    return cluster.inspect(service)["Spec"]["Mode"]["Replicated"]["Replicas"]


@contextmanager
def steady_load(cluster: Cluster) -> Iterator[SteadyLoad]:
    """The clients, sending through nginx until the block ends; yielded once they are going."""
    urls = [f"{base(cluster)}/{s}/{REQUEST}" for s in SETUPS for _ in range(CLIENTS_PER_SETUP)]
    with SteadyLoad(urls, timeout=30, hosts=True) as load:
        yield load


def every_client_served_after(load: SteadyLoad, moment: float, what: str) -> None:
    wait_until(
        lambda: {s.url for s in list(load.sent) if s.sent_at > moment} == set(load.urls),
        timeout=30,
        what=f"every client served after {what}",
    )


def served_by_since(load: SteadyLoad, moment: float) -> set[str]:
    """The tasks (by hostname) that answered a request sent after ``moment``."""
    return {s.served_by for s in list(load.sent) if s.sent_at > moment and s.served_by}


def tasks_on(cluster: Cluster, node: Node) -> int:
    """How many app tasks run on ``node`` now."""
    return sum(cluster.running_tasks(service).count(node.name) for service in SERVICES)


def converged(cluster: Cluster, without: Node | None = None) -> Callable[[], bool]:
    """Every app service runs its declared replicas, none of them on ``without``."""

    declared = {service: replicas(cluster, service) for service in SERVICES}  # read once

    def check() -> bool:
        for service in SERVICES:
            nodes = cluster.running_tasks(service)
            if len(nodes) != declared[service] or (without and without.name in nodes):
                return False
        return True

    return check


def outcome(sent: list[Sent]) -> dict:
    """What the clients met: requests sent, failed (anything but a 200), slowest answer."""
    return {
        "sent": len(sent),
        "failed": sum(s.status != 200 for s in sent),
        "failed_by_status": sorted({str(s.status) for s in sent if s.status != 200}),
        "errors": sorted({s.error for s in sent if s.error})[:5],
        "slowest_seconds": round(max(s.seconds for s in sent), 2),
    }


def busiest_worker(cluster: Cluster) -> tuple[Node, int]:
    """The worker that runs the most app tasks now, and how many it runs (at least one)."""
    counts = [(tasks_on(cluster, node), node) for node in cluster.workers]
    tasks, worker = max(counts, key=lambda pair: pair[0])
    assert tasks >= 1, "no app task on any worker"
    return worker, tasks


def seconds_until_converged_without(cluster: Cluster, node: Node, since: float) -> float:
    """Waits until every app service runs its replicas elsewhere than ``node``."""
    wait_until(
        converged(cluster, without=node),
        timeout=CONVERGE_SECONDS,
        what=f"{node.name}'s tasks to run elsewhere",
    )
    return time.monotonic() - since


def test_each_setups_replicas_run_on_different_nodes_and_nginx_on_the_manager(cluster):
    for service in SERVICES:
        nodes = cluster.running_tasks(service)
        assert len(nodes) == 2 and len(set(nodes)) == 2, (service, nodes)
    assert cluster.running_tasks(NGINX) == [cluster.manager.name]


def test_a_rolling_update_of_every_setup_fails_no_request(cluster, figures):
    with steady_load(cluster) as load:
        every_client_served_after(load, 0, "the start")
        before = served_by_since(load, 0)  # old tasks
        started = time.monotonic()
        for service in SERVICES:  # all three at once: each replaces its tasks start-first
            cluster.manager.docker("service", "update", "--force", "--detach=true", service)
        wait_until(
            lambda: all(cluster.update_state(s) == "completed" for s in SERVICES),
            timeout=CONVERGE_SECONDS * 2,
            what="every rolling update to complete",
        )
        took = time.monotonic() - started
        after = time.monotonic()
        every_client_served_after(load, after, "the update")
        # nginx picks a task per request (DNS round-robin), so a new task may answer its
        # first request a moment after the others: poll, under the same load, to a deadline.
        wait_until(
            lambda: len(served_by_since(load, after) - before) >= 2 * len(SETUPS),
            timeout=30,
            what="every new task to serve",
        )
    result = outcome(load.sent)
    figures("e2e.swarm.rolling_update", **result, seconds=round(took, 1))
    assert result["failed"] == 0, failure(result, cluster)


def test_draining_a_worker_fails_no_request(cluster, figures):
    drained, moved = busiest_worker(cluster)
    with steady_load(cluster) as load:
        started = time.monotonic()
        cluster.manager.docker("node", "update", "--availability", "drain", drained.name)
        took = seconds_until_converged_without(cluster, drained, started)
    cluster.manager.docker("node", "update", "--availability", "active", drained.name)
    result = outcome(load.sent)
    figures("e2e.swarm.drain", **result, tasks_moved=moved, converged_seconds=round(took, 1))
    assert result["failed"] == 0, failure(result, cluster)


def test_losing_a_worker_node_retries_every_request_not_yet_answered_and_moves_its_replicas(
    cluster, figures
):
    lost, moved = busiest_worker(cluster)
    placed = {service: cluster.running_tasks(service) for service in SERVICES}
    # What nginx can retry on depends on what its lookup answers: wait until Docker's DNS, as
    # nginx's container sees it, lists every running task (a task started by the test before
    # may not be there yet).
    resolved = wait_until(
        lambda: every_task_resolved(cluster),
        timeout=60,
        what="Docker's DNS, in nginx's container, to list every running task",
    )
    with steady_load(cluster) as load:
        started = time.monotonic()
        docker("kill", "--signal", "KILL", lost.name)
        killed = time.monotonic()
        wait_until(
            lambda: cluster.node_states()[lost.name][0] == "down",
            timeout=CONVERGE_SECONDS,
            what="the manager to declare the node down",
        )
        declared_down = time.monotonic() - started
        took = seconds_until_converged_without(cluster, lost, started)
        every_client_served_after(load, time.monotonic(), "the node was lost")
    result = outcome(load.sent)
    # Two failures nginx cannot retry, both of requests in flight on the node at the kill:
    # - an answer the lost node had begun to send (its headers are on their way to the
    #   client) and never finished: it reaches the client cut short, at most one per task;
    # - a request the node had not yet acknowledged when it died (within about one round
    #   trip of nginx sending it). TCP keepalive, which finds the other requests on the dead
    #   node after ~5 s (stack.yml's sysctls), never probes a connection with data in
    #   flight: nginx waits out proxy_read_timeout (35 s) and answers 504, after the
    #   client's 30 s. At most one: a window that short rarely catches two requests.
    # Anything else (a request sent after the kill that failed, a 502, a second hang) fails.
    failed = [s for s in load.sent if s.status != 200]
    cut_short = [s for s in failed if s.error and "IncompleteRead" in s.error]
    unacknowledged = [
        s
        for s in failed
        if s.sent_at < killed and (s.status == 504 or (s.error and "ReadTimeout" in s.error))
    ]
    figures(
        "e2e.swarm.node_lost",
        **result,
        cut_short=len(cut_short),
        unacknowledged=len(unacknowledged),
        tasks_lost=moved,
        declared_down_seconds=round(declared_down, 1),
        converged_seconds=round(took, 1),
    )
    unexplained = [s for s in failed if s not in cut_short and s not in unacknowledged]
    context = (
        f"killed {lost.name} {killed - started:.2f} s after {started:.2f} (monotonic);"
        f" tasks before, by node: {placed}; Docker's DNS in nginx's container: {resolved}"
    )
    assert not unexplained and len(cut_short) <= moved and len(unacknowledged) <= 1, failure(
        result, cluster, context
    )


def every_task_resolved(cluster: Cluster) -> dict[str, list[str]] | None:
    """Each setup's addresses in Docker's DNS as nginx's container resolves tasks.app-<setup>
    (the name deploy/swarm/site.conf looks up), once there is one for every running task."""
    (container,) = cluster.manager.docker("ps", "-q", "--filter", f"name={NGINX}").split()
    answers = {}
    for setup, service in zip(SETUPS, SERVICES, strict=True):
        lines = cluster.manager.docker(
            "exec", container, "getent", "ahostsv4", f"tasks.app-{setup}"
        ).splitlines()
        answers[setup] = sorted({line.split()[0] for line in lines if line.strip()})
        if len(answers[setup]) != len(cluster.running_tasks(service)):
            return None
    return answers


def failure(result: dict, cluster: Cluster, context: str = "") -> str:
    """A failure message in full: pytest shortens a non-string message, and the nginx lines
    that say which task each attempt went to are what a rare failure needs to explain itself.
    The node-loss test adds where every task ran: a request nginx tried on one task only
    (one "upstream" in its access line) had no other task of its setup in the DNS answer."""
    return f"{result}\n{context}\n" + "\n".join(nginx_errors(cluster))


def nginx_errors(cluster: Cluster) -> list[str]:
    """What nginx logged of the failures, for a failure message: its error-log lines (warn
    and up: nginx.conf), each failed attempt at a task and why (refused, timed out, reset),
    and the access-log line of every answer but a 200, with each task tried and what it gave
    ("upstream", "upstream_status")."""
    command = ["docker", "exec", cluster.manager.name, "docker", "service", "logs", "--raw", NGINX]
    logs = subprocess.run(command, capture_output=True, timeout=60)  # errors go to stderr
    lines = (logs.stdout + logs.stderr).decode(errors="replace").splitlines()
    return [
        line
        for line in lines
        if "[error]" in line
        or "[warn]" in line
        or ('"nginx_access"' in line and '"status":200' not in line)
    ][-40:]
