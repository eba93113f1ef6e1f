"""userlist benchmark (not a test): the pgbouncer_userlist module with 1,000 users, on this machine.

Two cases, each timed --runs times (median reported):
  * md5 first write: no userlist.txt yet, 1,000 users with auth_type md5;
  * unchanged SCRAM rerun: userlist.txt already holds 1,000 SCRAM-SHA-256 entries that verify against
    the passwords given (prepared with pg_secrets), so the module must verify each one and change nothing.

Each case is measured three ways:
  * task: the fediops.mastodon.pgbouncer_userlist task of bench/userlist/userlist.yml, run by
    ansible-playbook against localhost (connection local, pipelining on), timed by the ansible.posix.json
    callback from the task's start to its result: what an operator waits for, including Ansible's own
    work for the task (templating 1,000 users, building the AnsiballZ payload, starting the module,
    reading its result). A ping task runs first and takes the play's one-off start-up; its time is
    reported as the baseline of any task. The targets (md5 < 1 s, SCRAM rerun < 5 s) are checked
    against this figure and the next;
  * module process: `python -m ansible_collections.fediops.mastodon.plugins.modules.pgbouncer_userlist
    args.json` (the module's debug entry point), wall time of the process from start to exit, and its
    CPU time (user + system), which other load on the machine disturbs less;
  * function: update_userlist() alone on the file's text, in this process, for reference.
Every SCRAM rerun, and a second task run after an md5 first write, must report changed=false and leave the
file byte-identical (the benchmark fails otherwise).
Prints the figures and writes bench/results/userlist.json.

  . scripts/env.sh && python bench/userlist/run.py [--users 1000] [--runs 3]
"""

import argparse
import datetime
import grp
import importlib.util
import json
import os
import pwd
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
MODULE = "ansible_collections.fediops.mastodon.plugins.modules.pgbouncer_userlist"
TARGETS = {"md5_first_write": 1.0, "scram_unchanged_rerun": 5.0}


def load_pg_secrets():
    spec = importlib.util.spec_from_file_location(
        "pg_secrets", os.path.join(TOP, "plugins", "module_utils", "pg_secrets.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seconds_between(start, end):
    parse = datetime.datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def run_task(params, work, env, baselines):
    """Seconds of the pgbouncer_userlist task and its `changed`, from one ansible-playbook run; the
    baseline ping task's seconds are appended to `baselines`."""
    extra = os.path.join(work, "vars.json")
    with open(extra, "w", encoding="utf-8") as handle:
        json.dump({"bench_%s" % key: value for key, value in params.items()}
                  | {"ansible_python_interpreter": sys.executable}, handle)
    res = subprocess.run(["ansible-playbook", "-i", "localhost,", os.path.join(HERE, "userlist.yml"), "-e", "@" + extra],
                         capture_output=True, text=True, env=env, cwd=TOP, check=False)
    if res.returncode != 0:
        sys.exit("ansible-playbook failed (%d):\n%s\n%s" % (res.returncode, res.stdout[-3000:], res.stderr[-2000:]))
    ping, task = json.loads(res.stdout[res.stdout.index("{"):])["plays"][0]["tasks"]
    baselines.append(seconds_between(ping["task"]["duration"]["start"], ping["task"]["duration"]["end"]))
    return seconds_between(task["task"]["duration"]["start"], task["task"]["duration"]["end"]), \
        task["hosts"]["localhost"]["changed"]


def run_module(params, work, env, cpu):
    """Wall seconds of one module process and its `changed`; its CPU seconds are appended to `cpu`."""
    args = os.path.join(work, "args.json")
    with open(args, "w", encoding="utf-8") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": params}, handle)
    usage, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    res = subprocess.run([sys.executable, "-m", MODULE, args], capture_output=True, text=True, env=env, check=False)
    seconds, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu.append(after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime)
    if res.returncode != 0:
        sys.exit("module failed (%d):\n%s\n%s" % (res.returncode, res.stdout[-2000:], res.stderr[-2000:]))
    return seconds, json.loads(res.stdout)["changed"]


def run_function(pg_secrets, params, text):
    started = time.perf_counter()
    after, added, changed, removed = pg_secrets.update_userlist(text, params["users"], params["auth_type"])
    return time.perf_counter() - started, after != text or bool(added or changed or removed)


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def measure(label, params, runs, work, env, pg_secrets, prepare):
    """prepare() puts the file in its starting state before every timed run; returns the figures."""
    path = params["path"]
    figures, baselines, cpu = {}, [], []
    for way in ("task", "module", "function"):
        times = []
        for _run in range(runs):
            text = prepare()
            if way == "task":
                seconds, changed = run_task(params, work, env, baselines)
            elif way == "module":
                seconds, changed = run_module(params, work, env, cpu)
            else:
                seconds, changed = run_function(pg_secrets, params, text)
            rerun = label.endswith("rerun")
            if changed == rerun or (rerun and read(path) != text.encode("utf-8")):
                sys.exit("%s (%s): changed=%s, or the file was altered" % (label, way, changed))
            times.append(round(seconds, 3))
        figures["%s_seconds_median" % way] = round(statistics.median(times), 3)
        figures["%s_seconds" % way] = times
    if label.endswith("first_write"):
        prepare()
        first_changed = run_task(params, work, env, [])[1]
        before = read(path)
        if not first_changed or run_task(params, work, env, [])[1] or read(path) != before:
            sys.exit("%s: the run after the first write reported changed or altered the file" % label)
        figures["rerun_unchanged"] = True
    figures["module_cpu_seconds_median"] = round(statistics.median(cpu), 3)
    figures["baseline_ping_task_seconds_median"] = round(statistics.median(baselines), 3)
    figures["target_seconds"] = TARGETS[label]
    for way in ("task", "module"):
        figures["target_met_%s" % way] = figures["%s_seconds_median" % way] < TARGETS[label]
    print("%-22s task %.3f s (a ping task: %.3f s)   module process %.3f s (%.3f s CPU)   update_userlist() %.3f s"
          "   (target < %.0f s: task %s, module %s)"
          % (label, figures["task_seconds_median"], figures["baseline_ping_task_seconds_median"],
             figures["module_seconds_median"], figures["module_cpu_seconds_median"], figures["function_seconds_median"],
             TARGETS[label], *("met" if figures["target_met_%s" % way] else "MISSED" for way in ("task", "module"))),
          flush=True)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per figure (median reported)")
    opts = parser.parse_args()
    pg_secrets = load_pg_secrets()
    load_before = os.getloadavg()[:1]
    collections = os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(TOP, ".cache", "collections"))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_PIPELINING="True",
               ANSIBLE_DIFF_ALWAYS="False", ANSIBLE_LOG_PATH="",
               PYTHONPATH=os.pathsep.join(filter(None, [collections.split(os.pathsep)[0], os.environ.get("PYTHONPATH")])))
    users = [{"name": "bench_user_%04d" % i, "password": "bench-only-password-%04d" % i} for i in range(opts.users)]
    owner = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    work = tempfile.mkdtemp(prefix="fediops-bench-userlist-")
    try:
        md5 = dict(path=os.path.join(work, "md5.txt"), auth_type="md5", users=users, owner=owner, group=group)

        def no_file():
            if os.path.exists(md5["path"]):
                os.unlink(md5["path"])
            return ""

        scram = dict(md5, path=os.path.join(work, "scram.txt"), auth_type="scram-sha-256")
        scram_text = pg_secrets.update_userlist("", users, "scram-sha-256")[0]

        def scram_file():
            with open(scram["path"], "w", encoding="utf-8") as handle:
                handle.write(scram_text)
            os.chmod(scram["path"], 0o640)
            return scram_text

        figures = {"md5_first_write": measure("md5_first_write", md5, opts.runs, work, env, pg_secrets, no_file),
                   "scram_unchanged_rerun": measure("scram_unchanged_rerun", scram, opts.runs, work, env, pg_secrets,
                                                    scram_file)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    from ansible.release import __version__ as ansible_core
    out = {"benchmark": "userlist", "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "python": sys.version.split()[0], "ansible_core": ansible_core, "cpus": os.cpu_count(),
           "load_average_before_after": [round(load, 2) for load in load_before + os.getloadavg()[:1]],
           "users": opts.users, "runs": opts.runs, "targets_seconds": TARGETS, "figures": figures,
           "note": "task = the pgbouncer_userlist task's duration in ansible-playbook against localhost "
                   "(ansible.posix.json callback); module = one module process; function = update_userlist() alone."}
    os.makedirs(os.path.join(TOP, "bench", "results"), exist_ok=True)
    path = os.path.join(TOP, "bench", "results", "userlist.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(out, handle, indent=2)
        handle.write("\n")
    print("written to %s" % path)


if __name__ == "__main__":
    main()
