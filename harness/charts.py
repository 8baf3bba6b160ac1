"""The report's charts, drawn with matplotlib into PNG files (no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402 - must follow the backend choice

# One colour per target, the same in every chart.
COLOURS = {
    "sync": "#1f77b4",
    "gthread": "#2ca02c",
    "gevent": "#d62728",
    "gevent + psycopg2": "#ff9896",  # the driver pitfall (harness/report.py)
    "dev-single": "#7f7f7f",
    "dev-threaded": "#9467bd",
    "dev-processes": "#8c564b",
}


def metric_vs_users(
    runs: Sequence[Mapping[str, Any]], metric: str, ylabel: str, title: str, path: Path
) -> Path:
    """One line per target: ``metric`` against the number of users."""
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for target in dict.fromkeys(r["target"] for r in runs):
        points = sorted((r["users"], r[metric]) for r in runs if r["target"] == target)
        ax.plot(
            [u for u, _ in points],
            [v for _, v in points],
            marker="o",
            label=target,
            color=COLOURS.get(target),
        )
    ax.set_xlabel("users (requests in flight from the client)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def timelines(batches: Mapping[str, Sequence[Mapping[str, Any]]], title: str, path: Path) -> Path:
    """For each target, one lane per process / thread / greenlet and one bar per request,
    from the server's start to its finish time."""
    fig, axes = plt.subplots(
        len(batches), 1, figsize=(9, 1.2 + 1.3 * len(batches)), dpi=110, squeeze=False, sharex=True
    )
    for ax, (target, bodies) in zip(axes[:, 0], batches.items(), strict=True):
        t0 = min(b["started_at"] for b in bodies)
        lanes = sorted({_lane(b) for b in bodies})
        for body in bodies:
            y = lanes.index(_lane(body))
            ax.barh(
                y,
                body["finished_at"] - body["started_at"],
                left=body["started_at"] - t0,
                height=0.7,
                color=COLOURS.get(target, "#555"),
                edgecolor="white",
            )
        ax.set_yticks(range(len(lanes)))
        ax.set_yticklabels([_lane_label(lane) for lane in lanes], fontsize=6)
        ax.set_ylabel(target, rotation=0, ha="right", va="center", fontsize=9)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("seconds since the first request started (server clock)")
    axes[0, 0].set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _lane(body: Mapping[str, Any]) -> tuple:
    return (body["pid"], body["thread_id"], body["greenlet_id"] or 0)


def _lane_label(lane: tuple) -> str:
    pid, thread, greenlet = lane
    return f"pid {pid} green {greenlet % 10000:04d}" if greenlet else f"pid {pid} tid {thread}"
