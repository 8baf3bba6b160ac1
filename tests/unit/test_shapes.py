"""The web UI's step-ramp load shape, driven by a fake clock."""

from loadtest.shapes import StepRamp


class FrozenStepRamp(StepRamp):
    now = 0.0

    def get_run_time(self):
        return self.now


def test_step_ramp_adds_users_in_steps_then_stops():
    shape = FrozenStepRamp()
    seen = []
    for second in range(0, 20 * 25, 10):
        shape.now = second
        seen.append(shape.tick())
    counts = [tick[0] for tick in seen if tick]
    assert counts[0] == StepRamp.step_users
    assert counts == sorted(counts)  # never steps down
    assert max(counts) == StepRamp.max_users
    assert seen[-1] is None  # stops by itself after the last step
