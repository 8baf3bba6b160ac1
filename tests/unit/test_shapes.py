"""The web UI's step-ramp load shape, driven by a fake clock.

Locust monkey-patches the whole process with gevent when imported, so the shape is
exercised in a fresh interpreter, as Locust itself would load it, never in pytest's.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DRIVE_THE_SHAPE = """
import json
from loadtest.shapes import StepRamp

class FrozenStepRamp(StepRamp):
    now = 0.0
    def get_run_time(self):
        return self.now

shape = FrozenStepRamp()
ticks = []
for second in range(0, StepRamp.step_seconds * 25, 10):
    shape.now = second
    ticks.append(shape.tick())
print(json.dumps({"ticks": ticks, "step": StepRamp.step_users, "max": StepRamp.max_users}))
"""


def test_step_ramp_adds_users_in_steps_then_stops():
    out = subprocess.run(
        [sys.executable, "-c", DRIVE_THE_SHAPE],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    counts = [tick[0] for tick in result["ticks"] if tick]
    assert counts[0] == result["step"]
    assert counts == sorted(counts)  # never steps down
    assert max(counts) == result["max"]
    assert result["ticks"][-1] is None  # stops by itself after the last step
