"""The switches of the protections tier still fit the shipped config: each edit matches exactly
once (tests/protection_switches.py), so a change to nginx/ that moves a protection fails here,
in seconds, rather than in the slower tier that runs the switched-off stacks."""

from __future__ import annotations

import shutil

import pytest
from protection_switches import PROTECTIONS, ROOT, Protection


@pytest.mark.parametrize("protection", PROTECTIONS, ids=lambda p: p.name)
def test_each_switch_applies_to_a_copy_of_the_shipped_config(protection: Protection, tmp_path):
    copy = tmp_path / "nginx"
    shutil.copytree(ROOT / "nginx", copy)
    for edit in protection.nginx:
        before = (copy / edit.file).read_text()
        edit.apply(copy)  # raises unless its pattern matches exactly once
        assert (copy / edit.file).read_text() != before
    for name in protection.gunicorn_env:
        assert name in (ROOT / "gunicorn_conf" / "base.py").read_text(), name
    assert protection.nginx or protection.gunicorn_env, "a protection with no switch"
    assert protection.tests
    # The repository's own files are never touched.
    assert (
        "proxy_next_upstream error timeout;"
        in (ROOT / "nginx" / "snippets" / "location" / "proxy.conf").read_text()
    )
