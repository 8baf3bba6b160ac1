"""The soak, in CI's two-minute version: `make soak` runs ten (harness/soak.py says how).

Mixed load on all three setups at once, paced near 70 % of the machine, with Gunicorn's
max_requests low enough that workers are recycled throughout. Nothing may be lost, nothing
may grow, and what was opened must be closed again. The p99 drift is a timing: the soak's
report judges it against its 20 % goal (docs/soak/soak.md), and this test only records it
(docs/figures/tests.json).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MINUTES = 2


def test_two_minutes_of_mixed_load_lose_nothing_and_leak_nothing(tmp_path, figures):
    run = subprocess.run(
        [sys.executable, "-m", "harness.soak", "--minutes", str(MINUTES), "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=MINUTES * 60 + 300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((tmp_path / "soak.json").read_text())
    assert (tmp_path / "soak.png").stat().st_size > 0
    print("\n" + (tmp_path / "soak.md").read_text())
    rows = {row["setup"]: row for row in result["rows"]}
    assert set(rows) == {"sync", "gthread", "gevent"}
    for setup, row in rows.items():
        figures(f"soak.{setup}", minutes=MINUTES, **row)
    for setup, row in rows.items():
        assert row["sent"] > 0 and row["failed"] == 0, lost(setup, row, tmp_path / "stack.log")
        assert row["recycles"] >= 2, (setup, row)
        assert row["rss_growth_pct"] <= 10, (setup, row)
        # Back to where they were, but for nginx's idle keep-alive pool (harness/soak.py).
        assert row["fds_after"] <= row["fds_before"] + row["idle_pool"], (setup, row)
        assert row["connections_after"] <= row["connections_before"] + row["idle_pool"], (
            setup,
            row,
        )


def lost(setup: str, row: dict, stack_log: Path) -> str:
    """What a failure message needs to say why requests were lost: their statuses and when,
    and what nginx logged about this setup's upstream (the stack's log is in a temporary
    folder CI does not keep)."""
    errors = [
        line
        for line in stack_log.read_text(errors="replace").splitlines()
        if ("[error]" in line or "[warn]" in line) and f"/{setup}/" in line
    ]
    shown = errors if len(errors) <= 10 else errors[:5] + errors[-5:]
    return (
        f"{setup}: {row['failed']} of {row['sent']} failed, by status "
        f"{row['failed_by_status']}, at seconds {row['failed_at_s']}; nginx logged "
        f"{len(errors)} lines, first and last:\n" + "\n".join(shown)
    )
