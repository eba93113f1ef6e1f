"""Sidekiq's own Redis beside the cache (role sidekiq_redis, the same instance model, purpose sidekiq).

converge's pre_tasks parked 30 jobs in the main Redis on a queue no Sidekiq process serves, and one job
scheduled an hour ahead, before the roles first ran. The role then ran the instance, pointed Mastodon at it
(SIDEKIQ_REDIS_URL), restarted Mastodon's services and moved the jobs. Parked jobs stay where the move put
them, so the tests read them back: all there, in the order Sidekiq would take them, and none left behind.
"""

import json
import os
import re
import sys

from common import EPHEMERAL, CONVERGE_LOG, MAIN_PORT, cli, config_get, converge_again, flavour, read_env, run_ok, unit_value

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import assert_no_secret_in_log  # noqa: E402

SK_PASSWORD = "s1dekiq:S3cret/p%ss@fediops"
SK_PORT = 6381
PARKED = [f"parked-{i}" for i in range(1, 31)]


def own(host, args):
    return cli(host, args, port=SK_PORT, password=SK_PASSWORD)


def main(host, args):
    return cli(host, args, port=MAIN_PORT, password="")


def args_of(lines):
    return [json.loads(line)["args"][0] for line in lines.splitlines() if line.startswith("{")]


def test_parked_jobs_moved_in_the_order_sidekiq_takes_them(host):
    # Sidekiq pushes on the left and takes from the right: reading right to left is the order of work.
    queued = args_of(own(host, "LRANGE queue:fediops_parked 0 -1"))
    assert list(reversed(queued)) == PARKED
    assert "fediops_parked" in own(host, "SMEMBERS queues").split()
    scheduled = own(host, "ZRANGE schedule 0 -1 WITHSCORES").splitlines()
    assert len(scheduled) == 2 and json.loads(scheduled[0])["args"][0] == "parked-scheduled"
    # Its time is kept: an hour after it was queued, not now (created_at is in milliseconds from Sidekiq 8).
    created = float(json.loads(scheduled[0])["created_at"])
    created = created / 1000 if created > 1e11 else created
    assert float(scheduled[1]) > created + 3500


def test_the_main_redis_keeps_none_of_them(host):
    assert main(host, "EXISTS queue:fediops_parked").strip() == "0"
    assert "fediops_parked" not in main(host, "SMEMBERS queues").split()
    assert "parked-scheduled" not in main(host, "ZRANGE schedule 0 -1")
    assert main(host, "--scan --pattern 'fediops:moving:*'").strip() == ""


def test_sidekiq_beats_on_its_own_redis_and_the_instance_keeps_jobs_safe(host):
    env = read_env(host)
    assert env["SIDEKIQ_REDIS_URL"].endswith(f"@127.0.0.1:{SK_PORT}/0"), "SIDEKIQ_REDIS_URL names another Redis"
    live = [m for m in own(host, "SMEMBERS processes").split() if own(host, f"EXISTS {m}").strip() == "1"]
    assert len(live) == 1, live
    assert config_get(host, ["maxmemory-policy", "appendonly", "maxmemory"], port=SK_PORT, password=SK_PASSWORD) == {
        "maxmemory-policy": "noeviction", "appendonly": "yes", "maxmemory": "0"}
    server = flavour(host)["server"]
    assert run_ok(host, f"systemctl is-active {server}-server@sidekiq.service").strip() == "active"
    info = own(host, "INFO server")
    assert f"executable:/usr/bin/{server}-server" in info or f"{server}_version" in info


def test_the_sidekiq_password_never_reaches_the_converge_log():
    assert_no_secret_in_log(CONVERGE_LOG, [SK_PASSWORD, "s1dekiq"], "fediops.mastodon.sidekiq_redis")


def test_a_refused_setting_names_the_roles_own_variables_and_changes_nothing(host):
    """The role alone, with a port of the main Redis and an eviction policy in its free-form settings: the run stops
    at its first check with one message naming sidekiq_redis_* (the instance model's other user, the cache, is
    never named), and the instance keeps its process, its file and Mastodon's environment."""
    server = flavour(host)["server"]
    unit = f"{server}-server@sidekiq.service"
    watched = f"sha256sum /etc/{server}/{server}-sidekiq.conf /home/mastodon/live/.env.production"
    pid, sums = unit_value(host, unit, "MainPID"), run_ok(host, watched)
    playbook = os.path.join(EPHEMERAL, "sidekiq_redis-alone.yml")
    with open(playbook, "w", encoding="utf-8") as handle:
        handle.write("- hosts: all\n  gather_facts: false\n  roles:\n    - role: fediops.mastodon.sidekiq_redis\n")
    rc, output, _changed, _log = converge_again(
        host, {"sidekiq_redis_port": 6379, "sidekiq_redis_settings": {"maxmemory-policy": "allkeys-lru"}},
        "ansible-sidekiq-refused.log", playbook)
    assert rc != 0, output[-4000:]
    messages = re.findall(r'^fatal: .*"msg": "([^"]*)"', output, re.M)
    assert messages == [
        "sidekiq_redis: sidekiq_redis_port is 6379, the port of the main Redis (sidekiq_redis_main_port 6379); this "
        "instance needs its own port, for example 6381. sidekiq_redis_settings sets maxmemory-policy, but this "
        "instance always runs with maxmemory-policy noeviction: drop it."], output[-4000:]
    assert unit_value(host, unit, "MainPID") == pid and run_ok(host, watched) == sums
