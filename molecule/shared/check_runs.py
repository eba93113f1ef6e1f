"""The check-mode runs of a scenario (molecule's `check` action) as the log shows them.

molecule/shared/check_mode.yml ends each check run with the task "Check mode: the preview changed
nothing on the host" (skipped outside check mode); the PLAY RECAP after it is that run's. Returns {host: {"changed": n, "failed": n}}
per check run, oldest first.
"""

import re

MARK = "Check mode: the preview changed nothing on the host"


# ANSIBLE_LOG_PATH lines start with the time, process, user and level: "2026-12-01 15:43:28,033 p=1 u=root n=ansible INFO| ".
LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ p=(?P<pid>\d+) u=\S+ n=\S+ [A-Z]+\| ?", re.M)


def log_runs(log):
    """The playbook runs in a log (ANSIBLE_LOG_PATH), oldest first: each run's lines, without their prefix. Ansible
    writes each run's process id into the prefix of a message's first line; the lines after it without a prefix
    are the rest of that message."""
    runs, pid = {}, None
    for line in log.splitlines():
        match = LOG_PREFIX.match(line)
        if match:
            pid = match.group("pid")
        if pid is not None:
            runs.setdefault(pid, []).append(line[match.end():] if match else line)
    return ["\n".join(lines) for lines in runs.values()]


def check_recaps(log):
    log = LOG_PREFIX.sub("", log)
    runs = []
    for part in log.split("TASK [" + MARK)[1:]:
        result = part.split("\nTASK [")[0].split("\nPLAY RECAP")[0]
        if not re.search(r"^ok: \[", result, re.M):
            continue  # a converge outside check mode skips the task
        # The recap's host lines follow its header; the log need not end the block with a blank line,
        # so stop at the first line that is not one (later runs append their own recaps).
        hosts = {}
        for line in part[part.index("PLAY RECAP"):].split("\n")[1:]:
            match = re.match(r"^(\S+)\s*: ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", line)
            if not match:
                break
            hosts[match.group(1)] = {"changed": int(match.group(2)), "failed": int(match.group(3))}
        runs.append(hosts)
    return runs


def assert_check_runs(log_paths, expected=("change",)):
    """The previews in the logs (oldest first) are those expected: "change" predicted a change on every host, "none"
    on none (after idempotence), and none failed (each also proved the host unchanged, or it would have failed)."""
    runs = []
    for log_path in log_paths:
        with open(log_path, encoding="utf-8") as handle:
            runs += check_recaps(handle.read())
    assert len(runs) == len(expected), "expected the previews %s, found %d" % (" ".join(expected) or "(none)", len(runs))
    for run, kind in zip(runs, expected):
        assert run and run.keys() == runs[0].keys(), (runs[0], run)
        assert all(r["failed"] == 0 and (r["changed"] > 0) == (kind == "change") for r in run.values()), (kind, run)
