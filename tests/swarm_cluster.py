"""A Docker Swarm of several nodes on one machine, for the e2e tier (tests/e2e/test_swarm.py).

Each node is a Docker Engine in a container of the host's engine (tests/swarm_node/), so the
swarm needs nothing but the Docker socket the test runner already has: no root on the host,
no privileged containers. The nodes share a bridge network of their own (and nothing else):
the swarm's control traffic, its overlay (VXLAN) traffic and the test's HTTP requests stay
on it. The first node is the manager, the others join as workers; the images the stack
runs go into every node with ``docker save | docker load``, no registry. Killing a node's
container kills its engine, its containerd and every container it runs at once: a node
lost without warning.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from helpers import wait_until

from harness.launch import ROOT

NODE_IMAGE = "flask-three-ways/swarm-node:local"
NETWORK = "flask-three-ways-swarm"
# A subnet of its own, so it cannot clash with a network a user has (as E2E_APP_SUBNET).
SUBNET = os.environ.get("E2E_SWARM_SUBNET", "172.31.242.0/24")
# What an engine in a container needs and no more: mounts (cgroups, the containers' root
# filesystems, network namespaces), network set-up (bridges, VXLAN, iptables), and entering
# the namespaces of a container that runs as another user (`docker exec`, healthchecks).
NODE_PRIVILEGES = [
    "--cap-add=SYS_ADMIN",
    "--cap-add=NET_ADMIN",
    "--cap-add=SYS_PTRACE",
    "--security-opt=seccomp=unconfined",
    "--security-opt=apparmor=unconfined",
]
# Each node's failure domain (stack.yml spreads replicas over node.labels.zone).
ZONES = "abcdefgh"


def docker(*args: str, input: bytes | None = None, timeout: float = 300) -> str:
    """The host's engine; a failure names the command and what it printed."""
    result = subprocess.run(["docker", *args], input=input, capture_output=True, timeout=timeout)
    out, err = result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")
    assert result.returncode == 0, f"docker {' '.join(args)}:\n{out}{err}"
    return out


@dataclass(frozen=True)
class Node:
    """One node: a container of the host's engine, running an engine of its own."""

    name: str
    address: str = ""

    def docker(self, *args: str, timeout: float = 300) -> str:
        """This node's engine, through its own CLI (``docker exec``)."""
        return docker("exec", self.name, "docker", *args, timeout=timeout)

    def engine_answers(self) -> bool:
        result = subprocess.run(
            ["docker", "exec", self.name, "docker", "info", "--format", "{{.ID}}"],
            capture_output=True,
            timeout=30,
        )
        return result.returncode == 0


@dataclass(frozen=True)
class Cluster:
    nodes: list[Node]

    @property
    def manager(self) -> Node:
        return self.nodes[0]

    @property
    def workers(self) -> list[Node]:
        return self.nodes[1:]

    def node_states(self) -> dict[str, tuple[str, str]]:
        """Each node's (status, availability) as the manager sees it, by node name."""
        lines = self.manager.docker(
            "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.Availability}}"
        ).split("\n")
        return {
            name: (status.lower(), availability.lower())
            for name, status, availability in (line.split() for line in lines if line.strip())
        }

    def running_tasks(self, service: str) -> list[str]:
        """The nodes the service's tasks run on now (one entry per running task), as the
        manager sees it."""
        lines = self.manager.docker(
            "service",
            "ps",
            service,
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Node}} {{.CurrentState}}",
        ).split("\n")
        return [line.split()[0] for line in lines if " Running " in f"{line} "]

    def inspect(self, service: str) -> dict:
        return json.loads(self.manager.docker("service", "inspect", service))[0]

    def update_state(self, service: str) -> str | None:
        """Where the service's last update is: "updating", "completed", "rollback_…"."""
        return (self.inspect(service).get("UpdateStatus") or {}).get("State")


def _remove_leftovers() -> None:
    """Nodes and the network of an earlier run that was killed before its clean-up."""
    stale = docker("ps", "-aq", "--filter", f"label={NETWORK}").split()
    if stale:
        docker("rm", "--force", "--volumes", *stale)
    if docker("network", "ls", "-q", "--filter", f"name=^{NETWORK}$").strip():
        docker("network", "rm", NETWORK)


def _load_images(node: Node, images: list[str]) -> None:
    """``docker save | docker load`` into the node's engine: the layers the images share
    travel once."""
    save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
    try:
        load = subprocess.run(
            ["docker", "exec", "-i", node.name, "docker", "load", "--quiet"],
            stdin=save.stdout,
            capture_output=True,
            timeout=600,
        )
    finally:
        assert save.stdout is not None
        save.stdout.close()
        save.wait(timeout=600)
    assert save.returncode == 0 and load.returncode == 0, load.stderr.decode(errors="replace")


@contextmanager
def swarm_cluster(images: list[str], nodes: int = 3) -> Iterator[Cluster]:
    """``nodes`` engines joined as one manager and the rest workers, every image in
    ``images`` loaded into each, every node labelled with a zone of its own. Everything is
    removed afterwards: the nodes (with their engines' data) and the network."""
    docker(
        "build",
        "--quiet",
        "--build-arg",
        f"PYTHON_IMAGE={os.environ.get('PYTHON_IMAGE', 'python:3.13-slim')}",
        "--tag",
        NODE_IMAGE,
        str(ROOT / "tests" / "swarm_node"),
        timeout=900,
    )
    _remove_leftovers()
    docker("network", "create", "--subnet", SUBNET, "--label", NETWORK, NETWORK)
    started: list[Node] = []
    try:
        for index in range(nodes):
            name = f"{NETWORK}-node-{index + 1}"
            docker(
                "run",
                "--detach",
                "--name",
                name,
                "--hostname",
                name,
                "--label",
                NETWORK,
                "--network",
                NETWORK,
                *NODE_PRIVILEGES,
                NODE_IMAGE,
            )
            address = docker(
                "inspect",
                "--format",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                name,
            ).strip()
            started.append(Node(name, address))
        for node in started:
            wait_until(node.engine_answers, timeout=60, what=f"the engine in {node.name}")
        with ThreadPoolExecutor(len(started)) as pool:
            list(pool.map(lambda node: _load_images(node, images), started))
        cluster = Cluster(started)
        cluster.manager.docker("swarm", "init", "--advertise-addr", cluster.manager.address)
        token = cluster.manager.docker("swarm", "join-token", "--quiet", "worker").strip()
        for worker in cluster.workers:
            worker.docker("swarm", "join", "--token", token, f"{cluster.manager.address}:2377")
        wait_until(
            lambda: [s for s, _ in cluster.node_states().values()] == ["ready"] * nodes,
            timeout=60,
            what="every node to be ready",
        )
        for zone, node in zip(ZONES, started, strict=False):
            cluster.manager.docker("node", "update", "--label-add", f"zone={zone}", node.name)
        yield cluster
    finally:
        if started:
            subprocess.run(
                ["docker", "rm", "--force", "--volumes", *(n.name for n in started)],
                capture_output=True,
            )
        subprocess.run(["docker", "network", "rm", NETWORK], capture_output=True)
