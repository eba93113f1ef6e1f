"""Helpers every scenario's testinfra tests share (imported after putting molecule/shared on sys.path)."""

from __future__ import annotations

import json
import os
import re
from urllib.parse import quote as url_quote

from check_runs import LOG_PREFIX


def run_ok(host, cmd):
    """Run `cmd` on the host; fail the test with its output unless it exits 0. Returns stdout."""
    res = host.run(cmd)
    assert res.rc == 0, f"{cmd!r} failed ({res.rc}): {res.stdout} {res.stderr}"
    return res.stdout


def secret_forms(secret):
    """The forms a secret takes in the files and commands the roles write: as is, URL-encoded (in a
    DATABASE_URL), backslash-escaped (.env, .pgpass), with doubled quotes (SQL), and .pgpass-escaped."""
    # url_quote: this module's own quote() below is the shell's, which once shadowed urllib's here.
    return {secret, url_quote(secret, safe=""), secret.replace("\\", "\\\\"), secret.replace("'", "''"),
            secret.replace("\\", "\\\\").replace(":", "\\:")}


def assert_no_secret_in_log(path, secrets, marker):
    """No form of any secret is in the log at `path`; `marker` proves the log is the real one."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        log = handle.read()
    assert marker in log, f"{os.path.basename(path)} does not show {marker!r}: the check would prove nothing"
    for number, secret in enumerate(secrets):
        for form in secret_forms(secret):
            # The message names the secret by its place in the list, never by its text.
            assert form not in log, f"secret #{number} is in {path}"


def quote(text):
    """`text` as one single-quoted shell word."""
    return "'" + str(text).replace("'", "'\"'\"'") + "'"


def main_pid(host, unit):
    """The main PID of a running unit; fails the test when it has none."""
    pid = int(run_ok(host, f"systemctl show --property=MainPID --value {unit}").strip())
    assert pid > 0, f"{unit} has no main process"
    return pid


def environ(host, pid):
    """The environment of a process, from /proc (what it really runs with)."""
    raw = run_ok(host, f"tr '\\0' '\\n' < /proc/{pid}/environ")
    return dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)


def http_get(host, url, headers=None):
    """GET `url` from inside the host; returns (status, body); status 0 when nothing answered."""
    script = (
        "import json, sys, urllib.request, urllib.error\n"
        "req = urllib.request.Request(sys.argv[1], headers=json.loads(sys.argv[2]))\n"
        "try:\n"
        "    r = urllib.request.urlopen(req, timeout=5)\n"
        "    print(r.status); print(r.read().decode(), end='')\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code); print(e.read().decode(), end='')\n"
        "except OSError as e:\n"
        "    print(0); print(e, end='')\n"
    )
    import json
    res = host.run(f"python3 -c {quote(script)} {quote(url)} {quote(json.dumps(headers or {}))}")
    status, _sep, body = res.stdout.partition("\n")
    return int(status or 0), body


def wait_for(predicate, timeout=60, what="the condition", interval=0.5):
    """Call `predicate` until it returns something true, and return that; fail the test after `timeout` s."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


def adhoc(host, module, args):
    """Run one module of this collection on the host, the way a role's task would: (exit code, output)."""
    import json
    import subprocess
    proc = subprocess.run(["ansible", "-i", os.environ["MOLECULE_INVENTORY_FILE"], host.backend.get_hostname(),
                           "-m", module, "-a", json.dumps(args)], capture_output=True, text=True, timeout=300,
                          check=False)
    return proc.returncode, proc.stdout + proc.stderr


def what_changed(output):
    """What a run of a playbook at -v changed, from its output or its log (ANSIBLE_LOG_PATH): the tasks that reported
    a change (a loop's too), and the units fediops.mastodon.service_apply started, stopped, restarted or reloaded
    ("start UNIT", "stop UNIT", ...), also through another module's `service` option. A preview (--check) names
    exactly what the real run changes when both agree."""
    tasks, units = set(), set()
    task = None
    for line in LOG_PREFIX.sub("", output).splitlines():
        match = re.match(r"^TASK \[(.*)\] \**$", line)
        if match:
            task = match.group(1)
            continue
        match = re.match(r"^changed: \[[^\]]+\](?: => \(item=.*?\))?(?: => (\{.*\}))?$", line)
        if match and task:
            tasks.add(task)
            result = json.loads(match.group(1)) if match.group(1) else {}
            # A module that writes files and runs their service in one call returns service_apply's result as `service`.
            for part in (result, result.get("service") or {}):
                for done, verb in (("started", "start"), ("stopped", "stop"), ("restarted", "restart"), ("reloaded", "reload")):
                    units.update("%s %s" % (verb, unit) for unit in part.get(done, []))
    return tasks, units
