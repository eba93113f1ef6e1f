#!/usr/bin/env bash
# Benchmark: wall time of the whole play (playbooks/scale.yml) on a fresh stand-in host, first run
# and a no-op rerun, in a throwaway container. Prints the figures and writes
# bench/results/site_converge.json. Never part of `make test`.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
. scripts/env.sh

release=${1:-bookworm}
name=fediops-bench-site
image=fediops/mastodon-standin:$release
work="$top/.cache/bench/site_converge"
out="$top/bench/results/site_converge.json"
export FEDIOPS_BENCH_REPORT="$work/scale-report.json"
mkdir -p "$work" "$(dirname "$out")"

remove_container() { docker rm -f "$name" >/dev/null 2>&1 || true; }
trap remove_container EXIT
remove_container
./scripts/systemd-container.sh start "$name" "$image"
./scripts/systemd-container.sh wait "$name"

run() {
  local log=$1 start end
  start=$(date +%s.%N)
  ansible-playbook -i bench/site_converge/inventory playbooks/scale.yml >"$log" 2>&1 || { tail -40 "$log" >&2; exit 1; }
  end=$(date +%s.%N)
  python3 -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$start" "$end"
}
recap() { grep -E "^$name +:" "$1" | sed -E 's/ +/ /g'; }

first=$(run "$work/first.log")
second=$(run "$work/rerun.log")
changed_first=$(recap "$work/first.log" | sed -E 's/.*changed=([0-9]+).*/\1/')
changed_rerun=$(recap "$work/rerun.log" | sed -E 's/.*changed=([0-9]+).*/\1/')

python3 - "$out" "$release" "$first" "$second" "$changed_first" "$changed_rerun" "$FEDIOPS_BENCH_REPORT" <<'PY'
import json, os, platform, sys
out, release, first, second, changed_first, changed_rerun, report = sys.argv[1:]
report = json.load(open(report))
result = {
    "benchmark": "site_converge",
    "platform": release,
    "cpus": os.cpu_count(),
    "first_run_seconds": float(first),
    "noop_rerun_seconds": float(second),
    "first_run_changed": int(changed_first),
    "noop_rerun_changed": int(changed_rerun),
    "total_threads": report["total_threads"],
    "host": platform.node(),
}
with open(out, "w") as handle:
    json.dump(result, handle, indent=2)
    handle.write("\n")
print(json.dumps(result, indent=2))
PY
[ "$changed_rerun" = 0 ] || { echo "site_converge: the rerun changed $changed_rerun tasks" >&2; exit 1; }
