"""The exporters and playbooks/doctor.yml across the four hosts (Debian 13), in both rounds.

Round one runs PgBouncer on db1, round two on each application host (molecule/split/converge.yml); the
PgBouncer exporter (Debian 13's prometheus-pgbouncer-exporter) follows it, reading the console as the
monitoring user over PgBouncer's socket. The doctor samples all four hosts at once: idle, it names nothing,
yet it read PgBouncer where it runs, the primary and its standby (in recovery, with its slot), and Sidekiq's
registry and the cache of each application host.
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import run_ok  # noqa: E402
from split_layout import APPS, EPHEMERAL, PROJECT, SECRETS, VAULT, address, host, placement  # noqa: E402


def scrape(h, port):
    """The exporter's /metrics on the host's own address, where converge.yml has every exporter listen for db2's
    Prometheus."""
    return run_ok(h, "python3 -c \"import urllib.request; print(urllib.request.urlopen("
                     f"'http://{address(h)}:{port}/metrics', timeout=5).read().decode())\"")


def value(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def test_pgbouncer_exporter_reads_the_console_where_pgbouncer_runs():
    where = ["split-db1"] if placement() == "primary" else APPS
    for name in where:
        h = host(name)
        assert run_ok(h, "systemctl is-active prometheus-pgbouncer-exporter").strip() == "active"
        assert f"{address(h)}:9127 " in run_ok(h, "ss -ltnH")
        metrics = scrape(h, 9127)
        assert value(metrics, "pgbouncer_up") == 1, f"the exporter on {name} cannot read PgBouncer"
        assert 'name="mastodon_production"' in metrics or 'database="mastodon_production"' in metrics


def test_redis_exporters_on_each_application_host():
    for name in APPS:
        h = host(name)
        main = scrape(h, 9121)
        assert value(main, "redis_up") == 1
        # The queues live in Sidekiq's own Redis: its exporter (app1 only) reports their lengths.
        assert 'key="queue:default"' not in main
        assert (h.run("systemctl is-active prometheus-redis-exporter@sidekiq").stdout.strip() == "active") == (
            name == "split-app1"), name
    sidekiq = scrape(host("split-app1"), 9123)
    assert value(sidekiq, "redis_up") == 1 and 'key="queue:default"' in sidekiq
    # The cache's exporter runs where the fleet's one cache runs: app1 (the first application host), in both rounds.
    cache_hosts = ["split-app1"]
    for name in APPS:
        h = host(name)
        active = h.run("systemctl is-active prometheus-redis-exporter@cache").stdout.strip() == "active"
        assert active == (name in cache_hosts), name
        if active:
            assert value(scrape(h, 9122), "redis_up") == 1, f"the cache exporter on {name} cannot log in"


def test_doctor_names_nothing_on_the_idle_site_and_read_every_host():
    path = os.path.join(EPHEMERAL, "doctor-split.json")
    proc = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(PROJECT, "playbooks", "doctor.yml"),
         "-e", json.dumps(dict(VAULT, doctor_duration=3, doctor_report_path=path, scale_pgbouncer_placement=placement()))],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    with open(path, encoding="utf-8") as handle:
        report = json.load(handle)
    assert report["errors"] == [] and report["findings"] == [], report["lines"] + report["errors"]
    obs = report["observations"]
    assert set(obs) == {"split-db1", "split-db2"} | set(APPS)
    pgbouncer_hosts = ["split-db1"] if placement() == "primary" else APPS
    assert sorted(n for n, o in obs.items() if o.get("pgbouncer")) == sorted(pgbouncer_hosts)
    assert obs["split-db1"]["postgresql"]["in_recovery"] is False
    assert obs["split-db2"]["postgresql"]["in_recovery"] is True
    assert [s["name"] for s in obs["split-db1"]["postgresql"]["slots"]], "the primary shows no replication slot"
    for name in APPS:
        assert obs[name]["sidekiq"]["processes"], f"no Sidekiq process in the registry of {name}'s Redis"
        # Both hosts' Sidekiq use the one Redis on app1 (SIDEKIQ_REDIS_URL), as the doctor read it from each.
        assert obs[name]["redis"]["endpoint"].endswith(":6381"), obs[name]["redis"]["endpoint"]
        assert obs[name]["cache"]["maxmemory"] > 0
    for secret in SECRETS:
        assert secret not in proc.stdout and secret not in json.dumps(report)
