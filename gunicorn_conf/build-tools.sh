#!/usr/bin/env bash
# What `pip install -r gunicorn_conf/requirements.txt` needs on a Debian-based image besides
# Python: a C compiler, for gunicorn-h1c (Gunicorn's C HTTP parser, published as source
# only), and Python's headers where the image has none (the official python images ship
# them; Debian's own python3 needs python3-dev). app/Dockerfile runs it in its build stage,
# so the image that serves gets the built virtualenv and no compiler; tests/Dockerfile too.
set -euo pipefail

packages=(gcc libc6-dev)
headers="$(python -c 'import sysconfig; print(sysconfig.get_path("include"))')/Python.h"
[[ -f $headers ]] || packages+=(python3-dev)

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${packages[@]}"
rm -rf /var/lib/apt/lists/*
