"""Converge benchmark (not a test): wall time of each role and of playbooks/scale.yml on a stand-in host.

For every target (a role, or the whole play) a fresh container of fediops/mastodon-standin:<release> is
started; the target runs once (the first converge) and then --noops times more (no-op runs, which must
change nothing: the benchmark fails otherwise). Reported: seconds of the first run, the median no-op run,
and the number of tasks Ansible ran in a no-op run (ok + changed + skipped in the recap).

Transports: docker exec (community.docker.docker, pipelining on), and with --ssh also SSH with pipelining
and ControlPersist, the transport operators use: openssh-server is installed in the bench container
(from the image's own apt sources) and reached on its docker address only.

--others DIR runs other roles side by side on identical containers: DIR/<name>/ holds a checkout of the
role, DIR/<name>.yml a playbook applying it to `hosts: all`, and DIR/<name>.prepare.yml, when there, runs
first and is not timed (their code is never committed here). A ratio is reported for our pgbouncer
against DIR/pgbouncer.yml and our redis_cache against DIR/redis.yml.
Prints the figures and writes bench/results/converge.json (or --out).

  . scripts/env.sh && python bench/converge/run.py [--release bookworm] [--noops 3] [--transport ssh] [--only pgbouncer]
"""

import argparse
import datetime
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
CONTAINER = os.path.join(TOP, "scripts", "systemd-container.sh")
RECAP = re.compile(r"^\S+\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", re.M)
TARGETS = ["pgbouncer", "redis_cache", "sidekiq_queues", "web", "streaming", "scale"]


def sh(cmd, check=True, **kwargs):
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if check and res.returncode != 0:
        sys.exit("%s failed (%d):\n%s\n%s" % (" ".join(cmd), res.returncode, res.stdout[-3000:], res.stderr[-2000:]))
    return res


def inside(name, script):
    return sh(["docker", "exec", name, "bash", "-c", script])


def start(name, release):
    sh([CONTAINER, "start", name, "fediops/mastodon-standin:%s" % release])
    sh([CONTAINER, "wait", name, "120"])
    inside(name, "for i in $(seq 60); do systemctl is-active -q postgresql && break; sleep 1; done")


def enable_ssh(name, work):
    """openssh-server in the container, root login with a throwaway key; returns the inventory vars."""
    key = os.path.join(work, "id_ed25519")
    if not os.path.exists(key):
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
    inside(name, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server >/dev/null "
                 "&& install -d -m 700 /root/.ssh && systemctl enable --now ssh >/dev/null 2>&1; systemctl start ssh")
    with open(key + ".pub", encoding="utf-8") as handle:
        sh(["docker", "exec", "-i", name, "bash", "-c", "cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys"],
           input=handle.read())
    address = sh(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name]).stdout.strip()
    control = os.path.join(work, "cm-%%C")
    return {"ansible_host": address, "ansible_user": "root", "ansible_connection": "ssh",
            "ansible_ssh_private_key_file": key,
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                                       "-o ControlMaster=auto -o ControlPersist=120s -o ControlPath=%s" % control}


def inventory(work, name, transport_vars):
    path = os.path.join(work, "inventory-%s.json" % name)
    host = dict(transport_vars, ansible_python_interpreter="auto_silent")
    data = {"all": {"children": {"mastodon": {"hosts": {name: host}}, "mastodon_db_primary": {"hosts": {name: None}},
                                 "mastodon_app": {"hosts": {name: None}}}}}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    return path


def play(inv, playbook, env):
    started = time.time()
    res = subprocess.run(["ansible-playbook", "-i", inv, playbook], capture_output=True, text=True, env=env, cwd=TOP,
                         check=False)
    seconds = time.time() - started
    recap = RECAP.findall(res.stdout)
    if res.returncode != 0 or not recap:
        sys.exit("%s failed (%d):\n%s" % (playbook, res.returncode, res.stdout[-4000:]))
    ok, changed, _unreachable, _failed, skipped = (int(x) for x in recap[-1])
    return {"seconds": round(seconds, 1), "changed": changed, "tasks": ok + skipped}


def measure(label, playbook, release, transport, noops, work, env, prepare=None):
    name = "fediops-bench-converge-%s-%d" % (re.sub(r"[^a-z0-9]", "-", label.lower()), os.getpid())
    try:
        start(name, release)
        transport_vars = enable_ssh(name, work) if transport == "ssh" else {"ansible_connection": "community.docker.docker"}
        inv = inventory(work, name, transport_vars)
        if prepare:
            play(inv, prepare, env)
        first = play(inv, playbook, env)
        runs = [play(inv, playbook, env) for _run in range(noops)]
    finally:
        sh(["docker", "rm", "-f", name], check=False)
    if any(run["changed"] for run in runs):
        sys.exit("%s: a no-op run changed %s tasks" % (label, [run["changed"] for run in runs]))
    result = {"target": label, "transport": transport, "first_seconds": first["seconds"], "first_changed": first["changed"],
              "noop_seconds_median": round(statistics.median(run["seconds"] for run in runs), 1),
              "noop_seconds": [run["seconds"] for run in runs], "noop_tasks": runs[-1]["tasks"]}
    print("%-28s %-6s first %6.1f s (%3d changed)   no-op %6.1f s median, %3d tasks"
          % (label, transport, result["first_seconds"], result["first_changed"], result["noop_seconds_median"],
             result["noop_tasks"]), flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="bookworm", choices=["bookworm", "trixie"])
    parser.add_argument("--noops", type=int, default=3, help="no-op runs after the first converge (median reported)")
    parser.add_argument("--transport", action="append", choices=["docker", "ssh"],
                        help="docker exec (default) and/or SSH with pipelining and ControlPersist (repeatable)")
    parser.add_argument("--out", default="converge.json", help="file name in bench/results/")
    parser.add_argument("--only", action="append", choices=TARGETS, help="only these targets (repeatable)")
    parser.add_argument("--others", help="folder of other roles to run side by side (see the module docstring)")
    opts = parser.parse_args()
    work = tempfile.mkdtemp(prefix="fediops-bench-converge-")
    env = dict(os.environ, ANSIBLE_ROLES_PATH=os.path.join(TOP, "roles"), ANSIBLE_PIPELINING="True",
               ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_DIFF_ALWAYS="False", ANSIBLE_LOG_PATH="")
    results = []
    transports = opts.transport or ["docker"]
    try:
        for target in opts.only or TARGETS:
            playbook = os.path.join(HERE, "%s.yml" % target)
            for transport in transports:
                results.append(measure(target, playbook, opts.release, transport, opts.noops, work, env))
        if opts.others:
            others_env = dict(env, ANSIBLE_ROLES_PATH=os.path.abspath(opts.others))
            for playbook in sorted(glob.glob(os.path.join(os.path.abspath(opts.others), "*.yml"))):
                if playbook.endswith(".prepare.yml"):
                    continue
                label = "other:" + os.path.basename(playbook)[:-4]
                prepare = playbook[:-4] + ".prepare.yml"
                for transport in transports:
                    try:
                        results.append(measure(label, playbook, opts.release, transport, opts.noops, work, others_env,
                                               prepare if os.path.exists(prepare) else None))
                    except SystemExit as exc:  # another role failing here is a finding, not the end of the run
                        print("%s failed: %s" % (label, str(exc)[-600:]), flush=True)
                        results.append({"target": label, "transport": transport, "error": str(exc)[-600:]})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ours = dict(((r["target"], r["transport"]), r) for r in results if "error" not in r)
    ratios = {}
    for (target, transport), result in ours.items():
        for mine, theirs in (("pgbouncer", "other:pgbouncer"), ("redis_cache", "other:redis")):
            if target == mine and (theirs, transport) in ours:
                ratios["%s_noop_vs_%s_%s" % (mine, theirs.split(":")[1], transport)] = round(
                    result["noop_seconds_median"] / ours[(theirs, transport)]["noop_seconds_median"], 2)
    out = {"benchmark": "converge", "date": datetime.date.today().isoformat(), "release": opts.release,
           "cpus": os.cpu_count(), "noops": opts.noops, "results": results, "ratios": ratios}
    os.makedirs(os.path.join(TOP, "bench", "results"), exist_ok=True)
    with open(os.path.join(TOP, "bench", "results", opts.out), "w", encoding="utf-8") as handle:
        json.dump(out, handle, indent=2)
        handle.write("\n")
    if ratios:
        print(json.dumps(ratios, indent=2))


if __name__ == "__main__":
    main()
