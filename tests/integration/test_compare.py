"""`compare` (harness/compare.py) on apps built for it (tests/compare_apps/): a CPU-heavy app
gets sync (or gthread with no more threads than CPUs), an app that mostly waits gets
gthread or gevent, an app that blocks gevent's loop in C gets that pitfall named and not
gevent, and every recommended figure is one of the measured steps. Short steps (1 s): the
verdicts, not the speeds, are asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gunicorn_conf.cpus import usable_cpus
from harness.launch import ROOT


def compare(
    tmp_path, app: str, *paths: str, options: tuple[str, ...] = (), env: dict | None = None
) -> tuple[subprocess.CompletedProcess, dict]:
    command = [sys.executable, "-m", "harness.compare", "--app", app, "--seconds", "1"]
    command += [arg for path in paths for arg in ("--path", path)]
    command += ["--out", str(tmp_path), *options]
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )
    result = json.loads((tmp_path / "compare.json").read_text()) if done.returncode == 0 else {}
    return done, result


def assert_measured(result: dict) -> None:
    """The recommended setting's expected figures are a step measured for it, not a guess."""
    chosen = result["recommendation"]["setting"]
    for path, expected in result["recommendation"]["expected"].items():
        (runs,) = [
            m for m in result["measured"] if m["path"] == path and m["label"] == chosen["label"]
        ]
        assert any(
            (s["rps"], s["p99_ms"], s["connections"])
            == (expected["rps"], expected["p99_ms"], expected["connections"])
            for s in runs["steps"]
        )


@pytest.mark.parametrize(
    "app, fitting",
    [
        ("tests.compare_apps.cpu_heavy:app", "cpu"),
        ("tests.compare_apps.mostly_waits:app", "waits"),
    ],
)
def test_the_recommendation_fits_the_apps_nature_and_was_measured(tmp_path, app, fitting):
    done, result = compare(tmp_path, app, "/")
    assert done.returncode == 0, done.stderr[-2000:]
    recommendation = result["recommendation"]
    chosen = recommendation["setting"]
    assert recommendation["nature"] == fitting
    if fitting == "cpu":
        assert chosen["worker_class"] == "sync" or (
            chosen["worker_class"] == "gthread" and chosen["threads"] <= usable_cpus()
        ), recommendation
    else:
        assert chosen["worker_class"] in ("gthread", "gevent"), recommendation
    assert_measured(result)
    report = (tmp_path / "compare.md").read_text()
    assert f"**{chosen['label']}**" in report and (tmp_path / "compare.png").stat().st_size
    print(f"\n{app}: {chosen['label']}: {recommendation['reason']}")


def test_a_c_wait_that_blocks_gevents_loop_is_named_and_gevent_not_chosen(tmp_path):
    done, result = compare(tmp_path, "tests.compare_apps.blocks_gevent:app", "/")
    assert done.returncode == 0, done.stderr[-2000:]
    gevent_trouble = [p for p in result["pitfalls"] if p.startswith("gevent")]
    assert any(
        "blocked gevent's loop" in p and "app (blocks_gevent.py:" in p for p in gevent_trouble
    ), result["pitfalls"]
    assert result["recommendation"]["setting"]["worker_class"] != "gevent"


def test_an_app_imported_before_gevents_patch_is_reported(tmp_path):
    """The classic gevent trap: with --preload the master imports the app (and the notes
    example's requests and ssl) before the worker monkey-patches."""
    done, result = compare(
        tmp_path,
        "examples.notes:create_app()",
        "/notes",
        options=("--worker-class", "gevent"),
        env={"GUNICORN_CMD_ARGS": "--preload", "NOTES_DB": str(tmp_path / "notes.sqlite3")},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert any("imported before the monkey-patch" in p for p in result["pitfalls"]), result[
        "pitfalls"
    ]


def test_workers_that_grow_are_reported(tmp_path):
    done, result = compare(
        tmp_path, "tests.compare_apps.grows:app", "/", options=("--worker-class", "sync")
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert any("the workers grew by" in p for p in result["pitfalls"]), result["pitfalls"]


def test_a_request_past_gunicorns_timeout_is_reported(tmp_path):
    done, result = compare(
        tmp_path,
        "tests.compare_apps.too_slow:app",
        "/",
        options=("--worker-class", "sync"),
        env={"GUNICORN_TIMEOUT": "2"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert any("worker timeout" in p for p in result["pitfalls"]), result["pitfalls"]


@pytest.mark.parametrize(
    "app, path, message",
    [
        ("tests.compare_apps.broken:app", "/", "cannot load APP"),
        ("no_such_module:app", "/", "cannot load APP"),
        ("examples.notes:create_app()", "/no-such-path", "GET /no-such-path answered 404"),
        ("tests.compare_apps.fails:app", "/", "GET / answered 500"),
        ("examples.notes:create_app()", "notes", "a path starts with /"),
    ],
)
def test_bad_input_is_one_clear_line_and_nothing_is_left_running(tmp_path, app, path, message):
    done, _ = compare(tmp_path, app, path)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("compare: ") and message in last, done.stderr[-2000:]
    assert servers_of(app) == []


def servers_of(app: str) -> list[int]:
    """Processes whose environment says they serve ``app`` (compare sets WSGI_APP)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"WSGI_APP={app}".encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:  # gone, or not ours to read
            pass
    return found
