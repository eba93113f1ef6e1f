#!/usr/bin/env bash
# `make demo`: a fresh throwaway stand-in Mastodon host (container fediops-demo), the whole play
# playbooks/scale.yml against it, its report, and the container removed again. Safe to rerun: a
# container left from an earlier run is replaced. Exits non-zero when the play fails.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. scripts/env.sh

name=fediops-demo
image=fediops/mastodon-standin:bookworm
workdir="$top/.cache/demo"
export FEDIOPS_DEMO_REPORT="$workdir/scale-report.json"
mkdir -p "$workdir"
rm -f "$FEDIOPS_DEMO_REPORT"

remove_container() { docker rm -f "$name" >/dev/null 2>&1 || true; }
trap remove_container EXIT
remove_container

# The same container options as .config/molecule/config.yml (systemd as PID 1 without --privileged).
docker run -d --name "$name" --hostname "$name" \
  --cgroupns=host --cap-add SYS_ADMIN --security-opt seccomp=unconfined \
  --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
  -v /sys/fs/cgroup:/sys/fs/cgroup:rw --stop-signal SIGRTMIN+3 \
  "$image" /lib/systemd/systemd >/dev/null
echo "demo: started $name from $image"

for _ in $(seq 1 90); do
  state=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
  [ "$state" = running ] && break
  sleep 1
done
if [ "$state" != running ]; then
  echo "demo: systemd in $name is '$state'; failed units:" >&2
  docker exec "$name" systemctl list-units --failed --plain --no-legend >&2 || true
  exit 1
fi

start=$(date +%s)
ansible-playbook -i examples/demo playbooks/scale.yml
end=$(date +%s)

echo
echo "=== fediops.mastodon scale report ($name, $((end - start))s) ==="
python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["lines"]))' "$FEDIOPS_DEMO_REPORT"
