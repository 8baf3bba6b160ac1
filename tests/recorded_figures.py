"""Figures the tests measure and the docs quote (docs/reliability.md's fault counts, the
"What it shows" table in docs/measuring.md): a test records them with the ``figures``
fixture, and the session writes them to artifacts/figures/tests.json, merged into what
earlier sessions wrote there (so a run of one tier updates only its own figures).

`python -m tools.figures --adopt` copies that file to docs/figures/tests.json, the committed
copy the docs are generated from and checked against (tools/figures.py). A protections-tier
run (a protection switched off) records nothing: its figures describe a broken config.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "artifacts" / "figures" / "tests.json"


class Figures:
    def __init__(self) -> None:
        self.recorded: dict[str, Any] = {}

    def __call__(self, key: str, **values: Any) -> None:
        """Record ``values`` under ``key`` (e.g. ``faults.sigkill.gevent``)."""
        self.recorded[key] = values

    def write(self, path: Path = RECORDED) -> None:
        if not self.recorded or os.environ.get("STACK_PROTECTION_OFF"):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = json.loads(path.read_text()) if path.exists() else {}
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for key, values in self.recorded.items():
            merged[key] = {**values, "recorded": stamp}
        path.write_text(json.dumps(dict(sorted(merged.items())), indent=1) + "\n")
