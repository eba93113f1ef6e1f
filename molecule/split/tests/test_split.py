"""examples/split on four hosts: every Mastodon process on both application hosts reaches the primary
through PgBouncer and reads from the standby, one cache for both, connections within the plan
under load, and restarts that roll one host at a time.

Round one (PgBouncer on db1) and round two (PgBouncer on every application host) run the same tests;
the round is read from db1, where side_effect records it.
"""

import os
import re
import shlex
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import run_ok  # noqa: E402
from standin_report import http_report, oneoff_report, sidekiq_report  # noqa: E402
from split_layout import (  # noqa: E402
    ADMIN_PASSWORD, APPS, CACHE_PASSWORD, CONVERGE_LOG, DB_PASSWORD, ENV_FILE, SECRETS, address, host, placement)

DB1, DB2 = host("split-db1"), host("split-db2")


def show_clients(h, hostaddr):
    out = run_ok(h, f"PGPASSWORD={shlex.quote(ADMIN_PASSWORD)} psql -X -A -q -P footer=off "
                    f"-h {hostaddr} -p 6432 -U pgbouncer pgbouncer -c 'SHOW CLIENTS'")
    header, *rows = [line.split("|") for line in out.splitlines() if "|" in line]
    return [dict(zip(header, row)) for row in rows]


@pytest.fixture(scope="module", autouse=True)
def stop_the_command_line_sampler():
    """The sampler (sampler.yml) watched the play; the tests' own commands carry the test passwords."""
    for name in ["split-db1", "split-db2"] + APPS:
        host(name).run("systemctl stop fediops-ps-sampler")


@pytest.fixture(scope="module", params=APPS)
def app(request):
    return host(request.param)


@pytest.fixture(scope="module")
def reports(app):
    return {"web": http_report(app, 3000), "sidekiq": sidekiq_report(app, "default"),
            "streaming": http_report(app, 4000)}


@pytest.mark.parametrize("kind", ["web", "sidekiq", "streaming"])
def test_every_process_reaches_postgresql_through_pgbouncer(app, reports, kind):
    primary = reports[kind]["primary"]
    assert primary["ok"], f"{kind}: {primary.get('error')}"
    assert primary["port"] == 6432
    if placement() == "primary":
        # DB_HOST is db1, where PgBouncer lists this very connection among its clients.
        assert primary["host"] == address(DB1)
        clients = {(c["addr"], int(c["port"])) for c in show_clients(DB1, "/var/run/postgresql")}
        assert (address(app), primary["local_port"]) in clients
    elif kind == "streaming":
        # The streaming server reads from the replica through the host's own PgBouncer, at the loopback
        # address scale.yml gives read_replica (a drop-in sets its DB_HOST): a TCP client.
        assert primary["host"] == "127.0.0.1"
        clients = {(c["addr"], int(c["port"])) for c in show_clients(app, "127.0.0.1")}
        assert ("127.0.0.1", primary["local_port"]) in clients
    else:
        # The host's own PgBouncer over its Unix socket; PgBouncer reaches db1 over TCP.
        assert primary["host"] == "/var/run/postgresql"
        clients = {(c["addr"], int(c["remote_pid"])) for c in show_clients(app, "127.0.0.1")}
        assert ("unix", reports[kind]["pid"]) in clients


@pytest.mark.parametrize("kind", ["web", "sidekiq"])
def test_rails_processes_write_to_the_primary(reports, kind):
    primary = reports[kind]["primary"]
    assert primary["in_recovery"] is False
    if placement() == "app":
        assert primary["server_addr"] == address(DB1)


@pytest.mark.parametrize("kind", ["web", "streaming"])
def test_reads_land_on_the_standby(reports, kind):
    reads = reports[kind]["reads"] if kind == "web" else reports[kind]["primary"]
    assert reads["ok"], reads.get("error")
    assert reads["in_recovery"] is True


def cache_cli(h, command):
    return run_ok(h, f"REDISCLI_AUTH={shlex.quote(CACHE_PASSWORD)} redis-cli -p 6380 {command}")


@pytest.mark.parametrize("kind", ["web", "sidekiq"])
def test_cache_writes_land_on_the_chosen_cache_host(app, reports, kind):
    """One cache for the fleet, on the first application host, in both rounds."""
    cache = reports[kind]["cache"]
    assert cache["ok"], cache.get("error")
    assert cache["tcp_port"] == 6380
    cache_host = host("split-app1")
    # The very instance on that host: its run_id, and the key the process wrote is there.
    assert f"run_id:{cache['run_id']}" in cache_cli(cache_host, "INFO server")
    assert cache_cli(cache_host, f"EXISTS {shlex.quote(cache['key'])}").strip() == "1"


def test_a_shared_cache_replaces_the_application_hosts_own():
    # app2 reaches app1's cache over the network, and runs none of its own.
    env = host("split-app2").file(ENV_FILE).content_string
    assert f"@{address(host('split-app1'))}:6380/" in env
    assert host("split-app2").run("systemctl is-active redis-server@cache").stdout.strip() != "active"
    # Without the password, app1's cache refuses a client from app2.
    denied = host("split-app2").run(f"redis-cli -h {address(host('split-app1'))} -p 6380 SET fediops-probe 1")
    assert "NOAUTH" in denied.stdout + denied.stderr


def sidekiq_queues_running(h):
    """Queues of every live Sidekiq process of this host, from Sidekiq's own registry (the `processes` set in
    Redis). The application hosts share Sidekiq's Redis, and with it the registry: each entry names its host."""
    script = ("require './app'; require 'sidekiq/api'; require 'socket'; "
              "Sidekiq::ProcessSet.new.each { |p| puts p['queues'].join(',') if p['hostname'] == Socket.gethostname }")
    return [line.split(",") for line in
            run_ok(h, f"cd /home/mastodon/live && runuser -u mastodon -- bundle exec ruby -e {shlex.quote(script)}").splitlines()
            if line.strip()]


def test_mastodon_scheduler_runs_on_exactly_one_application_host():
    serving = {name: [q for q in sidekiq_queues_running(host(name)) if "scheduler" in q] for name in APPS}
    assert serving["split-app1"] and len(serving["split-app1"]) == 1, serving
    assert serving["split-app2"] == [], serving
    # Both hosts still serve every other queue.
    for name in APPS:
        queues = {q for proc in sidekiq_queues_running(host(name)) for q in proc}
        assert {"default", "push", "pull", "mailers"} <= queues, (name, queues)


def test_a_wrong_password_fails_on_the_same_path(app):
    """The checks above can fail: the same configuration with a wrong password cannot log in."""
    report = oneoff_report(app, "web", {"DB_PASS": "not-the-password"})
    assert report["primary"]["ok"] is False


def test_database_hosts_keep_their_own_env_file():
    for h in (DB1, DB2):
        env = h.file(ENV_FILE).content_string
        assert "PREPARED_STATEMENTS" not in env and "REPLICA_DB_" not in env and "CACHE_REDIS_" not in env


def test_pgbouncer_admits_the_application_hosts_only():
    if placement() == "app":
        # db1's PgBouncer of round one, used by nobody now, is stopped and holds no server connection.
        assert DB1.run("systemctl is-active pgbouncer").stdout.strip() != "active"
        # Round two: each application host's PgBouncer listens on loopback only.
        for name in APPS:
            listening = [a for a in run_ok(host(name), "ss -ltnH 'sport = :6432'").split() if a.endswith(":6432")]
            assert listening == ["127.0.0.1:6432"], listening
        return
    target = address(DB1)
    cmd = (f"PGPASSWORD={shlex.quote(DB_PASSWORD)} PGCONNECT_TIMEOUT=5 psql -X -A -t -q -h {target} -p 6432 "
           "-U mastodon -d mastodon_production -c 'SELECT 1'")
    assert host("split-app1").run(cmd).rc == 0
    refused = DB2.run(cmd)
    assert refused.rc != 0


def test_postgresql_connections_stay_within_the_plan_under_load():
    """pgbench from both application hosts at once, through their PgBouncer; db1 is sampled meanwhile."""
    run_ok(DB1, "cd /tmp && runuser -u mastodon -- pgbench -q -i -s 1 -h /var/run/postgresql mastodon_production")
    # Round one: db1's own PgBouncer (over PostgreSQL's Unix socket: no client address), 20 + 5 reserve.
    # Round two: the two application hosts' PgBouncers, 10 + 5 each (db1's PgBouncer of round one is stopped).
    if placement() == "primary":
        cap, where = 25, "client_addr IS NULL"
    else:
        cap = 2 * (10 + 5)
        where = "host(client_addr) IN (%s)" % ", ".join(f"'{address(host(name))}'" for name in APPS)
    query = ("SELECT count(*) FROM pg_stat_activity WHERE usename = 'mastodon' AND backend_type = 'client backend' "
             f"AND {where}")
    samples = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            out = DB1.run(f"runuser -u postgres -- psql -X -A -t -q -c {shlex.quote(query)}").stdout.strip()
            if out.isdigit():
                samples.append(int(out))
            time.sleep(0.3)

    sampler = threading.Thread(target=sample)
    sampler.start()
    procs = []
    for name in APPS:
        h = host(name)
        db_host = re.search(r"^DB_HOST=(\S+)$", h.file(ENV_FILE).content_string, re.M).group(1)
        procs.append(subprocess.Popen(
            ["docker", "exec", name, "sh", "-c",
             f"PGPASSWORD={shlex.quote(DB_PASSWORD)} pgbench -n -S -c 40 -j 2 -T 6 -h {db_host} -p 6432 "
             "-U mastodon mastodon_production"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    stop.set()
    sampler.join()
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out
        assert "number of failed transactions: 0" in out or "failed" not in out
    assert samples and max(samples) <= cap, (max(samples), cap)
    assert max(samples) > 0


def restart_windows(h):
    """(stop, start) epoch pairs of mastodon-web restarts since the container booted, from the journal
    (the image's journal also holds the stop at bake time)."""
    booted = time.time() - int(run_ok(h, "ps -o etimes= -p 1").strip())
    out = run_ok(h, "journalctl -u mastodon-web -o short-unix --no-pager | grep -E 'Stopping|Started' || true")
    windows, stopping = [], None
    for line in out.splitlines():
        stamp = float(line.split()[0])
        if stamp < booted:
            continue
        if "Stopping" in line:
            stopping = stamp
        elif "Started" in line and stopping is not None:
            windows.append((stopping, stamp))
            stopping = None
    return windows


def test_restarts_roll_one_application_host_at_a_time():
    rounds = 1 if placement() == "primary" else 2
    windows = {name: restart_windows(host(name)) for name in APPS}
    for name, found in windows.items():
        assert 1 <= len(found) <= rounds, f"{name} restarted mastodon-web {len(found)} times in {rounds} round(s)"
    for a_stop, a_start in windows["split-app1"]:
        for b_stop, b_start in windows["split-app2"]:
            assert a_start < b_stop or b_start < a_stop, "app1 and app2 restarted web at the same time"


def test_no_secret_in_any_journal_or_the_converge_log():
    with open(CONVERGE_LOG, encoding="utf-8", errors="replace") as handle:
        log = handle.read()
    # The log is the -vvv one: it shows the commands Ansible ran on the hosts.
    assert "EXEC" in log or "ESTABLISH" in log, "the converge log is not verbose enough to prove anything"
    for secret in SECRETS:
        assert secret not in log
    for name in ["split-db1", "split-db2"] + APPS:
        journal = host(name).run("journalctl --no-pager -o cat").stdout
        for secret in SECRETS:
            assert secret not in journal, f"a secret is in the journal of {name}"


@pytest.mark.parametrize("name", ["split-db1", "split-db2"] + APPS)
def test_no_secret_on_any_command_line_during_the_play(name):
    h = host(name)
    samples = run_ok(h, "wc -l < /var/log/fediops-ps-samples.log").strip()
    assert int(samples) > 1000, "the sampler barely ran"
    for secret in SECRETS:
        found = h.run(f"grep -F -e {shlex.quote(secret)} /var/log/fediops-ps-samples.log | head -3")
        assert found.stdout.strip() == "", (f"a secret was on a command line on {name}: "
                                            + found.stdout.replace(secret, "<secret>"))


@pytest.mark.parametrize("name", ["split-db1", "split-db2"] + APPS)
def test_no_secret_in_a_file_others_can_read(name):
    h = host(name)
    for secret in SECRETS:
        cmd = ("find /etc /home/mastodon /var/lib/postgresql -xdev -type f -perm -o=r -print0 2>/dev/null "
               f"| xargs -0 -r grep -lF -e {shlex.quote(secret)} || true")
        assert run_ok(h, cmd).strip() == "", f"a secret is in a file others can read on {name}"
    # The check can fail: a planted world-readable file with a secret is found.
    run_ok(h, f"printf '%s' {shlex.quote(SECRETS[0])} > /etc/fediops-probe && chmod 644 /etc/fediops-probe")
    try:
        cmd = (f"find /etc -xdev -type f -perm -o=r -print0 | xargs -0 -r grep -lF -e {shlex.quote(SECRETS[0])} || true")
        assert "/etc/fediops-probe" in run_ok(h, cmd)
    finally:
        run_ok(h, "rm -f /etc/fediops-probe")
