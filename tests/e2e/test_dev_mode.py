"""The dev mode (compose profile `dev`): live reload and the debugger, and only there."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import requests
from helpers import wait_until

from harness.launch import ROOT, free_port

DEBUGGER_ASSET = "/?__debugger__=yes&cmd=resource&f=debugger.js"


def test_dev_mode_reloads_edits_and_its_debugger_never_reaches_the_default_stack(compose_stack):
    # A copy of the app to edit, so the test never touches the working tree. World-readable:
    # the container's unprivileged user reads it through the bind mount.
    work = Path(tempfile.mkdtemp(prefix="dev-app-"))
    try:
        shutil.copytree(ROOT / "app", work / "app", ignore=shutil.ignore_patterns("__pycache__"))
        for path in [work, *work.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        env = {"DEV_APP_DIR": str(work / "app"), "DEV_PORT": str(free_port())}
        dev = f"http://127.0.0.1:{env['DEV_PORT']}"
        compose_stack.compose("--profile", "dev", "up", "--detach", "--wait", "app-dev", env=env)
        try:
            assert requests.get(f"{dev}/api/whoami", timeout=5).json()["worker_class"] == "werkzeug"
            # The interactive debugger is there in dev mode...
            asset = requests.get(dev + DEBUGGER_ASSET, timeout=5)
            assert asset.status_code == 200 and "debugger" in asset.text.lower()
            # ...and an edit shows up without a restart by hand.
            health = work / "app" / "health.py"
            health.write_text(
                health.read_text().replace('jsonify(status="ok")', 'jsonify(status="edited")')
            )
            wait_until(
                lambda: requests.get(f"{dev}/healthz", timeout=2).json()["status"] == "edited",
                timeout=30,
                what="the dev server to reload the edit",
            )
        finally:
            compose_stack.compose(
                "--profile", "dev", "rm", "--stop", "--force", "app-dev", env=env, check=False
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # The default stack never runs the debugger: the same request is a plain JSON 404.
    default = requests.get(compose_stack.url("gthread", DEBUGGER_ASSET), timeout=5)
    assert default.status_code == 404 and default.json()["error"] == "not_found"
