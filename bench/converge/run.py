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
--baseline DIR runs the same targets from another checkout of this collection (a git worktree of an earlier commit)
on identical containers, interleaved with ours, and reports each target's ratio to it: this machine's speed drifts by a
third within an hour, and a ratio of two runs of one round does not.
No-op runs are interleaved: every target is converged first, then each round runs one no-op of every target, so
that a machine whose load changes during the run (other tests share it) weighs on ours and on the other roles
alike. The 1-minute load average is recorded at the start of every run beside its time.
Prints the figures and writes bench/results/converge.json (or --out).

  . scripts/env.sh && python bench/converge/run.py [--release bookworm] [--noops 3] [--transport ssh] [--only pgbouncer]
      [--others DIR] [--baseline DIR]
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
    # One master connection per address (%h: in an inventory variable a single %; "%%C" named one socket for every
    # host, and a run reached whichever container opened it first). %C's 40 characters can pass the 108 bytes a
    # socket path may have.
    control = os.path.join(work, "cm-%h")
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
    load = round(os.getloadavg()[0], 2)
    started = time.time()
    res = subprocess.run(["ansible-playbook", "-i", inv, playbook], capture_output=True, text=True, env=env, cwd=TOP,
                         check=False)
    seconds = time.time() - started
    recap = RECAP.findall(res.stdout)
    if res.returncode != 0 or not recap:
        raise RuntimeError("%s failed (%d):\n%s" % (playbook, res.returncode, res.stdout[-4000:]))
    ok, changed, _unreachable, _failed, skipped = (int(x) for x in recap[-1])
    # The tasks that changed, for the message of a no-op run that changed something.
    tasks = re.findall(r"^TASK \[(.*?)\] \**\n(?:(?!TASK \[).*\n)*?changed: ", res.stdout, re.M)
    if changed and os.environ.get("FEDIOPS_BENCH_KEEP"):
        with open(os.path.join(os.environ["FEDIOPS_BENCH_KEEP"], "%d.log" % time.time()), "w", encoding="utf-8") as handle:
            handle.write(res.stdout)
    return {"seconds": round(seconds, 1), "changed": changed, "tasks": ok + skipped, "load": load, "changed_tasks": tasks}


class Target:
    """One target on a container of its own: started and converged once, then no-op runs on demand."""

    def __init__(self, label, playbook, env, prepare=None):
        self.label, self.playbook, self.env, self.prepare = label, playbook, env, prepare
        self.name = "fediops-bench-converge-%s-%d" % (re.sub(r"[^a-z0-9]", "-", label.lower()), os.getpid())
        self.first, self.runs, self.error, self.inv = None, [], None, None

    def converge(self, release, transport, work):
        self.transport = transport
        start(self.name, release)
        transport_vars = enable_ssh(self.name, work) if transport == "ssh" else {"ansible_connection": "community.docker.docker"}
        self.inv = inventory(work, self.name, transport_vars)
        if self.prepare:
            play(self.inv, self.prepare, self.env)
        self.first = play(self.inv, self.playbook, self.env)

    def noop(self):
        # Over SSH the inventory names an address: a container that stopped gives it up to the next one started.
        state = sh(["docker", "inspect", "-f", "{{.State.Status}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                    self.name], check=False).stdout.strip()
        if not state.startswith("running"):
            raise RuntimeError("%s: its container %s is %s" % (self.label, self.name, state or "gone"))
        run = play(self.inv, self.playbook, self.env)
        self.runs.append(run)
        if run["changed"]:
            raise RuntimeError("%s: a no-op run changed %d tasks: %s" % (self.label, run["changed"], run["changed_tasks"]))

    def remove(self):
        sh(["docker", "rm", "-f", self.name], check=False)

    def result(self):
        if self.error:
            return {"target": self.label, "transport": self.transport, "error": self.error[-600:]}
        result = {"target": self.label, "transport": self.transport, "first_seconds": self.first["seconds"],
                  "first_changed": self.first["changed"],
                  "noop_seconds_median": round(statistics.median(run["seconds"] for run in self.runs), 1),
                  "noop_seconds": [run["seconds"] for run in self.runs], "noop_tasks": self.runs[-1]["tasks"],
                  "noop_load_1min": [run["load"] for run in self.runs]}
        print("%-28s %-6s first %6.1f s (%3d changed)   no-op %6.1f s median, %3d tasks, load %s"
              % (self.label, self.transport, result["first_seconds"], result["first_changed"], result["noop_seconds_median"],
                 result["noop_tasks"], "/".join("%.1f" % x for x in result["noop_load_1min"])), flush=True)
        return result


def baseline_collections(checkout, work):
    """A collections folder where fediops.mastodon is `checkout` and every other collection is this run's own."""
    ours = next(path for path in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if path)
    folder = os.path.join(work, "baseline-collections", "ansible_collections")
    os.makedirs(os.path.join(folder, "fediops"), exist_ok=True)
    for namespace in os.listdir(os.path.join(ours, "ansible_collections")):
        if namespace != "fediops":
            os.symlink(os.path.join(ours, "ansible_collections", namespace), os.path.join(folder, namespace))
    os.symlink(checkout, os.path.join(folder, "fediops", "mastodon"))
    return os.path.dirname(folder)


def git_describe(checkout):
    return sh(["git", "-C", checkout, "log", "-1", "--format=%h %s"], check=False).stdout.strip()[:100]


def measure(targets, release, transport, noops, work):
    """Converge every target, then run the no-ops in rounds, one of each target per round."""
    live = []
    try:
        for target in targets:
            try:
                target.converge(release, transport, work)
                live.append(target)
            except RuntimeError as exc:
                if not target.label.startswith(("other:", "baseline:")):
                    raise
                # Another role failing here is a finding, not the end of the run.
                print("%s failed: %s" % (target.label, str(exc)[-600:]), flush=True)
                target.error = str(exc)
        for _round in range(noops):
            for target in [t for t in live if not t.error]:
                try:
                    target.noop()
                except RuntimeError as exc:
                    if not target.label.startswith(("other:", "baseline:")):
                        raise
                    target.error = str(exc)
    finally:
        for target in targets:
            target.remove()
    return [target.result() for target in targets if target.error or target.runs]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="bookworm", choices=["bookworm", "trixie"])
    parser.add_argument("--noops", type=int, default=3, help="no-op runs after the first converge (median reported)")
    parser.add_argument("--transport", action="append", choices=["docker", "ssh"],
                        help="docker exec (default) and/or SSH with pipelining and ControlPersist (repeatable)")
    parser.add_argument("--out", default="converge.json", help="file name in bench/results/")
    parser.add_argument("--only", action="append", choices=TARGETS, help="only these targets (repeatable)")
    parser.add_argument("--others", help="folder of other roles to run side by side (see the module docstring)")
    parser.add_argument("--baseline", help="another checkout of this collection whose targets run side by side")
    opts = parser.parse_args()
    work = tempfile.mkdtemp(prefix="fediops-bench-converge-")
    env = dict(os.environ, ANSIBLE_ROLES_PATH=os.path.join(TOP, "roles"), ANSIBLE_PIPELINING="True",
               ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_DIFF_ALWAYS="False", ANSIBLE_LOG_PATH="")
    results = []
    transports = opts.transport or ["docker"]
    try:
        for transport in transports:
            targets = [Target(target, os.path.join(HERE, "%s.yml" % target), env) for target in opts.only or TARGETS]
            if opts.baseline:
                baseline = os.path.abspath(opts.baseline)
                baseline_env = dict(env, ANSIBLE_ROLES_PATH=os.path.join(baseline, "roles"),
                                    ANSIBLE_COLLECTIONS_PATH=baseline_collections(baseline, work))
                targets += [Target("baseline:" + target, os.path.join(baseline, "bench", "converge", "%s.yml" % target),
                                   baseline_env)
                            for target in opts.only or TARGETS]
            if opts.others:
                others_env = dict(env, ANSIBLE_ROLES_PATH=os.path.abspath(opts.others))
                for playbook in sorted(glob.glob(os.path.join(os.path.abspath(opts.others), "*.yml"))):
                    if playbook.endswith(".prepare.yml"):
                        continue
                    prepare = playbook[:-4] + ".prepare.yml"
                    targets.append(Target("other:" + os.path.basename(playbook)[:-4], playbook, others_env,
                                          prepare if os.path.exists(prepare) else None))
            try:
                results.extend(measure(targets, opts.release, transport, opts.noops, work))
            except RuntimeError as exc:
                sys.exit(str(exc))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ours = dict(((r["target"], r["transport"]), r) for r in results if "error" not in r)
    ratios = {}
    for (target, transport), result in ours.items():
        for mine, theirs in (("pgbouncer", "other:pgbouncer"), ("redis_cache", "other:redis")):
            if target == mine and (theirs, transport) in ours:
                other = ours[(theirs, transport)]
                key = "%s_noop_vs_%s_%s" % (mine, theirs.split(":")[1], transport)
                ratios[key] = round(result["noop_seconds_median"] / other["noop_seconds_median"], 2)
                # Round by round: the two runs of a round met the same load.
                ratios[key + "_by_round"] = [round(a / b, 2) for a, b in zip(result["noop_seconds"], other["noop_seconds"])]
        if ("baseline:" + target, transport) in ours and not target.startswith(("other:", "baseline:")):
            other = ours[("baseline:" + target, transport)]
            key = "%s_noop_vs_baseline_%s" % (target, transport)
            ratios[key] = round(result["noop_seconds_median"] / other["noop_seconds_median"], 2)
            ratios[key + "_by_round"] = [round(a / b, 2) for a, b in zip(result["noop_seconds"], other["noop_seconds"])]
    if opts.baseline:
        ratios["baseline"] = git_describe(os.path.abspath(opts.baseline))
    out = {"benchmark": "converge", "date": datetime.date.today().isoformat(), "release": opts.release,
           "cpus": os.cpu_count(), "noops": opts.noops, "interleaved": True, "results": results, "ratios": ratios}
    os.makedirs(os.path.join(TOP, "bench", "results"), exist_ok=True)
    with open(os.path.join(TOP, "bench", "results", opts.out), "w", encoding="utf-8") as handle:
        json.dump(out, handle, indent=2)
        handle.write("\n")
    if ratios:
        print(json.dumps(ratios, indent=2))


if __name__ == "__main__":
    main()
