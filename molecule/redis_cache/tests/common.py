"""Helpers shared by the redis_cache scenario's tests: real redis-cli calls inside the container."""

import json
import os
import re
import shlex
import subprocess
import sys
import time
from urllib.parse import unquote, urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import run_ok  # noqa: E402

EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
CONVERGE_LOG = os.path.join(EPHEMERAL, "ansible.log")
SCENARIO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The scenario's values (molecule.yml); kept here so the tests do not trust the role's own code.
PASSWORD = "c4che:S3cret/p%ss@fediops"
PORT = 6380
MAIN_PORT = 6379
MAXMEMORY = 8 * 1024 * 1024
ENV_FILE = "/home/mastodon/live/.env.production"


def flavour(host):
    """(server, cli, unit, conf, data dir) as the scenario's host vars choose them."""
    if host.backend.get_hostname().endswith("-valkey"):
        return dict(server="valkey", cli="valkey-cli", unit="valkey-server@cache.service",
                    conf="/etc/valkey/valkey-cache.conf", secret="/etc/valkey/valkey-cache.secret.conf",
                    dir="/var/lib/valkey/cache", log="/var/log/valkey/valkey-server-cache.log",
                    default_unit="valkey-server.service")
    return dict(server="redis", cli="redis-cli", unit="redis-server@cache.service",
                conf="/etc/redis/redis-cache.conf", secret="/etc/redis/redis-cache.secret.conf",
                dir="/var/lib/redis/cache", log="/var/log/redis/redis-server-cache.log",
                default_unit="redis-server.service")


def cli(host, args, port=PORT, password=PASSWORD, stdin_cmd=None, check=True, hostaddr="127.0.0.1"):
    """redis-cli against the cache (or main) instance; the password travels in REDISCLI_AUTH."""
    auth = f"REDISCLI_AUTH={shlex.quote(password)} " if password else ""
    cmd = f"{auth}redis-cli -h {shlex.quote(hostaddr)} -p {port} {args}"
    if stdin_cmd:
        cmd = f"{stdin_cmd} | {cmd}"
    res = host.run(cmd)
    if check:
        assert res.rc == 0, f"redis-cli {args} failed ({res.rc}): {res.stdout} {res.stderr}"
    return res.stdout


def config_get(host, names, **kwargs):
    out = cli(host, "CONFIG GET " + " ".join(names), **kwargs).split("\n")
    if out and out[-1] == "":
        out = out[:-1]
    return dict((out[i], out[i + 1]) for i in range(0, len(out), 2))


def info(host, section, **kwargs):
    values = {}
    for line in cli(host, f"INFO {section}", **kwargs).splitlines():
        if ":" in line and not line.startswith("#"):
            key, value = line.strip().split(":", 1)
            values[key] = value
    return values


def read_env(host):
    """KEY=VALUE pairs of .env.production, read independently of the role's env_file code."""
    values = {}
    for line in host.file(ENV_FILE).content_string.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.replace("export ", "").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def cache_connection(env):
    """(host, port, password, db) the way Mastodon's RedisConfiguration builds the cache's URL."""
    if env.get("CACHE_REDIS_URL"):
        parts = urlsplit(env["CACHE_REDIS_URL"])
        assert parts.scheme == "redis"
        password = unquote(parts.password) if parts.password else ""
        db = int(parts.path.lstrip("/") or 0)
        return parts.hostname, parts.port, password, db
    host = env.get("CACHE_REDIS_HOST")
    assert host, "neither CACHE_REDIS_URL nor CACHE_REDIS_HOST: Mastodon would cache in the main Redis"
    # Mastodon does not fall back to REDIS_PORT: a missing part would be a broken URL.
    assert env.get("CACHE_REDIS_PORT"), "CACHE_REDIS_HOST without CACHE_REDIS_PORT"
    return (host.strip("[]"), int(env["CACHE_REDIS_PORT"]), env.get("CACHE_REDIS_PASSWORD", ""),
            int(env.get("CACHE_REDIS_DB", "0") or 0))


def main_before(host):
    """The snapshot converge's pre_tasks took before the role first ran."""
    lines = host.file("/var/tmp/redis_cache-before.txt").content_string.splitlines()
    pairs = dict((lines[i], lines[i + 1]) for i in range(0, 8, 2))
    run_id = lines[8].split(":", 1)[1].strip()
    conf_sum = lines[9].split()[0]
    # systemctl show prints one value per unit, with a blank line between them.
    web_pid, sidekiq_pid = [int(line) for line in lines[10:] if line.strip()]
    return dict(config=pairs, run_id=run_id, conf_sum=conf_sum, web_pid=web_pid, sidekiq_pid=sidekiq_pid)


def unit_value(host, unit, prop):
    return run_ok(host, f"systemctl show --property={prop} --value {unit}").strip()


def wait_active(host, unit, timeout=30):
    deadline = time.time() + timeout
    state = ""
    while time.time() < deadline:
        state = unit_value(host, unit, "ActiveState")
        if state == "active":
            return
        time.sleep(0.5)
    raise AssertionError(f"{unit} is {state}, not active, after {timeout}s")


def converge_again(host, extra_vars, log_name, playbook=None):
    """Run the scenario's converge.yml (or `playbook`) for this host (every host: None) with extra vars; returns
    (rc, output, changed, log_path), changed being this host's (None for every host)."""
    log_path = os.path.join(EPHEMERAL, log_name)
    env = dict(os.environ)
    env["ANSIBLE_LOG_PATH"] = log_path
    env.setdefault("ANSIBLE_ROLES_PATH", os.path.join(os.path.dirname(os.path.dirname(SCENARIO_DIR)), "roles"))
    cfg = os.path.join(EPHEMERAL, "ansible.cfg")
    if os.path.exists(cfg):
        env["ANSIBLE_CONFIG"] = cfg
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or os.path.join(EPHEMERAL, "inventory")
    limit = ["--limit", host.backend.get_hostname()] if host is not None else []
    cmd = ["ansible-playbook", "-v", "-i", inventory, *limit, "-e", json.dumps(extra_vars),
           playbook or os.path.join(SCENARIO_DIR, "converge.yml")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    output = proc.stdout + proc.stderr
    return proc.returncode, output, changed_on(host, output) if host is not None else None, log_path


def changed_on(host, output):
    """The changed count of this host's line in the run's recap."""
    match = re.search(rf"^{re.escape(host.backend.get_hostname())}\s*:\s*ok=\d+\s+changed=(\d+)", output, re.M)
    return int(match.group(1)) if match else None
