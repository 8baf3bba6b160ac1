"""Each protection docs/reliability.md claims, switched off: its tests must then fail.

A test that passes with or without the behaviour it is named for proves nothing. For every
protection in tests/protection_switches.py this runs that protection's tests again in a
separate pytest, with STACK_PROTECTION_OFF naming it: the fixtures there start nginx and
Gunicorn from a throw-away copy of the config with the protection removed. Every one of the
tests must fail; the same tests pass in the ordinary run of the suite.

One protection is not here because no config switch removes it: nginx always reads a whole
request header before it proxies, which is what keeps slowloris off the sync worker. Its
test carries its own control arm instead (test_faults.py: the same attack on Gunicorn
exposed directly starves it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from protection_switches import OFF_VARIABLE, PROTECTIONS, Protection

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("protection", PROTECTIONS, ids=lambda p: p.name)
def test_the_tests_of_a_protection_fail_when_it_is_switched_off(protection: Protection):
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", *protection.tests],
        cwd=ROOT,
        env={**os.environ, OFF_VARIABLE: protection.name},
        capture_output=True,
        text=True,
        timeout=600,
    )
    failed = re.findall(r"^FAILED (\S+)", run.stdout, re.MULTILINE)
    passed = re.search(r"(\d+) passed", run.stdout.splitlines()[-1] if run.stdout else "")
    print(f"\n{protection.name} off ({protection.claim}): failed {failed}")
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    for test in protection.tests:
        assert any(f == test or f.startswith(test + "[") for f in failed), (test, failed)
    # Every parametrized case fails, not only some.
    assert passed is None, run.stdout[-3000:]
