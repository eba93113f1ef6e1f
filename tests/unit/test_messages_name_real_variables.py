"""Messages name real variables (issue 27, "Messages"): every role-prefixed name a message can show exists.

An operator fixes a refusal by setting the variable its message names, so a name that no role declares sends
them nowhere (a Sidekiq Redis message once named sidekiq_redis_maxmemory_policy, which never existed). The
messages come from four places, and each is read here:

- text in the Python plugins (modules, module_utils, filters): every string literal with a space in it, which is
  how a sentence differs from a dict key or a setting name; docstrings and DOCUMENTATION/EXAMPLES/RETURN aside;
- the task names and msg/fail_msg/success_msg of every role's tasks and every playbook: the text around Jinja
  expressions and the string literals inside them;
- every problem of the bad-input table (tests/unit/test_bad_inputs.py, CASES), which calls the very checks the
  roles run, with the names the roles pass;
- the Redis instance model's messages for each of its callers, with the variable names that caller passes in.

A name is real when a role declares it (any entry point of roles/*/meta/argument_specs.yml) or a playbook
documents it (the comment block at the top of playbooks/*.yml, and the fleet's settings, fleet.SETTINGS, whose
defaults that block points to). Role names, plugin names and the options' default values (the database
mastodon_replica) are names too, not variables.
"""

from __future__ import annotations

import ast
import glob
import importlib
import importlib.util
import os
import re

import yaml

from ansible_collections.fediops.mastodon.plugins.module_utils import doctor, fleet, redis_instance

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = sorted(os.path.basename(path) for path in glob.glob(os.path.join(TOP, "roles", "*")) if os.path.isdir(path))
# Variables are prefixed with their role's name (style.md); the playbooks' own carry the playbook's name, and
# the collection-wide ones mastodon_.
PREFIXES = sorted(set(ROLES) | {"scale", "doctor", "migrate", "mastodon"}, key=len, reverse=True)
# A name as a message shows it: not part of a longer word, a path, a dotted plugin name or an internal __fact.
VARIABLE = re.compile(r"(?<![\w.$/-])((?:%s)_[a-z0-9_]*[a-z0-9])(?![\w(-])" % "|".join(PREFIXES))
JINJA = re.compile(r"(\{\{.*?\}\}|\{%.*?%\})", re.S)
QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"", re.S)
MESSAGE_KEYS = ("msg", "fail_msg", "success_msg")
# A name a module_utils file uses ahead of its role: allowed only while that role is not in the tree. Once it is,
# the name must be among its options like any other.
PENDING_ROLES = {"mastodon_upgrade_version": "upgrade"}
# Names that look like variables and are not: the keys of doctor_thresholds (a mapping the operator sets),
# Prometheus metrics the Debian exporters export (the alert rules' PromQL), and the fact
# the metrics role publishes for a Prometheus elsewhere in the play.
NOT_VARIABLES = set(doctor.THRESHOLDS) | {
    "pgbouncer_config_max_client_connections", "pgbouncer_pools_client_maxwait_seconds",
    "pgbouncer_pools_client_waiting_connections", "pgbouncer_process_max_fds", "pgbouncer_process_open_fds",
    "pgbouncer_up", "redis_instance_info", "pgbouncer_used_clients", "metrics_scrape_jobs"}


def _load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def declared_variables():
    """Every option of every entry point of every role, and the playbooks' documented variables."""
    names = set()
    for path in glob.glob(os.path.join(TOP, "roles", "*", "meta", "argument_specs.yml")):
        for entry in (_load_yaml(path) or {}).get("argument_specs", {}).values():
            names.update((entry or {}).get("options") or {})
    return names | _documented_in_playbooks()


def option_values():
    """The default values of the roles' options that look like names (mastodon_replica, PgBouncer's database for
    the replica): a message may quote a value it was given."""
    values = set()
    for path in glob.glob(os.path.join(TOP, "roles", "*", "meta", "argument_specs.yml")):
        for entry in (_load_yaml(path) or {}).get("argument_specs", {}).values():
            for option in ((entry or {}).get("options") or {}).values():
                default = option.get("default")
                values.update(value for value in (default if isinstance(default, list) else [default])
                              if isinstance(value, str) and VARIABLE.fullmatch(value))
    return values


def _documented_in_playbooks():
    names = set()
    for path in glob.glob(os.path.join(TOP, "playbooks", "*.yml")):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip() == "---":
                    continue
                if not line.startswith("#"):
                    break
                names.update(VARIABLE.findall(line))
    names.update(fleet.SETTINGS)
    return names


def plugin_names():
    """Modules and filters (and the old names meta/runtime.yml routes), which messages may name as such."""
    names = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(TOP, "plugins", "modules", "*.py"))}
    for path in glob.glob(os.path.join(TOP, "plugins", "filter", "*.py")):
        module = importlib.import_module("ansible_collections.fediops.mastodon.plugins.filter."
                                         + os.path.basename(path)[:-3])
        names.update(module.FilterModule().filters())
    routing = (_load_yaml(os.path.join(TOP, "meta", "runtime.yml")) or {}).get("plugin_routing") or {}
    for plugins in routing.values():
        names.update(plugins or {})
    return names


def _docs(tree):
    """The string nodes that document code rather than say something to an operator."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id in ("DOCUMENTATION", "EXAMPLES", "RETURN") for t in node.targets):
            out.update(id(sub) for sub in ast.walk(node.value))
    return out


def python_messages():
    for path in sorted(glob.glob(os.path.join(TOP, "plugins", "*", "*.py"))):
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        docs = _docs(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                    and " " in node.value.strip()):
                yield os.path.relpath(path, TOP), node.value


def _text_of(template):
    """What an operator reads of a templated message: the text around expressions, and the strings in them."""
    parts = JINJA.split(template)
    for index, part in enumerate(parts):
        if index % 2 == 0:
            yield part
        else:
            for single, double in QUOTED.findall(part):
                yield single or double


def _yaml_messages(node, source, in_task_list=False):
    if isinstance(node, list):
        for item in node:
            yield from _yaml_messages(item, source, in_task_list=True)
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and (key in MESSAGE_KEYS or (key == "name" and in_task_list)):
                for text in _text_of(value):
                    yield source, text
            else:
                yield from _yaml_messages(value, source)


def task_messages():
    paths = glob.glob(os.path.join(TOP, "roles", "*", "tasks", "*.yml")) + glob.glob(os.path.join(TOP, "playbooks", "*.yml"))
    for path in sorted(paths):
        yield from _yaml_messages(_load_yaml(path), os.path.relpath(path, TOP))


def table_messages():
    spec = importlib.util.spec_from_file_location("fediops_bad_inputs", os.path.join(TOP, "tests", "unit", "test_bad_inputs.py"))
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    for case, found, _names in table.CASES:
        for problem in found:
            yield "tests/unit/test_bad_inputs.py: " + case, problem


def redis_instance_callers():
    """(role, caller, purpose) for each role that runs the Redis instance model, as its tasks pass them."""
    found = set()
    for path in glob.glob(os.path.join(TOP, "roles", "*", "tasks", "*.yml")):
        for task in _load_yaml(path) or []:
            for action in ("ansible.builtin.import_role", "ansible.builtin.include_role"):
                if (task.get(action) or {}).get("name") == "fediops.mastodon.redis_instance":
                    params = task.get("vars") or {}
                    found.add((path.split(os.sep)[-3], params["redis_instance_caller"], params["redis_instance_purpose"]))
    return sorted(found)


def _role_options(role):
    entries = _load_yaml(os.path.join(TOP, "roles", role, "meta", "argument_specs.yml"))["argument_specs"]
    return set().union(*(set((entry or {}).get("options") or {}) for entry in entries.values()))


# One bad value of each kind for every field, and the combinations that only a pair makes wrong.
BAD_INSTANCES = [
    {"server": "memcached"}, {"server": "valkey"}, {"instance_name": "a b"}, {"port": 80}, {"port": 6379},
    {"main_port": 0}, {"bind": []}, {"bind": ["localhost"]}, {"bind": ["10.0.0.5"], "env_host": "10.0.0.5"},
    {"maxmemory": "lots"}, {"maxmemory": "1"}, {"maxmemory": "64gb"}, {"maxmemory_policy": "lru"},
    {"maxmemory_policy": "noeviction"}, {"maxmemory_policy": "allkeys-lru"}, {"env_style": "uri"}, {"env_host": ""},
    {"env_host": "redis.internal"}, {"env_host": "10.0.0.9"}, {"settings": {"Bad Name": 1}},
    {"settings": {"requirepass": "x"}}, {"settings": {"port": 1}}, {"settings": {"hz": None}},
    {"state": "absent", "point_mastodon": False},
]


def redis_instance_messages():
    """Every message the Redis instance model gives each of its callers, with the names that caller passes."""
    for role, caller, purpose in redis_instance_callers():
        good = {"purpose": purpose, "variables": redis_instance.variables(purpose, caller), "server": "redis",
                "distribution": "Debian", "distribution_major": "12", "instance_name": "x", "port": 6390,
                "main_port": 6379, "bind": ["127.0.0.1"], "maxmemory": "8mb", "env_style": "url",
                "env_host": "127.0.0.1", "password": False, "settings": {}, "mem_total_bytes": 2 ** 32}
        for bad in BAD_INSTANCES:
            for problem in redis_instance.problems(dict(good, **bad)):
                yield "roles/%s (redis_instance, %s)" % (role, sorted(bad)), problem


def unknown_names(messages):
    known = declared_variables() | option_values() | plugin_names() | set(ROLES) | NOT_VARIABLES
    for name, role in PENDING_ROLES.items():
        if not os.path.isdir(os.path.join(TOP, "roles", role)):
            known.add(name)
    unknown = {}
    for source, text in messages:
        for name in VARIABLE.findall(text):
            if name not in known:
                unknown.setdefault(name, []).append("%s: %s" % (source, " ".join(text.split())[:140]))
    return unknown


def test_the_scan_sees_names_in_each_kind_of_message():
    # The scan is only as good as what it reads: each source must bring names to check.
    for messages in (python_messages(), task_messages(), table_messages()):
        assert any(VARIABLE.search(text) for _source, text in messages)
    assert unknown_names([("probe", "set redis_cache_maxmemory_polcy to allkeys-lru")]) == {
        "redis_cache_maxmemory_polcy": ["probe: set redis_cache_maxmemory_polcy to allkeys-lru"]}


def test_each_redis_instance_caller_names_only_its_own_variables():
    callers = redis_instance_callers()
    assert callers == [
        ("redis_cache", "redis_cache", "cache"), ("sidekiq_redis", "sidekiq_redis", "sidekiq")]
    for role, caller, purpose in callers:
        names = set(redis_instance.variables(purpose, caller).values())
        assert names <= _role_options(role), sorted(names - _role_options(role))
    messages = list(redis_instance_messages())
    # Each bad value is refused for one caller at least (noeviction only for the cache, ...).
    assert {source.split("(redis_instance, ")[1] for source, _text in messages} == {
        "%s)" % sorted(bad) for bad in BAD_INSTANCES}
    for source, text in messages:
        role = source.split()[0].split("/")[1]
        other = "sidekiq_redis_" if role == "redis_cache" else "redis_cache_"
        assert other not in text, (source, text)


def test_the_redis_instance_models_messages_name_real_variables():
    assert unknown_names(redis_instance_messages()) == {}


def test_python_messages_name_real_variables():
    assert unknown_names(python_messages()) == {}


def test_task_and_playbook_messages_name_real_variables():
    assert unknown_names(task_messages()) == {}


def test_the_bad_input_tables_messages_name_real_variables():
    assert unknown_names(table_messages()) == {}
