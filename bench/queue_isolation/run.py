"""Queue isolation benchmark (not a test): how long `push` jobs wait while `default` is flooded.

Starts a throwaway container from fediops/mastodon-standin:<release> (real Redis, Debian's Sidekiq and
the fixture worker), then, in the same run, for three plans with the same 25 threads:
  single:        the stand-in's one mastodon-sidekiq.service (-c 25, every queue, Mastodon's weights);
  single_strict: the same process with the queues in strict order (-q default -q push ...), the
                 behaviour the guide describes ("it first checks for tasks from the first queue");
  split:         the sidekiq_queues role, the 25 threads split by queue (split.yml).
Each plan is measured three ways, pushing one `push` job every --interval-ms and measuring each push
job's latency (enqueued_at -> ran_at, as the fixture worker records it):
  idle:        nothing else queued (--idle-probes probes): the baseline;
  long flood:  `default` flooded with --long-jobs jobs of --long-sleep-ms each, enough to keep every
               thread that serves `default` busy for the whole probe window (the headline: the case the
               scaling guide is about, long jobs holding every thread);
  short flood: `default` flooded with --short-jobs jobs of --short-sleep-ms each (threads free up every
               few milliseconds).
During a flood the probes stop after --max-probes or when `default` has no backlog left. Whether the
flood held every thread is checked from what ran: Sidekiq's heartbeat (`busy` of the processes serving
`default`), the fixture's records (flood jobs running when each probe was pushed), and the backlog
`default` still had when the probes ended. Prints p50/p95/max, each plan's long-flood p95 over its idle
p95, and writes bench/results/queue_isolation.json. The container is removed at the end.

  . scripts/env.sh && python bench/queue_isolation/run.py [--release bookworm]
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
CONTAINER = os.path.join(TOP, "scripts", "systemd-container.sh")
LIVE = "/home/mastodon/live"
PROBE = "/home/mastodon/bench-queue-isolation-probe.rb"
STRICT_DROPIN = "/etc/systemd/system/mastodon-sidekiq.service.d/bench-strict.conf"
STRICT_UNIT = ("[Service]\nExecStart=\nExecStart=/usr/bin/bundle exec sidekiq -c 25 -q default -q push -q ingress "
               "-q mailers -q pull -q scheduler -q fasp\n")
PLANS = {
    "single": "mastodon-sidekiq.service: -c 25, every queue (config/sidekiq.yml weights)",
    "single_strict": "mastodon-sidekiq.service: -c 25, every queue in strict order",
    "split": "default 15, push 5, pull+ingress+fasp 3, mailers+scheduler 2 threads",
}
# Issue 16's targets for the long flood (figures to compare with, not assertions).
TARGETS = {"split_at_most": 2.0, "single_at_least": 100.0}


def sh(cmd, check=True, **kwargs):
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if check and res.returncode != 0:
        sys.exit("%s failed (%d):\n%s\n%s" % (" ".join(cmd), res.returncode, res.stdout[-3000:], res.stderr[-3000:]))
    return res


def inside(name, script, check=True, stdin=None):
    return sh(["docker", "exec", "-i", name, "bash", "-c", script], check=check, input=stdin)


def percentile(values, pct):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def ratio(num, den):
    return round(num / max(den, 0.1), 1)


def wait_registered(name, units):
    """Until each unit's MainPID is in Sidekiq's `processes` set in Redis."""
    script = ("for u in %s; do pid=$(systemctl show -p MainPID --value $u); [ \"$pid\" -gt 0 ] || exit 1; "
              "redis-cli --raw SMEMBERS processes | grep -q \":$pid:\" || exit 1; done" % " ".join(units))
    for _attempt in range(120):
        if inside(name, script, check=False).returncode == 0:
            return
        time.sleep(1)
    sys.exit("Sidekiq did not register: %s" % units)


def measure(name, label, workload, opts):
    """One probe run; workload is (jobs, sleep_ms, max_probes, warmup_ms), jobs 0 for the idle baseline."""
    jobs, sleep_ms, max_probes, warmup_ms = workload
    tag = "%s-%s" % (label, uuid.uuid4().hex[:8])
    # Start from empty queues and records, so every plan sees the same work.
    inside(name, "redis-cli DEL queue:default queue:push fixture:ran fixture:done >/dev/null")
    started = time.time()
    res = inside(name, "cd %s && runuser -u mastodon -- bundle exec ruby %s %s %d %d %d %d %d %d"
                 % (LIVE, PROBE, tag, jobs, sleep_ms, opts.interval_ms, max_probes, opts.timeout, warmup_ms))
    wall = time.time() - started
    data = json.loads(res.stdout.strip().splitlines()[-1])
    latencies = [item["ran_at"] - item["enqueued_at"] for item in data["probes"]]
    if not latencies or data["timed_out"] or len(latencies) < data["probes_sent"]:
        sys.exit("%s: %d of %d push jobs ran, flood %d/%d done, timed out: %s"
                 % (label, len(latencies), data["probes_sent"], data["flood_done"], data["flood"], data["timed_out"]))
    result = {
        "push_jobs": len(latencies),
        "push_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "push_p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "push_max_ms": round(max(latencies) * 1000, 1),
        "push_ran_in_pids": sorted({item["pid"] for item in data["probes"]}),
        "probe_window_seconds": round(data["probes_ended"] - data["probes_started"], 1),
        "wall_seconds": round(wall, 1),
        "sidekiq_version": data["sidekiq_version"],
    }
    if jobs:
        running = data["flood_running_at_probes"]
        threads = data["default_threads"]
        busy = [beat["busy"] for beat in data["sidekiq_busy_during_probes"]]
        result.update({
            "default_threads": threads,
            "default_backlog_after_probes": data["default_backlog_after_probes"],
            "flood_jobs_done": data["flood_done"],
            "flood_running_at_probes_min": min(running),
            "flood_running_at_probes_median": statistics.median(running),
            "probes_with_every_default_thread_on_flood": round(sum(1 for n in running if n >= threads) / len(running), 3),
            "sidekiq_busy_heartbeats": busy,
            # Held: `default` still had a backlog when the probes ended, and every heartbeat taken during
            # the probes saw all of its threads busy.
            "every_default_thread_held": bool(data["default_backlog_after_probes"] > 0 and busy
                                              and min(busy) >= threads),
        })
    return result


def measure_plan(name, label, opts):
    return {
        "plan": PLANS[label],
        "idle": measure(name, label + "-idle", (0, 0, opts.idle_probes, 0), opts),
        "long_flood": measure(name, label + "-long",
                              (opts.long_jobs, opts.long_sleep_ms, opts.max_probes, opts.warmup_ms), opts),
        "short_flood": measure(name, label + "-short", (opts.short_jobs, opts.short_sleep_ms, opts.max_probes, 0), opts),
    }


def summary(result):
    plans = [result[label] for label in PLANS]
    single, strict, split = plans
    idle = {label: result[label]["idle"]["push_p95_ms"] for label in PLANS}
    long_p95 = {label: result[label]["long_flood"]["push_p95_ms"] for label in PLANS}
    over_idle = {label: ratio(long_p95[label], idle[label]) for label in PLANS}
    return {
        "idle_p95_ms": idle,
        "long_flood_p95_ms": long_p95,
        "long_flood_p95_over_idle_p95": over_idle,
        "long_flood_every_default_thread_held": {label: result[label]["long_flood"]["every_default_thread_held"]
                                                 for label in PLANS},
        "targets": {"split_long_over_idle_p95_at_most": TARGETS["split_at_most"],
                    "single_long_over_idle_p95_at_least": TARGETS["single_at_least"]},
        "targets_met": {"split": over_idle["split"] <= TARGETS["split_at_most"],
                        "single": over_idle["single"] >= TARGETS["single_at_least"]},
        "long_flood_p95_single_over_split": ratio(long_p95["single"], long_p95["split"]),
        "long_flood_p95_strict_over_split": ratio(long_p95["single_strict"], long_p95["split"]),
        "short_flood_p50_single_over_split": ratio(single["short_flood"]["push_p50_ms"], split["short_flood"]["push_p50_ms"]),
        "short_flood_p95_single_over_split": ratio(single["short_flood"]["push_p95_ms"], split["short_flood"]["push_p95_ms"]),
        "short_flood_p50_strict_over_split": ratio(strict["short_flood"]["push_p50_ms"], split["short_flood"]["push_p50_ms"]),
        "short_flood_p95_strict_over_split": ratio(strict["short_flood"]["push_p95_ms"], split["short_flood"]["push_p95_ms"]),
    }


def report(result, opts):
    print("queue isolation (%s, Sidekiq %s, %.0f s): push probes every %d ms"
          % (opts.release, result["sidekiq_version"], result["wall_seconds"], opts.interval_ms))
    runs = (("idle", "idle (%d probes, nothing else queued)" % opts.idle_probes),
            ("long_flood", "long flood (%d default jobs of %d ms)" % (opts.long_jobs, opts.long_sleep_ms)),
            ("short_flood", "short flood (%d default jobs of %d ms)" % (opts.short_jobs, opts.short_sleep_ms)))
    for key, title in runs:
        print("  %s" % title)
        for label in PLANS:
            run = result[label][key]
            line = ("    %-13s push p50 %8.1f ms  p95 %8.1f ms  max %8.1f ms  (%d push jobs in %.1f s"
                    % (label, run["push_p50_ms"], run["push_p95_ms"], run["push_max_ms"], run["push_jobs"],
                       run["probe_window_seconds"]))
            if key != "idle":
                line += ("; default: %d threads, backlog %d when probing stopped, busy heartbeats %s, flood jobs "
                         "running at probes min %d median %g"
                         % (run["default_threads"], run["default_backlog_after_probes"], run["sidekiq_busy_heartbeats"],
                            run["flood_running_at_probes_min"], run["flood_running_at_probes_median"]))
            print(line + ")")
    head = result["summary"]
    print("  long flood p95 / idle p95: " + ", ".join(
        "%s %.1fx" % (label, head["long_flood_p95_over_idle_p95"][label]) for label in PLANS)
        + " (targets: split <= %gx, single >= %gx)" % (TARGETS["split_at_most"], TARGETS["single_at_least"]))
    print("  long flood held every default thread: %s" % ", ".join(
        "%s %s" % (label, head["long_flood_every_default_thread_held"][label]) for label in PLANS))
    print("  long flood p95 single/split %.1fx, strict/split %.1fx"
          % (head["long_flood_p95_single_over_split"], head["long_flood_p95_strict_over_split"]))
    print("  short flood single/split: p50 %.1fx, p95 %.1fx; strict/split: p50 %.1fx, p95 %.1fx"
          % (head["short_flood_p50_single_over_split"], head["short_flood_p95_single_over_split"],
             head["short_flood_p50_strict_over_split"], head["short_flood_p95_strict_over_split"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="bookworm", choices=["bookworm", "trixie"])
    parser.add_argument("--interval-ms", type=int, default=50, help="gap between push probes")
    parser.add_argument("--max-probes", type=int, default=200, help="push probes per flood at most")
    parser.add_argument("--idle-probes", type=int, default=100, help="push probes of the idle baseline")
    parser.add_argument("--long-jobs", type=int, default=400,
                        help="long jobs pushed to default (enough for 25 threads to outlast the probe window)")
    parser.add_argument("--long-sleep-ms", type=int, default=1000, help="duration of each long flood job")
    parser.add_argument("--warmup-ms", type=int, default=200,
                        help="pause between the long flood and the first probe, so the threads hold a flood job")
    parser.add_argument("--short-jobs", type=int, default=5000, help="short jobs pushed to default")
    parser.add_argument("--short-sleep-ms", type=int, default=5, help="duration of each short flood job")
    parser.add_argument("--timeout", type=int, default=600, help="seconds each measurement may take")
    opts = parser.parse_args()
    name = "fediops-bench-queue-isolation-%d" % os.getpid()
    run_started = time.time()
    sh([CONTAINER, "start", name, "fediops/mastodon-standin:%s" % opts.release])
    try:
        sh([CONTAINER, "wait", name, "120"])
        with open(os.path.join(HERE, "probe.rb"), encoding="utf-8") as handle:
            inside(name, "cat > %s && chmod 0644 %s" % (PROBE, PROBE), stdin=handle.read())

        wait_registered(name, ["mastodon-sidekiq.service"])
        single = measure_plan(name, "single", opts)

        inside(name, "mkdir -p /etc/systemd/system/mastodon-sidekiq.service.d && cat > %s && "
                     "systemctl daemon-reload && systemctl restart mastodon-sidekiq.service" % STRICT_DROPIN,
               stdin=STRICT_UNIT)
        wait_registered(name, ["mastodon-sidekiq.service"])
        single_strict = measure_plan(name, "single_strict", opts)
        inside(name, "rm %s && systemctl daemon-reload && systemctl restart mastodon-sidekiq.service" % STRICT_DROPIN)
        wait_registered(name, ["mastodon-sidekiq.service"])

        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as inv:
            inv.write("all:\n  hosts:\n    %s:\n      ansible_connection: community.docker.docker\n" % name)
        started = time.time()
        sh(["ansible-playbook", "-i", inv.name, os.path.join(HERE, "split.yml")], cwd=TOP)
        converge = time.time() - started
        os.unlink(inv.name)
        units = ["mastodon-sidekiq@%s.service" % n for n in ("default", "push", "pull", "mailers")]
        wait_registered(name, units)
        split = measure_plan(name, "split", opts)
        push_pid = int(inside(name, "systemctl show -p MainPID --value mastodon-sidekiq@push.service").stdout)
        split["role_converge_seconds"] = round(converge, 1)
        split["push_ran_only_in_push_process"] = all(
            split[key]["push_ran_in_pids"] == [push_pid] for key in ("idle", "long_flood", "short_flood"))
    finally:
        sh(["docker", "rm", "-f", name], check=False)

    result = {
        "benchmark": "queue_isolation",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "release": opts.release,
        "sidekiq_version": single["idle"]["sidekiq_version"],
        "wall_seconds": round(time.time() - run_started, 1),
        "probe": {"queue": "push", "interval_ms": opts.interval_ms, "max_per_flood": opts.max_probes,
                  "idle": opts.idle_probes},
        "long_flood": {"queue": "default", "jobs": opts.long_jobs, "sleep_ms": opts.long_sleep_ms,
                       "warmup_ms": opts.warmup_ms},
        "short_flood": {"queue": "default", "jobs": opts.short_jobs, "sleep_ms": opts.short_sleep_ms},
        "single": single,
        "single_strict": single_strict,
        "split": split,
    }
    result["summary"] = summary(result)
    os.makedirs(os.path.join(TOP, "bench", "results"), exist_ok=True)
    out = os.path.join(TOP, "bench", "results", "queue_isolation.json")
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")
    report(result, opts)
    print("wrote %s" % out)


if __name__ == "__main__":
    main()
