"""Sidekiq split by queue on the stand-in host: real Sidekiq, real Redis, real systemd.

verify runs after side_effect.yml, so the host holds the reduced plan: default, push, pull, mailers
(with a larger DB_POOL); `spare` was dropped from the plan and `legacy` set absent.
"""

import json
import os
import sys
import time
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import assert_no_secret_in_log, main_pid, quote, run_ok  # noqa: E402

LIVE = "/home/mastodon/live"
PLAN = {
    # name: (queues as configured, threads, DB_POOL)
    "default": (["default"], 4, 4),
    "push": (["push"], 3, 5),
    "pull": (["pull", "ingress,4", "fasp"], 2, 2),
    # side_effect.yml raised its db_pool from 2 to 3.
    "mailers": (["mailers,2", "scheduler"], 2, 3),
}
GONE = ["spare", "legacy"]
OWNER = {q.split(",")[0]: name for name, (queues, _t, _p) in PLAN.items() for q in queues}
SECRET = "fixture-s1dekiq-t0ken-not-for-logs"


def unit(name):
    return f"mastodon-sidekiq@{name}.service"


def redis(host, *args):
    return run_ok(host, "redis-cli --raw " + " ".join(quote(a) for a in args))


def registry(host):
    """Sidekiq's own registry: pid -> info JSON, from the `processes` set."""
    found = {}
    for ident in redis(host, "SMEMBERS", "processes").split():
        info = redis(host, "HGET", ident, "info").strip()
        if info:
            data = json.loads(info)
            found[data["pid"]] = data
    return found


def registered(host, pid, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = registry(host).get(pid)
        if info:
            return info
        time.sleep(0.5)
    raise AssertionError(f"pid {pid} is not in Sidekiq's processes set")


@pytest.mark.parametrize("name", sorted(PLAN))
def test_process_is_active_and_enabled(host, name):
    svc = host.service(unit(name))
    assert svc.is_running, f"{unit(name)} is not active"
    assert svc.is_enabled, f"{unit(name)} is not enabled"


@pytest.mark.parametrize("name", sorted(PLAN))
def test_registry_reports_concurrency_and_queues(host, name):
    queues, threads, _pool = PLAN[name]
    info = registered(host, main_pid(host, unit(name)))
    assert info["concurrency"] == threads
    assert sorted(set(info["queues"])) == sorted(q.split(",")[0] for q in queues)
    if "weights" in info:  # Sidekiq 7 reports the weights it was given
        weights = {}
        for item in info["weights"]:
            weights.update(item)
        for q in queues:
            qname, _comma, weight = q.partition(",")
            assert weights[qname] == int(weight or 0), weights


@pytest.mark.parametrize("name", sorted(PLAN))
def test_environ_has_the_planned_db_pool(host, name):
    _queues, _threads, pool = PLAN[name]
    pid = main_pid(host, unit(name))
    environ = host.file(f"/proc/{pid}/environ").content_string.split("\0")
    env = dict(item.split("=", 1) for item in environ if "=" in item)
    assert env["DB_POOL"] == str(pool)
    assert env["RAILS_ENV"] == "production"
    assert env["MALLOC_ARENA_MAX"] == "2"
    if name == "pull":
        assert env["FIXTURE_LABEL"] == "federation in"
        assert "FIXTURE_API_TOKEN" not in env


@pytest.mark.parametrize("name", sorted(PLAN))
def test_command_line_is_the_plan(host, name):
    queues, threads, _pool = PLAN[name]
    argv = run_ok(host, f"systemctl show --property=ExecStart --value {unit(name)}")
    expected = f"argv[]=/usr/bin/bundle exec sidekiq -c {threads} -t 25 " + " ".join(f"-q {q}" for q in queues) + " ;"
    assert expected in argv
    assert argv.count("argv[]=") == 1, "the template's ExecStart was not reset"


def test_a_job_on_each_queue_runs_in_the_process_that_owns_it(host):
    tag = "sq-" + uuid.uuid4().hex[:10]
    for queue in OWNER:
        res = host.run(f"cd {LIVE} && runuser -u mastodon -- bundle exec ruby bin/enqueue {queue} 3 0 {tag}-{queue}")
        assert res.rc == 0, res.stderr
    pids = {name: main_pid(host, unit(name)) for name in PLAN}
    wanted = {f"{tag}-{queue}-{i}": queue for queue in OWNER for i in (1, 2, 3)}
    seen = {}
    deadline = time.time() + 60
    while time.time() < deadline and len(seen) < len(wanted):
        for raw in redis(host, "LRANGE", "fixture:ran", "-500", "-1").splitlines():
            item = json.loads(raw)
            if item.get("arg") in wanted:
                seen[item["arg"]] = item
        if len(seen) < len(wanted):
            time.sleep(0.5)
    assert sorted(seen) == sorted(wanted), f"jobs never ran: {sorted(set(wanted) - set(seen))}"
    for arg, item in seen.items():
        queue = wanted[arg]
        assert item["queue"] == queue
        assert item["pid"] == pids[OWNER[queue]], f"{queue} job ran in pid {item['pid']}, not in {OWNER[queue]}"


def test_single_sidekiq_service_is_stopped_and_disabled(host):
    svc = host.service("mastodon-sidekiq")
    assert not svc.is_running
    assert not svc.is_enabled
    # Its file stays (it is Mastodon's), only its process is gone from Redis's registry.
    assert host.file("/etc/systemd/system/mastodon-sidekiq.service").exists


@pytest.mark.parametrize("name", GONE)
def test_a_process_that_left_leaves_no_unit_behind(host, name):
    assert not host.file(f"/etc/systemd/system/{unit(name)}.d").exists
    assert not host.file(f"/etc/systemd/system/multi-user.target.wants/{unit(name)}").exists
    listed = run_ok(host, "systemctl list-units --all --plain --no-legend 'mastodon-sidekiq@*'")
    assert unit(name) not in listed
    state = run_ok(host, f"systemctl show --property=ActiveState,UnitFileState --value {unit(name)}").split()
    assert state[0] == "inactive" and state[1] != "enabled"


def test_only_the_planned_processes_are_registered(host):
    pids = {main_pid(host, unit(name)) for name in PLAN}
    deadline = time.time() + 30
    while time.time() < deadline:
        live = set(registry(host))
        if live == pids:
            break
        time.sleep(0.5)
    assert live == pids, f"Sidekiq's registry has {sorted(live)}, the plan runs {sorted(pids)}"


def test_only_planned_units_run(host):
    running = run_ok(host, "systemctl list-units --state=active --plain --no-legend 'mastodon-sidekiq*'")
    names = sorted(line.split()[0] for line in running.splitlines() if line.strip())
    assert names == sorted(unit(name) for name in PLAN)


def test_only_the_process_whose_environment_changed_was_restarted(host):
    data = json.loads(host.file("/var/lib/fediops-sidekiq-queues-restarts.json").content_string)
    before = dict(line.split() for line in data["before"])
    after = dict(line.split() for line in data["after"])
    assert sorted(before) == sorted(PLAN)
    assert all(int(pid) > 0 for pid in list(before.values()) + list(after.values()))
    restarted = sorted(name for name in PLAN if before[name] != after[name])
    assert restarted == ["mailers"]
    assert int(after["mailers"]) == main_pid(host, unit("mailers"))


def test_two_schedulers_were_refused_before_any_change(host):
    text = host.file("/var/lib/fediops-sidekiq-queues-negative.txt").content_string
    assert "scheduler is served by 2 processes (mailers, clock)" in text
    assert "keep it in exactly one" in text


def test_a_secret_in_a_unit_environment_was_refused(host):
    text = host.file("/var/lib/fediops-sidekiq-queues-negative.txt").content_string
    assert "FIXTURE_API_TOKEN look like secrets" in text and ".env.production" in text
    assert SECRET not in text


def test_sidekiq_gets_its_shutdown_time_before_systemd_kills_it(host):
    """Sidekiq's -t 25 and systemd's stop timeout of 30 s, read from the running units."""
    for name in PLAN:
        stop = run_ok(host, f"systemctl show --property=TimeoutStopUSec --value {unit(name)}").strip()
        assert stop == "30s", (name, stop)


def test_a_stop_waits_for_a_running_job(host):
    """A job that takes 8 s and is running when the process stops finishes: Sidekiq waits (-t 25) and
    systemd waits longer (30 s). With systemd's old 15 s and Sidekiq's -t 25, a 20 s job would die."""
    tag = "stop-" + uuid.uuid4().hex[:8]
    run_ok(host, f"cd {LIVE} && runuser -u mastodon -- bundle exec ruby bin/enqueue default 1 8000 {tag}")
    deadline = time.time() + 30
    while tag not in redis(host, "LRANGE", "fixture:ran", "-200", "-1") and time.time() < deadline:
        time.sleep(0.5)
    assert tag in redis(host, "LRANGE", "fixture:ran", "-200", "-1"), "the job never started"
    started = time.time()
    run_ok(host, f"systemctl restart {unit('default')}")
    assert time.time() - started < 30
    done = redis(host, "LRANGE", "fixture:done", "-200", "-1")
    assert f"{tag}-1" in done, "the running job was killed when its process stopped"


def test_secret_never_reaches_the_logs():
    # The log must be the real one: the drop-ins of the other processes are in it.
    assert_no_secret_in_log(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ansible.log"), [SECRET], "DB_POOL=5")
