"""The cache instance after converge and idempotence: real Redis/Valkey, real eviction, no disk writes,
the main Redis untouched, and Mastodon's environment pointing at the cache.

The live change and the removal run after these checks (test_live_change_and_removal.py, marked changes_the_host).
"""

import os
import re
import shlex
import sys
import time

from common import (
    CONVERGE_LOG, MAIN_PORT, MAXMEMORY, PASSWORD, PORT, cache_connection, cli, config_get, flavour,
    info, main_before, read_env, run_ok, unit_value, wait_active,
)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import assert_no_secret_in_log  # noqa: E402


def test_instance_runs_from_debians_template_unit(host):
    f = flavour(host)
    assert unit_value(host, f["unit"], "ActiveState") == "active"
    assert unit_value(host, f["unit"], "UnitFileState") == "enabled"
    # The instance template of the chosen server reads the instance's own file.
    exec_start = unit_value(host, f["unit"], "ExecStart")
    assert f"{f['conf']}" in exec_start
    server = info(host, "server")
    assert server["tcp_port"] == str(PORT)
    assert server["config_file"] == f["conf"]
    if f["server"] == "valkey":
        assert "valkey_version" in server or server.get("server_name") == "valkey", server
    else:
        assert "valkey_version" not in server and server.get("server_name", "redis") == "redis", server
    conf = host.file(f["conf"])
    assert conf.user == f["server"] and conf.mode == 0o640
    assert PASSWORD not in conf.content_string, "the password belongs in the separate password file"
    secret = host.file(f["secret"])
    assert secret.user == f["server"] and secret.mode == 0o640
    # The instance's own data directory, made by redis_instance_config, is the server's alone.
    data = host.file(f["dir"])
    assert data.is_directory and (data.user, data.group, data.mode) == (f["server"], f["server"], 0o750)


def test_config_get_shows_a_cache_without_persistence(host):
    values = config_get(host, ["save", "appendonly", "maxmemory", "maxmemory-policy", "bind", "dir", "port"])
    assert values["save"] == ""
    assert values["appendonly"] == "no"
    assert values["maxmemory"] == str(MAXMEMORY)
    assert values["maxmemory-policy"] == "allkeys-lru"
    assert values["bind"].split() == ["127.0.0.1", "-::1"]
    assert values["dir"] == flavour(host)["dir"]
    # The file says it too: an explicit empty save, not a missing one.
    assert re.search(r'^save ""$', host.file(flavour(host)["conf"]).content_string, re.M)


def test_password_is_required(host):
    res = host.run(f"redis-cli -h 127.0.0.1 -p {PORT} GET anything")
    assert "NOAUTH" in res.stdout + res.stderr


def test_only_the_cache_instance_of_the_package_runs(host):
    f = flavour(host)
    if f["server"] == "valkey":
        # The package install started valkey-server.service on the main port; the role turned it off.
        assert unit_value(host, f["default_unit"], "ActiveState") in ("inactive",)
        assert unit_value(host, f["default_unit"], "UnitFileState") == "disabled"
    listeners = run_ok(host, "ss -Htlnp")
    assert f"127.0.0.1:{PORT}" in listeners


def test_main_redis_keeps_its_data_settings_and_process(host):
    before = main_before(host)
    assert cli(host, "GET fediops:main:kept", port=MAIN_PORT, password="").strip() == "written-before-redis_cache"
    now = config_get(host, ["save", "appendonly", "dir", "dbfilename"], port=MAIN_PORT, password="")
    assert now == before["config"]
    assert before["config"]["save"] != "", "the main Redis must keep its save rules"
    assert info(host, "server", port=MAIN_PORT, password="")["run_id"] == before["run_id"], "main Redis restarted"
    assert run_ok(host, "sha256sum /etc/redis/redis.conf").split()[0] == before["conf_sum"]
    assert unit_value(host, "redis-server.service", "ActiveState") == "active"


def test_env_production_reaches_the_cache_with_exactly_its_settings(host):
    env = read_env(host)
    style = "parts" if host.backend.get_hostname().endswith("-valkey") else "url"
    if style == "url":
        assert env["CACHE_REDIS_URL"].startswith("redis://:")
        assert not any(k in env for k in ("CACHE_REDIS_HOST", "CACHE_REDIS_PORT", "CACHE_REDIS_PASSWORD"))
    else:
        assert "CACHE_REDIS_URL" not in env
        assert env["CACHE_REDIS_HOST"] == "127.0.0.1" and env["CACHE_REDIS_PORT"] == str(PORT)
        assert env["CACHE_REDIS_PASSWORD"] == PASSWORD
    # The main Redis settings stay as they were.
    assert env["REDIS_HOST"] == "localhost" and env["REDIS_PORT"] == str(MAIN_PORT)
    addr, port, password, db = cache_connection(env)
    assert (port, password, db) == (PORT, PASSWORD, 0)
    cache_run_id = info(host, "server")["run_id"]
    reached = info(host, "server", port=port, password=password, hostaddr=addr)
    assert reached["run_id"] == cache_run_id and reached["tcp_port"] == str(PORT)
    assert cli(host, f"-n {db} SET fediops:via-env ok", port=port, password=password, hostaddr=addr).strip() == "OK"


def test_mastodon_services_restarted_once(host):
    before = main_before(host)
    for unit, old_pid in (("mastodon-web", before["web_pid"]), ("mastodon-sidekiq", before["sidekiq_pid"])):
        wait_active(host, unit)
        assert int(unit_value(host, unit, "MainPID")) != old_pid, f"{unit} was not restarted"
    with open(CONVERGE_LOG, encoding="utf-8") as handle:
        log = handle.read()
    log = re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ p=\d+ u=\S+ n=\S+ [A-Z]+\| ?", "", log, flags=re.M)
    applies = re.findall(r"^TASK \[fediops\.mastodon\.mastodon_services : Restart the Mastodon units[^\n]*\n(?:[^\n]*\n)*?(changed|ok|skipping):",
                         log, re.M)
    # The preview before converge (the scenario's one) predicts the restart, converge makes it, and idempotence finds
    # nothing to restart.
    assert applies == ["changed", "changed", "ok"], applies


def test_secrets_never_reach_the_converge_log():
    assert_no_secret_in_log(CONVERGE_LOG, [PASSWORD, "S3cret"], "fediops.mastodon.redis_cache")


def test_eviction_keeps_memory_within_maxmemory(host):
    cli(host, "FLUSHALL")
    cli(host, "CONFIG RESETSTAT")
    value_size = 10 * 1024
    count = (2 * MAXMEMORY) // value_size + 1
    # Raw RESP for redis-cli --pipe: SET fill:N <10 KiB>, twice maxmemory in all.
    program = (
        "import sys\n"
        f"v = b'x' * {value_size}\n"
        f"for i in range({count}):\n"
        "    k = b'fill:%d' % i\n"
        "    sys.stdout.buffer.write(b'*3\\r\\n$3\\r\\nSET\\r\\n$%d\\r\\n%s\\r\\n$%d\\r\\n%s\\r\\n'"
        " % (len(k), k, len(v), v))\n"
    )
    writer = "python3 -c " + shlex.quote(program)
    out = cli(host, "--pipe", stdin_cmd=writer)
    assert f"errors: 0, replies: {count}" in out, out
    memory = info(host, "memory")
    stats = info(host, "stats")
    errors = info(host, "errorstats")
    margin = 512 * 1024
    assert int(memory["used_memory"]) <= MAXMEMORY + margin, (memory["used_memory"], MAXMEMORY)
    assert int(stats["evicted_keys"]) > 0
    assert not any(k.startswith("errorstat_OOM") for k in errors), errors
    keys = int(cli(host, "DBSIZE").strip())
    assert 0 < keys < count, f"{keys} of {count} keys left: eviction should have dropped some"


def test_no_rdb_or_aof_after_writes_restart_and_shutdown(host):
    f = flavour(host)
    cli(host, "MSET disk:a 1 disk:b 2 disk:c 3")
    run_ok(host, f"systemctl restart {f['unit']}")
    wait_active(host, f["unit"])
    pid = unit_value(host, f["unit"], "MainPID")
    cli(host, "MSET disk:d 4 disk:e 5")
    # A plain SHUTDOWN saves when save points exist; with save "" it must not write anything.
    cli(host, "SHUTDOWN", check=False)
    deadline = time.time() + 30
    while time.time() < deadline and unit_value(host, f["unit"], "MainPID") in (pid, "0"):
        time.sleep(0.5)
    wait_active(host, f["unit"])
    entries = run_ok(host, f"ls -A {f['dir']}").split()
    assert entries == [], f"{f['dir']} holds {entries}"
    assert not host.file(f"{f['dir']}/dump.rdb").exists
    assert not host.file(f"{f['dir']}/appendonlydir").exists
    # After a restart a cache starts empty: nothing was persisted.
    assert cli(host, "DBSIZE").strip() == "0"
    log = host.file(f["log"]).content_string
    assert "DB saved on disk" not in log and "Saving the final RDB snapshot" not in log
