# fediops.mastodon: the replica-lag fence (roles/read_replica, tasks_from: fence). Run by
# fediops-replica-fence.timer as `python3 -I`; the decisions are replica_fence.py's (the collection's
# plugins/module_utils/replica_fence.py, installed beside this file).
#
#   python3 -I fediops_replica_fence.py CONFIG         one check: read the primary and the standby, decide, and when
#                                                      the decision changes PgBouncer's [databases] override, write
#                                                      it and reload
#   python3 -I fediops_replica_fence.py CONFIG --off   write the override without any line and reload (the fence goes)
#
# It reads PostgreSQL with psql as the role Mastodon reads with, whose password is only in the root-only
# password file CONFIG names (PGPASSFILE): never on a command line, in the journal or in CONFIG. Decisions go to
# the journal (standard output, at notice level); a problem is logged once, when it starts or changes.
"""The replica-lag fence's program: the I/O around replica_fence.step()."""

import fcntl
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import replica_fence  # noqa: E402  pylint: disable=wrong-import-position,import-error

NOTICE, WARNING = "<5>", "<4>"
LOCK = "/run/fediops-replica-fence.lock"


def log(level, text):
    print(level + " ".join(str(text).split()), flush=True)


def psql(config, host, port, dbname, query):
    """(rows, error): the query's rows as lists of text, or None and psql's message."""
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "PGPASSFILE": config["passfile"], "PGCONNECT_TIMEOUT": "3",
           "PGAPPNAME": "fediops-replica-fence"}
    argv = ["psql", "--no-psqlrc", "-w", "-qtAX", "-F", "|", "-v", "ON_ERROR_STOP=1", "-h", str(host), "-p", str(port),
            "-U", config["user"], "-d", dbname, "-c", query]
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, "psql: %s" % exc
    if proc.returncode != 0:
        return None, " ".join((proc.stderr or proc.stdout or "psql exited %d" % proc.returncode).split())
    return [line.split("|") for line in proc.stdout.splitlines() if line], ""


def read_primary(config):
    where = config["primary"]
    rows, error = psql(config, where["host"], where["port"], where["dbname"],
                       "SELECT pg_is_in_recovery(), pg_current_wal_lsn()")
    if error:
        return None, "the primary %s:%s does not answer: %s" % (where["host"], where["port"], error)
    if rows[0][0] != "f":
        return None, "the primary %s:%s is in recovery (a standby): nothing to fence to" % (where["host"], where["port"])
    return replica_fence.parse_lsn(rows[0][1]), ""


def read_standby(config):
    where = config["standby"]
    rows, error = psql(config, where["host"], where["port"], where["dbname"],
                       "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()")
    if error:
        return None, error
    return {"in_recovery": rows[0][0] == "t", "replay_lsn": replica_fence.parse_lsn(rows[0][1])}, ""


def write_override(path, text):
    """Replace the file when its text differs (root:postgres 0640, through a temporary file). True if replaced."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    except FileNotFoundError:
        pass
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, ".%s.%d" % (name, os.getpid()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            import grp  # pylint: disable=import-outside-toplevel
            os.chown(tmp, 0, grp.getgrnam("postgres").gr_gid)
        except KeyError:
            pass
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


def reload_pgbouncer(config):
    """systemctl reload (SIGHUP): PgBouncer reads the files again and keeps every client; its extra processes
    (pgbouncer-extra@N) follow the main unit's reload. An error message, or ""."""
    unit = config["pgbouncer"]["unit"]
    if subprocess.run(["systemctl", "is-active", "--quiet", unit], check=False).returncode != 0:
        return "%s is not running: it reads the override when it starts" % unit
    proc = subprocess.run(["systemctl", "reload", unit], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return "systemctl reload %s failed: %s" % (unit, " ".join(proc.stderr.split()))
    return ""


def verify(config, fenced):
    """Ask through PgBouncer's entry where its reads land now: the primary (not in recovery) while fenced."""
    bouncer, wanted, answer = config["pgbouncer"], "f" if fenced else "t", ""
    for _attempt in range(6):
        rows, error = psql(config, bouncer["host"], bouncer["port"], config["database"], "SELECT pg_is_in_recovery()")
        answer = error or rows[0][0]
        if answer == wanted:
            return ""
        time.sleep(0.5)
    return "%s through PgBouncer still reads from the %s (%s)" % (
        config["database"], "standby" if fenced else "primary", answer)


def load_state(path):
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
        return state if isinstance(state, dict) else None
    except (OSError, ValueError):
        return None


def save_state(path, state):
    tmp = "%s.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=1, sort_keys=True)
    os.rename(tmp, path)


def when(seconds):
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds)) if seconds else ""


def apply(config, state):
    """Make the override file say what the state says; reload and verify when it changed, or until a change
    was seen to take. A problem, or ""."""
    text = replica_fence.override_text(state.get("fenced"), config["database"], config["fenced_connstr"],
                                       when(state.get("since")), state.get("reason", ""))
    if not write_override(config["pgbouncer"]["runtime_file"], text) and not state.get("pending"):
        return ""
    problem = reload_pgbouncer(config) or verify(config, state.get("fenced"))
    state["pending"] = bool(problem)
    return problem


def check(config):
    state = load_state(config["state_file"])
    settings = {"standby": "%s:%s" % (config["standby"]["host"], config["standby"]["port"]),
                "max_lag_s": config["max_lag_s"], "resume_lag_s": config["resume_lag_s"],
                "resume_after_s": config["resume_after_s"]}
    if not state or state.get("standby") != settings["standby"]:
        log(NOTICE, "watching the standby %s for %s: reads move to the primary past %d s of lag, and return once it "
                    "has kept up (at most %d s) for %d s; a check every %d s."
            % (settings["standby"], config["database"], config["max_lag_s"], config["resume_lag_s"],
               config["resume_after_s"], config["interval_s"]))
    primary_lsn, problem = read_primary(config)
    standby, standby_error = (None, "") if primary_lsn is None else read_standby(config)
    state, event = replica_fence.step(state, time.time(), settings, primary_lsn, standby)
    if event["changed"]:
        log(NOTICE, ("fence on: " if event["fenced"] else "fence off: ") + event["message"])
    problem = problem or apply(config, state)
    if standby_error and state.get("fenced"):
        problem = problem or "the standby %s does not answer: %s" % (settings["standby"], standby_error)
    if problem != state.get("problem", ""):
        if problem:
            log(WARNING, problem + (" (reads stay on the primary)" if state.get("fenced") else ""))
        elif state.get("problem"):
            log(NOTICE, "resolved: " + state["problem"])
    state["problem"] = problem
    save_state(config["state_file"], state)
    return 0


def off(config):
    """The fence goes away: the override file (if PgBouncer still has it) without a line, then the state."""
    path = config["pgbouncer"]["runtime_file"]
    problem = ""
    if os.path.exists(path):
        text = replica_fence.override_text(False, config["database"], config["fenced_connstr"])
        if write_override(path, text):
            log(NOTICE, "fence removed: %s reads from the standby again" % config["database"])
            problem = reload_pgbouncer(config)
    if os.path.exists(config["state_file"]):
        os.unlink(config["state_file"])
    if problem:
        log(WARNING, problem)
    return 0


def main(argv):
    if len(argv) not in (2, 3) or (len(argv) == 3 and argv[2] != "--off"):
        sys.stderr.write("usage: python3 -I fediops_replica_fence.py CONFIG [--off]\n")
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        config = json.load(handle)
    os.umask(0o022)
    with open(LOCK, "w", encoding="utf-8") as lock:
        # One at a time: the timer's check, and the role's run-once or --off.
        fcntl.flock(lock, fcntl.LOCK_EX)
        return off(config) if len(argv) == 3 else check(config)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
