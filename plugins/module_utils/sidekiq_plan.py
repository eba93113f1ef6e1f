# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sidekiq processes split by queue (Mastodon's "Scaling up" guide), as pure functions.

A plan is a list of processes `{name, queues, threads, db_pool?, state, environment?}`, where a
queue is `name` or `name,weight` as on Sidekiq's command line. `check()` lists everything wrong
with a plan at once, `build()` turns a valid plan into what the systemd units need: the Sidekiq
command, DB_POOL (from the connection plan) and the environment of each process.
"""

from __future__ import annotations

import re

from ansible_collections.fediops.mastodon.plugins.module_utils import mastodon_source
from ansible_collections.fediops.mastodon.plugins.module_utils.connection_plan import (
    ConnectionPlanError,
    plan as connection_plan,
)
from ansible_collections.fediops.mastodon.plugins.module_utils.env_file import is_secret
from ansible_collections.fediops.mastodon.plugins.module_utils.inputs import MAX_POOL_SIZE, whole as _whole

# Mastodon's queues and weights (config/sidekiq.yml), most important first.
MASTODON_QUEUES = (
    ("default", 8),
    ("push", 6),
    ("ingress", 4),
    ("mailers", 2),
    ("pull", None),
    ("scheduler", None),
    ("fasp", None),
)
# Mastodon version that added each queue, where it matters for the versions this collection supports.
QUEUE_SINCE = {"fasp": (4, 4)}
SCHEDULER = "scheduler"

# Process names become systemd instance names (mastodon-sidekiq@NAME.service): no escaping needed.
# Matched with fullmatch: "$" would also match before a final line break, which would reach the unit name.
PROCESS_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
QUEUE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Sidekiq's advice is tens of threads per process; beyond this, run more processes (or hosts) instead.
MAX_THREADS = 200
# Sidekiq lists a queue once per unit of its weight in the order it fetches from, so a weight is a small number:
# Mastodon's own go up to 8 (config/sidekiq.yml).
MAX_QUEUE_WEIGHT = 100
# Sidekiq's own default -t (seconds it waits for running jobs at shutdown), and the bounds the role accepts.
DEFAULT_SHUTDOWN_TIMEOUT = 25
MAX_SHUTDOWN_TIMEOUT = 3600
# systemd gives the process this much longer than -t before it kills it (Sidekiq's advice: at least 5 s).
STOP_MARGIN = 5
PROCESS_KEYS = ("name", "queues", "threads", "db_pool", "state", "environment")
# Set by the role from the plan; an operator value would silently break the DB_POOL >= threads rule.
RESERVED_ENV = ("DB_POOL",)
UNSAFE_ENV_VALUE_RE = re.compile(r"[\"\\\n\r\x00]")


class SidekiqPlanError(ValueError):
    """The plan cannot be used; the message lists every problem."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__(" ".join(self.problems))


def parse_version(version):
    """(major, minor, patch) of a Mastodon version, or SidekiqPlanError naming the variable."""
    try:
        return mastodon_source.parse_version(version)
    except mastodon_source.MastodonSourceError as exc:
        raise SidekiqPlanError(["%s: set sidekiq_queues_mastodon_version to the version the server runs." % exc]) from None


def mastodon_queues(version):
    """Names of the queues Mastodon `version` uses, most important first."""
    release = parse_version(version)[:2]
    return [name for name, _weight in MASTODON_QUEUES if release >= QUEUE_SINCE.get(name, (0, 0))]


def mastodon_weights(version):
    """{queue: weight or None} as in Mastodon's config/sidekiq.yml for `version`."""
    weights = dict(MASTODON_QUEUES)
    return {name: weights[name] for name in mastodon_queues(version)}


def default_processes(version):
    """The guide's split: one process each for default, push, mailers and pull.

    ingress (and fasp from 4.4) go with pull, so that federation traffic cannot delay local users;
    scheduler goes with mailers, both light, so periodic jobs are not stuck behind a flood.
    """
    pull = ["pull", "ingress,4"] + (["fasp"] if "fasp" in mastodon_queues(version) else [])
    return [
        {"name": "default", "queues": ["default"], "threads": 10, "state": "present", "environment": {}},
        {"name": "push", "queues": ["push"], "threads": 10, "state": "present", "environment": {}},
        {"name": "pull", "queues": pull, "threads": 10, "state": "present", "environment": {}},
        {"name": "mailers", "queues": ["mailers,2", "scheduler"], "threads": 5, "state": "present",
         "environment": {}},
    ]


def parse_queue(spec):
    """Return (name, weight or None) from `name` or `name,weight`; raise ValueError with the reason."""
    if not isinstance(spec, str):
        raise ValueError("queue %r is not a string: write it as name or name,weight" % (spec,))
    parts = [part.strip() for part in spec.split(",")]
    if len(parts) > 2:
        raise ValueError("queue %r has more than one comma: write it as name or name,weight" % spec)
    name = parts[0]
    if not QUEUE_NAME_RE.fullmatch(name):
        raise ValueError("queue name %r must be letters, digits, _ . or - (as Mastodon's queues are)" % name)
    if len(parts) == 1:
        return name, None
    if not re.fullmatch(r"[1-9][0-9]{0,5}", parts[1]) or int(parts[1]) > MAX_QUEUE_WEIGHT:
        raise ValueError("queue %r has weight %r: a weight is a whole number from 1 to %d" % (spec, parts[1], MAX_QUEUE_WEIGHT))
    return name, int(parts[1])


def format_queue(name, weight):
    return name if weight is None else "%s,%d" % (name, weight)


def check_environment(label, environment):
    """Problems with an environment mapping written as systemd Environment= lines."""
    problems = []
    if environment is None:
        return problems
    if not isinstance(environment, dict):
        return ["%s: environment must be a mapping {NAME: value}." % label]
    for key, value in environment.items():
        if not isinstance(key, str) or not ENV_KEY_RE.fullmatch(key):
            problems.append("%s: environment name %r must be letters, digits and _, not starting with a digit."
                            % (label, key))
        elif key in RESERVED_ENV:
            problems.append("%s: environment sets %s, which the role derives from the plan: use db_pool instead."
                            % (label, key))
        # Unit files and `systemctl show` are readable by every user: a secret (env_file's one rule) belongs
        # in .env.production.
        if isinstance(key, str) and is_secret(key, value=value if isinstance(value, str) else None):
            problems.append("%s: environment %s looks like a secret, and unit files are readable by every user: "
                            "put it in .env.production (fediops.mastodon.app_env) instead." % (label, key))
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            problems.append("%s: environment %s must be a string or a number (quote true/false)." % (label, key))
        elif UNSAFE_ENV_VALUE_RE.search(str(value)):
            problems.append("%s: environment %s may not contain quotes, backslashes or line breaks "
                            "(systemd Environment= would read them differently)." % (label, key))
    return problems


def check(processes, mastodon_version, allow_unknown_queues=False, common_environment=None, scheduler=True,
          shutdown_timeout=DEFAULT_SHUTDOWN_TIMEOUT):
    """Return the list of problems with a plan (empty when it can be used).

    Each problem is a sentence naming what is wrong, the numbers, and what to change.
    `common_environment` is the environment every process gets (the template unit's). `scheduler` says
    whether this host runs Mastodon's scheduler queue: exactly one host of a server does.
    """
    problems = check_environment("The common environment (sidekiq_queues_environment)", common_environment)
    timeout = _whole(shutdown_timeout)
    if timeout is None or not 1 <= timeout <= MAX_SHUTDOWN_TIMEOUT:
        problems.append("sidekiq_queues_shutdown_timeout is %r; it must be a whole number of seconds from 1 to %d "
                        "(Sidekiq's -t, 25 by default)." % (shutdown_timeout, MAX_SHUTDOWN_TIMEOUT))
    try:
        known = mastodon_queues(mastodon_version)
    except SidekiqPlanError as exc:
        return problems + exc.problems
    if not isinstance(processes, (list, tuple)) or not processes:
        return problems + ["sidekiq_queues_processes must be a non-empty list of processes {name, queues, threads}."]

    names = set()
    served = {}
    for index, proc in enumerate(processes):
        if not isinstance(proc, dict):
            problems.append("Process #%d is not a mapping {name, queues, threads}." % (index + 1))
            continue
        name = proc.get("name")
        label = "Process %r" % name if isinstance(name, str) and name else "Process #%d" % (index + 1)
        unknown_keys = sorted(set(proc) - set(PROCESS_KEYS))
        if unknown_keys:
            problems.append("%s has unknown key(s) %s: use only %s."
                            % (label, ", ".join(map(str, unknown_keys)), ", ".join(PROCESS_KEYS)))
        if not isinstance(name, str) or not PROCESS_NAME_RE.fullmatch(name):
            problems.append("%s: name %r must be 1-63 lower-case letters, digits, _ or -, starting with a letter or "
                            "digit (it becomes mastodon-sidekiq@NAME.service)." % (label, name))
        elif name in names:
            problems.append("%s is listed twice: give every process its own name." % label)
        else:
            names.add(name)
        state = proc.get("state", "present") or "present"
        if state not in ("present", "absent"):
            problems.append("%s: state %r must be present or absent." % (label, state))
            continue
        if state == "absent":
            continue

        threads = _whole(proc.get("threads"))
        if threads is None or threads < 1:
            problems.append("%s: threads is %r; every process needs at least 1 thread (sidekiq -c)."
                            % (label, proc.get("threads")))
        elif threads > MAX_THREADS:
            problems.append("%s: threads is %d; above %d threads per process, run more processes or hosts instead "
                            "(each thread also holds a database connection)." % (label, threads, MAX_THREADS))
        db_pool = proc.get("db_pool")
        if db_pool is not None:
            pool = _whole(db_pool)
            if pool is None or not 1 <= pool <= MAX_POOL_SIZE:
                problems.append("%s: db_pool %r must be a whole number from 1 to %d; leave it out to use the threads."
                                % (label, db_pool, MAX_POOL_SIZE))
            elif threads is not None and threads >= 1 and pool < threads:
                problems.append("%s: db_pool %d is below its %d threads; every thread needs a database connection, "
                                "so set db_pool to at least %d or leave it out." % (label, pool, threads, threads))

        queues = proc.get("queues")
        if not isinstance(queues, (list, tuple)) or not queues:
            problems.append("%s: queues must be a non-empty list such as [default] or ['push,6', pull]." % label)
            queues = []
        seen = set()
        for spec in queues:
            try:
                queue, _weight = parse_queue(spec)
            except ValueError as exc:
                problems.append("%s: %s." % (label, exc))
                continue
            if queue in seen:
                problems.append("%s lists queue %s twice: list it once, with a weight if it needs more turns."
                                % (label, queue))
            seen.add(queue)
            served.setdefault(queue, []).append(name if isinstance(name, str) else "#%d" % (index + 1))
            if queue not in known and not allow_unknown_queues:
                since = QUEUE_SINCE.get(queue)
                if since:
                    problems.append("%s: queue %s exists from Mastodon %d.%d, but sidekiq_queues_mastodon_version is %s: "
                                    "remove it, or set the version the server runs."
                                    % (label, queue, since[0], since[1], mastodon_version))
                else:
                    problems.append("%s: %s is not a Mastodon queue (Mastodon %s has %s): fix the name, or set "
                                    "sidekiq_queues_allow_unknown_queues to true for a queue of your own."
                                    % (label, queue, mastodon_version, ", ".join(known)))

        problems.extend(check_environment(label, proc.get("environment")))

    schedulers = served.get(SCHEDULER, [])
    if len(schedulers) > 1:
        problems.append("Queue scheduler is served by %d processes (%s): keep it in exactly one, because every process "
                        "serving it runs Mastodon's periodic jobs." % (len(schedulers), ", ".join(schedulers)))
    if schedulers and not scheduler:
        problems.append("sidekiq_queues_scheduler is false (another host runs Mastodon's periodic jobs), but %s "
                        "serves scheduler: take scheduler out of its queues." % ", ".join(schedulers))
    for queue, owners in sorted(served.items()):
        if queue != SCHEDULER and len(owners) > 1:
            problems.append("Queue %s is served by %d processes (%s): give each queue one process on a host, and raise "
                            "that process's threads (or add a host) for more throughput."
                            % (queue, len(owners), ", ".join(owners)))
    missing = [queue for queue in known if queue not in served and (scheduler or queue != SCHEDULER)]
    if missing:
        problems.append("No process serves %s: add %s to a process%s, or Mastodon's jobs there never run."
                        % (", ".join(missing), "them" if len(missing) > 1 else "it",
                           " (scheduler to exactly one)" if SCHEDULER in missing else ""))
    return problems


def command(bundle, threads, queues, shutdown_timeout=DEFAULT_SHUTDOWN_TIMEOUT):
    """The argv of one Sidekiq process: bundle exec sidekiq -c N -t T -q name[,weight] ..."""
    argv = [bundle, "exec", "sidekiq", "-c", str(threads), "-t", str(shutdown_timeout)]
    for spec in queues:
        argv += ["-q", format_queue(*parse_queue(spec))]
    return argv


def build(processes, mastodon_version, bundle, allow_unknown_queues=False, unit_prefix="mastodon-sidekiq",
          common_environment=None, scheduler=True, shutdown_timeout=DEFAULT_SHUTDOWN_TIMEOUT):
    """Return the units for a valid plan; raise SidekiqPlanError listing every problem otherwise.

    Returns {present: [...], absent: [names], total_threads, queue_processes: {queue: [processes]}}.
    Each present entry has name, unit, queues (normalized), threads, db_pool, argv, exec_start,
    environment (DB_POOL plus the process's own), secret (whether a value looks like a secret),
    secret_values.
    """
    problems = check(processes, mastodon_version, allow_unknown_queues, common_environment, scheduler,
                     shutdown_timeout)
    if not isinstance(bundle, str) or not bundle.startswith("/") or re.search(r"[\s%$\"'\\]", bundle):
        problems.append("The bundle path %r must be an absolute path without spaces, quotes, %% or $." % (bundle,))
    if not isinstance(unit_prefix, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", unit_prefix):
        problems.append("The unit prefix %r must be lower-case letters, digits, _ . or -." % (unit_prefix,))
    if problems:
        raise SidekiqPlanError(problems)

    present = [p for p in processes if (p.get("state") or "present") == "present"]
    absent = [p["name"] for p in processes if (p.get("state") or "present") == "absent"]
    try:
        budget = connection_plan(sidekiq=[{"name": p["name"], "threads": _whole(p["threads"]),
                                           "db_pool": _whole(p["db_pool"]) if p.get("db_pool") is not None else None}
                                          for p in present])
    except ConnectionPlanError as exc:  # pragma: no cover - check() refuses the same input first
        raise SidekiqPlanError([str(exc)])
    pools = {p["name"]: p["db_pool"] for p in budget["processes"]}

    units, owner = [], {}
    for proc in present:
        threads = _whole(proc["threads"])
        queues = [format_queue(*parse_queue(spec)) for spec in proc["queues"]]
        for spec in queues:
            owner.setdefault(parse_queue(spec)[0], []).append(proc["name"])
        environment = {"DB_POOL": str(pools[proc["name"]])}
        extra = proc.get("environment") or {}
        for key in sorted(extra):
            environment[key] = str(extra[key])
        secret_values = sorted({v for k, v in environment.items() if is_secret(k, value=v) and v})
        argv = command(bundle, threads, queues, _whole(shutdown_timeout))
        units.append({
            "name": proc["name"],
            "unit": "%s@%s.service" % (unit_prefix, proc["name"]),
            "queues": queues,
            "threads": threads,
            "db_pool": pools[proc["name"]],
            "argv": argv,
            "exec_start": " ".join(argv),
            "environment": environment,
            "secret": bool(secret_values),
            "secret_values": secret_values,
        })
    return {"present": units, "absent": absent, "total_threads": budget["total_threads"], "queue_processes": owner,
            "shutdown_timeout": _whole(shutdown_timeout), "stop_timeout": _whole(shutdown_timeout) + STOP_MARGIN}


def bundle_from_execstart(text):
    """The program path of `systemctl show -p ExecStart --value UNIT` output, or None."""
    match = re.search(r"\bpath=(\S+)", text or "")
    return match.group(1) if match else None
