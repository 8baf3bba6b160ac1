"""Facts about a running stack shared by the native and compose tiers."""

from __future__ import annotations

import json
import re
from typing import Any

SETUPS = ("sync", "gthread", "gevent")


def boot_configs(log_text: str) -> dict[str, dict[str, Any]]:
    """The one-line JSON configs the Gunicorn setups print at boot, by worker class."""
    configs = {}
    for match in re.finditer(r'(\{"event": "gunicorn_config".*\})\s*$', log_text, re.M):
        config = json.loads(match.group(1))
        configs[config["worker_class"]] = config
    return configs
