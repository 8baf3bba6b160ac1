#!/bin/bash
# Container healthcheck for Locust, with no interpreter to start (bash's /dev/tcp):
#   healthcheck.sh master   the web UI answers
#   healthcheck.sh worker   the master lists this container among its workers
# A worker has no port of its own, so "healthy" means what matters: the master sees it.
# Worker ids are "<hostname>_<hex>", and Docker names the host after the container.
set -uo pipefail
role=${1:-master}
host=127.0.0.1
[[ $role == worker ]] && host=${LOCUST_MASTER_HOST:-locust-master}
exec 3<>"/dev/tcp/$host/8089" || exit 1
printf 'GET /stats/requests HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
response=$(cat <&3)
[[ $response == "HTTP/1."?" 200 "* ]] || exit 1
[[ $role == master ]] || [[ $response == *"\"${HOSTNAME}_"* ]]
