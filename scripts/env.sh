# Source this file (". scripts/env.sh") to get the project's tool environment in a shell.
# Everything a run writes stays under .cache/ in the checkout.
_fediops_top=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
export FEDIOPS_TOP="$_fediops_top"
export PATH="$_fediops_top/.cache/venv/bin:$_fediops_top/.cache/pybin:$PATH"
export ANSIBLE_HOME="$_fediops_top/.cache/ansible-home"
export ANSIBLE_COLLECTIONS_PATH="$_fediops_top/.cache/collections"
export ANSIBLE_LOCAL_TEMP="$_fediops_top/.cache/ansible-home/tmp"
export ANSIBLE_ROLES_PATH="$_fediops_top/roles"
export ANSIBLE_NOCOLOR=1
export ANSIBLE_FORCE_COLOR=0
export PY_COLORS=0
export MOLECULE_NO_LOG=false
export PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$ANSIBLE_LOCAL_TEMP" "$_fediops_top/.cache/tmp"
export TMPDIR="$_fediops_top/.cache/tmp"
unset _fediops_top
