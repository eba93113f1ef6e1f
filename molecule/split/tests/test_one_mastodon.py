"""Two application hosts that behave as one Mastodon (issue 28): one cache, one media store, one front door that
spreads requests and drains each host before it restarts, and the settings that would break this refused.

Every check asks the running processes: the fixtures' own reports (Rails.cache through ruby-redis, uploads through
ruby-aws-sdk-s3, the event stream through node-redis), Debian's nginx on db1, and the S3 server on db2.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import run_ok, wait_for  # noqa: E402
from standin_report import http_report, listen_address, oneoff_report  # noqa: E402
from split_layout import APPS, ENV_FILE, HOSTS, PROJECT, VAULT, host, placement, s3_endpoint  # noqa: E402


FRONT, DB2 = host("split-db1"), host("split-db2")


def web(name, path, method="GET", data=None, headers=None):
    """A request to the web process of `name` itself (on the address it listens on), from inside that host."""
    h = host(name)
    script = ("import sys, json, urllib.request, urllib.error\n"
              "req = urllib.request.Request(sys.argv[1], method=sys.argv[2], headers=json.loads(sys.argv[3]),\n"
              "                             data=sys.stdin.buffer.read() if sys.argv[2] == 'PUT' else None)\n"
              "try:\n"
              "    r = urllib.request.urlopen(req, timeout=20)\n"
              "    body = r.read(); print(r.status); sys.stdout.flush(); sys.stdout.buffer.write(body)\n"
              "except urllib.error.HTTPError as e:\n"
              "    print(e.code); sys.stdout.flush(); sys.stdout.buffer.write(e.read())\n")
    url = f"http://{listen_address(h, 3000)}:3000{path}"
    cmd = ["docker", "exec", "-i", name, "python3", "-c", script, url, method, json.dumps(headers or {})]
    proc = subprocess.run(cmd, input=data or b"", capture_output=True, timeout=60, check=False)
    status, _sep, body = proc.stdout.partition(b"\n")
    return int(status or 0), body


def test_one_cache_serves_every_application_host():
    """The same Redis answers Rails.cache on both hosts (the same run_id), and a one-off process pointed at a cache of
    its own shows the check can tell the difference."""
    caches = {name: http_report(host(name), 3000)["cache"] for name in APPS}
    assert all(cache["ok"] for cache in caches.values()), caches
    assert caches["split-app1"]["run_id"] == caches["split-app2"]["run_id"], caches
    own = oneoff_report(host("split-app2"), "web", {"CACHE_REDIS_URL": "redis://127.0.0.1:6379/0"})["cache"]
    assert own["ok"] and own["run_id"] != caches["split-app1"]["run_id"]


def test_an_ip_block_made_through_one_host_is_honoured_by_the_other():
    """Mastodon's IP blocks live in Rails.cache, which Rack::Attack reads on every request."""
    blocked = "198.51.100.%d" % (uuid.uuid4().int % 250 + 1)
    assert web("split-app2", "/health", headers={"X-Forwarded-For": blocked})[0] == 200
    assert web("split-app1", f"/fixture/ip_blocks?ip={blocked}", method="POST")[0] == 201
    assert web("split-app2", "/health", headers={"X-Forwarded-For": blocked})[0] == 403
    assert web("split-app2", "/health", headers={"X-Forwarded-For": "198.51.100.254"})[0] == 200


def test_an_upload_through_one_host_comes_back_byte_for_byte_through_the_other():
    payload = os.urandom(48 * 1024)
    name = "split-%s.bin" % uuid.uuid4().hex
    status, body = web("split-app1", f"/fixture/media/{name}", method="PUT", data=payload)
    assert status == 201, body
    status, body = web("split-app2", f"/fixture/media/{name}")
    assert status == 200 and body == payload, (status, body[:200])
    # It is in the bucket on db2, not on either application host's disk.
    assert not host("split-app2").file(f"/home/mastodon/live/public/system/media_attachments/{name}").exists
    # The check can fail: a process that stores on its own disk does not find it.
    local = host("split-app2").run(
        "cd /home/mastodon/live && runuser -u mastodon -- env S3_ENABLED=false bundle exec ruby -e "
        + shlex.quote(f"require './lib/fixture/mastodon'; FixtureMastodon.load_env; print FixtureMastodon.read_media('{name}')"))
    assert local.rc != 0 and "No such file" in local.stderr, local.stderr[-300:]


def served_by(h, path):
    """(status, X-Fixture-Host) of a request through the front door on `h`."""
    script = ("import http.client\n"
              "c = http.client.HTTPConnection('127.0.0.1', 80, timeout=10)\n"
              f"c.request('GET', {path!r}, headers={{'Host': 'mastodon.example'}})\n"
              "r = c.getresponse(); r.read(); print(r.status, r.getheader('X-Fixture-Host', '-'))\n")
    status, name = run_ok(h, f"python3 -c {shlex.quote(script)}").split()
    return int(status), name


def test_the_front_door_spreads_requests_over_both_hosts():
    served = set()
    for _attempt in range(40):
        status, name = served_by(FRONT, "/api/v1/instance")
        assert status == 200, name
        served.add(name)
        if set(APPS) <= served:
            break
    assert set(APPS) <= served, served
    # Each application host's processes listen on its own address for it, not on loopback.
    for name in APPS:
        assert listen_address(host(name), 3000) not in ("127.0.0.1", "[::1]")


def stop_followers():
    run_ok(FRONT, "touch /run/fediops-test-stop")
    wait_for(lambda: FRONT.run("systemctl is-active fediops-test-probe fediops-test-stream").rc != 0, timeout=40,
             what="the probe and the streaming client to stop")


def restarts(name, since):
    """Epochs of mastodon-web's starts on `name` after `since` (the journal's 'Started')."""
    out = run_ok(host(name), "journalctl -u mastodon-web -o short-unix --no-pager | grep -E 'Started' || true")
    return [float(line.split()[0]) for line in out.splitlines() if float(line.split()[0]) > since]


@pytest.mark.changes_the_host
def test_no_request_through_the_front_door_failed_during_the_rolling_restart():
    """Round two: 20 requests a second through the front while both application hosts restarted, one at a time."""
    if placement() != "app":
        return
    stop_followers()
    lines = [line.split() for line in run_ok(FRONT, "cat /var/log/fediops-probe.log").splitlines()]
    assert len(lines) > 600, f"the probe sent only {len(lines)} requests"
    started = float(lines[0][0])
    failed = [line for line in lines if line[1] != "200"]
    assert failed == [], f"{len(failed)} of {len(lines)} requests failed: {failed[:5]}"
    # Both hosts restarted while it ran: the probe covered the whole rolling restart.
    for name in APPS:
        assert restarts(name, started), f"{name}'s web did not restart while the probe ran"
    served = {line[2] for line in lines}
    assert served == set(APPS), served


@pytest.mark.changes_the_host
def test_a_stream_through_the_front_door_reconnects_and_gets_what_comes_after_the_restart():
    if placement() != "app":
        return
    stop_followers()
    log = run_ok(FRONT, "cat /var/log/fediops-stream.log").splitlines()
    connects = [line for line in log if " connected 200 " in line]
    closes = [line for line in log if line.split()[1] in ("closed", "error")]
    assert connects and closes, log[-10:]
    # The stream ended when its host restarted, and the client came back through the front door.
    assert float(connects[-1].split()[0]) > float(closes[0].split()[0]), log[-10:]
    # Follow again, now, and publish after the restarts: the message arrives through the front door.
    run_ok(FRONT, "rm -f /run/fediops-test-stop /var/log/fediops-stream.log && systemd-run --unit=fediops-test-stream2 "
                  "--collect --property=RuntimeMaxSec=120 python3 /usr/local/lib/fediops-test-stream_client.py 127.0.0.1 80 "
                  "/var/log/fediops-stream.log /run/fediops-test-stop")
    wait_for(lambda: " connected 200 " in FRONT.run("cat /var/log/fediops-stream.log").stdout, timeout=30,
             what="the stream to connect")
    token = "after-restart-" + uuid.uuid4().hex
    # Each application host keeps its own main Redis here: publish on both, as a shared main Redis would reach both.
    for name in APPS:
        run_ok(host(name), f"redis-cli -p 6379 PUBLISH timeline:public {token}")
    wait_for(lambda: token in FRONT.run("cat /var/log/fediops-stream.log").stdout, timeout=20,
             what="the message through the stream")
    run_ok(FRONT, "touch /run/fediops-test-stop")


def checksums(name):
    return run_ok(host(name), "find /etc /home/mastodon/live -xdev -type f \\( -name '*.conf' -o -name '*.ini' -o -name "
                              "'*.service' -o -name '.env.production' -o -name 'userlist.txt' \\) -print0 2>/dev/null "
                              "| sort -z | xargs -0 sha256sum")


def pids(name):
    return run_ok(host(name), "systemctl show --property=Id,MainPID $(systemctl list-units --plain --no-legend "
                              "'mastodon-*' 'redis-server@*' 'postgresql@*' pgbouncer.service nginx.service | awk '{print $1}')")


def scale(*extra, log_name):
    proc = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(PROJECT, "playbooks", "scale.yml"),
         "-e", json.dumps(dict(VAULT, vault_media_s3_endpoint=s3_endpoint())), *extra],
        capture_output=True, text=True, timeout=900, check=False,
        env=dict(os.environ, ANSIBLE_LOG_PATH=os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], log_name)))
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.changes_the_host
def test_settings_that_would_split_the_fleet_are_refused_before_any_change():
    """A cache per host, uploads on each host's disk, a leftover DATABASE_URL and an empty REDIS_NAMESPACE: one run,
    every problem named, and every managed file and process of the four hosts as it was."""
    if placement() != "primary":
        return
    app1, app2 = host("split-app1"), host("split-app2")
    run_ok(app1, f"cp -p {ENV_FILE} /root/env.keep && echo 'DATABASE_URL=postgresql://mastodon@10.9.9.9/x' >> {ENV_FILE}")
    run_ok(app2, f"cp -p {ENV_FILE} /root/env.keep && echo 'REDIS_NAMESPACE=' >> {ENV_FILE}")
    try:
        before = {name: (checksums(name), pids(name)) for name in HOSTS}
        rc, output = scale("-e", json.dumps({"scale_cache_per_host": True, "media_storage": "local"}),
                           log_name="refused-fleet.log")
        assert rc != 0, output
        for message in ("scale_cache_per_host is true, but 2 application hosts would each keep a Rails.cache",
                        "2 application hosts keep uploads on their own disk (media_storage: local)",
                        "split-app1's .env.production sets DATABASE_URL, which wins over every DB_*",
                        "split-app2's .env.production sets REDIS_NAMESPACE, and Mastodon 4.5.0 refuses to start"):
            assert message in output, output[-3000:]
        assert re.search(r"changed=0 ", output), output[-2000:]
        assert {name: (checksums(name), pids(name)) for name in HOSTS} == before
    finally:
        for h in (app1, app2):
            run_ok(h, f"cp -p /root/env.keep {ENV_FILE} && rm -f /root/env.keep")


@pytest.mark.changes_the_host(after=1)
def test_a_replica_that_refuses_stops_the_run_before_any_application_host_changes():
    """Issue 27: db2 becomes a database of its own that carries the primary's system identifier (promoted), which the
    read_replica role never wipes. The run stops on db2's message; the application hosts keep their .env.production
    and their processes, though the run asked them for a new STREAMING_API_BASE_URL. Last test of the scenario."""
    if placement() != "app":
        return
    run_ok(DB2, "runuser -u postgres -- psql -X -q -c 'SELECT pg_promote()'")
    before = {name: (host(name).file(ENV_FILE).sha256sum, pids(name)) for name in APPS}
    rc, output = scale("-e", json.dumps({"streaming_api_base_url": "wss://changed.example"}), log_name="refused-replica.log")
    assert rc != 0, output[-2000:]
    fatals = [line for line in output.splitlines() if line.startswith("fatal:")]
    assert fatals and "split-db2" in fatals[-1], fatals
    assert "system identifier" in output[output.rfind("fatal:"):], output[-3000:]
    assert {name: (host(name).file(ENV_FILE).sha256sum, pids(name)) for name in APPS} == before
