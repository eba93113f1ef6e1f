"""Sidekiq's own Redis on the split layout: one instance on app1 for both application hosts (examples/split,
scale_sidekiq_redis_enabled), in both rounds.

prepare.yml stopped Sidekiq on app1 and app2 and queued 20 jobs on `default`, 5 on `push` and one due 30 s
later in each host's own main Redis. Round one moved Sidekiq onto the instance on app1 and, after each host's
restart, that host's jobs onto it. What must be true, from the running system:
  - all 52 jobs ran once, and each run is recorded in the instance on app1: the fixture's worker writes
    through Sidekiq.redis, the connection SIDEKIQ_REDIS_URL (read with dotenv, as Mastodon reads it) gave it;
  - no main Redis keeps Sidekiq work, and the Sidekiq processes of both hosts beat on app1's instance;
  - app2 reaches it over the network, and only with its password.
This file runs after test_split.py, which stops the command-line sampler of the play: the commands here carry
the password in REDISCLI_AUTH.
"""

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import run_ok  # noqa: E402
from split_layout import APPS, SIDEKIQ_PASSWORD, host  # noqa: E402

PASSWORD = SIDEKIQ_PASSWORD
MAIN = "redis-cli -p 6379"
OWN = f"REDISCLI_AUTH='{PASSWORD}' redis-cli -p 6381"
EXPECTED = {f"premove-{name}-{kind}-{i}" for name in APPS for kind, count in (("default", 20), ("push", 5))
            for i in range(1, count + 1)} | {f"premove-{name}-scheduled" for name in APPS}


APP1, APP2 = host("split-app1"), host("split-app2")


def address(h):
    return re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", run_ok(h, "ip -4 -o addr show scope global")).group(1)


def records(h, cli, key):
    return [str(json.loads(line).get("arg")) for line in run_ok(h, f"{cli} LRANGE {key} 0 -1").splitlines()
            if line.startswith("{")]


def test_jobs_queued_on_both_hosts_ran_once_from_the_shared_instance():
    deadline = time.time() + 90
    while not EXPECTED <= set(records(APP1, OWN, "fixture:done")) and time.time() < deadline:
        time.sleep(3)
    done = records(APP1, OWN, "fixture:done")
    assert EXPECTED <= set(done), f"{len(EXPECTED - set(done))} never ran: {sorted(EXPECTED - set(done))[:5]}"
    assert sorted(a for a in done if a in EXPECTED) == sorted(EXPECTED), "a job ran twice"
    # Both hosts' Sidekiq processes ran them (each record names the host that ran it).
    hosts = {json.loads(line)["hostname"] for line in run_ok(APP1, f"{OWN} LRANGE fixture:done 0 -1").splitlines()
             if line.startswith("{") and json.loads(line)["arg"] in EXPECTED}
    assert hosts <= {"split-app1", "split-app2"} and hosts
    for h in (APP1, APP2):
        assert not EXPECTED & set(records(h, MAIN, "fixture:ran"))


def test_no_main_redis_keeps_sidekiq_work():
    for h in (APP1, APP2):
        assert run_ok(h, f"{MAIN} SMEMBERS queues").strip() == ""
        assert run_ok(h, f"{MAIN} --scan --pattern 'queue:*'").strip() == ""
        assert run_ok(h, f"{MAIN} --scan --pattern 'fediops:moving:*'").strip() == ""
        assert run_ok(h, f"{MAIN} ZCARD schedule").strip() == "0"
        for member in run_ok(h, f"{MAIN} SMEMBERS processes").split():
            assert run_ok(h, f"{MAIN} EXISTS {member}").strip() == "0", f"{member} still beats on a main Redis"


def test_both_hosts_sidekiq_beat_on_app1s_instance():
    live = [m for m in run_ok(APP1, f"{OWN} SMEMBERS processes").split()
            if run_ok(APP1, f"{OWN} EXISTS {m}").strip() == "1"]
    for name in APPS:
        units = [line.split()[0] for line in run_ok(
            host(name), "systemctl list-units --state=active --plain --no-legend 'mastodon-sidekiq*'").splitlines()
            if line.strip()]
        mine = [m for m in live if m.startswith(name + ":")]
        assert len(mine) == len(units) >= 1, (name, mine, units)


def test_app2_reaches_the_instance_over_the_network_with_its_password_only():
    target = address(APP1)
    anonymous = APP2.run(f"redis-cli -h {target} -p 6381 PING")
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr, anonymous.stdout + anonymous.stderr
    assert run_ok(APP2, f"REDISCLI_AUTH='{PASSWORD}' redis-cli -h {target} -p 6381 PING").strip() == "PONG"
    pairs = run_ok(APP1, f"{OWN} CONFIG GET maxmemory-policy appendonly").split()
    assert dict(zip(pairs[0::2], pairs[1::2])) == {"maxmemory-policy": "noeviction", "appendonly": "yes"}


def test_the_password_is_in_no_world_readable_file():
    for h in (APP1, APP2):
        found = run_ok(h, "grep -rlE 'sidekiq(/|%2F)pass' /etc /home/mastodon/live 2>/dev/null || true").split()
        assert found, "the password is nowhere: the check would prove nothing"
        for path in found:
            assert not int(run_ok(h, f"stat -c %a {path}").strip(), 8) & 0o004, f"{path} is readable by everyone"
