"""The compose files themselves, as Docker Compose reads them (no containers started)."""

from __future__ import annotations

import json
import os
import subprocess

from harness.launch import ROOT

TLS = ["-f", "docker-compose.yml", "-f", "docker-compose.tls.yml"]


def compose_config(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "TLS_CERT_DIR"} | env
    return subprocess.run(
        ["docker", "compose", *args, "config", "--format", "json"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
    )


def test_the_tls_override_fails_fast_without_a_certificate_folder():
    result = compose_config(*TLS)
    assert result.returncode != 0
    assert "TLS_CERT_DIR" in result.stderr and "make certs" in result.stderr


def test_the_tls_override_publishes_https_and_mounts_the_tls_site():
    result = compose_config(*TLS, TLS_CERT_DIR="./certs")
    assert result.returncode == 0, result.stderr
    nginx = json.loads(result.stdout)["services"]["nginx"]
    assert {(p["host_ip"], p["target"]) for p in nginx["ports"]} == {
        ("127.0.0.1", 8080),
        ("127.0.0.1", 8443),
    }
    mounts = {v["target"]: v for v in nginx["volumes"]}
    assert mounts["/etc/nginx/stack/sites"]["source"].endswith("nginx/sites-tls")
    assert all(v["read_only"] for v in mounts.values())
