"""PgBouncer capacity benchmark (not a test): figures for the pgbouncer role on a stand-in host.

Starts a throwaway container from fediops/mastodon-standin:<release>, applies the pgbouncer role
(site.yml: PgBouncer reaches PostgreSQL over its Unix socket, the role's default), then runs pgbench
inside the container, in the same run, over TCP (127.0.0.1) and over the Unix socket
(/var/run/postgresql), for select-only and TPC-B (writes):
  * TPS straight to PostgreSQL at several client counts (the best is reported);
  * TPS through PgBouncer at 100, 300 and 1000 clients;
  * the ratios pooled / best direct (of either transport), per transport and workload;
  * failed transactions and aborted clients of a writing (TPC-B) pgbench during 10 reloads.
Prints the figures and writes bench/results/pgbouncer_capacity[-<release>].json. The container is
removed at the end. --set NAME=VALUE passes role variables (e.g. pgbouncer_max_prepared_statements=0)
for a comparison run, and --out names its file.

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
# Direct: PostgreSQL allows 100 connections, so the curve stops below that. TPC-B updates 10 branch rows
# (scale 10), so its direct best comes at few clients; fewer points keep the run short.
DIRECT_CLIENTS = {"select-only": (1, 4, 8, 16, 32, 64, 90), "tpcb": (4, 8, 16, 32)}
POOLED_CLIENTS = {"select-only": (100, 300, 1000), "tpcb": (100, 1000)}
WORKLOAD_FLAGS = {"select-only": "-S", "tpcb": ""}
# Where pgbench connects: PostgreSQL listens on 5432 and PgBouncer on 6432, each on both.
TRANSPORTS = {"tcp": "127.0.0.1", "socket": "/var/run/postgresql"}


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


def pgbench(name, args, host, port):
    # PostgreSQL's own socket takes Mastodon's system user by peer (the role's pg_ident map), as Mastodon
    # would connect; every other path asks for the password.
    user = "cd /tmp && runuser -u mastodon -- " if host.startswith("/") and port == 5432 else ""
    res = inside(name, "%senv PGPASSWORD=%s pgbench -h %s -p %d -U mastodon %s mastodon_production"
                 % (user, shlex.quote(PASSWORD), host, port, args), check=False)
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


def measure(name, secs):
    """{workload: {"direct": {transport: {clients: result}}, "pooled": {...}}}, one workload after the other
    and, within it, TCP and the socket alternating at each client count, so that drift hits both alike."""
    figures = {}
    for workload, flag in WORKLOAD_FLAGS.items():
        figures[workload] = {"direct": {t: {} for t in TRANSPORTS}, "pooled": {t: {} for t in TRANSPORTS}}
        for kind, port, counts, jobs in (("direct", 5432, DIRECT_CLIENTS[workload], 2),
                                         ("pooled", 6432, POOLED_CLIENTS[workload], 4)):
            for clients in counts:
                for transport, host in TRANSPORTS.items():
                    args = "-n %s -c %d -j %d -T %d" % (flag, clients, min(jobs, clients), run_seconds(secs, clients))
                    figures[workload][kind][transport][clients] = pgbench(name, args, host, port)
    return figures


def summarise(figures):
    """Best direct TPS per transport and overall, and each pooled figure as a ratio of the overall best."""
    summary = {}
    for workload, data in figures.items():
        best = {}
        for transport, runs in data["direct"].items():
            good = [c for c in runs if runs[c]["tps"] and runs[c]["rc"] == 0]
            if good:
                top = max(good, key=lambda c, r=runs: r[c]["tps"])
                best[transport] = {"clients": top, "tps": runs[top]["tps"]}
        overall = max(best.values(), key=lambda b: b["tps"]) if best else None
        ratios = {}
        for transport, runs in data["pooled"].items():
            for clients, result in runs.items():
                ok = result["tps"] and result["rc"] == 0 and not result["aborted_clients"] and not result["failed"]
                ratios["%s_%d" % (transport, clients)] = round(result["tps"] / overall["tps"], 2) if ok and overall else None
        summary[workload] = {"direct_best": best, "direct_best_overall": overall,
                             "pooled_over_direct_best": ratios}
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="bookworm", choices=["bookworm", "trixie"])
    parser.add_argument("--seconds", type=int, default=5, help="length of each pgbench run")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a role variable for this run (repeatable), e.g. pgbouncer_max_prepared_statements=0")
    parser.add_argument("--out", help="result file name in bench/results (default pgbouncer_capacity[-trixie].json)")
    opts = parser.parse_args()
    extra = dict(item.split("=", 1) for item in opts.set)
    name = "fediops-bench-pgbouncer-%d" % os.getpid()
    sh([CONTAINER, "start", name, "fediops/mastodon-standin:%s" % opts.release])
    try:
        sh([CONTAINER, "wait", name, "120"])
        inside(name, "for i in $(seq 60); do systemctl is-active -q postgresql && break; sleep 1; done")
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as inv:
            inv.write("all:\n  hosts:\n    %s:\n      ansible_connection: community.docker.docker\n" % name)
            for key, value in extra.items():
                inv.write("      %s: %s\n" % (key, json.dumps(value)))
        started = time.time()
        sh(["ansible-playbook", "-i", inv.name, os.path.join(HERE, "site.yml")], cwd=TOP,
           env=dict(os.environ, ANSIBLE_ROLES_PATH=os.path.join(TOP, "roles")))
        os.unlink(inv.name)
        converge_s = round(time.time() - started, 1)
        versions = inside(name, "pgbouncer --version | head -1; psql --version; nproc").stdout.split("\n")
        connstr = inside(name, "grep '^mastodon_production = ' /etc/pgbouncer/pgbouncer.ini").stdout.strip()
        inside(name, "PGPASSWORD=%s pgbench -i -q -s 10 -h 127.0.0.1 -p 5432 -U mastodon mastodon_production"
               % shlex.quote(PASSWORD))
        secs = opts.seconds
        figures = measure(name, secs)
        over = pgbench(name, "-n -S -c 300 -j 2 -T 2", TRANSPORTS["tcp"], 5432)

        reload_script = (
            "out=$(mktemp -p /var/tmp); PGPASSWORD=%s pgbench -n -c 20 -j 2 -T 13 -h /var/run/postgresql -p 6432 "
            "-U mastodon mastodon_production >$out 2>&1 & b=$!; sleep 1; for i in $(seq 10); do systemctl reload "
            "pgbouncer; sleep 1; done; wait $b; echo RC=$?; cat $out" % shlex.quote(PASSWORD))
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

    summary = summarise(figures)
    result = {
        "benchmark": "pgbouncer_capacity",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "release": opts.release,
        "pgbouncer": versions[0].strip(),
        "postgresql": versions[1].strip(),
        "cpus": int(versions[2].strip()),
        "role_variables": extra,
        "pgbouncer_to_postgresql": connstr,
        "seconds_per_run": {str(c): run_seconds(secs, c)
                            for c in sorted(set(DIRECT_CLIENTS["select-only"] + POOLED_CLIENTS["select-only"]))},
        "role_converge_seconds": converge_s,
        "postgresql_max_connections": 100,
        "summary": summary,
        "runs": {w: {k: {t: {str(c): r for c, r in runs.items()} for t, runs in d.items()} for k, d in data.items()}
                 for w, data in figures.items()},
        "direct_300_clients": {"rc": over["rc"], "tail": over["tail"]},
        "reloads_under_tpcb_load": reloads,
        "too_many_open_files_in_log": fd_errors,
        "note": "pgbench and both servers share the container's CPUs with each other (and with other "
                "containers on this host): compare the figures with each other, not across machines.",
    }
    os.makedirs(os.path.join(TOP, "bench", "results"), exist_ok=True)
    out_name = opts.out or ("pgbouncer_capacity.json" if opts.release == "bookworm" else
                            "pgbouncer_capacity-%s.json" % opts.release)
    path = os.path.join(TOP, "bench", "results", out_name)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")
    print("PgBouncer capacity (%s, %s, %s, %d CPUs, runs of %ds + 1s per 40 clients%s)" % (
        opts.release, result["pgbouncer"], result["postgresql"], result["cpus"], secs,
        ", " + ", ".join("%s=%s" % kv for kv in extra.items()) if extra else ""))
    print("  %s" % connstr)
    for workload, data in figures.items():
        best = summary[workload]["direct_best"]
        print("  %s, direct best: %s" % (workload, ", ".join(
            "%s %.0f TPS at %d clients" % (t, b["tps"], b["clients"]) for t, b in best.items())))
        for transport, runs in data["direct"].items():
            print("    direct %-6s %s" % (transport, "  ".join(
                "%d:%s" % (c, "%.0f" % r["tps"] if r["tps"] else "err") for c, r in runs.items())))
        for transport, runs in data["pooled"].items():
            for clients, res in runs.items():
                print("    through PgBouncer, %-6s %4d clients: %s TPS, %s failed, %d aborted, %s x direct best" % (
                    transport, clients, "%.0f" % res["tps"] if res["tps"] else "none", res["failed"],
                    res["aborted_clients"], summary[workload]["pooled_over_direct_best"]["%s_%d" % (transport, clients)]))
    print("  direct 300 clients: exit %d (%s)" % (over["rc"], over["tail"][:100]))
    print("  10 reloads under TPC-B (20 clients, socket): %s failed, %d aborted, %s transactions" % (
        reloads["failed"], reloads["aborted_clients"], reloads["processed"]))
    print("  'Too many open files' in PgBouncer's log: %d" % fd_errors)
    print("written to %s" % path)


if __name__ == "__main__":
    main()
