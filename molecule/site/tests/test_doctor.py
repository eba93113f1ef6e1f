"""playbooks/doctor.yml and the metrics exporters on the converged one-host site.

Idle, the doctor must name nothing, yet show that it read every part (pools, PostgreSQL, Sidekiq's
registry, the cache). Then three real loads run at once and the doctor must name each one:
  - pgbench through PgBouncer with 60 clients of `SELECT pg_sleep(1)` against a pool of 20: clients wait;
  - 300 one-second jobs on `push`, which one process of 10 threads serves: the queue's oldest job waits;
  - redis-benchmark writing 1 kB values into the cache past its 256 MB maxmemory: it evicts.
The idle run is the same check failing to fire: each finding below exists only under its load. The
exporters are scraped under the same load (queue length, evictions) and the doctor's own runs must leave no
secret in their output or the host's journal.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import run_ok  # noqa: E402

EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
DOCTOR = os.path.join(PROJECT, "playbooks", "doctor.yml")
DB_PASSWORD = "site-Test:db/pass%1"
SIDEKIQ_PASSWORD = "site-Test:sidekiq/pass%4"
SECRETS = [DB_PASSWORD, "site-Test:admin/pass%2", "site-Test:stats/pass%3", SIDEKIQ_PASSWORD]
VAULT = {"vault_pgbouncer_mastodon_db_password": SECRETS[0], "vault_pgbouncer_admin_password": SECRETS[1],
         "vault_pgbouncer_stats_password": SECRETS[2], "vault_sidekiq_redis_password": SIDEKIQ_PASSWORD}
# Sidekiq's own Redis (examples/single-host: scale_sidekiq_redis_enabled), its password in redis-cli's environment.
SIDEKIQ_CLI = f"REDISCLI_AUTH='{SIDEKIQ_PASSWORD}' redis-cli -p 6381"


def doctor(name, duration, *extra, check=False):
    path = os.path.join(EPHEMERAL, f"doctor-{name}.json")
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], DOCTOR,
           "-e", json.dumps(dict(VAULT, doctor_duration=duration, doctor_report_path=path)), *extra]
    if check:
        cmd.append("--check")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    with open(path, encoding="utf-8") as handle:
        return json.load(handle), proc.stdout


def scrape(host, port):
    out = run_ok(host, f"python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/metrics', timeout=5).read().decode())\"")
    metrics = {}
    for line in out.splitlines():
        if line and not line.startswith("#"):
            name, _sep, value = line.rpartition(" ")
            metrics[name] = float(value)
    return metrics


def prometheus(host, path):
    """An answer of the Prometheus the metrics role installed on the host (metrics_prometheus), over its HTTP API."""
    out = run_ok(host, "python3 -c \"import urllib.request; print(urllib.request.urlopen("
                       f"'http://127.0.0.1:9090/api/v1/{path}', timeout=5).read().decode())\"")
    answer = json.loads(out)
    assert answer["status"] == "success", answer
    return answer["data"]


def alerts_in(host, state):
    return [a for a in prometheus(host, "alerts")["alerts"] if a["state"] == state]


def test_idle_host_names_nothing_but_was_read(host):
    report, out = doctor("idle", 4, check=True)
    assert report["findings"] == [], report["lines"]
    assert report["errors"] == []
    assert "nothing to change" in out
    assert "changed=0" in out
    [obs] = report["observations"].values()
    # Every part was read: the check above could have fired.
    assert obs["pgbouncer"]["processes"] >= 1
    assert obs["postgresql"]["max_connections"] > 0 and obs["postgresql"]["in_recovery"] is False
    assert len(obs["sidekiq"]["processes"]) == 4 and all(p["concurrency"] > 0 for p in obs["sidekiq"]["processes"])
    # Sidekiq's own Redis, where .env.production now sends Sidekiq (SIDEKIQ_REDIS_URL).
    assert obs["redis"]["policy"] == "noeviction" and obs["redis"]["endpoint"] == "127.0.0.1:6381"
    assert obs["cache"]["endpoint"] == "127.0.0.1:6380" and obs["cache"]["maxmemory"] == 256 * 1024 * 1024
    assert obs["host"]["puma_workers"] >= 1


def test_exporters_answer_on_loopback_only(host):
    listening = run_ok(host, "ss -ltnH")
    for port in (9121, 9122, 9123):
        assert f"127.0.0.1:{port} " in listening
        assert f"0.0.0.0:{port} " not in listening and f"*:{port} " not in listening
    assert scrape(host, 9121)["redis_up"] == 1
    assert scrape(host, 9122)["redis_up"] == 1
    assert scrape(host, 9123)["redis_up"] == 1
    # The package's own exporter (every address, :9121) is off.
    assert host.run("systemctl is-active prometheus-redis-exporter.service").stdout.strip() != "active"
    jobs = run_ok(host, "cat /etc/prometheus/fediops-mastodon-scrape.yml")
    assert "127.0.0.1:9121" in jobs and "127.0.0.1:9122" in jobs and "127.0.0.1:9123" in jobs
    # Debian 12's PgBouncer exporter cannot read Debian 12's PgBouncer: not installed, no job.
    assert "pgbouncer" not in jobs
    assert host.run("dpkg -s prometheus-pgbouncer-exporter").rc != 0


def test_prometheus_loads_the_rules_scrapes_every_exporter_and_fires_nothing_idle(host):
    # Prometheus listens on loopback only, like the exporters.
    listening = run_ok(host, "ss -ltnH")
    assert "127.0.0.1:9090 " in listening and "*:9090 " not in listening
    groups = prometheus(host, "rules")["groups"]
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    assert len(rules) >= 11 and all(name.startswith("Fediops") for name in rules), sorted(rules)
    assert all(r["health"] == "ok" for r in rules.values()), [(n, r.get("lastError")) for n, r in rules.items()]
    # Every exporter of the host is scraped and up (the PostgreSQL exporter too), so "nothing fires" below reads data.
    deadline = time.time() + 30
    while True:
        targets = prometheus(host, "targets")["activeTargets"]
        jobs = {t["labels"]["job"]: t["health"] for t in targets}
        if all(health == "up" for health in jobs.values()) or time.time() > deadline:
            break
        time.sleep(1)
    [instance] = {t["labels"]["instance"] for t in targets}
    assert sorted(jobs) == sorted(f"mastodon-{kind}-{instance}"
                                  for kind in ("redis-main", "redis-sidekiq", "redis-cache", "postgresql")), jobs
    assert set(jobs.values()) == {"up"}, jobs
    # The series the latency and replica rules read exist: each Sidekiq queue's latency (the Lua script), the
    # standby lag (the PostgreSQL exporter's query, 0 on this primary).
    latency = prometheus(host, "query?query=redis_script_values")["result"]
    assert any(r["metric"]["key"] == "sidekiq_queue_latency_seconds:default" for r in latency), latency
    assert prometheus(host, "query?query=fediops_pg_standby_replay_lag_seconds")["result"]
    assert alerts_in(host, "firing") == [] and alerts_in(host, "pending") == []


@pytest.fixture(scope="module")
def loaded(host):
    """The three loads, open-ended (they outlast any slow sampling), stopped after the test."""
    run_ok(host, "echo 'SELECT pg_sleep(1);' > /tmp/doctor-sleep.sql && chmod 644 /tmp/doctor-sleep.sql")
    pgbench = threading.Thread(target=host.run, args=(
        f"PGPASSWORD='{DB_PASSWORD}' pgbench -n -h /var/run/postgresql -p 6432 -U mastodon -c 60 -T 300 "
        "-f /tmp/doctor-sleep.sql mastodon_production > /tmp/doctor-pgbench.log 2>&1",), daemon=True)
    pgbench.start()
    run_ok(host, "(timeout 300 redis-benchmark -p 6380 -t set -n 1000000000 -d 1000 -r 100000000 -P 8 -q "
                 ">/dev/null 2>&1 &)")
    # 3,000 one-second jobs: ten threads need five minutes for them.
    run_ok(host, "runuser -u mastodon -- bash -lc 'cd ~/live && bundle exec ruby bin/enqueue push 3000 1000 doctor' >/dev/null")
    time.sleep(6)
    yield
    run_ok(host, f"{SIDEKIQ_CLI} DEL queue:push >/dev/null; pkill -x redis-benchmark || true; pkill -x pgbench || true")
    pgbench.join(60)
    run_ok(host, "redis-cli -p 6380 FLUSHALL >/dev/null; rm -f /tmp/doctor-sleep.sql")
    time.sleep(2)


def test_doctor_and_exporters_name_each_condition_under_load(host, loaded):
    report, out = doctor("loaded", 8, "-e", json.dumps({"doctor_thresholds": {"sidekiq_latency_s": 5}}))
    found = {f["id"]: f for f in report["findings"]}
    assert {"pgbouncer_clients_waiting", "sidekiq_queue_latency", "cache_evicting"} <= set(found), report["lines"]
    pool = found["pgbouncer_clients_waiting"]
    assert pool["variable"] == "pgbouncer_default_pool_size" and pool["section"] == "Transaction pooling with pgBouncer"
    assert pool["values"]["maxwait_s"] >= 1 and pool["values"]["suggested"] > pool["values"]["pool_size"] >= 20
    # The primary beside it has room for the larger pool: its own numbers are in the advice.
    spare = re.search(r"has (\d+) connections spare, enough for the (\d+) more", pool["message"])
    assert spare and int(spare.group(1)) >= int(spare.group(2)) == pool["values"]["spare_needed"], pool["message"]
    queue = found["sidekiq_queue_latency"]
    assert queue["values"]["queue"] == "push" and queue["values"]["latency_s"] >= 5
    assert queue["variable"] == "sidekiq_queues_processes" and "while default" in queue["message"]
    cache = found["cache_evicting"]
    assert cache["variable"] == "redis_cache_maxmemory" and "from 256mb to 512mb" in cache["message"]
    assert cache["values"]["evicted"] > 0
    # The line an operator reads names the guide's section and the variable.
    assert any("pgbouncer_default_pool_size from" in line and "guide: Transaction pooling" in line
               for line in report["lines"])
    for secret in SECRETS:
        assert secret not in out and secret not in json.dumps(report)
    # The exporters see the same load: the queue's length on Sidekiq's own Redis, and the cache's evictions.
    assert scrape(host, 9123)['redis_key_size{db="db0",key="queue:push"}'] > 0
    assert scrape(host, 9122)["redis_evicted_keys_total"] > 0


def test_alerts_fire_under_load(host, loaded):
    """The rules' alerts for the same loads, firing in Prometheus within their for: (6 s) and a few evaluations."""
    wanted = {("FediopsSidekiqQueueLatency", "push"), ("FediopsSidekiqQueueBacklog", "push"), ("FediopsCacheEvicting", None)}
    pgbouncer_exported = host.run("systemctl is-active prometheus-pgbouncer-exporter.service").stdout.strip() == "active"
    if pgbouncer_exported:  # Debian 13: the pool saturation too (Debian 12's exporter cannot read its PgBouncer)
        wanted.add(("FediopsPgBouncerClientsWaiting", None))
    start = time.time()
    while True:
        firing = alerts_in(host, "firing")
        seen = {(a["labels"]["alertname"], a["labels"].get("queue")) for a in firing}
        seen |= {(name, None) for name, _queue in seen}
        if wanted <= seen or time.time() - start > 60:
            break
        time.sleep(2)
    assert wanted <= seen, (sorted(seen), prometheus(host, "alerts"))
    print(f"alerts firing {time.time() - start:.0f} s after the doctor's loaded run")
    by_name = {a["labels"]["alertname"]: a for a in firing}
    # The advice is the doctor's: the same guide section and variable as its findings under the same loads.
    report = json.load(open(os.path.join(EPHEMERAL, "doctor-loaded.json"), encoding="utf-8"))
    doctor = {f["id"]: f for f in report["findings"]}
    for name, finding in [("FediopsSidekiqQueueLatency", "sidekiq_queue_latency"), ("FediopsCacheEvicting", "cache_evicting")]:
        annotations = by_name[name]["annotations"]
        assert by_name[name]["labels"]["finding"] == finding
        assert (annotations["section"], annotations["variable"]) == (doctor[finding]["section"], doctor[finding]["variable"])
    assert "doctor_thresholds.sidekiq_latency_s = 5" in by_name["FediopsSidekiqQueueLatency"]["annotations"]["thresholds"]
    # Nothing the loads do not cause.
    assert {a["labels"]["alertname"] for a in firing} <= {name for name, _queue in wanted}, sorted(by_name)


def test_no_secret_in_the_journal_after_the_doctor(host):
    journal = run_ok(host, "journalctl --no-pager -o cat")
    # The doctor's module logged its arguments there: the check below reads what it could have leaked into.
    assert "pgbouncer_password=NOT_LOGGING_PARAMETER" in journal, "the doctor's module left no trace in the journal"
    for number, secret in enumerate(SECRETS):
        assert secret not in journal, f"secret #{number} is in the journal"
