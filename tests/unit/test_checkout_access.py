"""The checkout is untrusted input: the safe walk (module_utils/text_file.py) is the only way in.

Whatever the mastodon user can write (the checkout, .env.production, version.rb, config/) is input from the
least trusted process on the host. These tests read the collection's own source and fail when a task or a
module reaches a file another way: a slurp, a plain open(), or a file task on a path in the checkout.
"""

from __future__ import annotations

import ast
import os
import re

import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TASK_DIRS = ["roles", "playbooks"]
# The one module allowed to open files: everything else calls it.
SAFE_WALK = os.path.join("plugins", "module_utils", "text_file.py")
# What names a path in Mastodon's checkout in a task's arguments.
CHECKOUT = re.compile(r"mastodon_dir|mastodon_env_file|/home/mastodon|\.env\.production|version\.rb|database\.yml")
# Modules that touch a path in the checkout only through the safe walk, or only stat it (mtimes).
SAFE_MODULES = {"fediops.mastodon.env_file", "fediops.mastodon.mastodon_checkout", "fediops.mastodon.sidekiq_jobs_move",
                "fediops.mastodon.mastodon_doctor_sample", "fediops.mastodon.service_apply",
                "ansible.builtin.include_role", "ansible.builtin.include_tasks", "ansible.builtin.import_tasks",
                "ansible.builtin.set_fact", "ansible.builtin.assert", "ansible.builtin.fail", "ansible.builtin.debug"}


# A command run as Mastodon's own user (runuser -u) reads the checkout with that user's rights, not root's.
AS_MASTODON = re.compile(r"\{\{ \['runuser', '-u', [a-z_]*mastodon_user, '--'")
PATH_ARGS = ("path", "src", "dest", "chdir", "cmd", "argv", "creates", "removes", "paths", "file")


def files(top, suffixes):
    for folder in TASK_DIRS if suffixes == (".yml",) else ["plugins"]:
        for root, _dirs, names in os.walk(os.path.join(top, folder)):
            for name in names:
                if name.endswith(suffixes):
                    yield os.path.join(root, name)


def tasks_of(node):
    """Every task mapping in a parsed YAML file (plays, blocks, rescue and always included)."""
    if isinstance(node, list):
        for item in node:
            yield from tasks_of(item)
    elif isinstance(node, dict):
        for key in ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always"):
            if key in node:
                yield from tasks_of(node[key])
        if not any(key in node for key in ("hosts", "block", "import_playbook")):
            yield node


def module_of(task):
    for key in task:
        if "." in key or key in ("slurp", "stat", "file", "copy", "template", "command", "shell", "lineinfile"):
            return key
    return None


def test_no_task_slurps_anything():
    found = []
    for path in files(TOP, (".yml",)):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        if re.search(r"^\s*(-\s+)?(ansible\.builtin\.)?slurp:", text, re.M):
            found.append(os.path.relpath(path, TOP))
    assert found == [], "slurp follows links: read through fediops.mastodon.mastodon_checkout instead"


def test_no_task_touches_the_checkout_but_through_the_safe_walk():
    found = []
    for path in files(TOP, (".yml",)):
        with open(path, encoding="utf-8") as handle:
            try:
                data = yaml.safe_load(handle)
            except yaml.YAMLError:
                continue
        for task in tasks_of(data):
            module = module_of(task)
            if module is None or module in SAFE_MODULES:
                continue
            args = task.get(module)
            if module in ("ansible.builtin.command", "command") and isinstance(args, dict) and AS_MASTODON.match(str(args.get("argv", ""))):
                continue
            # Where a module reads or writes: its path-like arguments (a file's content may name the checkout).
            where = {key: value for key, value in args.items() if key in PATH_ARGS} if isinstance(args, dict) else args
            if CHECKOUT.search(yaml.safe_dump(where) if where is not None else ""):
                found.append("%s: %s (%s)" % (os.path.relpath(path, TOP), task.get("name"), module))
    assert found == [], found


def test_no_module_opens_a_file_but_through_the_safe_walk():
    """open(), os.open() and io.open() only in text_file.py; elsewhere only on literal /proc paths."""
    found = []
    for path in files(TOP, (".py",)):
        rel = os.path.relpath(path, TOP)
        if rel == SAFE_WALK:
            continue
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), rel)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else (
                "%s.%s" % (func.value.id, func.attr) if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                else None)
            if name not in ("open", "os.open", "io.open", "os.fdopen"):
                continue
            first = node.args[0] if node.args else None
            literal = first.value if isinstance(first, ast.Constant) else (
                first.left.value if isinstance(first, ast.BinOp) and isinstance(first.left, ast.Constant) else None)
            if isinstance(literal, str) and literal.startswith("/proc/"):
                continue
            found.append("%s:%d %s()" % (rel, node.lineno, name))
    assert found == [], found


def test_the_checks_would_catch_a_slurp_and_an_open(tmp_path):
    """The scanners above are not vacuous."""
    task = {"name": "x", "ansible.builtin.slurp": {"src": "{{ mastodon_dir }}/lib/mastodon/version.rb"}}
    assert module_of(task) == "ansible.builtin.slurp"
    assert CHECKOUT.search(yaml.safe_dump(task["ansible.builtin.slurp"]))
    assert list(tasks_of([{"hosts": "all", "tasks": [{"block": [task]}]}])) == [task]
