"""Container healthcheck for Locust: the master serves its web UI; a worker is registered.

    python healthcheck.py master   # the web UI answers
    python healthcheck.py worker   # the master lists this container among its workers

A worker has no port of its own, so "healthy" means what matters: the master sees it.
"""

import json
import os
import socket
import sys
import urllib.request

MASTER_URL = os.environ.get("LOCUST_MASTER_URL", "http://127.0.0.1:8089")


def main(role: str) -> int:
    with urllib.request.urlopen(f"{MASTER_URL}/stats/requests", timeout=3) as response:
        stats = json.load(response)
    if role == "master":
        return 0
    # Worker ids are "<hostname>_<random hex>"; the hostname is the container id.
    hostname = socket.gethostname()
    return 0 if any(w["id"].startswith(hostname + "_") for w in stats.get("workers", [])) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "master"))
