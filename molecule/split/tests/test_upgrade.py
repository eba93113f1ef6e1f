"""playbooks/upgrade.yml on the split layout (issue 29), after round two: both application hosts from 4.5.0 to 4.5.1.

The stand-in acts as both releases (tests/fixtures/standin/lib/fixture/migrations.rb): 4.5.1's pre-deployment
migration adds the column its code reads, and its post-deployment migration drops the one 4.5.0's code reads. A web
process on the wrong side of either answers /fixture/statuses with a 500. The code step is bin/fixture-release,
what `git checkout v4.5.1` does to version.rb. What must be true, from the running system:
  - a downgrade, a skip across a required stop, and a --check preview change nothing: checksums and PIDs as before;
  - an upgrade stopped after the pre-deployment migrations, then run again, completes; a third run changes nothing;
  - through the front door, 20 requests a second to /fixture/statuses all answer 200, from both hosts and releases;
  - every one of more than 1,000 jobs queued before and during the upgrade ran exactly once;
  - the migrations reached PostgreSQL's own port with nothing in between (the runner's own port is the client port
    PostgreSQL saw), never a PgBouncer;
  - the post-deployment migration ran after every Mastodon process of both hosts had started on 4.5.1 and after the
    last answer from 4.5.0.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import threading
import uuid

import pytest

# After round two only (side_effect moved PgBouncer to the application hosts; conftest.py deselects this file in round
# one): every test here runs after the round's other checks, in this file's order.
pytestmark = [pytest.mark.round_only(2), pytest.mark.changes_the_host]

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import run_ok, wait_for  # noqa: E402
from standin_report import listen_address  # noqa: E402

from split_layout import APPS, LIVE, PROJECT, SIDEKIQ_PASSWORD, host  # noqa: E402

SIDEKIQ_CLI = f"REDISCLI_AUTH={shlex.quote(SIDEKIQ_PASSWORD)} redis-cli -p 6381"
FROM, TO = "4.5.0", "4.5.1"
# What `git checkout v4.5.1` does to the stand-in's checkout.
STEPS = ["ruby bin/fixture-release {version}"]
PRE, POST = "20260301000000", "20260301000001"
TAG = "upgrade-" + uuid.uuid4().hex[:8]
STATE = {}


FRONT = host("split-db1")


def upgrade(*extra, log_name):
    proc = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(PROJECT, "playbooks", "upgrade.yml"),
         "-e", json.dumps({"mastodon_upgrade_steps": STEPS}), *extra],
        capture_output=True, text=True, timeout=900, check=False,
        env=dict(os.environ, ANSIBLE_LOG_PATH=os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], log_name)))
    return proc.returncode, proc.stdout + proc.stderr


def snapshot():
    """Every file the upgrade could change and every Mastodon process, on both application hosts."""
    return {name: (run_ok(host(name), f"sha256sum {LIVE}/lib/mastodon/version.rb {LIVE}/.env.production "
                                      "/var/lib/fediops-mastodon/checkout.json /etc/nginx/conf.d/*.conf 2>/dev/null; true"),
                   run_ok(host(name), "systemctl show --property=Id,MainPID 'mastodon-*'"),
                   psql("SELECT string_agg(version, ',' ORDER BY version) FROM fixture_applied_migrations"))
            for name in APPS}


def checkout_version(name):
    """What version.rb declares, loaded as Mastodon loads it."""
    return run_ok(host(name), f"cd {LIVE} && ruby -e 'load \"lib/mastodon/version.rb\"; puts Mastodon::Version.to_s'").strip()


def serving(name):
    """The release the running web process of `name` booted as (its /api/v1/instance)."""
    h = host(name)
    script = "import sys, json, urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1], timeout=20))['version'])"
    return run_ok(h, f"python3 -c {shlex.quote(script)} http://{listen_address(h, 3000)}:3000/api/v1/instance").strip()


def psql(sql):
    return run_ok(FRONT, f"runuser -u postgres -- psql -X -At -d mastodon_production -c \"{sql}\"").strip()


def enqueue(count, label):
    run_ok(host("split-app1"), f"cd {LIVE} && runuser -u mastodon -- bundle exec ruby bin/enqueue default {count} 50 {TAG}-{label}")
    return count


class Enqueuer(threading.Thread):
    """Queues jobs every 2 s while an upgrade runs."""

    def __init__(self, label):
        super().__init__(daemon=True)
        self.label, self.stop, self.count = label, threading.Event(), 0

    def run(self):
        batch = 0
        while not self.stop.is_set():
            batch += 1
            self.count += enqueue(40, f"{self.label}{batch}")
            self.stop.wait(2)


def under_load(*extra, label, log_name):
    jobs = Enqueuer(label)
    jobs.start()
    try:
        return upgrade(*extra, log_name=log_name)
    finally:
        jobs.stop.set()
        jobs.join()
        STATE["queued"] = STATE.get("queued", 0) + jobs.count


def test_a_downgrade_a_skipped_stop_and_a_preview_change_nothing():
    before = snapshot()
    rc, out = upgrade("-e", "mastodon_upgrade_version=4.4.0", log_name="upgrade-downgrade.log")
    assert rc != 0 and "mastodon_upgrade_version is 4.4.0, older than the 4.5.0" in out, out[-3000:]
    stops = [{"stop": TO, "before": "4.5.2", "source": "a test's own stop"}]
    rc, out = upgrade("-e", json.dumps({"mastodon_upgrade_version": "4.5.2", "mastodon_upgrade_required_stops": stops}),
                      log_name="upgrade-skip.log")
    assert rc != 0 and "skips 4.5.1, which Mastodon's upgrade notes require as a stop" in out, out[-3000:]
    rc, out = upgrade("--check", "-e", f"mastodon_upgrade_version={TO}", log_name="upgrade-check.log")
    assert rc == 0, out[-3000:]
    assert f"Upgrading from {FROM} to {TO}: new code on split-app1, split-app2" in out, out[-3000:]
    # The preview names the restarts the run would make.
    restarts = "".join(block for block in out.split("TASK [")
                       if block.split("]", 1)[0].endswith("Restart the Mastodon units that run on an older configuration"))
    assert all(f"changed: [{name}]" in restarts for name in APPS), out[-3000:]
    assert snapshot() == before


def test_an_upgrade_stopped_after_the_pre_deployment_migrations_then_run_again_completes_under_load():
    run_ok(FRONT, "rm -f /run/fediops-test-stop /var/log/fediops-upgrade-probe.log")
    run_ok(FRONT, "systemd-run --unit=fediops-test-upgrade-probe --collect --property=RuntimeMaxSec=1800 python3 "
                  "/usr/local/lib/fediops-test-probe.py 127.0.0.1 80 /fixture/statuses 20 /var/log/fediops-upgrade-probe.log "
                  "/run/fediops-test-stop")
    STATE["queued"] = enqueue(600, "before")
    try:
        rc, out = under_load("-e", json.dumps({"mastodon_upgrade_version": TO, "mastodon_upgrade_stop_after": "pre_migrations"}),
                             label="first", log_name="upgrade-first.log")
        assert rc == 0, out[-3000:]
        # Stopped there: the new code and column are in, every process still runs 4.5.0.
        assert psql(f"SELECT count(*) FROM fixture_applied_migrations WHERE version IN ('{PRE}', '{POST}')") == "1"
        for name in APPS:
            assert (checkout_version(name), serving(name)) == (TO, FROM)
        report = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "upgrade-report.json")
        rc, out = under_load("-e", json.dumps({"mastodon_upgrade_version": TO, "mastodon_upgrade_report_path": report}),
                             label="second", log_name="upgrade-second.log")
        assert rc == 0, out[-3000:]
        STATE["report"] = json.load(open(report, encoding="utf-8"))
        # Kept beside the run's logs (the ephemeral folder goes with destroy): the README quotes its step times.
        with open(os.path.join(PROJECT, ".cache", "logs", "upgrade-report.json"), "w", encoding="utf-8") as handle:
            json.dump(STATE["report"], handle, indent=2)
    finally:
        run_ok(FRONT, "touch /run/fediops-test-stop")
        wait_for(lambda: FRONT.run("systemctl is-active fediops-test-upgrade-probe").rc != 0, timeout=30,
                 what="the probe to stop")
    STATE["probe"] = [line.split() for line in run_ok(FRONT, "cat /var/log/fediops-upgrade-probe.log").splitlines()]
    rc, out = upgrade("-e", f"mastodon_upgrade_version={TO}", log_name="upgrade-again.log")
    assert rc == 0 and re.search(r"split-app1\s+: ok=\d+\s+changed=0 ", out) and re.search(r"split-app2\s+: ok=\d+\s+changed=0 ", out), \
        out[-3000:]
    assert f"Every application host runs {TO}: nothing to do." in out


def test_no_request_through_the_front_door_failed_during_the_upgrade():
    lines = STATE["probe"]
    assert len(lines) > 400, f"the probe sent only {len(lines)} requests"
    failed = [line for line in lines if line[1] != "200"]
    assert failed == [], f"{len(failed)} of {len(lines)} requests failed: {failed[:5]}"
    assert {line[2] for line in lines} == set(APPS)
    assert {line[4] for line in lines} == {FROM, TO}, "the probe did not see both releases serve"


def test_every_job_queued_before_and_during_the_upgrade_ran_exactly_once():
    assert STATE["queued"] >= 1000, STATE["queued"]
    app1 = host("split-app1")

    def ran(key):
        out = run_ok(app1, f"{SIDEKIQ_CLI} LRANGE {key} 0 -1")
        return [json.loads(line)["arg"] for line in out.splitlines() if line.startswith("{") and TAG in line]

    wait_for(lambda: len(ran("fixture:done")) >= STATE["queued"], timeout=120, what="every queued job to run")
    for key in ("fixture:ran", "fixture:done"):
        args = ran(key)
        assert len(args) == len(set(args)) == STATE["queued"], f"{key}: {len(args)} runs of {len(set(args))} jobs"


def test_the_migrations_went_straight_to_postgresql():
    rows = psql(f"SELECT version, server_port, client_port = runner_port FROM fixture_applied_migrations "
                f"WHERE version IN ('{PRE}', '{POST}') ORDER BY version").splitlines()
    assert rows == [f"{PRE}|5432|t", f"{POST}|5432|t"], rows
    # The post-deployment migration dropped what 4.5.0's code reads.
    assert psql("SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns "
                "WHERE table_name = 'fixture_statuses'") == "id,quote_flag,text"


def test_the_post_deployment_migration_ran_once_every_process_ran_the_new_release():
    post = float(psql(f"SELECT extract(epoch FROM applied_at) FROM fixture_applied_migrations WHERE version = '{POST}'"))
    old = [float(line[0]) for line in STATE["probe"] if line[4] == FROM]
    assert old and max(old) < post
    for name in APPS:
        h = host(name)
        units = run_ok(h, "systemctl list-units --plain --no-legend --state=running 'mastodon-*' | awk '{print $1}'").split()
        assert len(units) >= 3, units
        for unit in units:
            started = float(run_ok(h, f"systemctl show --timestamp=unix -P ActiveEnterTimestamp {unit}").strip().lstrip("@"))
            assert started < post, f"{name}'s {unit} started after the post-deployment migration"
        assert serving(name) == TO


def test_the_report_names_the_versions_the_steps_and_the_restarts():
    report = STATE["report"]
    assert (report["from"], report["to"]) == (FROM, TO)
    assert set(report["step_seconds"]) == {"code", "pre_migrations", "restart", "post_migrations"}
    for name in APPS:
        assert any(unit.startswith("mastodon-web") for unit in report["restarted"][name]), report["restarted"]
