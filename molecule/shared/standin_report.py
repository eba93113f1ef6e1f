"""What the stand-in's running processes say they are connected to (tests/fixtures/standin).

The fixtures read .env.production and config/database.yml through Mastodon's own libraries
(ruby-dotenv, ERB + YAML, ruby-pg, ruby-redis, npm dotenv, node-pg) and report, for a real pooled
connection, the server's address and port, pg_is_in_recovery(), the client's local port (to find
it in PgBouncer's SHOW CLIENTS), the pool size, and where a cache write landed.
"""

import json
import shlex
import time

LIVE = "/home/mastodon/live"


def _run_json(host, cmd):
    res = host.run(cmd)
    assert res.rc == 0, f"{cmd!r} failed ({res.rc}): {res.stdout} {res.stderr}"
    lines = [line for line in res.stdout.splitlines() if line.startswith("{")]
    assert lines, f"{cmd!r} printed no report: {res.stdout} {res.stderr}"
    return json.loads(lines[-1])


def listen_address(host, port):
    """The address a process of `host` listens on for `port` (127.0.0.1, or the host's own address when a front
    door on another host reaches it), as a URL host."""
    out = host.check_output(f"ss -Hltn '( sport = :{port} )'")
    for line in out.splitlines():
        local = line.split()[3]
        address = local.rsplit(":", 1)[0]
        if address in ("0.0.0.0", "*", "[::]"):
            return "127.0.0.1"
        return address
    raise AssertionError(f"nothing on {host.backend.get_hostname()} listens on port {port}")


def http_report(host, port):
    """The report of the running web (3000) or streaming (4000+) process listening on `port`."""
    script = ("import sys, urllib.request\n"
              "print(urllib.request.urlopen(sys.argv[1], timeout=30).read().decode())\n")
    return _run_json(host, f"python3 -c {shlex.quote(script)} http://{listen_address(host, port)}:{port}/fixture/report")


def sidekiq_report(host, queue="default", live=LIVE, tries=30, pause=0.5):
    """The report of a running Sidekiq process of `host` that serves `queue`, from a job it ran.

    Application hosts that share Sidekiq's Redis share its queues, so the job may run on another host:
    the job is pushed again until a process of this host answers (each host's turn is a coin toss). The
    tries are spread over `pause` seconds each: once, all 16 of a quick burst went to the other host."""
    hostname = host.check_output("hostname").strip()
    seen = []
    for _attempt in range(tries):
        report = _run_json(host, f"cd {live} && runuser -u mastodon -- bundle exec ruby bin/fixture-report sidekiq {queue}")
        if report.get("hostname") == hostname:
            return report
        seen.append(report.get("hostname"))
        time.sleep(pause)
    raise AssertionError(f"no Sidekiq process of {hostname} ran a report job on {queue} in {tries} tries: {seen}")


def oneoff_report(host, kind, env=None):
    """A one-off process configured as web or streaming is; `env` wins over .env.production."""
    assigns = " ".join(f"{key}={shlex.quote(value)}" for key, value in (env or {}).items())
    if kind == "streaming":
        cmd = f"cd {LIVE}/streaming && runuser -u mastodon -- env {assigns} node report.js"
    else:
        cmd = f"cd {LIVE} && runuser -u mastodon -- env {assigns} bundle exec ruby bin/fixture-report web"
    return _run_json(host, cmd)
