"""PgBouncer capacity benchmark (not a test): figures for the pgbouncer role on a stand-in host.

Starts a throwaway container from fediops/mastodon-standin:<release>, applies the pgbouncer role
(site.yml: PgBouncer reaches PostgreSQL over its Unix socket, the role's default), then runs pgbench
inside the container, in the same run, over TCP (127.0.0.1) and over the Unix socket
(/var/run/postgresql), for select-only and TPC-B (writes):
  * TPS straight to PostgreSQL at several client counts (the best is reported);
  * TPS through PgBouncer at 100, 300 and 1000 clients;
  * TPS straight to PostgreSQL at 300 and 1000 clients with max_connections raised to fit (1100), the
    operator's alternative to a pool (PostgreSQL is restarted for it, and again to put 100 back);
  * the ratios pooled / best direct (of either transport: the limit of the machine) and pooled / raised
    max_connections at the same client count and transport (the alternative), per workload;
  * failed transactions and aborted clients of a writing (TPC-B) pgbench during 10 reloads.
Every run records its failed transactions and aborted clients, the load average of the machine before and
after it (the machine is shared, and a run's own busy backends count in it too), and the memory of
PostgreSQL's processes (and PgBouncer's) sampled once from the host, halfway through the transactions
(pgbench's -T counts the logins too, so each run gets room for them; one whose logins took longer than
planned runs again with more). From /proc/<pid>/smaps_rollup: Private_Clean+Private_Dirty (private_mb,
the figure quoted: what the connections cost, which ends with the backends) and Pss (pss_mb, the whole
footprint, shared_buffers shared out among the processes that touched it); from status, VmPTE (page
tables: kernel memory that smaps leaves out and that each backend mapping shared memory adds).
Prints the figures and writes bench/results/pgbouncer_capacity[-<release>].json. The container is
removed at the end. --set NAME=VALUE passes role variables (e.g. pgbouncer_max_prepared_statements=0)
for a comparison run, and --out names its file.

  . scripts/env.sh && python bench/pgbouncer_capacity/run.py [--release bookworm] [--seconds 6] [--workload tpcb]
"""

import argparse
import datetime
import json
import math
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
# Direct: PostgreSQL allows 100 connections, so the curve stops below that; its best comes at 16 to 32
# clients on 2 CPUs. TPC-B updates 10 branch rows (scale 10), so its direct best comes at few clients;
# fewer points keep the run short.
DIRECT_CLIENTS = {"select-only": (4, 8, 16, 32, 64), "tpcb": (4, 8, 16, 32)}
POOLED_CLIENTS = {"select-only": (100, 300, 1000), "tpcb": (100, 300, 1000)}
# The alternative: every client straight to PostgreSQL, max_connections raised so that they all fit.
ALTERNATIVE_CLIENTS = (300, 1000)
ALTERNATIVE_MAX_CONNECTIONS = 1100
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


# Seconds per login seen on these 2 loaded CPUs: a PostgreSQL backend forked and a SCRAM exchange over TCP,
# the fork alone over PostgreSQL's socket (peer), PgBouncer's SCRAM in its one process. They size the first
# run of each path; later runs of the path go by the slowest rate seen so far in this run (with a margin),
# as the machine's load changes: the logins of 1,000 clients straight to PostgreSQL over TCP took 27 to 89 s.
LOGIN_SECONDS = {("direct", "tcp"): 0.045, ("direct", "socket"): 0.015,
                 ("pooled", "tcp"): 0.008, ("pooled", "socket"): 0.008}


def login_path(kind, transport):
    return ("pooled" if kind == "pooled" else "direct", transport)


def run_seconds(window, clients, per_login):
    """pgbench's -T counts from before the logins (when they take longer, it ends with no transaction), and
    the TPS it reports leaves them out: room for the logins, then `window` seconds of transactions."""
    return window + 1 + math.ceil(clients * per_login)


def login_seconds(result):
    """How long the logins of a run took: pgbench's figure, or, when -T ran out before they were done (no
    transaction, no figure), the time of its first progress line."""
    return result["connection_seconds"] or result.get("first_progress_second")


def loadavg():
    with open("/proc/loadavg", encoding="ascii") as handle:
        return [float(x) for x in handle.read().split()[:3]]


def parse_pgbench(out):
    """The figures of one pgbench run from its output (progress lines included)."""
    tps = re.search(r"tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)\)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    processed = re.search(r"number of transactions actually processed: (\d+)", out)
    connect = re.search(r"initial connection time = ([0-9.]+) ms", out)
    return {
        "tps": float(tps.group(1)) if tps else None,
        "failed": int(failed.group(1)) if failed else None,
        "processed": int(processed.group(1)) if processed else None,
        "aborted_clients": len(set(re.findall(r"client (\d+) (?:script \d+ )?aborted", out))),
        "connection_seconds": round(float(connect.group(1)) / 1000, 1) if connect else None,
        "tail": out.strip().splitlines()[-1] if out.strip() else "",
    }


def progress_second(line):
    """The time of a pgbench -P line ("progress: 14.5 s, ..."), None for any other line."""
    match = re.match(r"progress: ([0-9.]+) s,", line)
    return float(match.group(1)) if match else None


PROGRAMS = ("postgres", "pgbouncer")


def memory_of(processes):
    """{program: {processes, private_mb, pss_mb, page_tables_mb}} from [(program, smaps_rollup text, status
    text)], one entry per process (None texts: it ended before it was read, and is left out whole)."""
    result = {}
    for program in PROGRAMS:
        kib = {"Private_Clean": 0, "Private_Dirty": 0, "Pss": 0, "VmPTE": 0}
        read = 0
        for prog, smaps, status in processes:
            if prog != program or smaps is None or status is None:
                continue
            read += 1
            for line in (smaps + status).splitlines():
                match = re.match(r"(\w+):\s+(\d+) kB", line)
                if match and match.group(1) in kib:
                    kib[match.group(1)] += int(match.group(2))
        result[program] = {
            "processes": read,
            "private_mb": round((kib["Private_Clean"] + kib["Private_Dirty"]) / 1024, 1),
            "pss_mb": round(kib["Pss"] / 1024, 1),
            "page_tables_mb": round(kib["VmPTE"] / 1024, 1),
        }
    return result


def read_proc_file(path):
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read()
    except OSError:
        return None


def read_proc(pid, item):
    return read_proc_file("/proc/%s/%s" % (pid, item))


def container_cgroup(name):
    """The folder of the container's cgroup that holds every process of it (its systemd's units below it), in
    the pids hierarchy of cgroup v1 or in the unified one of v2."""
    inspect = sh(["docker", "inspect", "-f", "{{.Id}} {{.State.Pid}}", name]).stdout.split()
    cid, init = inspect[0], inspect[1]
    lines = dict(line.split(":", 2)[1:] for line in read_proc(init, "cgroup").splitlines())
    base, path = ("/sys/fs/cgroup/pids", lines["pids"]) if "pids" in lines else ("/sys/fs/cgroup", lines[""])
    parts = path.strip("/").split("/")
    return os.path.join(base, *parts[:[i for i, part in enumerate(parts) if cid in part][0] + 1])


def sample_memory(cgroup):
    """The container's postgres and pgbouncer processes, read from the host. Inside the container, a reader
    shares the container's CPU group with 1000 busy backends and took longer than the rest of the run; and
    the host's root, unlike the container's (no CAP_SYS_PTRACE), may read other users' maps."""
    pids = []
    for folder, _subdirs, files in os.walk(cgroup):
        if "cgroup.procs" in files:
            pids += (read_proc_file(os.path.join(folder, "cgroup.procs")) or "").split()
    chosen = [(pid, (read_proc(pid, "comm") or "").strip()) for pid in pids]
    chosen = [(pid, comm) for pid, comm in chosen if comm in PROGRAMS]
    result = memory_of([(comm, read_proc(pid, "smaps_rollup"), read_proc(pid, "status")) for pid, comm in chosen])
    for program in PROGRAMS:
        result[program]["seen"] = sum(1 for _pid, comm in chosen if comm == program)
    return result


def pgbench(name, args, host, port, seconds):
    """One pgbench run, with the memory sampled halfway through its transactions: the first progress line
    comes when the logins are done, and the run ends at -T seconds."""
    # PostgreSQL's own socket takes Mastodon's system user by peer (the role's pg_ident map), as Mastodon
    # would connect; every other path asks for the password.
    user = "cd /tmp && runuser -u mastodon -- " if host.startswith("/") and port == 5432 else ""
    before = loadavg()
    proc = subprocess.Popen(
        ["docker", "exec", name, "bash", "-c", "%senv PGPASSWORD=%s pgbench -P 1 -h %s -p %d -U mastodon %s "
         "-T %d mastodon_production 2>&1" % (user, shlex.quote(PASSWORD), host, port, args, seconds)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, first, memory = [], None, None
    for line in proc.stdout:
        lines.append(line)
        second = progress_second(line)
        if second is None or memory is not None:
            continue
        first = second if first is None else first
        if second >= (first + seconds) / 2:
            memory = sample_memory(container_cgroup(name))
            memory["at_second"] = second
    proc.wait()
    result = {"rc": proc.returncode, "seconds": seconds, "first_progress_second": first}
    result.update(parse_pgbench("".join(lines)))
    result["memory"] = memory
    result["loadavg_before"] = before
    result["loadavg_after"] = loadavg()
    return result


def postgresql(name, sql):
    return inside(name, "cd /tmp && runuser -u postgres -- psql -XtAq -c %s" % shlex.quote(sql)).stdout.strip()


def set_max_connections(name, value):
    """Restart PostgreSQL with max_connections = value (None: the default back) when it differs.
    PgBouncer's server connections end with it; PgBouncer opens new ones for the next clients."""
    want = str(value or 100)
    if postgresql(name, "SHOW max_connections") == want:
        return
    postgresql(name, "ALTER SYSTEM SET max_connections = %d" % value if value else "ALTER SYSTEM RESET max_connections")
    inside(name, "systemctl restart postgresql && for i in $(seq 60); do runuser -u postgres -- pg_isready -q "
           "&& break; sleep 0.5; done")
    got = postgresql(name, "SHOW max_connections")
    if got != want:
        sys.exit("max_connections is %s after the restart, not %s" % (got, want))


def measure(name, secs, workloads):
    """{workload: {"direct": {transport: {clients: result}}, "pooled": {...}, "alternative": {...}}}, one
    workload after the other and, within it, TCP and the socket alternating at each client count, so that
    drift hits both alike. Each alternative run sits beside the pooled run of the same client count (300:
    pooled then direct; 1000: direct then pooled), with two PostgreSQL restarts per workload."""
    figures = {}
    per_login = dict(LOGIN_SECONDS)
    for workload in workloads:
        flag = WORKLOAD_FLAGS[workload]
        figures[workload] = {kind: {t: {} for t in TRANSPORTS} for kind in ("direct", "pooled", "alternative")}
        steps = [("direct", c) for c in DIRECT_CLIENTS[workload]]
        steps += [("pooled", c) for c in POOLED_CLIENTS[workload] if c < max(ALTERNATIVE_CLIENTS)]
        steps += [("alternative", c) for c in ALTERNATIVE_CLIENTS]
        steps += [("pooled", c) for c in POOLED_CLIENTS[workload] if c >= max(ALTERNATIVE_CLIENTS)]
        for kind, clients in steps:
            set_max_connections(name, ALTERNATIVE_MAX_CONNECTIONS if kind == "alternative" else None)
            port, jobs = (6432, 4) if kind == "pooled" else (5432, 2 if kind == "direct" else 4)
            for transport, host in TRANSPORTS.items():
                args = "-n %s -c %d -j %d" % (flag, clients, min(jobs, clients))
                path = login_path(kind, transport)
                res = pgbench(name, args, host, port, run_seconds(secs, clients, per_login[path]))
                if short_window(res, secs):
                    # The logins took longer than the machine's load let us plan for: once more, with room.
                    retry = pgbench(name, args, host, port, math.ceil(login_seconds(res) * 1.3) + secs + 1)
                    retry["short_first_try"] = {k: res[k] for k in ("seconds", "connection_seconds",
                                                                    "first_progress_second", "tps")}
                    res = retry
                if login_seconds(res) and clients >= 100:
                    per_login[path] = max(per_login[path], 1.3 * login_seconds(res) / clients)
                figures[workload][kind][transport][clients] = res
                print("  %s %s %s %d clients: %s TPS, %s failed, %d aborted, PostgreSQL %s MB private, load %s"
                      % (workload, kind, transport, clients, res["tps"], res["failed"], res["aborted_clients"],
                         private_mb(res), res["loadavg_after"][0]), file=sys.stderr, flush=True)
        set_max_connections(name, None)
    return figures


def short_window(result, window):
    """True when the logins left less than three quarters of `window` seconds of transactions."""
    login = login_seconds(result)
    return result["rc"] == 0 and login is not None and (not result["processed"] or
                                                        result["seconds"] - login < 0.75 * window)


def clean(result):
    return bool(result["tps"]) and result["rc"] == 0 and not result["aborted_clients"] and not result["failed"]


def private_mb(result, program="postgres"):
    return ((result.get("memory") or {}).get(program) or {}).get("private_mb")


def summarise(figures):
    """Per workload: the best direct TPS per transport and overall (the limit), each pooled figure as a ratio
    of it, and each pooled figure against the alternative at the same client count and transport (TPS, and
    PostgreSQL's private memory). A ratio is None where either run failed a transaction or lost a client."""
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
                ratios["%s_%d" % (transport, clients)] = (round(result["tps"] / overall["tps"], 2)
                                                          if clean(result) and overall else None)
        alternative = {}
        for transport, runs in data["alternative"].items():
            for clients, direct in runs.items():
                pooled = data["pooled"][transport].get(clients)
                if pooled is None:
                    continue
                pooled_mem, direct_mem = private_mb(pooled), private_mb(direct)
                alternative["%s_%d" % (transport, clients)] = {
                    "pooled_tps": pooled["tps"], "direct_tps": direct["tps"],
                    "pooled_failed": pooled["failed"], "direct_failed": direct["failed"],
                    "pooled_aborted_clients": pooled["aborted_clients"],
                    "direct_aborted_clients": direct["aborted_clients"],
                    "tps_ratio": round(pooled["tps"] / direct["tps"], 2) if clean(pooled) and clean(direct) else None,
                    "pooled_postgresql_private_mb": pooled_mem, "direct_postgresql_private_mb": direct_mem,
                    "pooled_pgbouncer_private_mb": private_mb(pooled, "pgbouncer"),
                    "memory_ratio": round(pooled_mem / direct_mem, 2) if pooled_mem and direct_mem else None,
                }
        summary[workload] = {
            "direct_best": best, "direct_best_overall": overall,
            "pooled_over_direct_best": ratios,
            "pooled_over_alternative": alternative,
            "pooled_loses_to_alternative": sorted(k for k, v in alternative.items()
                                                  if v["tps_ratio"] is not None and v["tps_ratio"] < 1),
        }
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="bookworm", choices=["bookworm", "trixie"])
    parser.add_argument("--seconds", type=int, default=6,
                        help="seconds of transactions in each pgbench run, after its logins")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a role variable for this run (repeatable), e.g. pgbouncer_max_prepared_statements=0")
    parser.add_argument("--out", help="result file name in bench/results (default pgbouncer_capacity[-trixie].json)")
    parser.add_argument("--workload", choices=list(WORKLOAD_FLAGS), action="append",
                        help="measure only this workload (repeatable; default all), for a shorter comparison run")
    opts = parser.parse_args()
    extra = dict(item.split("=", 1) for item in opts.set)
    name = "fediops-bench-pgbouncer-%d" % os.getpid()
    load_start = loadavg()
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
        load_measure = loadavg()
        figures = measure(name, secs, opts.workload or list(WORKLOAD_FLAGS))
        load_measured = loadavg()
        over = pgbench(name, "-n -S -c 300 -j 2", TRANSPORTS["tcp"], 5432, 2)

        reload_script = (
            "out=$(mktemp -p /var/tmp); PGPASSWORD=%s pgbench -n -c 20 -j 2 -T 13 -h /var/run/postgresql -p 6432 "
            "-U mastodon mastodon_production >$out 2>&1 & b=$!; sleep 1; for i in $(seq 10); do systemctl reload "
            "pgbouncer; sleep 1; done; wait $b; echo RC=$?; cat $out" % shlex.quote(PASSWORD))
        out = inside(name, reload_script, check=False).stdout
        parsed = parse_pgbench(out)
        reloads = {"reloads": 10, "rc": int(re.search(r"RC=(\d+)", out).group(1))}
        reloads.update((key, parsed[key]) for key in ("failed", "processed", "aborted_clients"))
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
        "seconds_of_transactions_per_run": secs,
        "login_seconds_planned": {"%s_%s" % key: value for key, value in LOGIN_SECONDS.items()},
        "role_converge_seconds": converge_s,
        "postgresql_max_connections": {"direct": 100, "pooled": 100, "alternative": ALTERNATIVE_MAX_CONNECTIONS},
        "loadavg": {"start": load_start, "before_measuring": load_measure, "after_measuring": load_measured,
                    "end": loadavg()},
        "memory_measure": "Private_Clean+Private_Dirty summed over /proc/<pid>/smaps_rollup of every postgres "
                          "process (private_mb: what the backends cost and free when they end), Pss likewise "
                          "(pss_mb: the whole footprint, shared_buffers shared out), VmPTE from status "
                          "(page_tables_mb); read from the host once halfway through the transactions of each run; "
                          "seen: processes listed, processes: those read",
        "summary": summary,
        "runs": {w: {k: {t: {str(c): r for c, r in runs.items()} for t, runs in d.items()} for k, d in data.items()}
                 for w, data in figures.items()},
        "direct_300_clients": {"rc": over["rc"], "tail": over["tail"]},
        "reloads_under_tpcb_load": reloads,
        "too_many_open_files_in_log": fd_errors,
        "note": "pgbench and both servers share the container's CPUs with each other (and with other "
                "containers on this host, see loadavg and each run's loadavg_before/after): compare the "
                "figures of one file with each other, not across machines or files.",
    }
    os.makedirs(os.path.join(TOP, "bench", "results"), exist_ok=True)
    out_name = opts.out or ("pgbouncer_capacity.json" if opts.release == "bookworm" else
                            "pgbouncer_capacity-%s.json" % opts.release)
    path = os.path.join(TOP, "bench", "results", out_name)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")
    print("PgBouncer capacity (%s, %s, %s, %d CPUs, runs of %ds after the logins, load %s to %s%s)" % (
        opts.release, result["pgbouncer"], result["postgresql"], result["cpus"], secs,
        load_measure[0], load_measured[0],
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
        for key, cmp in summary[workload]["pooled_over_alternative"].items():
            print("    %s clients, max_connections %d: direct %s TPS (%s failed, %d aborted, PostgreSQL %s MB "
                  "private), pooled %s TPS (%s MB): pooled/direct %s TPS, %s memory" % (
                      key.replace("_", " "), ALTERNATIVE_MAX_CONNECTIONS,
                      "%.0f" % cmp["direct_tps"] if cmp["direct_tps"] else "none", cmp["direct_failed"],
                      cmp["direct_aborted_clients"], cmp["direct_postgresql_private_mb"],
                      "%.0f" % cmp["pooled_tps"] if cmp["pooled_tps"] else "none",
                      cmp["pooled_postgresql_private_mb"], cmp["tps_ratio"], cmp["memory_ratio"]))
        if summary[workload]["pooled_loses_to_alternative"]:
            print("    PgBouncer loses to the alternative: %s" % ", ".join(summary[workload]["pooled_loses_to_alternative"]))
    print("  direct 300 clients: exit %d (%s)" % (over["rc"], over["tail"][:100]))
    print("  10 reloads under TPC-B (20 clients, socket): %s failed, %d aborted, %s transactions" % (
        reloads["failed"], reloads["aborted_clients"], reloads["processed"]))
    print("  'Too many open files' in PgBouncer's log: %d" % fd_errors)
    print("written to %s" % path)


if __name__ == "__main__":
    main()
