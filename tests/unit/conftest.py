"""Make `ansible_collections.fediops.mastodon` importable from this checkout."""
import os
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(TOP, ".cache", "collections")).split(":")[0]
if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "fediops", "mastodon")):
    raise RuntimeError("run scripts/bootstrap-venv.sh first: %s has no fediops/mastodon link" % COLLECTIONS)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
