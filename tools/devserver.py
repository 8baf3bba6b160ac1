"""Flask's development server (Werkzeug) in its three real modes, for side-by-side measurement.

    python -m tools.devserver --mode threaded --port 5000

What the seed question's snippets really do (asserted in tests/integration/test_devserver.py):

* ``app.run()`` is already threaded: Flask >= 1.0 passes ``threaded=True`` by default, so
  every request gets a new OS thread (no pool, no limit).
* ``app.run(threaded=True, processes=2)`` raises ``ValueError: Cannot have a multi-thread
  and multi-process server.`` So does ``app.run(processes=4)``, because of that default.
* ``app.run(processes=N, threaded=False)`` works: it forks a child per request, at most N
  at a time.

The modes here: ``single`` (threaded=False), ``threaded`` (the default ``app.run()``), and
``processes`` (processes=N, threaded=False). Debug and the reloader stay off: this measures
the server, and the debugger must never be reachable. Binds to loopback only.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

MODES = ("single", "threaded", "processes")
# Children at a time in 'processes' mode.
DEFAULT_PROCESSES = 4


def run_options(mode: str, processes: int) -> dict[str, Any]:
    """The keyword arguments ``app.run()`` gets for a mode (none for the default threaded)."""
    if mode == "single":
        return {"threaded": False}
    if mode == "threaded":
        return {}  # app.run()'s own default: threaded=True
    if mode == "processes":
        return {"threaded": False, "processes": processes}
    raise ValueError(f"unknown mode {mode!r}; choose from {MODES}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=MODES, default="threaded")
    parser.add_argument(
        "--processes",
        type=int,
        default=DEFAULT_PROCESSES,
        help="most children at a time in 'processes' mode",
    )
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    from app import create_app  # here: importing this module (for MODES) loads no Flask

    app = create_app()
    app.run(
        host="127.0.0.1",
        port=args.port,
        debug=False,
        use_reloader=False,
        **run_options(args.mode, args.processes),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
