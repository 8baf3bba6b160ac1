"""Figures in the docs agree with the committed artifacts that measured them (tools/figures.py).

Measured figures live only inside generated blocks, which are rewritten from docs/bench,
docs/report and docs/figures; anything that looks measured outside a block fails here unless
STATED says it is a setting, an input or a target rather than a measurement.
"""

from __future__ import annotations

import re
from pathlib import Path

from tools import figures

ROOT = Path(__file__).resolve().parents[2]
# Every hand-written page users read (the generated bench.md and report.md are artifacts).
PAGES = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))] + [
    "deploy/README.md"
]
MEASURED = re.compile(
    r"\d[\d,.]*\s?req/s"  # a rate
    r"|\d[\d.]*\s?%"  # a share
    r"|\d[\d.]*×"  # a ratio (2 × 32, with spaces, is a configuration)
    r"|\bp(?:50|95|99) (?:of )?\d"  # a latency percentile
    r"|(?<![\w/.:=?-])\d+/\d+(?![\w/.])"  # a count such as 200/0
    r"|^\|.*\|\s*\d[\d,.]*\s*\|"  # a table cell that is only a number
)
# Written by hand on purpose: settings, inputs and targets, not measurements.
STATED = {
    "docs/measuring.md": {
        "20 %": "the report's own rule: a run within 20 % of Locust's ceiling is flagged",
    },
    "docs/reliability.md": {
        "70 %": "the soak's paced load (harness/soak.py --load)",
        "10 %": "the soak's memory-growth goal",
        "20 %": "the soak's p99-drift goal",
    },
}


def outside_blocks(text: str) -> str:
    return figures.BLOCK.sub("", text)


def test_every_generated_block_agrees_with_its_artifact():
    assert figures.stale() == [], "run: python -m tools.figures --write"


def test_the_check_fails_when_a_figure_in_a_block_is_changed():
    src = figures.Sources()
    text = (ROOT / "deploy" / "README.md").read_text()
    block = figures.BLOCK.search(text)
    assert block and re.search(r"\d", block.group(3))
    tampered = text.replace(block.group(3), re.sub(r"\d", "7", block.group(3)), 1)
    assert figures.render("deploy/README.md", tampered, src) == text != tampered


def test_every_page_with_a_block_is_checked_and_every_block_is_known():
    for page in PAGES:
        text = (ROOT / page).read_text()
        names = [m.group(2) for m in figures.BLOCK.finditer(text)]
        if names:
            assert page in figures.DOCS, page
        assert set(names) <= set(figures.BLOCKS), (page, names)
    for page in figures.DOCS:
        assert figures.BLOCK.search((ROOT / page).read_text()), f"{page} has no block"


def test_no_measured_figure_is_written_by_hand_outside_a_block():
    found = []
    for page in PAGES:
        stated = STATED.get(page, {})
        for line in outside_blocks((ROOT / page).read_text()).splitlines():
            for match in MEASURED.finditer(line):
                if not any(allowed in line for allowed in stated):
                    found.append(f"{page}: {match.group(0)!r} in: {line.strip()[:120]}")
    assert not found, "measured figures outside a generated block:\n" + "\n".join(found)
