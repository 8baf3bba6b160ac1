"""Every file users copy into production, checked by the real tools: hadolint, yamllint,
kubernetes-validate on the rendered Kustomize overlays, systemd-analyze on the units, and
`nginx -t` on every nginx configuration shipped. A missing tool fails; it never skips."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.launch import ROOT, SETUPS
from tools.native_stack import Ports, render_nginx

BIN = Path(sys.executable).parent
DOCKERFILES = [
    "app/Dockerfile",
    "nginx/Dockerfile",
    "loadtest/Dockerfile",
    "delay/Dockerfile",
    "tests/Dockerfile",
    ".ci/prometheus-standin/Dockerfile",
    ".ci/postgres-standin/Dockerfile",
]
KUBERNETES = ROOT / "deploy" / "kubernetes"
SYSTEMD = ROOT / "deploy" / "systemd"
SWARM = ROOT / "deploy" / "swarm"
# Kubernetes versions the manifests must be valid for: an old supported one and a new one.
KUBERNETES_VERSIONS = ["1.30.0", "1.35.0"]


def run(*command: str | Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in command], cwd=ROOT, capture_output=True, text=True, check=False, **kwargs
    )


def need(tool: str) -> str:
    path = shutil.which(tool) or (str(BIN / tool) if (BIN / tool).exists() else None)
    if path is None:
        pytest.fail(f"{tool} is not installed; this check needs it")
    return path


def test_every_dockerfile_passes_hadolint():
    result = run(need("hadolint"), "--failure-threshold", "warning", *DOCKERFILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_yaml_file_passes_yamllint():
    result = run(need("yamllint"), "--strict", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_kubernetes_base_is_valid(version):
    manifests = sorted(
        str(p) for p in (KUBERNETES / "base").glob("*.yaml") if p.name != "kustomization.yaml"
    )
    result = run(need("kubernetes-validate"), "--strict", "-k", version, *manifests)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("setup", SETUPS)
def test_each_rendered_overlay_is_valid_and_runs_its_setup(setup, tmp_path):
    rendered = run(need("kubectl"), "kustomize", KUBERNETES / "overlays" / setup)
    assert rendered.returncode == 0, rendered.stderr
    assert "Warning" not in rendered.stderr, rendered.stderr  # no deprecated fields
    manifest = tmp_path / f"{setup}.yaml"
    manifest.write_text(rendered.stdout)
    for version in KUBERNETES_VERSIONS:
        result = run(need("kubernetes-validate"), "--strict", "-k", version, manifest)
        assert result.returncode == 0, result.stdout + result.stderr
    text = rendered.stdout
    assert f"python:gunicorn_conf.{setup}" in text and f"name: flask-{setup}" in text
    assert f"{setup}.app.example.com" in text


def test_termination_grace_outlasts_gunicorns_drain_and_the_pre_stop_pause():
    import yaml  # PyYAML comes with yamllint and kubernetes-validate

    deployment = yaml.safe_load((KUBERNETES / "base" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > 30 + pause  # graceful_timeout = 30
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    assert limits["cpu"] == requests["cpu"]  # whole, guaranteed CPUs size the workers
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_swarm_nginx_gives_up_on_a_vanished_node_inside_its_retry_window():
    """A node that vanishes sends no reset. nginx must notice a dead connection (TCP
    keepalive, timed by stack.yml's sysctls) before proxy_next_upstream_timeout ends, or the
    request in flight is not retried: it waits out proxy_read_timeout and fails (measured:
    tests/e2e/test_swarm.py lost such requests before the keepalive was set)."""
    import re

    import yaml

    stack = yaml.safe_load((SWARM / "stack.yml").read_text())
    sysctls = {k: int(v) for k, v in stack["services"]["nginx"]["sysctls"].items()}
    dead_after = sysctls["net.ipv4.tcp_keepalive_time"] + (
        sysctls["net.ipv4.tcp_keepalive_intvl"] * sysctls["net.ipv4.tcp_keepalive_probes"]
    )
    proxy = (ROOT / "nginx" / "snippets" / "location" / "proxy.conf").read_text()
    retry_window = int(re.search(r"^proxy_next_upstream_timeout (\d+)s;", proxy, re.M)[1])
    assert dead_after < retry_window
    assert re.search(r"^proxy_socket_keepalive on;", (SWARM / "site.conf").read_text(), re.M)
    for setup in SETUPS:
        app = stack["services"][f"app-{setup}"]
        # Gunicorn exits 0 when Swarm stops an unhealthy task: on-failure never replaces it.
        assert app["deploy"]["restart_policy"]["condition"] == "any"
        assert app["stop_grace_period"] == "40s"  # > graceful_timeout (30 s)


def test_the_systemd_units_verify(tmp_path):
    """systemd-analyze verify on a gunicorn@sync instance; ExecStart points at this
    checkout's Gunicorn, which must exist for the check. Any warning fails too. The unit's
    commented database lines are switched on, so what it tells users to add verifies too."""
    analyze = need("systemd-analyze")
    for unit in ("gunicorn@.service", "gunicorn@.socket"):
        text = (SYSTEMD / unit).read_text()
        text = text.replace("/opt/flask-three-ways/venv/bin/gunicorn", str(BIN / "gunicorn"))
        text = text.replace("/opt/flask-three-ways", str(ROOT))
        for optional in ("LoadCredential=", "Environment=DATABASE_URL_FILE="):
            assert f"# {optional}" in text or unit.endswith(".socket"), optional
            text = text.replace(f"# {optional}", optional)
        (tmp_path / unit).write_text(text)
        instance = tmp_path / unit.replace("@.", "@sync.")
        instance.symlink_to(tmp_path / unit)
    result = run(
        analyze,
        "verify",
        "--man=no",
        tmp_path / "gunicorn@sync.socket",
        tmp_path / "gunicorn@sync.service",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def nginx_test(conf: Path, prefix: Path) -> subprocess.CompletedProcess:
    return run(need("nginx"), "-t", "-q", "-e", "stderr", "-p", f"{prefix}/", "-c", conf)


@pytest.mark.parametrize("variant", ["plain", "tls", "systemd", "swarm"])
def test_every_shipped_nginx_configuration_passes_nginx_t(variant):
    # World-readable scratch space: nginx's workers drop to an unprivileged user.
    scratch = Path(tempfile.mkdtemp(prefix="nginx-t-"))
    try:
        certs = None
        if variant == "tls":
            certs = scratch / "certs"
            subprocess.run(
                [str(ROOT / "tools" / "make-dev-cert.sh"), str(certs)],
                check=True,
                capture_output=True,
            )
        conf = render_nginx(scratch, Ports(), certs)
        if variant == "systemd":
            shutil.copy(SYSTEMD / "upstreams.conf", conf.parent / "upstreams.conf")
        if variant == "swarm":  # what deploy/swarm/stack.yml mounts as configs
            shutil.copy(SWARM / "upstreams.conf", conf.parent / "upstreams.conf")
            shutil.copy(SWARM / "site.conf", conf.parent / "sites" / "stack.conf")
        result = nginx_test(conf, scratch)
        assert result.returncode == 0, result.stderr
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_the_compose_files_are_valid_compose():
    docker = need("docker")
    for files in (
        ["-f", "docker-compose.yml"],
        ["-f", "docker-compose.yml", "-f", "docker-compose.tls.yml"],
    ):
        result = run(
            docker,
            "compose",
            *files,
            "config",
            "-q",
            env={
                "PATH": "/usr/bin:/bin:/usr/local/bin",
                "TLS_CERT_DIR": "./certs",
                "HOME": str(Path.home()),
            },
        )
        assert result.returncode == 0, result.stderr
