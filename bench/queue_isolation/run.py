"""Queue isolation benchmark (not a test): how long `push` jobs wait while `default` is flooded.

Starts a throwaway container from fediops/mastodon-standin:<release> (real Redis, Debian's Sidekiq and
the fixture worker), then, in the same run:
  (a) single: the stand-in's one mastodon-sidekiq.service (-c 25, every queue, Mastodon's weights);
  (a') single_strict: the same process with the queues in strict order (-q default -q push ...), the
      behaviour the guide describes ("it first checks for tasks from the first queue");
  (b) split:  the sidekiq_queues role with the same 25 threads split by queue (split.yml).
For each: flood `default` with --flood jobs of --sleep-ms each, push one `push` job every
--interval-ms while `default` still has a backlog, and measure each push job's latency
(enqueued_at -> ran_at, as the fixture worker records it). Prints p50/p95 and their ratio, and writes
bench/results/queue_isolation.json. The container is removed at the end.

  . scripts/env.sh && python bench/queue_isolation/run.py [--release bookworm]
"""

import argparse
import datetime
import json
import os
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


def wait_registered(name, units):
    """Until each unit's MainPID is in Sidekiq's `processes` set in Redis."""
    script = ("for u in %s; do pid=$(systemctl show -p MainPID --value $u); [ \"$pid\" -gt 0 ] || exit 1; "
              "redis-cli --raw SMEMBERS processes | grep -q \":$pid:\" || exit 1; done" % " ".join(units))
    for _attempt in range(120):
        if inside(name, script, check=False).returncode == 0:
            return
        time.sleep(1)
    sys.exit("Sidekiq did not register: %s" % units)


def measure(name, label, opts):
    tag = "%s-%s" % (label, uuid.uuid4().hex[:8])
    # Start from empty queues and no stale registry entries, so both plans see the same work.
    inside(name, "redis-cli DEL queue:default queue:push >/dev/null")
    started = time.time()
    res = inside(name, "cd %s && runuser -u mastodon -- bundle exec ruby %s %s %d %d %d %d %d"
                 % (LIVE, PROBE, tag, opts.flood, opts.sleep_ms, opts.interval_ms, opts.max_probes, opts.timeout))
    wall = time.time() - started
    data = json.loads(res.stdout.strip().splitlines()[-1])
    latencies = [item["ran_at"] - item["enqueued_at"] for item in data["probes"]]
    if not latencies or data["timed_out"] or len(latencies) < data["probes_sent"]:
        sys.exit("%s: %d of %d push jobs ran, flood %d/%d, timed out: %s"
                 % (label, len(latencies), data["probes_sent"], data["flood_ran"], data["flood"], data["timed_out"]))
    pids = sorted({item["pid"] for item in data["probes"]})
    return {
        "push_jobs": len(latencies),
        "push_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "push_p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "push_max_ms": round(max(latencies) * 1000, 1),
        "push_ran_in_pids": pids,
        "default_backlog_after_probes": data["default_backlog_after_probes"],
        "flood_jobs_ran": data["flood_ran"],
        "wall_seconds": round(wall, 1),
        "sidekiq_version": data["sidekiq_version"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="bookworm", choices=["bookworm", "trixie"])
    parser.add_argument("--flood", type=int, default=5000, help="jobs pushed to default")
    parser.add_argument("--sleep-ms", type=int, default=5, help="duration of each flood job")
    parser.add_argument("--interval-ms", type=int, default=50, help="gap between push probes")
    parser.add_argument("--max-probes", type=int, default=200)
    parser.add_argument("--timeout", type=int, default=600, help="seconds each measurement may take")
    opts = parser.parse_args()
    name = "fediops-bench-queue-isolation-%d" % os.getpid()
    sh([CONTAINER, "start", name, "fediops/mastodon-standin:%s" % opts.release])
    try:
        sh([CONTAINER, "wait", name, "120"])
        with open(os.path.join(HERE, "probe.rb"), encoding="utf-8") as handle:
            inside(name, "cat > %s && chmod 0644 %s" % (PROBE, PROBE), stdin=handle.read())

        wait_registered(name, ["mastodon-sidekiq.service"])
        single = measure(name, "single", opts)

        inside(name, "mkdir -p /etc/systemd/system/mastodon-sidekiq.service.d && cat > %s && "
                     "systemctl daemon-reload && systemctl restart mastodon-sidekiq.service" % STRICT_DROPIN,
               stdin=STRICT_UNIT)
        wait_registered(name, ["mastodon-sidekiq.service"])
        single_strict = measure(name, "strict", opts)
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
        split = measure(name, "split", opts)
        push_pid = int(inside(name, "systemctl show -p MainPID --value mastodon-sidekiq@push.service").stdout)
        split["push_ran_only_in_push_process"] = split["push_ran_in_pids"] == [push_pid]
    finally:
        sh(["docker", "rm", "-f", name], check=False)

    result = {
        "benchmark": "queue_isolation",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "release": opts.release,
        "flood": {"queue": "default", "jobs": opts.flood, "sleep_ms": opts.sleep_ms},
        "probe": {"queue": "push", "interval_ms": opts.interval_ms, "max": opts.max_probes},
        "single": dict(single, plan="mastodon-sidekiq.service: -c 25, every queue (config/sidekiq.yml weights)"),
        "single_strict": dict(single_strict, plan="mastodon-sidekiq.service: -c 25, every queue in strict order"),
        "split": dict(split, plan="default 15, push 5, pull+ingress+fasp 3, mailers+scheduler 2 threads",
                      role_converge_seconds=round(converge, 1)),
        "ratio_p50": round(single["push_p50_ms"] / max(split["push_p50_ms"], 0.1), 1),
        "ratio_p95": round(single["push_p95_ms"] / max(split["push_p95_ms"], 0.1), 1),
        "ratio_strict_p50": round(single_strict["push_p50_ms"] / max(split["push_p50_ms"], 0.1), 1),
        "ratio_strict_p95": round(single_strict["push_p95_ms"] / max(split["push_p95_ms"], 0.1), 1),
    }
    os.makedirs(os.path.join(TOP, "bench", "results"), exist_ok=True)
    out = os.path.join(TOP, "bench", "results", "queue_isolation.json")
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")
    print("queue isolation (%s, Sidekiq %s): %d default jobs of %d ms, push probes every %d ms"
          % (opts.release, single["sidekiq_version"], opts.flood, opts.sleep_ms, opts.interval_ms))
    for label in ("single", "single_strict", "split"):
        r = result[label]
        print("  %-13s push p50 %8.1f ms  p95 %8.1f ms  max %8.1f ms  (%d push jobs, default backlog %d when probing stopped)"
              % (label, r["push_p50_ms"], r["push_p95_ms"], r["push_max_ms"], r["push_jobs"],
                 r["default_backlog_after_probes"]))
    print("  ratio single/split: p50 %.1fx, p95 %.1fx" % (result["ratio_p50"], result["ratio_p95"]))
    print("  ratio single_strict/split: p50 %.1fx, p95 %.1fx" % (result["ratio_strict_p50"], result["ratio_strict_p95"]))
    print("wrote %s" % out)


if __name__ == "__main__":
    main()
