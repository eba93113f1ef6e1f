#!/usr/bin/env bash
# Create .cache/venv with pinned controller tools, and a collections path that holds this
# collection (as a symlink) plus the collections the tests need, unpacked from the PyPI `ansible` bundle.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache="$top/.cache"
venv="$cache/venv"
mkdir -p "$cache"

pick_python() {
  local root cand
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  for want in 3.13 3.12; do
    for cand in $(ls -d "$root"/versions/"$want".* 2>/dev/null | sort -V -r) ; do
      "$cand/bin/python3" -c 'import sys, venv; sys.exit(0)' >/dev/null 2>&1 && { echo "$cand/bin/python3"; return; }
    done
    command -v "python$want" >/dev/null 2>&1 && "python$want" -c 'pass' >/dev/null 2>&1 && { command -v "python$want"; return; }
  done
  command -v python3
}

if [ ! -x "$venv/bin/python" ]; then
  py=$(pick_python)
  echo "bootstrap-venv: creating venv with $py ($("$py" --version))"
  "$py" -m venv "$venv"
fi
minor=$("$venv/bin/python" -c 'import sys; print(sys.version_info[1])')
if [ "$minor" -ge 12 ]; then
  reqs="$top/requirements/controller.txt"; bundle=14.5.0
else
  reqs="$top/requirements/controller-py311.txt"; bundle=12.3.0
fi
stamp="$venv/.fediops-reqs"
want=$(cat "$reqs" | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap-venv: installing $(basename "$reqs")"
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$venv/bin/python" -m pip install -q -r "$reqs"
  echo "$want" >"$stamp"
fi

# Collections: this checkout under its FQCN, and the test dependencies from the `ansible` wheel.
colls="$cache/collections/ansible_collections"
mkdir -p "$colls/fediops"
ln -sfn "$top" "$colls/fediops/mastodon"
missing=()
while read -r fqcn; do
  case "$fqcn" in ''|'#'*) continue ;; esac
  [ -f "$colls/${fqcn%%.*}/${fqcn#*.}/MANIFEST.json" ] || missing+=("$fqcn")
done <"$top/requirements/collections.txt"
if [ ${#missing[@]} -gt 0 ]; then
  dl="$cache/downloads"
  mkdir -p "$dl"
  wheel=$(ls "$dl"/ansible-"$bundle"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$wheel" ]; then
    echo "bootstrap-venv: downloading the ansible $bundle bundle for ${missing[*]}"
    "$venv/bin/python" -m pip download -q --no-deps -d "$dl" "ansible==$bundle"
    wheel=$(ls "$dl"/ansible-"$bundle"-*.whl | head -n1)
  fi
  "$venv/bin/python" - "$wheel" "$cache/collections" "${missing[@]}" <<'PY'
import sys, zipfile
wheel, dest, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
prefixes = tuple("ansible_collections/%s/%s/" % tuple(f.split(".", 1)) for f in wanted)
with zipfile.ZipFile(wheel) as zf:
    members = [m for m in zf.namelist() if m.startswith(prefixes)]
    zf.extractall(dest, members)
print("bootstrap-venv: unpacked %s (%d files)" % (", ".join(wanted), len(members)))
PY
fi

# ansible-test fetches a pip bootstrap script from a host that cannot be reached; give it a local stand-in.
home="$cache/home"
mkdir -p "$home/.ansible/test/cache"
for ver in 24_2 25_2 25_3 26_0; do
  cp "$top/scripts/get_pip_standin.py" "$home/.ansible/test/cache/get_pip_${ver}.py"
done

# ansible-test looks for python3.X on PATH; point it at pyenv's interpreters where they exist.
pybin="$cache/pybin"
mkdir -p "$pybin"
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
for v in 3.11 3.12 3.13; do
  cand=$(ls -d "$root"/versions/"$v".* 2>/dev/null | sort -V -r | head -n1 || true)
  if [ -n "$cand" ] && "$cand/bin/python3" -c pass >/dev/null 2>&1; then
    ln -sfn "$cand/bin/python$v" "$pybin/python$v"
  fi
done
echo "bootstrap-venv: ready ($("$venv/bin/python" --version), ansible-core $("$venv/bin/python" -c "import ansible.release as r; print(r.__version__)"))"
