"""Run last (marked changes_the_host): a second converge that changes maxmemory live, then state: absent.

Both run the scenario's converge.yml again from here, with extra vars, so the scenario's own
idempotence step still proves 0 changed on the unchanged settings. Each run covers every host at once, and each test
checks every host after it: half the runs of one per host.
"""

import os
import re
import shlex
import time
from urllib.parse import quote

import pytest
import testinfra
from common import (
    MAIN_PORT, PASSWORD, PORT, changed_on, cli, config_get, converge_again, flavour, info, read_env, run_ok,
    unit_value, wait_active,
)

pytestmark = pytest.mark.changes_the_host

NEW_MAXMEMORY = "12mb"
NEW_MAXMEMORY_BYTES = 12 * 1024 * 1024
KEYS = 500


def assert_no_secret(log_path, output):
    with open(log_path, encoding="utf-8") as handle:
        log = handle.read()
    for form in (PASSWORD, quote(PASSWORD, safe=""), "S3cret"):
        assert form not in log and form not in output, f"secret ({form[:3]}...) in {os.path.basename(log_path)}"


def every_host():
    return testinfra.get_hosts(["ansible://all"], ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def converge_every_host(extra_vars, log_name, hosts):
    """converge.yml on every host at once, with extra vars: (output, log_path), and each host's changed count."""
    rc, output, _changed, log_path = converge_again(None, extra_vars, log_name)
    assert rc == 0, output[-4000:]
    return output, log_path, {h.backend.get_hostname(): changed_on(h, output) for h in hosts}


def test_changing_maxmemory_keeps_the_cache_warm():
    hosts, noted = every_host(), {}
    for host in hosts:
        f = flavour(host)
        cli(host, "FLUSHALL")
        program = f"print(''.join('SET warm:%d v%d\\n' % (i, i) for i in range({KEYS})), end='')"
        cli(host, "", stdin_cmd="python3 -c " + shlex.quote(program))
        assert int(cli(host, "DBSIZE").strip()) == KEYS
        noted[host.backend.get_hostname()] = (info(host, "server"), unit_value(host, f["unit"], "MainPID"))

    output, log_path, changed = converge_every_host({"redis_cache_maxmemory": NEW_MAXMEMORY}, "ansible-live-change.log", hosts)
    assert all(count and count > 0 for count in changed.values()), changed
    # The task names what it changed, and only the name: never a value.
    assert re.search(r"TASK \[.*change settings live with CONFIG SET[^\n]*\n(?:(?!TASK \[)[\s\S])*?changed: [^\n]*"
                     r"\"live\": \[\"maxmemory\"\]", output), output[-4000:]
    # The same call runs the instance: its result lines, one per host (a timing callback may print a line between the
    # header and the results), say it restarted nothing.
    restart_task = re.search(r"TASK \[.*restart it for settings Redis cannot change live[^\n]*\n((?:(?!TASK \[).*\n)*)", output)
    results = re.findall(r"^((?:ok|changed|skipping|fatal): .*)", restart_task.group(1) if restart_task else "", re.M)
    assert len(results) == len(hosts) and all('"restarted": []' in r and '"started": []' in r for r in results), results
    assert_no_secret(log_path, output)

    for host in hosts:
        f = flavour(host)
        before, pid_before = noted[host.backend.get_hostname()]
        after = info(host, "server")
        assert after["run_id"] == before["run_id"], "the cache instance restarted"
        assert int(after["uptime_in_seconds"]) >= int(before["uptime_in_seconds"])
        assert unit_value(host, f["unit"], "MainPID") == pid_before
        assert int(cli(host, "DBSIZE").strip()) == KEYS, "cached keys were lost"
        assert cli(host, "GET warm:123").strip() == "v123"
        assert config_get(host, ["maxmemory"])["maxmemory"] == str(NEW_MAXMEMORY_BYTES)
        assert re.search(rf"^maxmemory {NEW_MAXMEMORY}$", host.file(f["conf"]).content_string, re.M)

    output, _log, changed = converge_every_host({"redis_cache_maxmemory": NEW_MAXMEMORY}, "ansible-live-change-again.log", hosts)
    assert set(changed.values()) == {0}, output[-4000:]


def test_state_absent_removes_the_instance_and_the_env_keys():
    hosts = every_host()
    output, log_path, changed = converge_every_host({"redis_cache_state": "absent"}, "ansible-absent.log", hosts)
    assert all(count and count > 0 for count in changed.values()), changed
    assert_no_secret(log_path, output)

    for host in hosts:
        f = flavour(host)
        assert unit_value(host, f["unit"], "ActiveState") in ("inactive", "failed") or \
            unit_value(host, f["unit"], "LoadState") == "not-found"
        assert unit_value(host, f["unit"], "UnitFileState") != "enabled"
        for path in (f["conf"], f["secret"], f["dir"], f["log"]):
            assert not host.file(path).exists, f"{path} is left"
        assert f":{PORT}" not in run_ok(host, "ss -Htln")
        env = read_env(host)
        assert not [k for k in env if k.startswith("CACHE_REDIS_")], env
        assert env["REDIS_PORT"] == str(MAIN_PORT)
        # The main Redis and Mastodon carry on.
        assert cli(host, "GET fediops:main:kept", port=MAIN_PORT, password="").strip() == "written-before-redis_cache"
        assert info(host, "persistence", port=MAIN_PORT, password="")["loading"] == "0"
        for unit in ("mastodon-web", "mastodon-sidekiq", "redis-server"):
            wait_active(host, unit)

    output, _log, changed = converge_every_host({"redis_cache_state": "absent"}, "ansible-absent-again.log", hosts)
    assert set(changed.values()) == {0}, output[-4000:]


def test_sidekiq_redis_absent_moves_the_jobs_back_first():
    hosts = every_host()
    output, log_path, changed = converge_every_host(
        {"redis_cache_state": "absent", "sidekiq_redis_state": "absent"}, "ansible-sidekiq-absent.log", hosts)
    assert all(count and count > 0 for count in changed.values()), changed
    moved = [int(n) for n in re.findall(r"Moved (\d+) Sidekiq jobs from 127\.0\.0\.1:6381 to", output)]
    assert len(moved) >= len(hosts) and min(moved) >= 31, output[-4000:]
    assert_no_secret(log_path, output)
    for host in hosts:
        server = flavour(host)["server"]
        # The parked jobs are back in the main Redis, in the same order, and the scheduled one with them.
        queued = [line for line in cli(host, "LRANGE queue:fediops_parked 0 -1", port=MAIN_PORT, password="").splitlines()
                  if line.startswith("{")]
        assert [re.search(r'"args":\["([^"]+)"', line).group(1) for line in reversed(queued)] == \
            [f"parked-{i}" for i in range(1, 31)]
        assert "parked-scheduled" in cli(host, "ZRANGE schedule 0 -1", port=MAIN_PORT, password="")
        env = read_env(host)
        assert not [k for k in env if k.startswith("SIDEKIQ_REDIS_")], env
        assert unit_value(host, f"{server}-server@sidekiq.service", "UnitFileState") != "enabled"
        assert ":6381" not in run_ok(host, "ss -Htln")
        assert not host.file(f"/var/lib/{server}/sidekiq").exists
        # Sidekiq beats on the main Redis again.
        wait_active(host, "mastodon-sidekiq")
        deadline, live = time.time() + 30, []
        while not live and time.time() < deadline:
            members = cli(host, "SMEMBERS processes", port=MAIN_PORT, password="").split()
            live = [m for m in members if cli(host, f"EXISTS {m}", port=MAIN_PORT, password="").strip() == "1"]
            time.sleep(1)
        assert live, "no Sidekiq process beats on the main Redis"

    output, _log, changed = converge_every_host(
        {"redis_cache_state": "absent", "sidekiq_redis_state": "absent"}, "ansible-sidekiq-absent-again.log", hosts)
    assert set(changed.values()) == {0}, output[-4000:]
