#!/usr/bin/env bash
# Bake fediops/mastodon-standin:<release> (default: bookworm trixie) from fediops/debian-systemd:<release>
# (also tagged <release>-<fixture hash>, the three newest kept, so that checkouts with other fixtures switch back
# without a bake):
# start a systemd container with the options of .config/molecule/config.yml, run
# tests/standin/prepare.yml against it (community.docker.docker connection), stop the services
# cleanly, and `docker commit` it. The image carries the label fediops.standin.hash (sha256 of
# tests/standin, tests/fixtures/standin and this script) and fediops.standin.base (the base image
# id); an image whose labels still match is kept, so a fixture change rebuilds it.
# Needs only scripts/bootstrap-venv.sh and scripts/ensure-docker.sh; the releases bake in parallel.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
releases=("${@:-bookworm trixie}")
read -r -a releases <<<"${releases[*]}"
t0=$SECONDS

# One bake at a time on this machine, whichever checkout asks (the images are machine-wide): a second
# caller waits, then finds the images up to date.
mkdir -p "$top/.cache"
lock=/run/lock/fediops-bake-standin.lock
[ -w "$(dirname "$lock")" ] || lock="$top/.cache/bake-standin.lock"
exec 9>"$lock"
flock 9

./scripts/bootstrap-venv.sh >/dev/null
./scripts/ensure-docker.sh
./scripts/build-images.sh "${releases[@]}"
# shellcheck source=scripts/env.sh
. ./scripts/env.sh

hash=$(find tests/standin tests/fixtures/standin scripts/bake-standin.sh -type f \
         ! -path '*/__pycache__/*' ! -name '*.pyc' ! -name Gemfile.lock -print0 \
       | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)

todo=()
declare -A base_id
for rel in "${releases[@]}"; do
  image="fediops/mastodon-standin:${rel}"
  base_id[$rel]=$(docker image inspect -f '{{.Id}}' "fediops/debian-systemd:${rel}")
  have=$(docker image inspect -f '{{index .Config.Labels "fediops.standin.hash"}} {{index .Config.Labels "fediops.standin.base"}}' "$image" 2>/dev/null || true)
  kept="${image}-${hash:0:12}"
  if [ "$have" = "$hash ${base_id[$rel]}" ]; then
    echo "bake-standin: $image up to date (${hash:0:12})"
  elif [ "$(docker image inspect -f '{{index .Config.Labels "fediops.standin.base"}}' "$kept" 2>/dev/null || true)" = "${base_id[$rel]}" ]; then
    # Baked before for these fixtures (another checkout's run moved the tag meanwhile): take it back, no bake.
    docker tag "$kept" "$image"
    echo "bake-standin: $image is $kept again"
  else
    todo+=("$rel")
  fi
done
if [ ${#todo[@]} -eq 0 ]; then
  exit 0
fi

containers=()
work=$(mktemp -d "$top/.cache/tmp/bake-standin.XXXXXX")
cleanup() {
  for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

declare -A started
{
  echo "all:"
  echo "  hosts:"
  for rel in "${todo[@]}"; do
    name="fediops-bake-${rel}-$$"
    ./scripts/systemd-container.sh start "$name" "fediops/debian-systemd:${rel}" "standin-${rel}"
    containers+=("$name")
    started[$rel]=$SECONDS
    echo "    ${name}:"
    echo "      ansible_connection: community.docker.docker"
    echo "      ansible_python_interpreter: /usr/bin/python3"
  done
} >"$work/inventory.yml"
echo "bake-standin: baking ${todo[*]} (fixture hash ${hash:0:12})"

for c in "${containers[@]}"; do
  ./scripts/systemd-container.sh wait "$c"
done

ANSIBLE_HOST_KEY_CHECKING=false ANSIBLE_RETRY_FILES_ENABLED=false ANSIBLE_NOCOLOR=1 \
  ansible-playbook -i "$work/inventory.yml" tests/standin/prepare.yml >"$work/prepare.log" 2>&1 || {
    tail -n 60 "$work/prepare.log" >&2
    echo "bake-standin: tests/standin/prepare.yml failed" >&2
    exit 1
  }
grep -A3 '^PLAY RECAP' "$work/prepare.log" | sed 's/^/bake-standin: /'

for rel in "${todo[@]}"; do
  name="fediops-bake-${rel}-$$"
  image="fediops/mastodon-standin:${rel}"
  # Stop the services cleanly (PostgreSQL checkpoints, Redis saves), then the container.
  docker exec "$name" systemctl stop mastodon-web mastodon-sidekiq mastodon-streaming
  docker exec "$name" systemctl stop postgresql redis-server
  docker exec "$name" apt-get clean
  # Each container from the image gets its own machine id at boot, as with the base image.
  docker exec "$name" truncate -s 0 /etc/machine-id
  docker stop "$name" >/dev/null
  old=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  docker commit \
    --change 'CMD ["/lib/systemd/systemd"]' \
    --change "LABEL fediops.standin.hash=${hash} fediops.standin.base=${base_id[$rel]}" \
    "$name" "$image" >/dev/null
  docker rm "$name" >/dev/null
  # Also under its fixture hash, so that a checkout with other fixtures can switch back and forth without a bake.
  docker tag "$image" "${image}-${hash:0:12}"
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$image")" ]; then
    docker image rm "$old" >/dev/null 2>&1 || true
  fi
  # The three newest bakes per release are kept.
  docker image ls --format '{{.Tag}}' "fediops/mastodon-standin" | grep -E "^${rel}-[0-9a-f]{12}$" \
    | while read -r tag; do echo "$(docker image inspect -f '{{.Created}}' "fediops/mastodon-standin:$tag") $tag"; done \
    | sort -r | tail -n +4 | while read -r _created tag; do docker image rm "fediops/mastodon-standin:$tag" >/dev/null 2>&1 || true; done
  echo "bake-standin: $image baked in $((SECONDS - started[$rel])) s ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%d MB", $1/1e6}'))"
done
echo "bake-standin: done in $((SECONDS - t0)) s"
