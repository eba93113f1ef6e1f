"""The whole play on the stand-in host: Puma, streaming and Sidekiq as the report says, and a plan
that does not fit stops the play before any host changes.

Every check reads the real processes (/proc) or talks to the real servers on 127.0.0.1 inside the
container; the report is the JSON the converge wrote on the controller (scale_report_path).
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import (adhoc, assert_no_secret_in_log, environ, http_get, main_pid, quote, run_ok,  # noqa: E402,F401
                               wait_for, what_changed)
from check_runs import check_recaps, log_runs  # noqa: E402

EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
REPORT = os.path.join(EPHEMERAL, "scale-report.json")
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
KEPT_PORTS = [4000, 4001]
REMOVED_PORT = 4002


def puma_workers(host):
    # Anchored, so the shell running pgrep (whose command line names the pattern) is not counted.
    res = host.run("pgrep -f '^puma: cluster worker'")
    return [int(p) for p in res.stdout.split()]


@pytest.fixture(scope="module")
def report():
    with open(REPORT, encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def only_host(report):
    assert len(report["hosts"]) == 1, report["hosts"]
    return next(iter(report["hosts"].values()))


def processes_of(only_host, kind):
    return [p for p in only_host["processes"] if p["kind"] == kind]


def sidekiq_units(host):
    out = run_ok(host, "systemctl list-units --state=running --plain --no-legend 'mastodon-sidekiq*.service'")
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def sidekiq_threads(host, pid):
    # Sidekiq retitles itself "sidekiq 6.4.1 app [0 of 25 busy]": the live thread count.
    cmdline = run_ok(host, f"tr '\\0' ' ' < /proc/{pid}/cmdline")
    match = re.search(r"of ([0-9]+) busy", cmdline) or re.search(r"(?:-c|--concurrency)[ =]([0-9]+)", cmdline)
    assert match, f"sidekiq pid {pid} has no -c in {cmdline!r}"
    return int(match.group(1))


def test_puma_worker_count_equals_web_concurrency(host, only_host):
    master = main_pid(host, "mastodon-web")
    env = environ(host, master)
    web = processes_of(only_host, "web")[0]
    assert int(env["WEB_CONCURRENCY"]) == web["count"]
    workers = wait_for(lambda: len(puma_workers(host)) == web["count"] and puma_workers(host))
    assert len(workers) == int(env["WEB_CONCURRENCY"]), f"workers {workers}, WEB_CONCURRENCY {env['WEB_CONCURRENCY']}"
    for pid in workers:
        assert int(run_ok(host, f"ps -o ppid= -p {pid}").strip()) == master
    assert http_get(host, "http://127.0.0.1:3000/health") == (200, "OK")


@pytest.mark.parametrize("port", KEPT_PORTS)
def test_each_streaming_instance_answers(host, port):
    unit = host.service(f"mastodon-streaming@{port}")
    assert unit.is_running and unit.is_enabled
    status, body = wait_for(lambda: http_get(host, f"http://127.0.0.1:{port}/api/v1/streaming/health")[0] == 200
                            and http_get(host, f"http://127.0.0.1:{port}/api/v1/streaming/health"))
    assert (status, body) == (200, "OK")
    status, body = http_get(host, f"http://127.0.0.1:{port}/env")
    assert status == 200
    seen = json.loads(body)
    assert seen["PORT"] == str(port)
    assert seen["pid"] == main_pid(host, f"mastodon-streaming@{port}")


def test_removed_instance_is_gone(host):
    unit = host.service(f"mastodon-streaming@{REMOVED_PORT}")
    assert not unit.is_running
    assert not unit.is_enabled
    assert http_get(host, f"http://127.0.0.1:{REMOVED_PORT}/api/v1/streaming/health")[0] == 0
    assert not host.socket(f"tcp://127.0.0.1:{REMOVED_PORT}").is_listening


def test_restarting_mastodon_streaming_restarts_every_instance(host):
    """Mastodon's upgrade notes say `systemctl restart mastodon-streaming`: the stand-in's single
    process is gone, and the unit of that name is now the group of the instances (PartOf=)."""
    assert run_ok(host, "systemctl show -p Type --value mastodon-streaming").strip() == "oneshot"
    assert run_ok(host, "systemctl is-enabled mastodon-streaming").strip() == "enabled"
    pids = {port: run_ok(host, f"systemctl show -p MainPID --value mastodon-streaming@{port}").strip() for port in KEPT_PORTS}
    assert all(int(pid) > 0 for pid in pids.values())
    run_ok(host, "systemctl restart mastodon-streaming")
    for port in KEPT_PORTS:
        assert run_ok(host, f"systemctl show -p MainPID --value mastodon-streaming@{port}").strip() != pids[port]
        deadline = time.monotonic() + 30
        while http_get(host, f"http://127.0.0.1:{port}/api/v1/streaming/health")[0] != 200:
            assert time.monotonic() < deadline, f"mastodon-streaming@{port} did not answer after the restart"
            time.sleep(0.5)


def test_nginx_upstream_lists_the_instances(host):
    snippet = host.file("/etc/nginx/snippets/mastodon-streaming-upstream.conf")
    assert snippet.exists
    servers = re.findall(r"server 127\.0\.0\.1:([0-9]+)", snippet.content_string)
    assert [int(p) for p in servers] == KEPT_PORTS


def test_every_process_has_db_pool_at_least_its_threads(host, only_host):
    checked = 0
    master = main_pid(host, "mastodon-web")
    for pid in [master] + puma_workers(host):
        env = environ(host, pid)
        assert int(env["DB_POOL"]) >= int(env["MAX_THREADS"]), f"puma pid {pid}: {env.get('DB_POOL')}"
        assert int(env["DB_POOL"]) == processes_of(only_host, "web")[0]["db_pool"]
        checked += 1
    for unit in sidekiq_units(host):
        pid = main_pid(host, unit)
        env = environ(host, pid)
        assert int(env["DB_POOL"]) >= sidekiq_threads(host, pid), f"{unit}: DB_POOL {env.get('DB_POOL')}"
        checked += 1
    streaming = processes_of(only_host, "streaming")[0]
    for port in KEPT_PORTS:
        env = environ(host, main_pid(host, f"mastodon-streaming@{port}"))
        assert int(env["DB_POOL"]) >= streaming["threads"]
        assert int(env["DB_POOL"]) == streaming["db_pool"]
        checked += 1
    assert checked >= 1 + 2 + 1 + len(KEPT_PORTS)


def test_sum_of_threads_matches_the_report(host, report, only_host):
    master_env = environ(host, main_pid(host, "mastodon-web"))
    web = int(master_env["WEB_CONCURRENCY"]) * int(master_env["MAX_THREADS"])
    sidekiq = sum(sidekiq_threads(host, main_pid(host, unit)) for unit in sidekiq_units(host))
    streaming = sum(int(environ(host, main_pid(host, f"mastodon-streaming@{port}"))["DB_POOL"]) for port in KEPT_PORTS)
    live = web + sidekiq + streaming
    assert live == only_host["threads"] == report["total_threads"], (web, sidekiq, streaming, report["total_threads"])
    assert report["feasible"] is True
    assert any("all threads" in line and str(live) in line for line in report["lines"])


# converge.yml's vault values, which examples/single-host names.
VAULT = {"vault_pgbouncer_mastodon_db_password": "site-Test:db/pass%1",
         "vault_pgbouncer_admin_password": "site-Test:admin/pass%2",
         "vault_pgbouncer_stats_password": "site-Test:stats/pass%3",
         "vault_sidekiq_redis_password": "site-Test:sidekiq/pass%4"}
# A sample of the bad-input table (tests/unit/test_bad_inputs.py), each refused by a different check:
# (variables, text of the refusal, the task that refuses). The first is the infeasible plan: 30 x 5 Puma
# threads are more than PostgreSQL's 100 - 3, even with PgBouncer's pool of 200 in front.
BAD_INPUTS = {
    "infeasible plan": ({"web_concurrency": 30, "web_max_threads": 5, "pgbouncer_max_client_conn": 1000,
                         "pgbouncer_default_pool_size": 200},
                        "The connection plan does not fit", "Check the connection plan of the whole fleet before any host changes"),
    "cache on PgBouncer's port": ({"redis_cache_port": 6432}, "pgbouncer_listen_port and redis_cache_port both use port 6432",
                                  "Stop before any change when the fleet cannot work"),
    "hostname as PgBouncer listen_addr": ({"pgbouncer_listen_addr": "pgb.internal"}, "pgbouncer_listen_addr",
                                          "Check passwords, ports, names, addresses and pool sizes"),
    "PgBouncer on an address this host does not have": (
        {"pgbouncer_listen_addr": "10.255.255.1"}, "PgBouncer cannot listen on that listen_addr",
        "Explain why pgbouncer.ini was not replaced"),
    "a queue in two processes": ({"sidekiq_queues_processes": [
        {"name": "all", "queues": ["default", "push", "ingress", "mailers", "pull", "scheduler", "fasp"], "threads": 5},
        {"name": "more", "queues": ["default"], "threads": 5}]}, "Queue default is served by 2 processes",
        "Check the Sidekiq plan and compute the units"),
}
WATCHED = [
    "/etc/systemd/system/mastodon-web.service.d/fediops-concurrency.conf",
    "/etc/systemd/system/mastodon-streaming@.service",
    "/etc/nginx/snippets/mastodon-streaming-upstream.conf",
    "/home/mastodon/live/.env.production",
    "/etc/pgbouncer/pgbouncer.ini",
    "/etc/pgbouncer/userlist.txt",
]
WATCHED_UNITS = ["mastodon-web", "mastodon-streaming@4000", "mastodon-sidekiq@default", "pgbouncer",
                 "redis-server@cache", "$(systemctl list-units --plain --no-legend 'postgresql@*' | awk '{print $1}')"]


def checksums(host):
    out = run_ok(host, "sha256sum " + " ".join(WATCHED) + " /etc/systemd/system/mastodon-*.service "
                       "/etc/systemd/system/mastodon-sidekiq@*.service.d/*.conf /etc/postgresql/*/main/pg_hba.conf")
    return out


def pids(host):
    return run_ok(host, "systemctl show --property=Id,MainPID " + " ".join(WATCHED_UNITS))


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_refused_before_any_change(host, case):
    """The whole play with one bad input: refused with a message naming the variable, 0 changed, and
    every managed file and every service's main process as before."""
    variables, message, task = BAD_INPUTS[case]
    before, pids_before = checksums(host), pids(host)
    playbook = os.path.join(PROJECT, "playbooks", "scale.yml")
    env = dict(os.environ, ANSIBLE_LOG_PATH=os.path.join(EPHEMERAL, "bad-input.log"))
    proc = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], playbook,
         "--limit", host.backend.get_hostname(), "-e", json.dumps(dict(VAULT, **variables))],
        capture_output=True, text=True, env=env, timeout=600, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert message in output, output
    failed_at = output.find("fatal:")
    assert task in output[output.rfind("TASK [", 0, failed_at):failed_at], output
    assert re.search(r"changed=0 ", output), output
    assert checksums(host) == before
    assert pids(host) == pids_before
    if case == "infeasible plan":
        assert "max_connections 100" in output and "superuser_reserved_connections 3" in output, output
        assert "Apply fediops.mastodon.web" not in output


def test_redis_namespace_stops_the_play_on_the_version_the_checkout_declares(host):
    """The stand-in's lib/mastodon/version.rb says 4.5.0, and no variable sets a version: the play reads it,
    and stops before any change on a REDIS_NAMESPACE, which Mastodon refuses from 4.4."""
    env_file = "/home/mastodon/live/.env.production"
    before, pids_before = checksums(host), pids(host)
    run_ok(host, f"cp -p {env_file} /root/env.before && echo REDIS_NAMESPACE=fediops >> {env_file}")
    try:
        proc = subprocess.run(
            ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(PROJECT, "playbooks", "scale.yml"),
             "--limit", host.backend.get_hostname(), "-e", json.dumps(VAULT)],
            capture_output=True, text=True, timeout=600, check=False,
            env=dict(os.environ, ANSIBLE_LOG_PATH=os.path.join(EPHEMERAL, "redis-namespace.log")))
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output
        assert "sets REDIS_NAMESPACE, and Mastodon 4.5.0 refuses to start with it" in output, output
        assert re.search(r"changed=0 ", output), output
    finally:
        run_ok(host, f"cp -p /root/env.before {env_file} && rm -f /root/env.before")
    assert checksums(host) == before and pids(host) == pids_before


def test_a_link_planted_as_the_env_file_is_refused_and_its_target_untouched(host):
    """The mastodon user owns the folder of .env.production and could plant a link there for root to follow."""
    run_ok(host, "printf 'root-only\\n' > /root/fediops-link-target && chmod 600 /root/fediops-link-target && "
                 "runuser -u mastodon -- ln -sfn /root/fediops-link-target /home/mastodon/live/.env.linked")
    try:
        rc, out = adhoc(host, "fediops.mastodon.env_file",
                        {"path": "/home/mastodon/live/.env.linked", "values": {"FIXTURE": "1"}})
        assert rc != 0 and "symbolic link" in out, out
        assert run_ok(host, "cat /root/fediops-link-target") == "root-only\n"
        assert "root-only" not in out
    finally:
        run_ok(host, "rm -f /home/mastodon/live/.env.linked /root/fediops-link-target")


def test_env_file_holding_passwords_is_not_readable_by_others(host):
    """prepare left it 0644, as Mastodon's setup does; the play wrote DB_PASS into it."""
    env = host.file("/home/mastodon/live/.env.production")
    assert env.mode == 0o640 and env.user == "mastodon", (oct(env.mode), env.user)


# The checkout is the mastodon user's, who runs the most exposed process on the host: each case plants
# something as that user, runs the whole play, and checks what root did (nothing: every file and process as
# before), then puts the checkout back.
LIVE = "/home/mastodon/live"


def refused_play(host, log_name, before):
    start = time.monotonic()
    proc = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(PROJECT, "playbooks", "scale.yml"),
         "--limit", host.backend.get_hostname(), "-e", json.dumps(VAULT)],
        capture_output=True, text=True, timeout=300, check=False,
        env=dict(os.environ, ANSIBLE_LOG_PATH=os.path.join(EPHEMERAL, log_name)))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert re.search(r"changed=0 ", output), output
    return output, time.monotonic() - start


@pytest.mark.changes_the_host
def test_a_checkout_written_backwards_with_a_linked_database_yml_is_refused(host):
    """The audit's escalation: 4.1.0 in version.rb forces Makara mode, and config/database.yml -> /etc/shadow
    made root copy /etc/shadow into a file the mastodon user reads. The play refuses the older version.rb
    (this host last ran 4.5.0, and its web process says so), and the Makara read refuses the link."""
    before, pids_before = checksums(host), pids(host)
    shadow_root = run_ok(host, "head -n 1 /etc/shadow").strip()
    run_ok(host, f"cd {LIVE} && runuser -u mastodon -- sh -ec '"
                 "cp -p lib/mastodon/version.rb ../version.rb.keep; sed -i \"s/^      5$/      1/\" lib/mastodon/version.rb; "
                 "mv config/database.yml ../database.yml.keep; ln -s /etc/shadow config/database.yml'")
    try:
        output, _took = refused_play(host, "backwards.log", before)
        assert "version.rb says 4.1.0, but this host last ran Mastodon 4.5.0" in output, output
        assert "the running web process reports Mastodon 4.5.0" in output, output
        # What read_replica runs in Makara mode to read database.yml: the link is refused, nothing copied.
        rc, out = adhoc(host, "fediops.mastodon.mastodon_checkout",
                        {"path": LIVE, "version": "4.1.22", "database_yml": True})
        assert rc != 0 and "symbolic link" in out and shadow_root not in out, out
        leaked = host.run(f"grep -rlsF {quote(shadow_root)} /home/mastodon /etc/mastodon /tmp /var/tmp")
        assert leaked.stdout.strip() == "", leaked.stdout
    finally:
        run_ok(host, f"cd {LIVE} && rm -f config/database.yml && mv ../database.yml.keep config/database.yml && "
                     "mv ../version.rb.keep lib/mastodon/version.rb")
    assert checksums(host) == before and pids(host) == pids_before


@pytest.mark.changes_the_host
def test_a_checkout_folder_replaced_by_a_link_is_refused(host):
    """`live` swapped for a link: root would read and create .env.production wherever it points."""
    before, pids_before = checksums(host), pids(host)
    run_ok(host, "cd /home/mastodon && runuser -u mastodon -- sh -ec 'mv live live.real; ln -s live.real live'")
    try:
        output, _took = refused_play(host, "linked-live.log", before)
        assert "/home/mastodon/live is a symbolic link in a folder that another user can write" in output, output
        assert not host.file("/home/mastodon/live.real/.env.production.fediops-tmp").exists
    finally:
        run_ok(host, "cd /home/mastodon && rm live && mv live.real live")
    assert checksums(host) == before and pids(host) == pids_before


@pytest.mark.changes_the_host
def test_a_fifo_as_the_env_file_is_refused_at_once(host):
    """A FIFO made every reader of .env.production hang for ever."""
    before, pids_before = checksums(host), pids(host)
    run_ok(host, f"cd {LIVE} && mv .env.production ../env.keep && runuser -u mastodon -- mkfifo .env.production")
    try:
        output, took = refused_play(host, "fifo.log", before)
        assert ".env.production is not a regular file" in output, output
        assert took < 120, took
    finally:
        run_ok(host, f"cd {LIVE} && rm -f .env.production && mv ../env.keep .env.production")
    assert checksums(host) == before and pids(host) == pids_before


def test_a_secret_passed_to_env_file_in_plain_values_never_reaches_the_journal(host):
    """A direct caller that puts DB_PASS in `values`: refused, and the module's "Invoked with" line in the journal,
    written before the module can refuse, shows it masked."""
    marker = "site-journal-Secret-%d" % os.getpid()
    rc, out = adhoc(host, "fediops.mastodon.env_file",
                    {"path": "/home/mastodon/live/.env.production", "values": {"DB_PASS": marker}})
    assert rc != 0 and "secret_values" in out and marker not in out, out
    journal = host.run("journalctl --no-pager -o cat --since=-10min")
    assert "fediops.mastodon" in journal.stdout or "Invoked with" in journal.stdout, "the journal shows no module run"
    assert marker not in journal.stdout


def test_a_pg_hba_rule_postgresql_cannot_read_is_put_back_before_any_reload(host):
    hba = run_ok(host, "runuser -u postgres -- psql -XAtq -c 'SHOW hba_file'").strip()
    before = run_ok(host, f"sha256sum {hba}")
    rc, out = adhoc(host, "fediops.mastodon.pg_hba_block",
                    {"path": hba, "name": "fediops_test", "lines": ["host all all 10.9.9.9/32 no-such-method"]})
    assert rc != 0 and "PostgreSQL cannot read the new" in out and "no-such-method" in out, out
    assert run_ok(host, f"sha256sum {hba}") == before
    # And the same module writes a rule PostgreSQL can read, which this test then takes out again.
    rc, out = adhoc(host, "fediops.mastodon.pg_hba_block",
                    {"path": hba, "name": "fediops_test", "lines": ["host all all 10.9.9.9/32 reject"]})
    assert rc == 0 and '"checked": true' in out, out
    rc, out = adhoc(host, "fediops.mastodon.pg_hba_block", {"path": hba, "name": "fediops_test", "state": "absent"})
    assert rc == 0 and run_ok(host, f"sha256sum {hba}") == before, out


SECRETS = ["site-Test:db/pass%1", "site-Test:admin/pass%2", "site-Test:stats/pass%3", "site-Test:sidekiq/pass%4"]


@pytest.mark.parametrize("log", ["ansible.log", "fresh-preview.log", "fresh-run.log"])
def test_secrets_never_reach_the_converge_log(log):
    """converge and idempotence, and prepare's preview and first run on the fresh host."""
    assert_no_secret_in_log(os.path.join(EPHEMERAL, log), SECRETS, "fediops.mastodon.pgbouncer")


def test_pgbouncer_report_matches_the_running_pgbouncer(host, report):
    # examples/single-host's pgbouncer_max_client_conn, on this host's one PgBouncer.
    assert list(report["pgbouncer"]["instances"]) == [host.backend.get_hostname()]
    (pgbouncer,) = report["pgbouncer"]["instances"].values()
    assert pgbouncer["max_client_conn"] == 200
    ini = host.file("/etc/pgbouncer/pgbouncer.ini").content_string
    assert re.search(r"^max_client_conn *= *200$", ini, re.M)
    assert re.search(r"^default_pool_size *= *%d$" % pgbouncer["default_pool_size"], ini, re.M)
    assert report["client_connections"] <= report["limits"]["max_client_conn"]


def test_cache_instance_in_the_report_answers(host, report):
    assert report["cache"], "the report has no cache instance"
    (cache,) = report["cache"].values()
    assert run_ok(host, f"redis-cli -p {cache['port']} PING").strip() == "PONG"
    assert run_ok(host, f"redis-cli -p {cache['port']} CONFIG GET maxmemory-policy").split()[1] == cache["maxmemory-policy"]


def test_a_preview_of_a_change_names_exactly_what_the_real_run_changes():
    """molecule's check previewed converge's change from prepare's first run (vars/first_run.yml: four settings
    differ from converge.yml's); check_mode.yml proved it left every file and process as it was. Both runs are in
    molecule's log: the preview reports the same changed tasks and the same restarts and reloads as converge."""
    with open(os.path.join(EPHEMERAL, "ansible.log"), encoding="utf-8", errors="replace") as handle:
        runs = log_runs(handle.read())
    first = next(i for i, run in enumerate(runs) if check_recaps(run))
    predicted, done = what_changed(runs[first]), what_changed(runs[first + 1])
    assert done[1], "the change restarted or reloaded nothing: the comparison would prove little"
    assert predicted == done, {"only previewed": sorted((predicted[0] | predicted[1]) - (done[0] | done[1])),
                               "only made": sorted((done[0] | done[1]) - (predicted[0] | predicted[1]))}
    # A smaller pool is a reload: PgBouncer keeps every client (its open-file limit did not move).
    assert "reload pgbouncer.service" in done[1] and "restart pgbouncer.service" not in done[1], done[1]
    assert "stop mastodon-streaming@%d.service" % REMOVED_PORT in done[1], done[1]
