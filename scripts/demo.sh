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

./scripts/systemd-container.sh start "$name" "$image"
echo "demo: started $name from $image"
./scripts/systemd-container.sh wait "$name"

start=$(date +%s)
ansible-playbook -i examples/demo playbooks/scale.yml
end=$(date +%s)

echo
echo "=== fediops.mastodon scale report ($name, $((end - start))s) ==="
python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["lines"]))' "$FEDIOPS_DEMO_REPORT"
