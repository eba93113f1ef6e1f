"""Read replicas on real PostgreSQL: each release pair (primary + app host with PgBouncer, and a hot
standby) after converge and idempotence.

Tests run against both containers of the pair, of the release MOLECULE_RELEASE names (scripts/run-tests.sh runs
Debian 12 here; split has the replica on Debian 13); a pair that is not running fails, never skips.
"""

import os
import re
import shlex
import subprocess
import time
import uuid
from urllib.parse import quote, unquote, urlsplit

import json
import sys

import pytest
import testinfra
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import assert_no_secret_in_log, run_ok, wait_for  # noqa: E402
from standin_report import http_report, sidekiq_report  # noqa: E402
from replica_fence_check import FenceSetup, check_fence_keeps_its_secret, check_replica_lag_fence  # noqa: E402

SCENARIO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT_DIR = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.dirname(os.path.dirname(SCENARIO_DIR)))
CONVERGE_LOG = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ansible.log")
RELEASES = [os.environ.get("MOLECULE_RELEASE", "bookworm")]
PG_VERSIONS = {"bookworm": "15", "trixie": "17"}
with open(os.path.join(SCENARIO_DIR, "vars", "secrets.yml"), encoding="utf-8") as handle:
    SECRETS = yaml.safe_load(handle)
REPLICATION_PASSWORD = SECRETS["read_replica_test_replication_password"]
DB_PASSWORD = SECRETS["read_replica_test_db_password"]
ADMIN_PASSWORD = SECRETS["read_replica_test_pgbouncer_admin_password"]
with open(os.path.join(SCENARIO_DIR, "vars", "fence.yml"), encoding="utf-8") as handle:
    FENCE = yaml.safe_load(handle)
PASSFILE = "/var/lib/postgresql/.pgpass-fediops-replication"
ENV_FILE = "/home/mastodon/live/.env.production"
DATABASE_YML_41 = "/home/mastodon/live-4.1/config/database.yml"
MAKARA_FILE_41 = "/etc/mastodon/database-4.1.makara.yml"
SIDEKIQ_ENV_41 = "/etc/mastodon/sidekiq-4.1-primary-database.env"


class Pair:
    def __init__(self, release):
        self.release = release
        self.version = PG_VERSIONS[release]
        self.primary = testinfra.get_host("docker://read_replica-primary-%s" % release)
        self.replica = testinfra.get_host("docker://read_replica-replica-%s" % release)
        self.slot = "read_replica_replica_%s" % release
        self.unit = "postgresql@%s-main.service" % self.version
        self.primary_ip = self.address(self.primary)
        self.replica_ip = self.address(self.replica)

    @staticmethod
    def address(host):
        out = run_ok(host, "ip -4 -o addr show scope global")
        return re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out).group(1)


def sql(host, query, db="mastodon_production", check=True):
    cmd = "runuser -u postgres -- psql --no-psqlrc -qtAX -v ON_ERROR_STOP=1 -d %s -c %s" % (db, shlex.quote(query))
    if check:
        return run_ok(host, cmd).strip()
    return host.run(cmd)


def streaming(pair):
    return sql(pair.primary, "SELECT count(*) FROM pg_stat_replication WHERE application_name = '%s' "
                             "AND state = 'streaming'" % pair.slot, db="postgres") == "1"


@pytest.fixture(scope="module", params=RELEASES)
def pair(request):
    return Pair(request.param)


@pytest.fixture(scope="module")
def probe_table(pair):
    sql(pair.primary, "CREATE TABLE IF NOT EXISTS fediops_replica_probe (id bigserial PRIMARY KEY, note text NOT NULL)")
    wait_for(lambda: sql(pair.replica, "SELECT to_regclass('fediops_replica_probe') IS NOT NULL") == "t",
             what="the probe table on the replica")
    return "fediops_replica_probe"


def test_primary_shows_the_replica_streaming_through_its_slot(pair):
    assert wait_for(lambda: streaming(pair), what="pg_stat_replication to show streaming")
    row = sql(pair.primary, "SELECT client_addr, sync_state FROM pg_stat_replication WHERE application_name = '%s'"
              % pair.slot, db="postgres")
    assert row.split("|")[0] == pair.replica_ip
    assert sql(pair.primary, "SELECT slot_type, active FROM pg_replication_slots WHERE slot_name = '%s'"
               % pair.slot, db="postgres") == "physical|t"
    assert sql(pair.replica, "SELECT pg_is_in_recovery()", db="postgres") == "t"
    assert sql(pair.primary, "SELECT pg_is_in_recovery()", db="postgres") == "f"


def test_primary_and_replica_are_the_detected_debian_cluster(pair):
    for host in (pair.primary, pair.replica):
        assert host.service(pair.unit).is_running
        assert sql(host, "SHOW server_version_num", db="postgres").startswith(pair.version)
        assert sql(host, "SHOW hot_standby", db="postgres") == "on"
    assert sql(pair.primary, "SHOW wal_level", db="postgres") == "replica"
    assert pair.replica.file("/var/lib/postgresql/%s/main/standby.signal" % pair.version).exists


def test_a_row_written_on_the_primary_appears_on_the_replica(pair, probe_table):
    note = "row-%s" % uuid.uuid4()
    sql(pair.primary, "INSERT INTO %s (note) VALUES ('%s')" % (probe_table, note))
    started = time.monotonic()
    wait_for(lambda: sql(pair.replica, "SELECT count(*) FROM %s WHERE note = '%s'" % (probe_table, note)) == "1",
             timeout=5, what="the row on the replica")
    assert time.monotonic() - started < 5


def test_a_write_on_the_replica_is_refused(pair, probe_table):
    res = sql(pair.replica, "INSERT INTO %s (note) VALUES ('must-fail')" % probe_table, check=False)
    assert res.rc != 0
    assert "read-only transaction" in res.stderr
    assert sql(pair.primary, "SELECT count(*) FROM %s WHERE note = 'must-fail'" % probe_table) == "0"


def pgbouncer_recovery(pair, dbname):
    cmd = ("PGPASSWORD=%s psql --no-psqlrc -qtAX -h 127.0.0.1 -p 6432 -U mastodon -d %s -c 'SELECT pg_is_in_recovery()'"
           % (shlex.quote(DB_PASSWORD), dbname))
    return run_ok(pair.primary, cmd).strip()


def test_pgbouncer_routes_mastodon_replica_to_the_standby(pair):
    assert pgbouncer_recovery(pair, "mastodon_replica") == "t"
    assert pgbouncer_recovery(pair, "mastodon_production") == "f"


def read_env(host, path):
    values = {}
    for line in host.file(path).content_string.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip("'\"")
    return values


def test_mastodon_45_env_holds_replica_db_settings(pair):
    env = read_env(pair.primary, ENV_FILE)
    assert env["REPLICA_DB_NAME"] == "mastodon_replica"
    assert env["REPLICA_DB_HOST"] == "127.0.0.1"
    assert env["REPLICA_DB_PORT"] == "6432"
    assert env["REPLICA_DB_USER"] == "mastodon"
    assert env["REPLICA_DB_PASS"] == DB_PASSWORD
    assert env["REPLICA_PREPARED_STATEMENTS"] == "false"
    assert env["REPLICA_DB_TASKS"] == "false"
    assert "DATABASE_URL" not in env


def test_streaming_server_runs_against_the_replica(pair):
    pid = run_ok(pair.primary, "systemctl show -p MainPID --value mastodon-streaming.service").strip()
    assert int(pid) > 0
    environ = run_ok(pair.primary, "tr '\\0' '\\n' < /proc/%s/environ" % pid).splitlines()
    assert "DB_HOST=127.0.0.1" in environ
    assert "DB_PORT=6432" in environ
    assert "DB_NAME=mastodon_replica" in environ
    # Through that entry the streaming server's queries land on the standby.
    assert pgbouncer_recovery(pair, "mastodon_replica") == "t"
    health = run_ok(pair.primary, "python3 -c \"import urllib.request as u; "
                                  "print(u.urlopen('http://127.0.0.1:4000/api/v1/streaming/health').read().decode())\"")
    assert health.strip() == "OK"


def test_web_reads_land_on_the_standby_and_writes_on_the_primary(pair):
    """Puma's worker, configured as Mastodon 4.5 (REPLICA_DB_*), queries through its two pools."""
    report = http_report(pair.primary, 3000)
    assert report["database_mode"] == "native" and report["replica_enabled"] is True
    assert report["primary"]["ok"] and report["reads"]["ok"], (report["primary"], report["reads"])
    assert report["primary"]["in_recovery"] is False
    assert report["reads"]["in_recovery"] is True
    assert report["reads"]["database"] == "mastodon_replica" and report["reads"]["port"] == 6432


def test_streaming_queries_land_on_the_standby(pair):
    report = http_report(pair.primary, 4000)
    assert report["primary"]["ok"], report["primary"]
    assert report["primary"]["in_recovery"] is True


def test_without_replica_db_name_mastodon_45_reads_from_the_primary(pair):
    """The check above can fail: Mastodon 4.5 uses the replica only when REPLICA_DB_NAME is set."""
    env = pair.primary.file(ENV_FILE).content_string
    assert re.search(r"^REPLICA_DB_NAME=", env, re.M)
    # dotenv never overrides the environment, so an empty REPLICA_DB_NAME there is still "set";
    # unset it by pointing the one-off process at an env file copy without the key.
    run_ok(pair.primary, "install -d -o mastodon /tmp/noreplica && cp -a /home/mastodon/live/. /tmp/noreplica/ && "
                         "sed -i '/^REPLICA_/d' /tmp/noreplica/.env.production")
    res = run_ok(pair.primary, "cd /tmp/noreplica && runuser -u mastodon -- bundle exec ruby bin/fixture-report web")
    run_ok(pair.primary, "rm -rf /tmp/noreplica")
    report = json.loads(res.strip().splitlines()[-1])
    assert report["replica_enabled"] is False
    assert report["reads"]["in_recovery"] is False


def erb_free(text):
    return re.sub(r"<%=.*?%>", "erb", text)


def test_makara_database_yml_has_the_guides_exact_shape(pair):
    f = pair.primary.file(MAKARA_FILE_41)
    # Outside the checkout, root's: the mastodon user reads it, and cannot point root's write elsewhere.
    assert f.user == "root" and f.group == "mastodon" and f.mode == 0o640
    text = f.content_string
    parsed = yaml.safe_load(erb_free(text))
    assert set(parsed) == {"default", "development", "test", "production"}
    assert parsed["development"]["database"] == "erb"
    production = parsed["production"]
    # Both through the local PgBouncer: mastodon_production, and its mastodon_replica entry for the standby.
    master = "postgresql://mastodon:%s@127.0.0.1:6432/mastodon_production" % quote(DB_PASSWORD, safe="")
    slave = "postgresql://mastodon:%s@127.0.0.1:6432/mastodon_replica" % quote(DB_PASSWORD, safe="")
    # The guide's keys on top of *default (whose keys yaml merges in).
    assert {k: v for k, v in production.items() if k not in parsed["default"] or k == "adapter"} == {
        "adapter": "postgresql_makara",
        "prepared_statements": False,
        "makara": {"id": "postgres", "sticky": True, "connections": [
            {"role": "master", "blacklist_duration": 0, "url": master},
            {"role": "slave", "url": slave},
        ]},
    }
    block = text[text.index("production:"):].splitlines()
    assert block[:8] == ["production:", "  <<: *default", "  adapter: postgresql_makara",
                         "  prepared_statements: false", "  makara:", "    id: postgres", "    sticky: true",
                         "    connections:"]
    assert unquote(urlsplit(slave).password) == DB_PASSWORD


def test_makara_urls_reach_the_primary_and_the_replica(pair):
    production = yaml.safe_load(erb_free(pair.primary.file(MAKARA_FILE_41).content_string))["production"]
    master, slave = [c["url"] for c in production["makara"]["connections"]]
    for url, recovery in ((master, "f"), (slave, "t")):
        out = run_ok(pair.primary, "psql --no-psqlrc -qtAX %s -c 'SELECT pg_is_in_recovery()'" % shlex.quote(url))
        assert out.strip() == recovery


def test_makara_leaves_mastodons_own_database_yml_alone(pair):
    production = yaml.safe_load(erb_free(pair.primary.file(DATABASE_YML_41).content_string))["production"]
    assert production["adapter"] == "postgresql" and "makara" not in production
    # Earlier releases' Sidekiq DATABASE_URL drop-in and file are gone.
    assert not pair.primary.file(SIDEKIQ_ENV_41).exists
    assert not pair.primary.file("/etc/systemd/system/mastodon-4-1-sidekiq.service.d/fediops-read-replica.conf").exists
    env41 = "/home/mastodon/live-4.1/.env.production"
    assert "REPLICA_DB_NAME" not in read_env(pair.primary, env41)


def test_makara_web_reads_from_the_standby_and_writes_on_the_primary(pair):
    """Puma of the 4.1.22 checkout sees the Makara file in place of config/database.yml."""
    report = http_report(pair.primary, 3001)
    assert report["version"] == "4.1.22"
    assert report["database_mode"] == "makara" and report["replica_enabled"] is True, report
    assert report["primary"]["ok"] and report["reads"]["ok"], (report["primary"], report["reads"])
    assert report["primary"]["in_recovery"] is False
    assert report["reads"]["in_recovery"] is True
    # Both pools go through PgBouncer, and PgBouncer lists the writing connection.
    assert (report["primary"]["port"], report["reads"]["port"]) == (6432, 6432), report
    clients = run_ok(pair.primary, "PGPASSWORD=%s psql --no-psqlrc -qtAX -F ' ' -h 127.0.0.1 -p 6432 -U pgbouncer "
                                   "pgbouncer -c 'SHOW CLIENTS'" % shlex.quote(ADMIN_PASSWORD))
    assert any({"mastodon", "mastodon_production", str(report["primary"]["local_port"])} <= set(line.split())
               for line in clients.splitlines()), clients


def test_migrate_playbook_goes_straight_to_postgresql_with_makara(pair, tmp_path):
    """migrate.yml's command reads Mastodon's own config/database.yml, as db:migrate does (here the
    stand-in's report, which reads it with ERB and YAML as Rails does), so its DB_PORT reaches PostgreSQL
    although .env.production and the Makara URLs say PgBouncer."""
    out = "/tmp/fediops-migrate-4.1.json"
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"mastodon_app": {"hosts": {
        "read_replica-primary-%s" % pair.release: {"ansible_connection": "community.docker.docker"}}}}}}))
    proc = subprocess.run(["ansible-playbook", "-i", str(inventory), os.path.join(PROJECT_DIR, "playbooks", "migrate.yml"),
                           "-e", json.dumps({"migrate_mastodon_dir": "/home/mastodon/live-4.1",
                                             "migrate_command": "bundle exec ruby bin/fixture-report web > %s" % out})],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = json.loads(run_ok(pair.primary, "cat %s" % out).strip().splitlines()[-1])
    assert report["version"] == "4.1.22" and report["database_mode"] == "single", report
    assert report["primary"]["ok"] and report["primary"]["port"] == 5432, report["primary"]
    assert report["primary"]["in_recovery"] is False


def test_makara_sidekiq_keeps_running_on_the_primary(pair):
    """From 4.1.5 Sidekiq exits on a Makara database.yml: it must run, and read the stock file."""
    unit = "mastodon-4-1-sidekiq.service"
    assert run_ok(pair.primary, "systemctl is-active %s" % unit).strip() == "active"
    report = sidekiq_report(pair.primary, "fixture41", live="/home/mastodon/live-4.1")
    assert report["version"] == "4.1.22" and report["database_mode"] == "single", report
    assert report["primary"]["ok"] and report["reads"]["ok"], report
    assert report["reads"]["in_recovery"] is False and report["primary"]["in_recovery"] is False
    pid = run_ok(pair.primary, "systemctl show -p MainPID --value %s" % unit).strip()
    time.sleep(3)
    assert run_ok(pair.primary, "systemctl show -p MainPID --value %s" % unit).strip() == pid
    assert run_ok(pair.primary, "systemctl show -p NRestarts --value %s" % unit).strip() == "0"


def test_pg_hba_allows_replication_from_the_replica_address_only(pair):
    hba = pair.primary.file("/etc/postgresql/%s/main/pg_hba.conf" % pair.version).content_string
    lines = [line.split() for line in hba.splitlines() if line.strip() and not line.startswith("#")]
    replication = [line for line in lines if line[0] == "host" and line[1] == "replication" and line[2] == "replicator"]
    assert replication == [["host", "replication", "replicator", pair.replica_ip + "/32", "scram-sha-256"]]
    assert "# BEGIN fediops.mastodon read_replica" in hba
    assert sql(pair.primary, "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'replicator'",
               db="postgres") == "t"


def test_the_replication_password_lives_only_in_the_passfile(pair):
    for host in (pair.primary, pair.replica):
        f = host.file(PASSFILE)
        assert f.user == "postgres" and f.mode == 0o600
        assert "replicator" in f.content_string
        # .pgpass escapes ':' and '\\', so the file holds the escaped form and nothing holds the plain one.
        escaped = REPLICATION_PASSWORD.replace("\\", "\\\\").replace(":", "\\:")
        for form, where in ((REPLICATION_PASSWORD, []), (escaped, [PASSFILE])):
            hits = host.run("grep -rlF -- %s /etc /var/lib/postgresql /home /root 2>/dev/null"
                            % shlex.quote(form)).stdout.split()
            assert hits == where
        assert REPLICATION_PASSWORD not in run_ok(host, "ps -eo args")
    assert "passfile=%s" % PASSFILE in sql(pair.replica, "SHOW primary_conninfo", db="postgres")


def test_converging_again_took_no_new_base_backup(pair):
    record = pair.replica.file("/var/lib/postgresql/fediops-read-replica-basebackups.log").content_string
    assert len(record.splitlines()) == 1
    assert "base backup of read_replica-primary-%s" % pair.release in record
    primary_id = sql(pair.primary, "SELECT system_identifier FROM pg_control_system()", db="postgres")
    assert sql(pair.replica, "SELECT system_identifier FROM pg_control_system()", db="postgres") == primary_id


def test_no_secret_reaches_the_converge_log():
    assert_no_secret_in_log(CONVERGE_LOG, list(SECRETS.values()), "fediops.mastodon.read_replica")


def fence_setup(pair):
    """The primary's PgBouncer serves mastodon_replica here: the fence runs beside it."""
    return FenceSetup(pair.primary, pair.primary, pair.replica, DB_PASSWORD, ADMIN_PASSWORD,
                      max_lag_s=FENCE["read_replica_max_lag_s"], interval_s=FENCE["read_replica_fence_interval_s"],
                      resume_after_s=FENCE["read_replica_fence_resume_after_s"])


def test_the_fence_keeps_its_password_to_itself(pair):
    check_fence_keeps_its_secret(fence_setup(pair))


def _role_run_keeps_the_fence(pair):
    """While fenced: Mastodon's own reads (the stand-in's Puma, REPLICA_DB_*) land on the primary, and a run of the
    pgbouncer role that rewrites pgbouncer.ini and reloads PgBouncer leaves the fence on, its file untouched."""
    report = http_report(pair.primary, 3000)
    assert report["reads"]["ok"] and report["reads"]["in_recovery"] is False, report["reads"]
    override = "/etc/pgbouncer/fediops-runtime.ini"
    before = run_ok(pair.primary, "sha256sum %s" % override)
    assert "mastodon_replica = host=/var/run/postgresql" in pair.primary.file(override).content_string
    reloads = run_ok(pair.primary, "grep -c 'got SIGHUP' /var/log/postgresql/pgbouncer.log || true").strip()
    proc = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
                           os.path.join(SCENARIO_DIR, "fence_role_run.yml"),
                           "-e", json.dumps({"fence_host": "read_replica-primary-%s" % pair.release,
                                             "fence_standby_address": pair.replica_ip})],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert run_ok(pair.primary, "grep -c 'got SIGHUP' /var/log/postgresql/pgbouncer.log").strip() != reloads
    assert run_ok(pair.primary, "sha256sum %s" % override) == before
    assert pgbouncer_recovery(pair, "mastodon_replica") == "f"


@pytest.mark.changes_the_host
def test_a_lagging_standby_sends_replica_reads_to_the_primary_and_back(pair):
    timings = check_replica_lag_fence(fence_setup(pair), while_fenced=lambda: _role_run_keeps_the_fence(pair))
    print("fence timings on %s: %s" % (pair.release, timings))


@pytest.mark.changes_the_host
def test_restarting_the_replica_resumes_streaming_without_loss(pair, probe_table):
    tag = "while-down-%s-" % uuid.uuid4().hex[:8]
    before = int(sql(pair.primary, "SELECT count(*) FROM %s" % probe_table))
    run_ok(pair.replica, "systemctl stop %s" % pair.unit)
    assert not pair.replica.service(pair.unit).is_running
    sql(pair.primary, "INSERT INTO %s (note) SELECT '%s' || g FROM generate_series(1, 500) g" % (probe_table, tag))
    assert int(sql(pair.primary, "SELECT count(*) FROM %s" % probe_table)) == before + 500
    # The slot keeps the WAL the stopped replica has not received yet.
    assert sql(pair.primary, "SELECT active FROM pg_replication_slots WHERE slot_name = '%s'" % pair.slot,
               db="postgres") == "f"
    run_ok(pair.replica, "systemctl start %s" % pair.unit)
    wait_for(lambda: streaming(pair), timeout=30, what="streaming to resume")
    wait_for(lambda: sql(pair.replica, "SELECT count(*) FROM %s" % probe_table) == str(before + 500),
             timeout=15, what="the rows written while the replica was down")
    assert sql(pair.replica, "SELECT count(*) FROM %s WHERE note LIKE '%s%%'" % (probe_table, tag)) == "500"


def _gate(pair, conf, allow_restart=False):
    """Run settings_gate.yml on the pair's primary with `conf` in a new conf.d file; the file is removed after."""
    import subprocess
    playbook = os.path.join(SCENARIO_DIR, "settings_gate.yml")
    name = "read_replica-primary-%s" % pair.release
    extra = {"gate_host": name, "gate_conf": conf, "read_replica_restart_primary": allow_restart}
    try:
        proc = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], playbook,
                               "-e", json.dumps(extra)], capture_output=True, text=True, timeout=300, check=False)
    finally:
        run_ok(pair.primary, "rm -f /etc/postgresql/%s/main/conf.d/70-fediops-gate-test.conf && "
                             "systemctl reload %s" % (pair.version, pair.unit))
    return proc.returncode, proc.stdout + proc.stderr


def _postmaster_start(pair):
    return sql(pair.primary, "SELECT pg_postmaster_start_time()", db="postgres")


@pytest.mark.parametrize("release", RELEASES)
def test_a_setting_postgresql_refuses_stops_the_run_without_reload_or_restart(release):
    pair = Pair(release)
    before = _postmaster_start(pair)
    rc, out = _gate(pair, "max_slot_wal_keep_size = '50gb'", allow_restart=True)
    assert rc != 0 and "PostgreSQL would refuse its configuration files" in out, out
    assert 'invalid value for parameter "max_slot_wal_keep_size"' in out or "invalid value for parameter \\\"max_slot" in out, out
    assert _postmaster_start(pair) == before
    assert sql(pair.primary, "SHOW max_slot_wal_keep_size", db="postgres") == "10GB"


@pytest.mark.parametrize("release", RELEASES)
def test_the_primary_restarts_only_with_leave(release):
    pair = Pair(release)
    before = _postmaster_start(pair)
    rc, out = _gate(pair, "max_wal_senders = 12")
    assert rc != 0 and "max_wal_senders only take effect when PostgreSQL restarts" in out, out
    assert "read_replica_restart_primary: true" in out
    assert _postmaster_start(pair) == before
    assert sql(pair.primary, "SHOW max_wal_senders", db="postgres") == "10"


@pytest.mark.parametrize("release", RELEASES)
def test_a_slot_of_a_replica_that_left_is_reported_and_dropped_only_when_named(release):
    import subprocess
    pair = Pair(release)
    sql(pair.primary, "SELECT pg_create_physical_replication_slot('fediops_gone_replica') "
                      "WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'fediops_gone_replica')",
        db="postgres")

    def gate(drop):
        extra = {"gate_host": "read_replica-primary-%s" % release, "gate_replica": "read_replica-replica-%s" % release,
                 "gate_slot": pair.slot, "read_replica_drop_slots": drop}
        proc = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
                               os.path.join(SCENARIO_DIR, "slots_gate.yml"), "-e", json.dumps(extra)],
                              capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    out = gate([])
    assert "belong to no replica of this inventory: fediops_gone_replica f" in out, out
    assert pair.slot not in out.split("belong to no replica")[1].split("\n")[0]
    assert sql(pair.primary, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'fediops_gone_replica'",
               db="postgres") == "1"
    gate(["fediops_gone_replica"])
    assert sql(pair.primary, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'fediops_gone_replica'",
               db="postgres") == "0"
    # The replica's own slot is still there, and still streaming.
    assert sql(pair.primary, "SELECT active FROM pg_replication_slots WHERE slot_name = '%s'" % pair.slot,
               db="postgres") == "t"
