# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole inventory's connection demand and the readable report of playbooks/scale.yml.

Every application host runs its own Puma, Sidekiq processes and streaming instances, and all of
them open connections to the same PgBouncer and PostgreSQL. `site_input()` adds the hosts up into
one input for connection_plan.plan(); `site_report()` lays the plan and the state of the other
parts side by side (`fleet_report()` for a fleet laid out by fleet.py); `report_lines()` turns that into the text the playbook prints.
"""

from __future__ import annotations

from ansible_collections.fediops.mastodon.plugins.module_utils.connection_plan import (
    STREAMING_DEFAULT_DB_POOL,
    plan,
    plan_from,
)


class SitePlanError(ValueError):
    """The per-host demands are not usable."""


def _hosts(demands):
    if not isinstance(demands, dict):
        raise SitePlanError("demands must be a mapping of host name to demand, got %s" % type(demands).__name__)
    for host, demand in demands.items():
        if not isinstance(demand, dict):
            raise SitePlanError("demand of host %s must be a mapping, got %s" % (host, type(demand).__name__))
    return sorted(demands)


def _pool(section, default):
    return int(section.get("db_pool") if section.get("db_pool") is not None else default)


def site_input(demands, pgbouncer=None, pgbouncer_on_app_hosts=False, replica=False):
    """Connection-plan input (web, sidekiq, streaming) for all hosts of `demands` together.

    With `pgbouncer` (its limits), the input has a pgbouncer section too: one PgBouncer on the database
    host, or with `pgbouncer_on_app_hosts` one on every application host, each serving only its own
    host's clients (the busiest host's count is checked against max_client_conn). `replica` adds the
    second pool every Rails process holds for a read replica (Mastodon 4.2 and later).

    `demands` maps a host name to {web: {processes, threads, db_pool?}, sidekiq: [processes],
    streaming: {instances, db_pool?}}; any part may be missing. One host passes through unchanged.
    Several hosts add up: web processes and streaming instances are summed, and when hosts differ
    in threads or DB_POOL the sum is budgeted at the highest of them, so the plan never under-counts.
    Sidekiq processes keep their own threads and are named `host/name`.
    """
    out = demand_input(demands)
    if replica:
        out["replica"] = True
    if pgbouncer:
        out["pgbouncer"] = dict(pgbouncer)
        if pgbouncer_on_app_hosts:
            hosts = _hosts(demands)
            out["pgbouncer"]["instances"] = len(hosts)
            out["pgbouncer"]["clients_per_instance"] = max(
                plan(replica=bool(replica), **demand_input({host: demands[host]}))["client_connections"]
                for host in hosts)
    return out


def demand_input(demands):
    """Connection-plan input (web, sidekiq, streaming) of the hosts of `demands` together (see site_input)."""
    hosts = _hosts(demands)
    if len(hosts) == 1:
        demand = demands[hosts[0]]
        return {key: demand.get(key) for key in ("web", "sidekiq", "streaming") if demand.get(key)}

    out = {}
    webs = [demands[h]["web"] for h in hosts if demands[h].get("web")]
    if webs:
        threads = max(int(w["threads"]) for w in webs)
        out["web"] = {
            "processes": sum(int(w["processes"]) for w in webs),
            "threads": threads,
            "db_pool": max(max(_pool(w, w["threads"]) for w in webs), threads),
        }
    sidekiq = []
    for host in hosts:
        for entry in demands[host].get("sidekiq") or []:
            entry = dict(entry)
            entry["name"] = "%s/%s" % (host, entry.get("name"))
            sidekiq.append(entry)
    if sidekiq:
        out["sidekiq"] = sidekiq
    streams = [demands[h]["streaming"] for h in hosts if demands[h].get("streaming")]
    if streams:
        out["streaming"] = {
            "instances": sum(int(s["instances"]) for s in streams),
            "db_pool": max(_pool(s, STREAMING_DEFAULT_DB_POOL) for s in streams),
        }
    return out


def site_report(demands, site_plan, pgbouncer=None, cache=None, replica=None):
    """A plain report: each host's processes (threads, DB_POOL), the site plan, and the other parts."""
    hosts = {}
    for host in _hosts(demands):
        demand = demands[host]
        own = plan(web=demand.get("web"), sidekiq=demand.get("sidekiq"), streaming=demand.get("streaming"))
        hosts[host] = {"processes": own["processes"], "threads": own["total_threads"]}
    return {
        "hosts": hosts,
        "total_threads": site_plan["total_threads"],
        "client_connections": site_plan["client_connections"],
        "server_connections": site_plan["server_connections"],
        "limits": site_plan["limits"],
        "feasible": site_plan["feasible"],
        "problems": site_plan["problems"],
        "pgbouncer": pgbouncer,
        "cache": cache,
        "replica": replica,
    }


# PostgreSQL's default superuser_reserved_connections, when neither the setting nor the primary gives it.
DEFAULT_SUPERUSER_RESERVED = 3


def fleet_plan(fleet, live=None):
    """The connection plan of a fleet (fleet.layout()'s result) against PostgreSQL's limits: the settings
    scale_postgresql_max_connections and scale_postgresql_superuser_reserved_connections, else `live`, the
    [max_connections, superuser_reserved_connections] read on the primary."""
    settings, live = fleet["settings"], list(live or [])
    max_connections = settings.get("scale_postgresql_max_connections") or (live[0] if live else None)
    if max_connections is None:
        raise SitePlanError("scale_postgresql_max_connections is not set and PostgreSQL's was not read on the primary")
    reserved = (settings.get("scale_postgresql_superuser_reserved_connections")
                or (live[1] if len(live) > 1 else DEFAULT_SUPERUSER_RESERVED))
    return plan_from(dict(fleet["plan_input"], postgresql={"max_connections": max_connections,
                                                           "superuser_reserved_connections": reserved}))


def _cache_part(read, port):
    """What the host read of its cache instance, with the instance's port: the settings
    fediops.mastodon.redis_instance_config returned, or what redis-cli CONFIG GET printed (name, value, name,
    value...); empty when the host read no cache instance."""
    if read is None:
        return {}
    if isinstance(read, dict):
        return dict(read, port=int(port))
    return dict(dict(zip(read[0::2], read[1::2])), port=int(port))


# What a database host that failed earlier in the run (and so adds nothing to the report) is reported as.
MISSING_PART = {"cache": {}, "standbys": [], "in_recovery": "unknown: the run failed there"}


def fleet_report(fleet, site_plan, parts):
    """site_report() of a fleet (fleet.layout()'s result) from what each host that reached the report read:
    `parts` maps it to {cache (the settings read, a mapping or redis-cli's CONFIG GET lines, or None), cache_port, standbys (the primary's
    pg_stat_replication rows), in_recovery (a replica's pg_is_in_recovery())}."""
    read = {host: {"cache": _cache_part(part.get("cache"), part.get("cache_port")),
                   "standbys": [" ".join(str(v) for v in row) for row in part.get("standbys") or []],
                   "in_recovery": part.get("in_recovery", "")}
            for host, part in (parts or {}).items()}
    parts = dict({host: MISSING_PART for host in fleet["replicas"] + [fleet["primary"]]}, **read)
    replica = {}
    if fleet["replicas"]:
        replica = {"standbys (name client state sync lag_s)": parts[fleet["primary"]]["standbys"],
                   "replicas in recovery": {host: parts[host]["in_recovery"] for host in fleet["replicas"]}}
    return site_report(fleet["demands"], site_plan, pgbouncer=fleet["pgbouncer"].get("report", {}),
                       cache={host: part["cache"] for host, part in parts.items() if part.get("cache")},
                       replica=replica)


def _process_line(proc):
    if proc["kind"] == "web":
        what = "%d processes x %d threads" % (proc["count"], proc["threads"])
    elif proc["kind"] == "streaming":
        what = "%d instances, pg pool of %d each" % (proc["count"], proc["threads"])
    else:
        what = "1 process x %d threads" % proc["threads"]
    return "    %-9s %-24s %-34s DB_POOL %d -> %d connections" % (
        proc["kind"], proc["name"], what, proc["db_pool"], proc["connections"])


def _limit_line(label, used, limit):
    if limit is None:
        return "  %-36s %d (no limit known)" % (label, used)
    return "  %-36s %d of %d (%d left)" % (label, used, limit, limit - used)


def _mapping_line(label, value):
    if not value:
        return ["%s: not managed by this run" % label]
    lines = ["%s:" % label]
    for key in sorted(value):
        lines.append("  %s: %s" % (key, value[key]))
    return lines


def report_lines(report):
    """The report as lines of text, for a debug message an operator reads."""
    lines = ["Processes (every thread may hold one database connection):"]
    for host in sorted(report["hosts"]):
        entry = report["hosts"][host]
        lines.append("  %s: %d threads" % (host, entry["threads"]))
        lines.extend(_process_line(proc) for proc in entry["processes"])
    limits = report["limits"]
    lines.append("Totals against the limits:")
    lines.append("  %-36s %d" % ("all threads", report["total_threads"]))
    if limits.get("max_client_conn") is not None:
        lines.append(_limit_line("PgBouncer clients / max_client_conn", report["client_connections"],
                                 limits["max_client_conn"]))
        lines.append(_limit_line("PgBouncer server conns / capacity", report["server_connections"],
                                 limits["pgbouncer_server_capacity"]))
    lines.append(_limit_line("PostgreSQL conns / available", report["server_connections"],
                             limits.get("postgresql_available")))
    if limits.get("max_connections") is not None:
        lines.append("  (max_connections %d minus %d superuser_reserved_connections)"
                     % (limits["max_connections"], limits["superuser_reserved_connections"]))
    lines.append("Plan: %s" % ("feasible" if report["feasible"] else "NOT feasible"))
    lines.extend("  - %s" % problem for problem in report["problems"])
    lines.extend(_mapping_line("PgBouncer pools", report.get("pgbouncer")))
    lines.extend(_mapping_line("Cache instance", report.get("cache")))
    lines.extend(_mapping_line("Read replica", report.get("replica")))
    return lines
