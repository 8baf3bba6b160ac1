"""Lint as tests: ruff (lint and format) on all Python, mypy (strict) on the app and the
delay service, shellcheck on every shell script. A missing tool fails, it never skips."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from harness.launch import ROOT

SHELL_SCRIPTS = [
    ".ci/run",
    ".ci/standin-images.sh",
    "tools/make-dev-cert.sh",
    "loadtest/healthcheck.sh",
    ".ci/postgres-standin/docker-entrypoint.sh",
]


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_finds_nothing():
    result = run([sys.executable, "-m", "ruff", "check", "."])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_python_file_is_formatted_by_ruff():
    result = run([sys.executable, "-m", "ruff", "format", "--check", "."])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_shipped_packages_type_check_strictly():
    result = run([sys.executable, "-m", "mypy", "app", "delay"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_shell_scripts_pass_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not installed (Debian: apt-get install shellcheck)")
    scripts = [str(ROOT / s) for s in SHELL_SCRIPTS]
    assert all((ROOT / s).exists() for s in SHELL_SCRIPTS)
    result = run(["shellcheck", *scripts])
    assert result.returncode == 0, result.stdout


def test_every_compose_variable_is_documented_in_env_example():
    import re

    used = set()
    for compose_file in ROOT.glob("docker-compose*.yml"):
        used |= set(re.findall(r"\$\{([A-Z_]+)", compose_file.read_text()))
    documented = set(re.findall(r"^#?\s*([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert used and used <= documented, f"undocumented: {sorted(used - documented)}"
