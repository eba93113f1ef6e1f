#!/usr/bin/env bash
# Debian packages this machine itself needs, in one apt run (apt-get update costs seconds on a fresh machine):
#   docker.io, debootstrap  the test hosts (scripts/ensure-docker.sh starts the engine)
#   redis-server            the Sidekiq job moves and the Redis client are unit-tested against a real Redis
#   prometheus              promtool: the alert rules are unit-tested with `promtool test rules`
# Nothing starts at install: a unit test starts its own server, on a Unix socket in its tmp dir.
set -euo pipefail
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
[ ${#need[@]} -eq 0 ] && exit 0
echo "ensure-host-packages: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
# policy-rc.d answers 101 ("action forbidden") to every service start the packages ask for.
policy=/usr/sbin/policy-rc.d
created=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && created=1
fi
trap '[ -n "$created" ] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
