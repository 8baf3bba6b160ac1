"""tests/no_skips.py at work: a throw-away suite with every way a test can avoid running,
run by a real pytest with the plugin loaded. Each one must be reported as a failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

WAYS_NOT_TO_RUN = {
    "test_skip.py": "import pytest\n\ndef test_it():\n    pytest.skip('no tool')\n",
    "test_skip_mark.py": "import pytest\n\n@pytest.mark.skip\ndef test_it():\n    pass\n",
    "test_module_skip.py": "import pytest\npytest.skip('no tool', allow_module_level=True)\n",
    "test_importorskip.py": "import pytest\npytest.importorskip('no_such_module_here')\n",
    "test_xfail.py": "import pytest\n\n@pytest.mark.xfail\ndef test_it():\n    assert False\n",
    "test_xpass.py": "import pytest\n\n@pytest.mark.xfail\ndef test_it():\n    pass\n",
}


def run_suite(folder: Path, plugin: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # --continue-on-collection-errors: a module failed at collection does not stop the
        # others from being reported.
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider"]
        + ["--continue-on-collection-errors"]
        + (["-p", "no_skips"] if plugin else [])
        + [str(folder)],
        cwd=folder,
        env={"PYTHONPATH": str(TESTS), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_way_of_not_running_a_test_fails_the_run(tmp_path):
    for name, text in WAYS_NOT_TO_RUN.items():
        (tmp_path / name).write_text(text)
    result = run_suite(tmp_path, plugin=True)
    assert result.returncode == 1, result.stdout
    for name in WAYS_NOT_TO_RUN:
        assert f"FAILED {name}" in result.stdout or f"ERROR {name}" in result.stdout, (
            name,
            result.stdout,
        )
    assert "skipped" not in result.stdout.splitlines()[-1]


def test_without_the_plugin_the_same_suite_would_look_green(tmp_path):
    """The control: what the plugin prevents. pytest alone passes this suite."""
    for name, text in WAYS_NOT_TO_RUN.items():
        (tmp_path / name).write_text(text)
    result = run_suite(tmp_path, plugin=False)
    assert result.returncode == 0, result.stdout
