"""The check-mode runs of a scenario (molecule's `check` action) as the log shows them.

molecule/shared/check_mode.yml ends each check run with the task "Check mode: the preview changed
nothing on the host" (skipped outside check mode); the PLAY RECAP after it is that run's. Returns {host: {"changed": n, "failed": n}}
per check run, oldest first.
"""

import re

MARK = "Check mode: the preview changed nothing on the host"


# ANSIBLE_LOG_PATH lines start with the time, process, user and level: "2026-12-01 15:43:28,033 p=1 u=root n=ansible INFO| ".
LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ p=\d+ u=\S+ n=\S+ [A-Z]+\| ?", re.M)


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


def assert_check_runs(log_paths, expected=1):
    """The preview before converge predicted changes on every host, the one after idempotence (where the scenario
    runs one) none, and neither failed (each also proved the host unchanged, or it would have failed).
    log_paths: the logs that hold the previews, oldest first."""
    runs = []
    for log_path in log_paths:
        with open(log_path, encoding="utf-8") as handle:
            runs += check_recaps(handle.read())
    assert len(runs) == expected, "expected %d check runs (before converge, and after idempotence), found %d" % (
        expected, len(runs))
    if not runs:
        return
    before, after = runs[0], runs[1:]
    assert before and all(r["failed"] == 0 and r["changed"] > 0 for r in before.values()), before
    for later in after:
        assert later.keys() == before.keys(), (before, later)
        assert all(r["failed"] == 0 and r["changed"] == 0 for r in later.values()), later
