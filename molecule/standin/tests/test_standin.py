"""The stand-in Mastodon host runs like a real single-host Mastodon install.

Every check talks to the real servers inside the container (127.0.0.1 only).
"""

import json
import os
import sys
import time
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import http_get, main_pid, quote, run_ok  # noqa: E402

LIVE = "/home/mastodon/live"
MASTODON_UNITS = ["mastodon-web", "mastodon-sidekiq", "mastodon-streaming"]
MASTODON_QUEUES = {"default", "push", "ingress", "mailers", "pull", "scheduler", "fasp"}


def as_mastodon(host, cmd):
    """Run cmd as mastodon in /home/mastodon/live (runuser sets HOME, USER)."""
    return host.run(f"cd {LIVE} && runuser -u mastodon -- {cmd}")


def redis(host, *args):
    return run_ok(host, "redis-cli --raw " + " ".join(quote(a) for a in args))


def sidekiq_processes(host):
    """Sidekiq's registry: identity -> parsed info JSON."""
    found = {}
    for ident in redis(host, "SMEMBERS", "processes").split():
        info = redis(host, "HGET", ident, "info").strip()
        if info:
            found[ident] = json.loads(info)
    return found


@pytest.mark.parametrize("unit", MASTODON_UNITS + ["postgresql", "redis-server"])
def test_service_enabled_and_active(host, unit):
    svc = host.service(unit)
    assert svc.is_running, f"{unit} is not active"
    assert svc.is_enabled, f"{unit} is not enabled"


def test_postgresql_cluster_active(host):
    out = run_ok(host, "systemctl list-units --plain --no-legend --state=active 'postgresql@*-main.service'")
    assert "postgresql@" in out


def test_redis_server_runs_with_the_test_container_dropin(host):
    assert host.service("redis-server").is_running
    dropins = run_ok(host, "systemctl show --property=DropInPaths --value redis-server")
    assert "/etc/systemd/system/service.d/zz-fediops-test-container.conf" in dropins
    assert run_ok(host, "redis-cli -h 127.0.0.1 -p 6379 PING").strip() == "PONG"


@pytest.mark.parametrize("unit", MASTODON_UNITS)
def test_units_keep_mastodon_hardening(host, unit):
    text = host.file(f"/etc/systemd/system/{unit}.service").content_string
    for line in ("User=mastodon", "WorkingDirectory=/home/mastodon/live", "Restart=always",
                 "PrivateUsers=true", "ProtectSystem=strict", "NoNewPrivileges=true",
                 "ReadWritePaths=/home/mastodon/live"):
        assert line in text.splitlines(), f"{unit}: missing {line}"
    props = run_ok(host, f"systemctl show --property=ProtectSystem,NoNewPrivileges,PrivateTmp,User {unit}")
    assert "ProtectSystem=strict" in props
    assert "NoNewPrivileges=yes" in props
    assert "PrivateTmp=yes" in props
    assert "User=mastodon" in props


def test_sidekiq_unit_is_mastodons(host):
    props = run_ok(host, "systemctl show --property=Environment,ExecStart mastodon-sidekiq")
    assert "DB_POOL=25" in props
    assert "MALLOC_ARENA_MAX=2" in props
    assert "argv[]=/usr/bin/bundle exec sidekiq -c 25 ;" in props


def test_env_production(host):
    f = host.file(f"{LIVE}/.env.production")
    assert f.user == "mastodon"
    assert f.mode == 0o640
    keys = {}
    for line in f.content_string.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1) if "=" in line else (line, "")
            keys[key] = value
    assert keys["DB_HOST"] == "/var/run/postgresql"
    assert keys["DB_PORT"] == "5432"
    assert keys["DB_NAME"] == "mastodon_production"
    assert keys["DB_USER"] == "mastodon"
    assert keys["DB_PASS"] == ""
    assert keys["REDIS_HOST"] == "localhost"
    assert keys["REDIS_PORT"] == "6379"
    for key in ("LOCAL_DOMAIN", "SECRET_KEY_BASE", "OTP_SECRET"):
        assert keys.get(key), f"{key} missing"
    for key in ("WEB_CONCURRENCY", "MAX_THREADS", "DB_POOL"):
        assert key not in keys


def test_puma_worker_count_matches_web_concurrency(host):
    master = main_pid(host, "mastodon-web")
    environ = host.file(f"/proc/{master}/environ").content_string.split("\0")
    env = dict(item.split("=", 1) for item in environ if "=" in item)
    expected = int(env.get("WEB_CONCURRENCY", "2"))
    workers = []
    for pid in run_ok(host, f"pgrep -P {master}").split():
        cmdline = host.file(f"/proc/{pid}/cmdline").content_string
        if cmdline.startswith("puma: cluster worker"):
            workers.append(int(pid))
    assert len(workers) == expected, f"{len(workers)} puma workers, WEB_CONCURRENCY in effect is {expected}"
    # The stand-in sets no WEB_CONCURRENCY anywhere, so Mastodon's default applies.
    assert expected == 2
    # /env is answered by one of those workers.
    status, body = http_get(host, "http://127.0.0.1:3000/env")
    assert status == 200
    assert json.loads(body)["pid"] in workers


def test_puma_health(host):
    assert http_get(host, "http://127.0.0.1:3000/health") == (200, "OK")


def test_streaming_health(host):
    assert http_get(host, "http://127.0.0.1:4000/api/v1/streaming/health") == (200, "OK")
    status, body = http_get(host, "http://127.0.0.1:4000/env")
    data = json.loads(body)
    assert status == 200
    assert data["pid"] == main_pid(host, "mastodon-streaming")
    assert data["PORT"] == "4000"
    assert data["STREAMING_CLUSTER_NUM"] == "1"


def test_sidekiq_registered_with_concurrency_25(host):
    pid = main_pid(host, "mastodon-sidekiq")
    mine = [info for info in sidekiq_processes(host).values() if info.get("pid") == pid]
    assert len(mine) == 1, "mastodon-sidekiq is not in Redis's processes set"
    info = mine[0]
    assert info["concurrency"] == 25
    # No -q on the command line: the queues come from config/sidekiq.yml, which also
    # :require:s the fixture app (no -r needed).
    assert set(info["queues"]) == MASTODON_QUEUES


def test_fixture_worker_runs_on_default(host):
    tag = "standin-" + uuid.uuid4().hex[:12]
    res = as_mastodon(host, f"bundle exec ruby bin/enqueue default 1 0 {tag}")
    assert res.rc == 0, res.stderr
    jid = json.loads(res.stdout.strip().splitlines()[-1])["jids"][0]
    pid = main_pid(host, "mastodon-sidekiq")
    deadline = time.time() + 30
    record = None
    while time.time() < deadline and record is None:
        for raw in redis(host, "LRANGE", "fixture:ran", "0", "-1").splitlines():
            item = json.loads(raw)
            if item.get("arg") == f"{tag}-1":
                record = item
        if record is None:
            time.sleep(0.5)
    assert record is not None, "the FixtureWorker job never ran"
    assert record["jid"] == jid
    assert record["queue"] == "default"
    assert record["pid"] == pid
    assert record["ran_at"] >= record["enqueued_at"]


def test_max_connections_is_100(host):
    out = run_ok(host, "runuser -u postgres -- psql --no-psqlrc -qtA -c 'SHOW max_connections'")
    assert out.strip() == "100"


def test_database_owned_by_mastodon(host):
    out = run_ok(host, "runuser -u postgres -- psql --no-psqlrc -qtA -c "
                 "\"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'mastodon_production'\"")
    assert out.strip() == "mastodon"


def test_rails_db_migrate_records_the_port(host):
    res = as_mastodon(host, "env DB_PORT=5432 bin/rails db:migrate")
    assert res.rc == 0, res.stderr
    assert res.stdout.strip() == "5432"
    out = as_mastodon(host, "psql --no-psqlrc -qtA -h /var/run/postgresql -d mastodon_production -c "
                      "'SELECT db_port FROM fixture_schema_migrations ORDER BY id DESC LIMIT 1'")
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == "5432"


def test_rails_db_migrate_environment_wins_over_env_file(host):
    # Nothing listens on 5433: the failure proves DB_PORT from the environment was used,
    # not DB_PORT=5432 from .env.production.
    res = as_mastodon(host, "env DB_PORT=5433 bin/rails db:migrate")
    assert res.rc != 0
    assert "5433" in res.stderr


def _dotenv_table():
    import yaml
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vars", "dotenv_values.yml")
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


ROUNDTRIP = f"{LIVE}/dotenv-roundtrip.env"


def test_ruby_dotenv_reads_back_what_env_file_wrote(host):
    table = _dotenv_table()
    out = run_ok(host, "ruby -EUTF-8 -rdotenv -rjson -e "
                       + quote(f"puts JSON.generate(Dotenv::Parser.call(File.read({ROUNDTRIP!r})))"))
    assert json.loads(out) == table["standin_dotenv_values"]


def test_npm_dotenv_reads_back_what_env_file_wrote(host):
    table = _dotenv_table()
    out = run_ok(host, f"cd {LIVE}/streaming && node -e "
                       + quote(f"console.log(JSON.stringify(require('dotenv').parse(require('fs').readFileSync({ROUNDTRIP!r}))))"))
    assert json.loads(out) == table["standin_dotenv_values"]


def test_the_refused_value_left_the_file_without_it(host):
    assert "REFUSED" not in host.file(ROUNDTRIP).content_string


def test_the_dotenv_check_can_fail(host):
    """The same readers see a double-quoted \\" differently: the check above would catch it."""
    out = run_ok(host, f"cd {LIVE}/streaming && node -e "
                       + quote("console.log(JSON.stringify(require('dotenv').parse('A=\"p\\\\\"q\"')))"))
    assert json.loads(out) == {"A": 'p\\"q'}


@pytest.mark.parametrize("kind, port", [("web", 3000), ("streaming", 4000)])
def test_running_process_queries_postgresql_and_writes_the_cache(host, kind, port):
    from standin_report import http_report
    report = http_report(host, port)
    assert report["primary"]["ok"], report["primary"].get("error")
    assert report["primary"]["host"] == "/var/run/postgresql"
    assert report["primary"]["in_recovery"] is False
    if kind == "web":
        assert report["primary"]["pool_size"] == 5  # no DB_POOL, no MAX_THREADS in the stock unit
        assert report["cache"]["ok"] and report["cache"]["tcp_port"] == 6379
        assert redis(host, "EXISTS", report["cache"]["key"]).strip() == "1"
    else:
        assert report["primary"]["pool_max"] == 10


def test_sidekiq_job_queries_with_a_pool_of_its_concurrency(host):
    from standin_report import sidekiq_report
    report = sidekiq_report(host, "default")
    assert report["primary"]["ok"], report["primary"].get("error")
    assert report["primary"]["pool_size"] == 25
    assert report["pid"] == main_pid(host, "mastodon-sidekiq")


def test_sidekiq_refuses_to_boot_on_a_makara_database_yml(host):
    """As Mastodon's config/initializers/sidekiq.rb from 4.1.5: exit 1 with Makara in database.yml."""
    run_ok(host, f"install -o mastodon -d /tmp/makara && cp -a {LIVE}/. /tmp/makara/ && "
                 "printf 'production:\\n  adapter: postgresql_makara\\n' > /tmp/makara/config/database.yml")
    res = host.run("cd /tmp/makara && runuser -u mastodon -- timeout 60 bundle exec sidekiq -c 1 -q default")
    run_ok(host, "rm -rf /tmp/makara")
    assert res.rc == 1, (res.rc, res.stderr[-500:])
    assert "Database replication is not currently supported in Sidekiq workers" in res.stderr + res.stdout


@pytest.mark.parametrize("version, env, mode, replica", [
    ("4.1.9", "", "single", False),
    ("4.3.0", "REPLICA_DB_HOST=127.0.0.1", "native", False),
    ("4.3.0", "REPLICA_DB_NAME=mastodon_production", "native", True),
    ("4.6.0", "REPLICA_DB_HOST=/var/run/postgresql", "native", True),
])
def test_the_fixture_acts_as_the_release_in_version_rb(host, version, env, mode, replica):
    """One image acts as 4.1, 4.3 or 4.6: database.yml's shape and the replica rule follow version.rb."""
    major, minor, patch = version.split(".")
    run_ok(host, f"rm -rf /tmp/as-{version} && install -o mastodon -d /tmp/as-{version} && cp -a {LIVE}/. /tmp/as-{version}/ && "
                 f"python3 -c {quote(_VERSION_EDIT)} /tmp/as-{version}/lib/mastodon/version.rb {major} {minor} {patch}")
    out = run_ok(host, f"cd /tmp/as-{version} && runuser -u mastodon -- env {env} bundle exec ruby bin/fixture-report web")
    run_ok(host, f"rm -rf /tmp/as-{version}")
    report = json.loads(out.strip().splitlines()[-1])
    assert report["version"] == version
    assert report["database_mode"] == mode
    assert report["replica_enabled"] is replica
    assert report["primary"]["ok"] and report["reads"]["ok"]


# Rewrites the three numbers of lib/mastodon/version.rb (def major / minor / patch), as a test setup.
_VERSION_EDIT = """
import re, sys
path, numbers = sys.argv[1], dict(zip(("major", "minor", "patch"), sys.argv[2:5]))
text = open(path).read()
for name, number in numbers.items():
    text = re.sub(r"(def %s\\n\\s*)\\d+" % name, r"\\g<1>" + number, text)
open(path, "w").write(text)
"""
