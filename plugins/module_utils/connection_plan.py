# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database connection budget of a Mastodon server, as a pure function.

Mastodon's "Scaling up" guide: every thread that may touch the database needs a connection, so
each process's DB_POOL must be at least its threads, and the connections Mastodon opens add up to
all threads combined. PgBouncer (transaction pooling) then caps what PostgreSQL sees: every process of
every PgBouncer opens every pool, so one PgBouncer may open processes x pools x (default_pool_size +
reserve_pool_size) server connections (`server_capacity`, the one place this formula is written). Without
PgBouncer PostgreSQL sees every client.

`plan()` takes plain values and returns plain values; it never touches a host, so the module, the
filter and the roles' validation all give the same answer.
"""

from __future__ import annotations

import re

# Mastodon's streaming server (streaming/database.js) sizes its pg pool from DB_POOL, default 10.
STREAMING_DEFAULT_DB_POOL = 10
# PostgreSQL's own default.
DEFAULT_SUPERUSER_RESERVED = 3

_DECIMAL_RE = re.compile(r"-?[0-9]+")
_SECTIONS = ("web", "sidekiq", "streaming", "pgbouncer", "postgresql", "replica")
_WEB_KEYS = ("name", "processes", "threads", "db_pool")
_STREAMING_KEYS = ("name", "instances", "db_pool")
# A sidekiq_queues_processes entry may be passed as it is: queues and environment do not change the
# budget, and an entry whose state is absent opens no connection.
_SIDEKIQ_KEYS = ("name", "threads", "db_pool", "state", "queues", "environment")
_PGBOUNCER_KEYS = ("max_client_conn", "default_pool_size", "pools", "reserve_pool_size", "processes", "instances",
                   "clients_per_instance", "hosts")
# One PgBouncer of `hosts` (the app placement: one per application host, each with its own settings).
_PGBOUNCER_HOST_KEYS = ("name", "max_client_conn", "default_pool_size", "reserve_pool_size", "processes", "clients")
_POSTGRESQL_KEYS = ("max_connections", "superuser_reserved_connections")


class ConnectionPlanError(ValueError):
    """The input is not a plan (wrong types, missing numbers, DB_POOL below threads)."""


def _int(where, key, value, minimum):
    """Return `value` as an int >= minimum; decimal strings are accepted (Jinja often yields them)."""
    if isinstance(value, bool):
        raise ConnectionPlanError("%s: %s must be a whole number, got %r" % (where, key, value))
    if isinstance(value, str) and _DECIMAL_RE.fullmatch(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int):
        raise ConnectionPlanError("%s: %s must be a whole number, got %r" % (where, key, value))
    if value < minimum:
        raise ConnectionPlanError("%s: %s must be at least %d, got %d" % (where, key, minimum, value))
    return value


def _mapping(where, value, allowed):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConnectionPlanError("%s must be a mapping, got %s" % (where, type(value).__name__))
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ConnectionPlanError("%s: unknown key(s) %s; known keys are %s"
                                  % (where, ", ".join(map(str, unknown)), ", ".join(allowed)))
    return value


def _required(where, section, key):
    if section.get(key) is None:
        raise ConnectionPlanError("%s: %s is required" % (where, key))
    return section[key]


def _db_pool(where, threads, db_pool):
    """DB_POOL for a process: its threads unless a larger pool is asked for."""
    if db_pool is None:
        return threads
    db_pool = _int(where, "db_pool", db_pool, 1)
    if db_pool < threads:
        raise ConnectionPlanError(
            "%s: db_pool %d is below its %d threads; every thread needs a database connection, "
            "so set db_pool to at least %d or leave it out" % (where, db_pool, threads, threads))
    return db_pool


def _process(name, kind, count, threads, db_pool):
    return {"name": name, "kind": kind, "count": count, "threads": threads, "db_pool": db_pool,
            "connections": count * threads}


def _web(web):
    web = _mapping("web", web, _WEB_KEYS)
    if not web:
        return []
    name = str(web.get("name") or "web")
    # Mastodon needs at least one Puma worker to answer anything; leave web out to plan without it.
    processes = _int("web", "processes", _required("web", web, "processes"), 1)
    threads = _int("web", "threads", _required("web", web, "threads"), 1)
    return [_process(name, "web", processes, threads, _db_pool("web", threads, web.get("db_pool")))]


def _sidekiq(sidekiq):
    if sidekiq is None:
        return []
    if not isinstance(sidekiq, (list, tuple)):
        raise ConnectionPlanError("sidekiq must be a list of processes, got %s" % type(sidekiq).__name__)
    out, seen = [], set()
    for index, entry in enumerate(sidekiq):
        where = "sidekiq[%d]" % index
        entry = _mapping(where, entry, _SIDEKIQ_KEYS)
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ConnectionPlanError("%s: name is required (a non-empty string)" % where)
        where = "sidekiq process %s" % name
        if name in seen:
            raise ConnectionPlanError("%s is listed twice; give every process its own name" % where)
        seen.add(name)
        state = entry.get("state", "present") or "present"
        if state not in ("present", "absent"):
            raise ConnectionPlanError("%s: state must be present or absent, got %r" % (where, state))
        if state == "absent":
            continue
        threads = _int(where, "threads", _required(where, entry, "threads"), 1)
        out.append(_process(name, "sidekiq", 1, threads, _db_pool(where, threads, entry.get("db_pool"))))
    return out


def _streaming(streaming):
    streaming = _mapping("streaming", streaming, _STREAMING_KEYS)
    if not streaming:
        return []
    name = str(streaming.get("name") or "streaming")
    instances = _int("streaming", "instances", _required("streaming", streaming, "instances"), 1)
    pool = streaming.get("db_pool")
    pool = STREAMING_DEFAULT_DB_POOL if pool is None else _int("streaming", "db_pool", pool, 1)
    # Node's pg pool has no threads: the pool size is how many queries may run at once.
    return [_process(name, "streaming", instances, pool, pool)]


def server_capacity(processes, pools, default_pool_size, reserve_pool_size=0):
    """Server connections one PgBouncer may open to PostgreSQL: each of its processes (so_reuseport) opens each
    pool (database/user pair) up to default_pool_size, plus reserve_pool_size when clients wait."""
    return int(processes) * int(pools) * (int(default_pool_size) + int(reserve_pool_size))


def _pgbouncer(pgbouncer):
    """The PgBouncers: [{name, processes, pools, default_pool_size, reserve_pool_size, max_client_conn, clients}].

    Either one shape for every PgBouncer (`instances` of them, `clients_per_instance` at the busiest), or `hosts`:
    one entry per PgBouncer with its own settings, the section's values as defaults."""
    pgbouncer = _mapping("pgbouncer", pgbouncer, _PGBOUNCER_KEYS)
    if not pgbouncer:
        return None

    def value(where, entry, key, default, minimum):
        given = entry.get(key)
        if given is None:
            given = pgbouncer.get(key)
        if given is None:
            if default is None:
                raise ConnectionPlanError("%s: %s is required" % (where, key))
            given = default
        return _int(where, key, given, minimum)

    pools = value("pgbouncer", {}, "pools", 1, 1)
    hosts = pgbouncer.get("hosts")
    if hosts is not None:
        if not isinstance(hosts, (list, tuple)) or not hosts:
            raise ConnectionPlanError("pgbouncer: hosts must be a non-empty list of PgBouncers")
        entries = [(_mapping("pgbouncer hosts[%d]" % index, entry, _PGBOUNCER_HOST_KEYS), "pgbouncer hosts[%d]" % index)
                   for index, entry in enumerate(hosts)]
    else:
        count = value("pgbouncer", {}, "instances", 1, 1)
        clients = pgbouncer.get("clients_per_instance")
        entries = [({"clients": clients}, "pgbouncer") for _index in range(count)]
    out = []
    for index, (entry, where) in enumerate(entries):
        clients = entry.get("clients")
        out.append({
            "name": str(entry.get("name") or ("pgbouncer" if len(entries) == 1 else "pgbouncer %d" % (index + 1))),
            "processes": value(where, entry, "processes", 1, 1),
            "pools": pools,
            "default_pool_size": value(where, entry, "default_pool_size", None, 1),
            "reserve_pool_size": value(where, entry, "reserve_pool_size", 0, 0),
            "max_client_conn": value(where, entry, "max_client_conn", None, 1),
            "clients": None if clients is None else _int(where, "clients", clients, 0),
        })
    return out


def _postgresql(postgresql):
    postgresql = _mapping("postgresql", postgresql, _POSTGRESQL_KEYS)
    if not postgresql:
        return None
    max_connections = _int("postgresql", "max_connections", _required("postgresql", postgresql, "max_connections"), 1)
    reserved = postgresql.get("superuser_reserved_connections")
    reserved = DEFAULT_SUPERUSER_RESERVED if reserved is None else _int(
        "postgresql", "superuser_reserved_connections", reserved, 0)
    if reserved >= max_connections:
        raise ConnectionPlanError(
            "postgresql: superuser_reserved_connections %d leaves nothing of max_connections %d for Mastodon"
            % (reserved, max_connections))
    return {"max_connections": max_connections, "superuser_reserved_connections": reserved}


def _breakdown(processes):
    parts = []
    for proc in processes:
        if proc["kind"] == "sidekiq":
            parts.append("sidekiq %s %d" % (proc["name"], proc["threads"]))
        elif proc["kind"] == "web":
            parts.append("web %d processes x %d threads" % (proc["count"], proc["threads"]))
        else:
            parts.append("streaming %d instances x DB_POOL %d" % (proc["count"], proc["threads"]))
    return ", ".join(parts) if parts else "no processes"


def plan(web=None, sidekiq=None, streaming=None, pgbouncer=None, postgresql=None, replica=False):
    """Compute the connection plan. Raises ConnectionPlanError when the input is not a plan.

    With `replica` (Mastodon 4.2+ reading from a replica), every Rails process (web, Sidekiq) holds a
    second pool of DB_POOL connections for the replica, so its client connections count twice.

    Returns a dict: processes, total_threads, client_connections, server_connections, limits,
    feasible, problems (sentences that name the numbers and what to change).
    """
    processes = _web(web) + _sidekiq(sidekiq) + _streaming(streaming)
    bouncers = _pgbouncer(pgbouncer)
    postgres = _postgresql(postgresql)

    if replica not in (True, False, None):
        raise ConnectionPlanError("replica must be true or false, got %r" % (replica,))
    total_threads = sum(proc["connections"] for proc in processes)
    replica_clients = sum(proc["connections"] for proc in processes if proc["kind"] in ("web", "sidekiq")) if replica else 0
    clients = total_threads + replica_clients
    capacity = None
    busiest = clients
    if bouncers is None:
        server = clients
    else:
        for bouncer in bouncers:
            if bouncer["clients"] is None:
                bouncer["clients"] = -(-clients // len(bouncers))
            bouncer["capacity"] = server_capacity(bouncer["processes"], bouncer["pools"], bouncer["default_pool_size"],
                                                  bouncer["reserve_pool_size"])
        capacity = sum(bouncer["capacity"] for bouncer in bouncers)
        busiest = max(bouncer["clients"] for bouncer in bouncers)
        # Each client holds at most one server connection at a time: a PgBouncer never opens more than its
        # clients, nor more than its pools allow.
        server = min(clients, sum(min(bouncer["clients"], bouncer["capacity"]) for bouncer in bouncers))
    available = None
    if postgres is not None:
        available = postgres["max_connections"] - postgres["superuser_reserved_connections"]

    problems = []
    breakdown = _breakdown(processes) + (", and a replica pool in every web and Sidekiq process (%d)"
                                         % replica_clients if replica_clients else "")
    named = bool(pgbouncer and pgbouncer.get("hosts"))
    for bouncer in (bouncers if named else bouncers[:1]) if bouncers else []:
        if bouncer["clients"] <= bouncer["max_client_conn"]:
            continue
        if len(bouncers) == 1:
            where = "Mastodon opens up to %d client connections (%s)" % (clients, breakdown)
        else:
            where = "%s gets up to %d client connections (%d in all: %s)" % (
                "the PgBouncer on %s" % bouncer["name"] if named else "the busiest of %d PgBouncers" % len(bouncers),
                bouncer["clients"], clients, breakdown)
        problems.append(
            "%s but PgBouncer's max_client_conn is %d: raise pgbouncer_max_client_conn to at least %d, "
            "or remove %d threads from the plan."
            % (where, bouncer["max_client_conn"], bouncer["clients"], bouncer["clients"] - bouncer["max_client_conn"]))
    if postgres is not None and server > available:
        if bouncers is None:
            problems.append(
                "Mastodon opens up to %d connections straight to PostgreSQL (%s) but max_connections %d "
                "minus superuser_reserved_connections %d leaves %d: raise postgresql max_connections to at "
                "least %d, remove %d threads from the plan, or put PgBouncer in front."
                % (clients, breakdown, postgres["max_connections"], postgres["superuser_reserved_connections"],
                   available, clients + postgres["superuser_reserved_connections"], clients - available))
        else:
            openings = sum(b["processes"] * b["pools"] for b in bouncers)
            reserve = max(b["reserve_pool_size"] for b in bouncers)
            per_pool = available // openings - reserve
            fix = ("lower pgbouncer_default_pool_size to at most %d" % per_pool if per_pool >= 1 else
                   "lower pgbouncer_reserve_pool_size, pgbouncer_processes or the number of pools")
            if any(b["processes"] > 1 for b in bouncers):
                fix += " (or pgbouncer_processes: each process opens its own pools)"
            problems.append(
                "PgBouncer may open up to %d server connections (%s, capped by %d clients) but max_connections %d "
                "minus superuser_reserved_connections %d leaves %d: %s, or raise postgresql max_connections "
                "to at least %d."
                % (server, _capacity_breakdown(bouncers), clients, postgres["max_connections"],
                   postgres["superuser_reserved_connections"], available, fix,
                   server + postgres["superuser_reserved_connections"]))

    limits = {
        "max_client_conn": min(b["max_client_conn"] for b in bouncers) if bouncers else None,
        "pgbouncer_instances": len(bouncers) if bouncers else 0,
        "clients_per_pgbouncer": busiest if bouncers else None,
        "pgbouncer_server_capacity": capacity,
        "max_connections": postgres["max_connections"] if postgres else None,
        "superuser_reserved_connections": postgres["superuser_reserved_connections"] if postgres else None,
        "postgresql_available": available,
    }
    return {
        "pgbouncers": bouncers or [],
        "processes": processes,
        "total_threads": total_threads,
        "client_connections": clients,
        "replica_client_connections": replica_clients,
        "server_connections": server,
        "limits": limits,
        "feasible": not problems,
        "problems": problems,
    }


def _capacity_breakdown(bouncers):
    """'2 processes x 2 pools x (default_pool_size 20 + reserve_pool_size 5) = 100' for each PgBouncer."""
    parts = []
    for bouncer in bouncers:
        part = "%s%d pools x (default_pool_size %d + reserve_pool_size %d)" % (
            "%d processes x " % bouncer["processes"] if bouncer["processes"] > 1 else "", bouncer["pools"],
            bouncer["default_pool_size"], bouncer["reserve_pool_size"])
        parts.append(part if len(bouncers) == 1 else "%s: %s = %d" % (bouncer["name"], part, bouncer["capacity"]))
    if len(bouncers) > 1 and len({p.split(": ", 1)[1] for p in parts}) == 1:
        return "%d PgBouncers x %s" % (len(bouncers), parts[0].split(": ", 1)[1])
    return "; ".join(parts)


def plan_from(data):
    """plan() from one mapping {web, sidekiq, streaming, pgbouncer, postgresql}, for the filter."""
    data = _mapping("connection plan", data, _SECTIONS)
    return plan(**{key: data.get(key) for key in _SECTIONS})
