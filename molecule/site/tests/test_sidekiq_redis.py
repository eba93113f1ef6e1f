"""Sidekiq's own Redis (examples/single-host: scale_sidekiq_redis_enabled) on the converged one-host site.

prepare.yml stopped Sidekiq and queued 40 jobs on `default`, 10 on `push` and one due 30 s later in the main
Redis, then ran the play for the first time. That run moved Sidekiq onto its own Redis (port 6381) and, after
the restart, moved those jobs there. What must be true now, from the running system:
  - every one of the 51 jobs ran, and the record of each run is in Sidekiq's own Redis: the fixture's worker
    writes it through Sidekiq.redis, the connection Sidekiq's configuration (SIDEKIQ_REDIS_URL, read with
    dotenv as Mastodon reads it) gave it;
  - the main Redis keeps no Sidekiq work: no queue, no scheduled job, no half-moved key, no live process;
  - every Sidekiq process registers its heartbeat on the new instance;
  - the instance keeps its data through a restart (snapshots and append-only file) and never evicts.
Tried once against a broken setting: with the move task removed from playbooks/scale.yml, the first test fails
(the 51 jobs stay in the main Redis, where no process reads them any more).
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import run_ok  # noqa: E402

PASSWORD = "site-Test:sidekiq/pass%4"
MAIN = "redis-cli -p 6379"
OWN = f"REDISCLI_AUTH='{PASSWORD}' redis-cli -p 6381"
EXPECTED = ({f"premove-default-{i}" for i in range(1, 41)} | {f"premove-push-{i}" for i in range(1, 11)}
            | {"premove-scheduled"})


def runs(host, cli, key="fixture:done"):
    """The `arg` of every job run recorded in `key` on one Redis."""
    args = set()
    for line in run_ok(host, f"{cli} LRANGE {key} 0 -1").splitlines():
        if line.startswith("{"):
            args.add(str(json.loads(line).get("arg")))
    return args


def test_jobs_queued_before_the_move_ran_from_sidekiqs_own_redis(host):
    deadline = time.time() + 90
    while not EXPECTED <= runs(host, OWN) and time.time() < deadline:
        time.sleep(3)
    done = runs(host, OWN)
    assert EXPECTED <= done, f"{len(EXPECTED - done)} jobs never ran: {sorted(EXPECTED - done)[:5]}"
    # None ran on the main Redis: the stopped Sidekiq never saw them, and the restarted ones use their own.
    assert not EXPECTED & runs(host, MAIN, "fixture:ran")
    # Each ran once: the move copied every job once.
    records = [json.loads(line)["arg"] for line in run_ok(host, f"{OWN} LRANGE fixture:done 0 -1").splitlines()
               if line.startswith("{")]
    assert sorted(a for a in records if str(a) in EXPECTED) == sorted(EXPECTED)


def test_the_main_redis_keeps_no_sidekiq_work(host):
    assert run_ok(host, f"{MAIN} SMEMBERS queues").strip() == ""
    assert run_ok(host, f"{MAIN} --scan --pattern 'queue:*'").strip() == ""
    assert run_ok(host, f"{MAIN} --scan --pattern 'fediops:moving:*'").strip() == ""
    for key in ("schedule", "retry", "dead"):
        assert run_ok(host, f"{MAIN} ZCARD {key}").strip() == "0", key
    # The stock Sidekiq registered there before prepare stopped it; its heartbeat is gone.
    for member in run_ok(host, f"{MAIN} SMEMBERS processes").split():
        assert run_ok(host, f"{MAIN} EXISTS {member}").strip() == "0", f"{member} still beats on the main Redis"


def test_every_sidekiq_process_beats_on_its_own_redis(host):
    units = run_ok(host, "systemctl list-units --state=active --plain --no-legend 'mastodon-sidekiq*'").split("\n")
    units = [line.split()[0] for line in units if line.strip()]
    live = [m for m in run_ok(host, f"{OWN} SMEMBERS processes").split()
            if run_ok(host, f"{OWN} EXISTS {m}").strip() == "1"]
    assert len(live) == len(units) >= 2, (live, units)


def test_sidekiqs_redis_keeps_its_data_through_a_restart_and_never_evicts(host):
    pairs = run_ok(host, f"{OWN} CONFIG GET maxmemory-policy appendonly").split()
    assert dict(zip(pairs[0::2], pairs[1::2])) == {"maxmemory-policy": "noeviction", "appendonly": "yes"}
    run_ok(host, f"{OWN} RPUSH fediops:test:kept one two")
    run_ok(host, "systemctl restart redis-server@sidekiq.service")
    deadline = time.time() + 30
    while host.run(f"{OWN} PING").stdout.strip() != "PONG" and time.time() < deadline:
        time.sleep(1)
    assert run_ok(host, f"{OWN} LRANGE fediops:test:kept 0 -1").split() == ["one", "two"]
    run_ok(host, f"{OWN} DEL fediops:test:kept")


def test_the_password_is_in_no_journal_and_no_world_readable_file(host):
    journal = run_ok(host, "journalctl --no-pager -o cat")
    assert "site-Test:sidekiq" not in journal and "site-Test%3Asidekiq" not in journal
    files = run_ok(host, "grep -rlE 'sidekiq(/|%2F)pass' /etc /home/mastodon/live 2>/dev/null || true").split()
    assert files, "the password is nowhere: the check below would prove nothing"
    for path in files:
        mode = int(run_ok(host, f"stat -c %a {path}").strip(), 8)
        assert not mode & 0o004, f"{path} is readable by everyone ({mode:o})"
