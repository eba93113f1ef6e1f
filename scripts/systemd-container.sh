#!/usr/bin/env bash
# Start and wait for a systemd-as-PID-1 container with the options of molecule/shared/vars/systemd_container.yml
# (which molecule/shared/create.yml uses for every scenario), so the bake, the demo and the benchmarks run hosts exactly like the
# Molecule scenarios do (no --privileged: it fails here; see the toolchain notes).
#   systemd-container.sh start NAME IMAGE [HOSTNAME]   start it detached (a container of that name is replaced)
#   systemd-container.sh wait NAME [SECONDS]           wait until systemd is 'running'; otherwise list
#                                                      the failed units and exit 1
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

run_options() {
  local py="$top/.cache/venv/bin/python"
  [ -x "$py" ] || py=python3
  "$py" - "$top/molecule/shared/vars/systemd_container.yml" <<'PY'
import sys
import yaml
p = yaml.safe_load(open(sys.argv[1]))["systemd_container"]
out = []
for cap in p.get("capabilities", []):
    out += ["--cap-add", cap]
if p.get("cgroupns_mode"):
    out.append("--cgroupns=" + p["cgroupns_mode"])
for opt in p.get("security_opts", []):
    out += ["--security-opt", opt]
for fs in p.get("tmpfs", []):
    out += ["--tmpfs", fs]
for vol in p.get("volumes", []):
    out += ["-v", vol]
if p.get("stop_signal"):
    out += ["--stop-signal", p["stop_signal"]]
# Last line: the command (systemd).
print("\n".join(out + [p["command"]]))
PY
}

case "${1:-}" in
  start)
    [ $# -ge 3 ] || { echo "usage: $0 start NAME IMAGE [HOSTNAME]" >&2; exit 2; }
    name=$2 image=$3 host=${4:-$2}
    mapfile -t opts < <(run_options)
    cmd=${opts[-1]}
    unset 'opts[-1]'
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker run -d --name "$name" --hostname "$host" "${opts[@]}" "$image" "$cmd" >/dev/null
    ;;
  wait)
    [ $# -ge 2 ] || { echo "usage: $0 wait NAME [SECONDS]" >&2; exit 2; }
    name=$2 limit=${3:-90} state=""
    for _ in $(seq 1 "$limit"); do
      state=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
      case "$state" in running|degraded) break ;; esac
      sleep 1
    done
    if [ "$state" != running ]; then
      echo "systemd-container: systemd in $name is '${state:-not answering}'; failed units:" >&2
      docker exec "$name" systemctl list-units --failed --plain --no-legend >&2 || true
      exit 1
    fi
    ;;
  *) echo "usage: $0 start NAME IMAGE [HOSTNAME] | wait NAME [SECONDS]" >&2; exit 2 ;;
esac
