"""Send N requests at the same instant to each setup and tell who served them.

    python -m loadtest.simultaneous                       # 10 x /api/io?ms=300, stack on :8080
    python -m loadtest.simultaneous -n 20 --path "/api/cpu?ms=100"

Answers the question this project grew from, "if 10 requests arrive at once, how many
threads does Flask open?", with the servers' own data: Flask opens none; Gunicorn's
processes, threads or greenlets serve them. Sends only to the --base-url you give
(loopback by default), N requests per setup, once.
"""

from __future__ import annotations

import argparse
import os
import sys

from loadtest.evidence import SETUPS, reading, simultaneous_get, summarize

COLUMNS = ("requests", "max_in_flight", "processes", "threads", "greenlets", "wall_seconds")


def measure(base_url: str, path: str, count: int) -> dict[str, dict]:
    results = {}
    for setup in SETUPS:
        responses = simultaneous_get([f"{base_url}/{setup}{path}"] * count)
        failed = [r.status_code for r in responses if r.status_code != 200]
        if failed:
            raise SystemExit(f"{setup}: {len(failed)} of {count} requests failed: {failed[:5]}")
        results[setup] = summarize([r.json() for r in responses])
    return results


def markdown_table(results: dict[str, dict]) -> str:
    lines = ["| setup | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for setup, row in results.items():
        lines.append(f"| {setup} | " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    port = os.environ.get("HTTP_PORT", "8080")
    parser.add_argument("--base-url", default=f"http://127.0.0.1:{port}")
    parser.add_argument(
        "-n",
        "--count",
        type=int,
        default=10,
        choices=range(1, 201),
        metavar="N",
        help="simultaneous requests per setup (1-200)",
    )
    parser.add_argument("--path", default="/api/io?ms=300")
    args = parser.parse_args(argv)
    print(f"{args.count} simultaneous GET {args.path} per setup, at {args.base_url}\n")
    results = measure(args.base_url, args.path, args.count)
    print(markdown_table(results))
    # Read the way Locust's "Who served" tab and the report read them (loadtest/evidence.py).
    print("\n" + "\n".join(f"{setup}: {reading(row)}" for setup, row in results.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
