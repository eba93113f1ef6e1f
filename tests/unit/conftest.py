"""Make `ansible_collections.fediops.mastodon` importable from this checkout."""
import os
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(TOP, ".cache", "collections")).split(":")[0]
if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "fediops", "mastodon")):
    raise RuntimeError("run scripts/bootstrap-venv.sh first: %s has no fediops/mastodon link" % COLLECTIONS)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)


import json  # noqa: E402

import pytest  # noqa: E402
from ansible.module_utils.testing import patch_module_args  # noqa: E402


@pytest.fixture
def run_module(capsys):
    """Run a module's main() with `args`; return (exit code, parsed result, raw stdout)."""
    def run(module, args):
        with patch_module_args(args):
            with pytest.raises(SystemExit) as exit_info:
                module.main()
        out = capsys.readouterr().out
        return exit_info.value.code, json.loads(out), out
    return run
