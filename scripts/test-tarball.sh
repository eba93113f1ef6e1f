#!/usr/bin/env bash
# Build the Galaxy tarball, install it offline into an empty collections path, and run a module
# from it by its FQCN. Proves galaxy.yml, build_ignore and the module imports work as shipped.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
work="$top/.cache/tarball"
rm -rf "$work" && mkdir -p "$work/build" "$work/collections"
ansible-galaxy collection build "$top" --output-path "$work/build" --force
tarball=$(ls "$work"/build/fediops-mastodon-*.tar.gz)
echo "tarball: $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB)"
if tar -tzf "$tarball" | grep -E '^(tests|molecule|bench|scripts|\.cache|\.ci)/' ; then
  echo "test-tarball: test-only files were shipped (see above); fix build_ignore in galaxy.yml" >&2
  exit 1
fi
ANSIBLE_COLLECTIONS_PATH="$work/collections" ansible-galaxy collection install --offline -p "$work/collections" "$tarball"
envf="$work/env.production"
printf '# kept\nDB_PORT=5432\n' >"$envf"
out=$(ANSIBLE_COLLECTIONS_PATH="$work/collections" ansible localhost -c local -i localhost, \
  -m fediops.mastodon.env_file -a "path=$envf values={'DB_PORT':'6432'} secret_values={'DB_PASS':'tarball-secret'}" -v 2>&1)
echo "$out" | grep -q 'CHANGED' || { echo "$out"; echo "test-tarball: module did not report a change" >&2; exit 1; }
if echo "$out" | grep -q 'tarball-secret'; then
  echo "test-tarball: the secret value appeared in the module output" >&2; exit 1
fi
grep -qx 'DB_PORT=6432' "$envf" && grep -qx '# kept' "$envf" && grep -qx 'DB_PASS=tarball-secret' "$envf" \
  || { cat "$envf"; echo "test-tarball: the env file was not written as expected" >&2; exit 1; }
echo "test-tarball: installed from $(basename "$tarball") and ran fediops.mastodon.env_file by FQCN"
