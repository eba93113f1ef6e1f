"""One connection budget: PgBouncer's pool formula is written in one function, connection_plan.server_capacity.

A second copy drifts: the budget was once written three times, and no copy counted pgbouncer_processes.
"""

from __future__ import annotations

import ast
import os
import re

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JINJA = re.compile(r"\{\{(.*?)\}\}", re.S)


def names(node):
    """Names under `node`, not looking into calls (a call of server_capacity is the one formula, used)."""
    out, todo = set(), [node]
    while todo:
        current = todo.pop()
        if isinstance(current, ast.Call):
            # A cast is still the same value; any other call (server_capacity) is not a copy of the formula.
            if isinstance(current.func, ast.Name) and current.func.id in ("int", "float", "str"):
                todo.extend(current.args)
            continue
        if isinstance(current, ast.Name):
            out.add(current.id)
        elif isinstance(current, ast.Attribute):
            out.add(current.attr)
        elif isinstance(current, ast.Constant) and isinstance(current.value, str):
            out.add(current.value)
        todo.extend(ast.iter_child_nodes(current))
    return " ".join(out)


def formula_in_python(path):
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    allowed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "server_capacity":
            allowed.update(range(node.lineno, node.end_lineno + 1))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and node.lineno not in allowed:
            if "default_pool_size" in names(node.left) + names(node.right) and \
                    "reserve_pool_size" in names(node.left) + names(node.right):
                found.append("%s:%d" % (os.path.relpath(path, TOP), node.lineno))
    return found


# The two names joined by a plus inside one Jinja expression.
SUM = re.compile(r"default_pool_size[\w|\s')\]]{0,20}\+\s*\(?[\w.\[\]' |]{0,40}reserve_pool_size")


def formula_in_yaml(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    return ["%s: {{%s}}" % (os.path.relpath(path, TOP), expr.strip()[:60]) for expr in JINJA.findall(text)
            if SUM.search(expr)]


def walk(suffix, folders):
    for folder in folders:
        for root, _dirs, files in os.walk(os.path.join(TOP, folder)):
            for name in files:
                if name.endswith(suffix):
                    yield os.path.join(root, name)


def test_the_pool_formula_is_written_once():
    found = []
    for path in walk(".py", ["plugins"]):
        found += formula_in_python(path)
    for path in walk(".yml", ["roles", "playbooks"]):
        found += formula_in_yaml(path)
    # The one function, and nothing else.
    assert sorted(set(found)) == [], found


def test_the_scanners_find_a_copy(tmp_path):
    tree_copy = "def budget(p):\n    return p.pools * (p.default_pool_size + p.reserve_pool_size)\n"
    probe = tmp_path / "probe.py"
    probe.write_text(tree_copy)
    assert formula_in_python(str(probe))
    task = tmp_path / "task.yml"
    task.write_text("x: \"{{ pools * (pgbouncer_default_pool_size | int + pgbouncer_reserve_pool_size | int) }}\"\n")
    assert formula_in_yaml(str(task))
