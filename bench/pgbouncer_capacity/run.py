"""PgBouncer capacity benchmark (not a test): figures for the pgbouncer role on a stand-in host.

Starts a throwaway container from fediops/mastodon-standin:<release>, applies the pgbouncer role
(site.yml), then runs pgbench inside the container against 127.0.0.1 only:
  * select-only TPS straight to PostgreSQL at several client counts (its best is reported);
  * select-only TPS through PgBouncer at 100, 300 and 1000 clients;
  * failed transactions and aborted clients of a writing (TPC-B) pgbench during 10 reloads.
Prints the figures and writes bench/results/pgbouncer_capacity.json. The container is removed at the end.

  . scripts/env.sh && python bench/pgbouncer_capacity/run.py [--release bookworm] [--seconds 5]
"""

import argparse
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
CONTAINER = os.path.join(TOP, "scripts", "systemd-container.sh")
PASSWORD = "bench-only-password"
DIRECT_CLIENTS = (1, 4, 8, 16, 32, 64, 90)
POOLED_CLIENTS = (100, 300, 1000)


def sh(cmd, check=True, **kwargs):
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if check and res.returncode != 0:
        sys.exit("%s failed (%d):\n%s\n%s" % (" ".join(cmd), res.returncode, res.stdout[-2000:], res.stderr[-2000:]))
    return res


def inside(name, script, check=True):
    return sh(["docker", "exec", name, "bash", "-c", script], check=check)


def run_seconds(secs, clients):
    """Each client's SCRAM login costs CPU before its first transaction: longer runs for many clients,
    so that the TPS (which pgbench reports without the connection time) has transactions to count."""
    return secs + (clients + 39) // 40


def pgbench(name, args, port):
    res = inside(name, "PGPASSWORD=%s pgbench -h 127.0.0.1 -p %d -U mastodon %s mastodon_production"
                 % (shlex.quote(PASSWORD), port, args), check=False)
    out = res.stdout + res.stderr
    tps = re.search(r"tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)\)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    processed = re.search(r"number of transactions actually processed: (\d+)", out)
    return {
        "rc": res.returncode,
        "tps": float(tps.group(1)) if tps else None,
        "failed": int(failed.group(1)) if failed else None,
        "processed": int(processed.group(1)) if processed else None,
        "aborted_clients": len(set(re.findall(r"client (\d+) (?:script \d+ )?aborted", out))),
        "tail": out.strip().splitlines()[-1] if out.strip() else "",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="bookworm", choices=["bookworm", "trixie"])
    parser.add_argument("--seconds", type=int, default=5, help="length of each pgbench run")
    opts = parser.parse_args()
    name = "fediops-bench-pgbouncer-%d" % os.getpid()
    sh([CONTAINER, "start", name, "fediops/mastodon-standin:%s" % opts.release])
    try:
        sh([CONTAINER, "wait", name, "120"])
        inside(name, "for i in $(seq 60); do systemctl is-active -q postgresql && break; sleep 1; done")
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as inv:
            inv.write("all:\n  hosts:\n    %s:\n      ansible_connection: community.docker.docker\n" % name)
        started = time.time()
        sh(["ansible-playbook", "-i", inv.name, os.path.join(HERE, "site.yml")], cwd=TOP,
           env=dict(os.environ, ANSIBLE_ROLES_PATH=os.path.join(TOP, "roles")))
        os.unlink(inv.name)
        converge_s = round(time.time() - started, 1)
        versions = inside(name, "pgbouncer --version | head -1; psql --version; nproc").stdout.split("\n")
        inside(name, "PGPASSWORD=%s pgbench -i -q -s 10 -h 127.0.0.1 -p 5432 -U mastodon mastodon_production"
               % shlex.quote(PASSWORD))
        secs = opts.seconds

        direct = {}
        for clients in DIRECT_CLIENTS:
            direct[clients] = pgbench(name, "-n -S -c %d -j 2 -T %d" % (clients, run_seconds(secs, clients)), 5432)
        best_clients = max((c for c in direct if direct[c]["tps"]), key=lambda c: direct[c]["tps"])
        over = pgbench(name, "-n -S -c 300 -j 2 -T 2", 5432)

        pooled = {}
        for clients in POOLED_CLIENTS:
            pooled[clients] = pgbench(name, "-n -S -c %d -j 4 -T %d" % (clients, run_seconds(secs, clients)), 6432)

        reload_script = (
            "out=$(mktemp -p /var/tmp); PGPASSWORD=%s pgbench -n -c 20 -j 2 -T 13 -h 127.0.0.1 -p 6432 -U mastodon "
            "mastodon_production >$out 2>&1 & b=$!; sleep 1; for i in $(seq 10); do systemctl reload pgbouncer; "
            "sleep 1; done; wait $b; echo RC=$?; cat $out" % shlex.quote(PASSWORD))
        out = inside(name, reload_script, check=False).stdout
        reloads = {
            "reloads": 10,
            "rc": int(re.search(r"RC=(\d+)", out).group(1)),
            "failed": int(re.search(r"number of failed transactions: (\d+)", out).group(1))
            if "number of failed transactions" in out else None,
            "processed": int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
            if "actually processed" in out else None,
            "aborted_clients": len(set(re.findall(r"client (\d+) (?:script \d+ )?aborted", out))),
        }
        fd_errors = int(inside(name, "grep -c 'Too many open files' /var/log/postgresql/pgbouncer.log || true",
                               check=False).stdout.strip() or 0)
    finally:
        sh(["docker", "rm", "-f", name], check=False)

    result = {
        "benchmark": "pgbouncer_capacity",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "release": opts.release,
        "pgbouncer": versions[0].strip(),
        "postgresql": versions[1].strip(),
        "cpus": int(versions[2].strip()),
        "seconds_per_run": {str(c): run_seconds(secs, c) for c in DIRECT_CLIENTS + POOLED_CLIENTS},
        "role_converge_seconds": converge_s,
        "postgresql_max_connections": 100,
        "direct_select_only": {str(c): direct[c] for c in direct},
        "direct_best": {"clients": best_clients, "tps": direct[best_clients]["tps"]},
        "direct_300_clients": {"rc": over["rc"], "tail": over["tail"]},
        "pgbouncer_select_only": {str(c): pooled[c] for c in pooled},
        "reloads_under_tpcb_load": reloads,
        "too_many_open_files_in_log": fd_errors,
        "note": "pgbench and both servers share the container's CPUs with each other (and with other "
                "containers on this host): compare the figures with each other, not across machines.",
    }
    os.makedirs(os.path.join(TOP, "bench", "results"), exist_ok=True)
    path = os.path.join(TOP, "bench", "results", "pgbouncer_capacity.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")
    print("PgBouncer capacity (%s, %s, %s, %d CPUs, runs of %ds + 1s per 40 clients)" % (
        opts.release, result["pgbouncer"], result["postgresql"], result["cpus"], secs))
    print("  direct select-only, best: %.0f TPS at %d clients" % (direct[best_clients]["tps"], best_clients))
    for c in DIRECT_CLIENTS:
        print("    direct %4d clients: %s TPS" % (c, direct[c]["tps"]))
    print("  direct 300 clients: exit %d (%s)" % (over["rc"], over["tail"][:100]))
    for c in POOLED_CLIENTS:
        print("  through PgBouncer %4d clients: %s TPS, %s failed, %d aborted" % (
            c, pooled[c]["tps"], pooled[c]["failed"], pooled[c]["aborted_clients"]))
    print("  10 reloads under TPC-B (20 clients): %s failed, %d aborted, %s transactions" % (
        reloads["failed"], reloads["aborted_clients"], reloads["processed"]))
    print("  'Too many open files' in PgBouncer's log: %d" % fd_errors)
    print("written to %s" % path)


if __name__ == "__main__":
    main()
