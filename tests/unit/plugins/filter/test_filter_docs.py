"""Every exported filter has documentation of its own, in the place ansible-doc looks for it.

ansible-doc reads a filter's docs from the .py file that exports it and looks for plugins/filter/<filter>.yml
only when that file has no DOCUMENTATION. So a file that exports one filter may keep its docs inline, and a
file that exports several must have none: each of its filters gets its own .yml.
"""
from __future__ import annotations

import ast
import glob
import importlib
import os

import pytest
import yaml

FILTER_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "filter")
FILES = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(FILTER_DIR, "*.py")))


def _inline_docs(path):
    """The parsed DOCUMENTATION of a .py file, or None."""
    with open(path) as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DOCUMENTATION" for t in node.targets):
            return yaml.safe_load(node.value.value)
    return None


@pytest.mark.parametrize("name", FILES)
def test_each_filter_has_its_own_docs(name):
    module = importlib.import_module("ansible_collections.fediops.mastodon.plugins.filter." + name)
    exported = sorted(module.FilterModule().filters())
    inline = _inline_docs(os.path.join(FILTER_DIR, name + ".py"))
    if inline is not None:
        assert exported == [inline["name"]], "%s.py documents %s inline but exports %s" % (name, inline["name"], exported)
        return
    for filter_name in exported:
        with open(os.path.join(FILTER_DIR, filter_name + ".yml")) as handle:
            docs = yaml.safe_load(handle)
        assert docs["DOCUMENTATION"]["name"] == filter_name
        assert docs["DOCUMENTATION"]["short_description"]
        assert isinstance(docs["RETURN"]["_value"], dict)
        assert filter_name in docs["EXAMPLES"]


def test_no_docs_file_without_its_filter():
    exported = set()
    for name in FILES:
        module = importlib.import_module("ansible_collections.fediops.mastodon.plugins.filter." + name)
        exported.update(module.FilterModule().filters())
    documented = {os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(FILTER_DIR, "*.yml"))}
    assert documented <= exported
