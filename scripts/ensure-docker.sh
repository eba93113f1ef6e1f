#!/usr/bin/env bash
# Make sure a Docker engine answers: install Debian's docker.io if needed (ensure-host-packages.sh), start
# dockerd if none runs.
set -euo pipefail
"$(dirname "$0")/ensure-host-packages.sh"
if docker info >/dev/null 2>&1; then
  exit 0
fi
echo "ensure-docker: starting dockerd"
mkdir -p /var/log
nohup dockerd >/var/log/dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "ensure-docker: dockerd did not answer within 60 s; see /var/log/dockerd.log" >&2
tail -n 20 /var/log/dockerd.log >&2 || true
exit 1
