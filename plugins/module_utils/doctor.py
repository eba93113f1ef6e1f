# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The doctor's judgement, as pure functions: from what the hosts showed to findings that name the
guide's section and the variable to change.

`mastodon_doctor_sample` (the module) reads the live signals on each host and returns observations;
the `doctor_findings` filter runs `findings()` on the controller over every host's observations at once,
because PgBouncer on one host and the PostgreSQL it fills on another must be judged together.

A finding is raised only by a sustained or unmistakable signal (clients that waited longer than a
threshold, a queue whose oldest job is older than one, evictions during the sample): an idle server
names nothing.
"""

from __future__ import annotations

import json
import math
import re

GUIDE = {
    "web": "Managing concurrency / Web (Puma)",
    "sidekiq_threads": "Managing concurrency / Background processing (Sidekiq) / Number of threads",
    "sidekiq_queues": "Managing concurrency / Background processing (Sidekiq) / Queues",
    "pgbouncer": "Transaction pooling with pgBouncer",
    "cache": "Separate Redis for cache",
    "replica": "Read-replicas",
    # Not a section of the guide: Mastodon's own requirement for the Redis that holds Sidekiq's jobs.
    "redis": "Redis (Mastodon's main Redis holds Sidekiq's jobs)",
    "host": "Managing concurrency",
    # Not a section of the guide: this collection's exporters (README, "Metrics for Prometheus").
    "metrics": "Metrics for Prometheus (fediops.mastodon.metrics)",
}

THRESHOLDS = {
    # A PgBouncer client waited at least this long for a server connection (SHOW POOLS maxwait).
    "pgbouncer_maxwait_s": 1.0,
    # PostgreSQL connections in use, as a share of what non-superusers may open.
    "postgresql_connections_ratio": 0.9,
    # A standby this far behind (seconds of replay) serves stale reads.
    "replication_lag_s": 30.0,
    # WAL an inactive replication slot holds back.
    "slot_retained_bytes": 1024 ** 3,
    # The oldest job of a Sidekiq queue has waited this long.
    "sidekiq_latency_s": 30.0,
    # The cache used this share of its maxmemory while it evicted keys.
    "cache_memory_ratio": 0.9,
    # Cache hit rate below this, over at least cache_min_lookups lookups during the sample.
    "cache_hit_rate": 0.5,
    "cache_min_lookups": 1000,
    # The main Redis used this share of its maxmemory (when it has one).
    "redis_memory_ratio": 0.9,
    # Memory available on the host, as a share of the total, at its lowest during the sample.
    "host_memory_available_ratio": 0.1,
    # Read by the Prometheus alert rules only (module_utils/alerts.py), which a sample of seconds cannot judge:
    # jobs waiting in one Sidekiq queue;
    "sidekiq_queue_size": 10000,
    # PgBouncer's open files as a share of its limit, or its clients as a share of max_client_conn;
    "pgbouncer_fd_ratio": 0.9,
    # WAL a slot holds as a share of max_slot_wal_keep_size (read_replica_max_slot_wal_keep_size), past which
    # PostgreSQL drops the slot's WAL and its standby must be rebuilt.
    "slot_wal_keep_ratio": 0.8,
}

# What each finding is about: the guide's section (a key of GUIDE) and the variable to change. The doctor's
# findings and the Prometheus alert rules (module_utils/alerts.py) both read it.
FINDINGS = {
    "pgbouncer_server_connections_refused": ("pgbouncer", "max_connections"),
    "pgbouncer_clients_waiting": ("pgbouncer", "pgbouncer_default_pool_size"),
    "pgbouncer_file_descriptors": ("pgbouncer", "pgbouncer_max_client_conn"),
    "pgbouncer_unreachable": ("pgbouncer", "pgbouncer_stats_user"),
    "postgresql_connections": ("pgbouncer", "pgbouncer_default_pool_size"),
    "replication_lag": ("replica", "read_replica_replication_user"),
    "replication_slot_retention": ("replica", "read_replica_drop_slots"),
    "sidekiq_queue_latency": ("sidekiq_queues", "sidekiq_queues_processes"),
    "sidekiq_queue_backlog": ("sidekiq_queues", "sidekiq_queues_processes"),
    "sidekiq_threads_busy": ("sidekiq_threads", "sidekiq_queues_processes"),
    "cache_evicting": ("cache", "redis_cache_maxmemory"),
    "cache_hit_rate_low": ("cache", "redis_cache_maxmemory"),
    "cache_noeviction": ("cache", "redis_cache_maxmemory_policy"),
    "redis_eviction_policy": ("redis", "maxmemory-policy"),
    "redis_persistence": ("redis", "save/appendonly"),
    "redis_memory": ("redis", "maxmemory"),
    "puma_backlog": ("web", "web_concurrency"),
    "host_memory": ("host", "web_concurrency"),
    "host_cpus": ("web", "web_concurrency"),
    "exporter_down": ("metrics", "metrics_listen_address"),
}


# SQL the doctor's sample and the PostgreSQL exporter's queries (module_utils/alerts.py) share.
# A standby's replay lag: the age of the last replayed transaction, but only while WAL it has received waits to be
# replayed (an idle primary sends nothing, and a standby that has replayed all it got is not behind).
STANDBY_REPLAY_LAG_SQL = """CASE WHEN pg_is_in_recovery() AND pg_last_wal_receive_lsn() IS NOT NULL
      AND pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()
      THEN coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) ELSE 0 END"""
# The WAL a replication slot (a row of pg_replication_slots, on a primary) keeps on disk, in bytes.
SLOT_RETAINED_BYTES_SQL = "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)"


class DoctorError(ValueError):
    """A threshold the doctor cannot use."""


def thresholds(overrides=None):
    """THRESHOLDS with the caller's overrides, each a non-negative number."""
    merged = dict(THRESHOLDS)
    for name, value in (overrides or {}).items():
        if name not in THRESHOLDS:
            raise DoctorError("doctor_thresholds: unknown threshold %r (known: %s)" % (name, ", ".join(sorted(THRESHOLDS))))
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DoctorError("doctor_thresholds.%s: %r is not a number" % (name, value)) from None
        if number < 0 or math.isnan(number):
            raise DoctorError("doctor_thresholds.%s: %r must be zero or more" % (name, value))
        merged[name] = number
    return merged


# ---- reading what the servers print -------------------------------------------------------------

def parse_info(text):
    """Redis's INFO reply as {field: value}: integers and floats as numbers, the rest as strings."""
    info = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, _sep, value = line.partition(":")
        info[key] = _number(value)
    return info


def _number(value):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def redis_endpoint(env, prefix, source=".env.production"):
    """Where Mastodon reaches one of its Redis servers, read from its environment as Mastodon does
    (lib/mastodon/redis_configuration.rb): PREFIX_REDIS_URL wins; otherwise the main Redis's parts default
    to localhost:6379, while the CACHE_/SIDEKIQ_ parts count only when PREFIX_REDIS_HOST is set (None
    otherwise: that job then uses the main Redis). Returns {host, port, db, password}. `source` names the
    file in messages."""
    url = env.get(prefix + "REDIS_URL", "")
    if url:
        return parse_redis_url(url, "%sREDIS_URL in %s" % (prefix, source))
    if prefix and not env.get(prefix + "REDIS_HOST"):
        return None
    return {
        "host": env.get(prefix + "REDIS_HOST") or "localhost",
        "port": int(env.get(prefix + "REDIS_PORT") or 6379),
        "db": int(env.get(prefix + "REDIS_DB") or 0),
        "password": env.get(prefix + "REDIS_PASSWORD") or "",
    }


def parse_redis_url(url, where="a Redis URL in Mastodon's environment"):
    """redis://[user:password@]host[:port][/db] (or unix://path) as {host, port, db, password}.

    `where` names the URL in messages (CACHE_REDIS_URL in .env.production). rediss:// is refused: this
    collection's Redis client (module_utils/redis_wire.py) speaks plain TCP only, and would send the
    password in clear to a server that expects TLS.
    """
    from urllib.parse import unquote, urlsplit

    # The URL may hold a password: no message below quotes it, or a part of it.
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
    except ValueError:
        scheme = ""
    if scheme == "rediss":
        raise DoctorError("%s is a rediss:// URL (Redis over TLS), which this tool does not support: it speaks plain "
                          "TCP only, and would send the Redis password in clear. Run it against a Redis reached "
                          "over redis:// (or unix://), or leave this Redis out." % where)
    try:
        if scheme not in ("redis", "unix"):
            raise ValueError
        if scheme == "unix":
            return {"host": parts.path, "port": 0, "db": 0, "password": unquote(parts.password or "")}
        db = parts.path.strip("/")
        return {
            "host": parts.hostname or "localhost",
            "port": parts.port or 6379,
            "db": int(db) if re.fullmatch("[0-9]{1,9}", db) else 0,
            "password": unquote(parts.password or ""),
        }
    except ValueError:
        raise DoctorError("%s cannot be read: it must be redis://[:password@]host[:port][/db] (or unix://path), with "
                          "the password percent-encoded" % where) from None


def endpoint_label(endpoint):
    """host:port of an endpoint, never its password."""
    if endpoint["port"] == 0:
        return endpoint["host"]
    return "%s:%d" % (endpoint["host"], endpoint["port"])


def job_enqueued_at(payload):
    """The enqueue time of a Sidekiq job's JSON, in seconds: Sidekiq 8 stores milliseconds, earlier
    versions seconds as a float. None when the payload has none."""
    try:
        job = json.loads(payload)
    except (TypeError, ValueError):
        return None
    stamp = job.get("enqueued_at") if isinstance(job, dict) else None
    if not isinstance(stamp, (int, float)):
        return None
    return stamp / 1000.0 if stamp > 1e11 else float(stamp)


def sidekiq_process(fields, now, stale_after=60.0):
    """One entry of Sidekiq's process registry (HGETALL of an identity in `processes`) as
    {identity, hostname, pid, concurrency, busy, queues}, or None when its heartbeat is older than
    stale_after seconds (a process that died without cleaning up) or the entry is not one Sidekiq wrote."""
    try:
        info = json.loads(fields.get("info") or "{}")
        beat = float(fields.get("beat") or 0)
        busy = int(fields.get("busy") or 0)
        concurrency = int(info.get("concurrency") or 0) if isinstance(info, dict) else 0
    except (TypeError, ValueError):
        return None
    queues = info.get("queues") if isinstance(info, dict) else None
    if not isinstance(info, dict) or not isinstance(queues, list) or not all(isinstance(q, str) for q in queues):
        return None
    if beat > 1e11:  # milliseconds
        beat /= 1000.0
    if now - beat > stale_after:
        return None
    return {
        "identity": info.get("identity") or "%s:%s" % (info.get("hostname"), info.get("pid")),
        "hostname": info.get("hostname"),
        "pid": info.get("pid"),
        "concurrency": concurrency,
        "busy": busy,
        "queues": sorted(set(queues)),
    }


def natural_key(text):
    """Sort key that orders pgbouncer-10 after pgbouncer-9."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def rows_as_dicts(rows):
    """psql rows whose first row is the header, as dicts."""
    if not rows:
        return []
    header = rows[0]
    return [dict(zip(header, row)) for row in rows[1:]]


def pool_waits(pools_rows):
    """SHOW POOLS as [{database, user, cl_waiting, sv_active, maxwait_s}], the admin console left out."""
    waits = []
    for row in rows_as_dicts(pools_rows):
        if row.get("database") == "pgbouncer":
            continue
        waits.append({
            "database": row.get("database"),
            "user": row.get("user"),
            "cl_waiting": int(row.get("cl_waiting") or 0),
            "sv_active": int(row.get("sv_active") or 0),
            "maxwait_s": int(row.get("maxwait") or 0) + int(row.get("maxwait_us") or 0) / 1e6,
        })
    return waits


def pool_sizes(databases_rows):
    """SHOW DATABASES as {database name: pool_size}."""
    return {row.get("name"): int(row.get("pool_size") or 0)
            for row in rows_as_dicts(databases_rows) if row.get("name") != "pgbouncer"}


# ---- summaries of the samples ------------------------------------------------------------------

def summarize_pools(samples, sizes):
    """Each pool over the samples: the most clients waiting, the longest wait, the busiest server count."""
    pools = {}
    for sample in samples:
        for row in sample:
            key = (row["database"], row["user"])
            pool = pools.setdefault(key, {"database": row["database"], "user": row["user"],
                                          "pool_size": sizes.get(row["database"], 0), "cl_waiting_max": 0,
                                          "maxwait_max_s": 0.0, "sv_active_max": 0, "samples_waiting": 0})
            pool["cl_waiting_max"] = max(pool["cl_waiting_max"], row["cl_waiting"])
            pool["maxwait_max_s"] = max(pool["maxwait_max_s"], row["maxwait_s"])
            pool["sv_active_max"] = max(pool["sv_active_max"], row["sv_active"])
            pool["samples_waiting"] += 1 if row["cl_waiting"] > 0 else 0
    return sorted(pools.values(), key=lambda p: (p["database"], p["user"]))


def summarize_queues(samples, now_of):
    """Each Sidekiq queue over the samples: its largest size and its oldest job's largest wait.
    `samples` is a list of {queue: (size, oldest enqueued_at or None)}; now_of[i] is sample i's time."""
    queues = {}
    for index, sample in enumerate(samples):
        for name, (size, oldest) in sample.items():
            queue = queues.setdefault(name, {"size_max": 0, "latency_max_s": 0.0})
            queue["size_max"] = max(queue["size_max"], size)
            if size and oldest is not None:
                queue["latency_max_s"] = max(queue["latency_max_s"], round(now_of[index] - oldest, 3))
    return queues


def summarize_processes(samples):
    """Each Sidekiq process over the samples: its concurrency, and its fewest and most busy threads."""
    processes = {}
    for sample in samples:
        for proc in sample:
            entry = processes.setdefault(proc["identity"], dict(proc, busy_min=proc["busy"], busy_max=proc["busy"],
                                                                samples=0))
            entry["busy_min"] = min(entry["busy_min"], proc["busy"])
            entry["busy_max"] = max(entry["busy_max"], proc["busy"])
            entry["samples"] += 1
            entry.pop("busy", None)
    return sorted(processes.values(), key=lambda p: p["identity"])


def stats_delta(stats, seconds):
    """Two SHOW STATS readings (first and last) as {database: {xact_per_s, avg_wait_ms}} over the sample."""
    if len(stats) < 2 or not seconds:
        return {}
    before = {row.get("database"): row for row in stats[0]}
    result = {}
    for row in stats[-1]:
        name = row.get("database")
        if name == "pgbouncer" or name not in before:
            continue
        xacts = int(row.get("total_xact_count") or 0) - int(before[name].get("total_xact_count") or 0)
        waited = int(row.get("total_wait_time") or 0) - int(before[name].get("total_wait_time") or 0)
        result[name] = {"xact_per_s": round(xacts / seconds, 1),
                        "avg_wait_ms": round(waited / 1000.0 / xacts, 3) if xacts > 0 else 0.0}
    return result


def worst_standbys(pg_samples):
    """Each standby of pg_stat_replication with its replay lag sustained over the samples: the smallest
    seen, a sample without one (NULL once the standby has caught up and nothing is written) counting as 0."""
    lags = {}
    for sample in pg_samples:
        for standby in sample.get("standbys") or []:
            lags.setdefault(standby.get("name"), []).append(standby.get("replay_lag_s") or 0.0)
    count = len(pg_samples)
    return [{"name": name, "replay_lag_s": min(values) if len(values) == count else 0.0}
            for name, values in sorted(lags.items())]


def puma_load(stats):
    """Puma's /stats (cluster or single mode) as (requests waiting for a thread, busy threads)."""
    statuses = [w.get("last_status") or {} for w in stats.get("worker_status", [])] or [stats]
    backlog = sum(int(s.get("backlog") or 0) for s in statuses)
    busy = sum(int(s.get("max_threads") or 0) - int(s.get("pool_capacity") or 0) for s in statuses)
    return backlog, busy


# ---- findings -------------------------------------------------------------------------------------

def _finding(ident, host, message, key=None, **values):
    """A finding. `key` names what it is about (a Redis endpoint, a queue); two hosts reporting the
    same id about the same key report one condition. Without one, the host is the key."""
    section, variable = FINDINGS[ident]
    return {"id": ident, "host": host, "section": GUIDE[section], "variable": variable, "message": message,
            "values": values, "key": key or host}


LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def _redis_key(host, endpoint, *more):
    """What a Redis finding is about: the endpoint, with the host when the address is loopback or a socket
    (each host's own Redis), so that a shared Redis is one condition and local ones are not."""
    address = endpoint.rsplit(":", 1)[0] if ":" in endpoint and not endpoint.startswith("/") else endpoint
    local = address in LOOPBACK or endpoint.startswith("/")
    return "/".join([host + ":" + endpoint if local else endpoint] + [str(m) for m in more])


def _pg_spare(observations):
    """Connections the primary can still give non-superusers, with the host it was read on (or None)."""
    for host, obs in sorted(observations.items()):
        pg = obs.get("postgresql")
        if pg and not pg.get("in_recovery"):
            limit = pg["max_connections"] - pg["reserved_connections"]
            return host, limit, limit - pg["used_max"]
    return None


def _pgbouncer_findings(host, pgb, observations, limits):
    found = []
    spare = _pg_spare(observations)
    # Every PgBouncer process on every host opens its own pool: a step of the pool size costs that many times over.
    pools_opened = sum(max(1, int((obs or {}).get("pgbouncer", {}).get("processes") or 1))
                       for obs in observations.values() if (obs or {}).get("pgbouncer"))
    for pool in pgb.get("pools", []):
        if pool["cl_waiting_max"] == 0 or pool["maxwait_max_s"] < limits["pgbouncer_maxwait_s"]:
            continue
        size = int(pool["pool_size"] or 0)
        head = ("clients waiting in PgBouncer for %.1f s (%d at once, %s/%s"
                % (pool["maxwait_max_s"], pool["cl_waiting_max"], pool["database"], pool["user"]))
        values = dict(key="%s/%s/%s" % (host, pool["database"], pool["user"]), maxwait_s=pool["maxwait_max_s"],
                      cl_waiting=pool["cl_waiting_max"], pool_size=size, sv_active=pool["sv_active_max"])
        if size > 0 and pool["sv_active_max"] < size:
            found.append(_finding(
                "pgbouncer_server_connections_refused", host,
                head + ", only %d of its %d server connections open): PgBouncer could not open more, so a larger pool "
                "would not help; PostgreSQL's max_connections (postgresql.conf) or the database's max_db_connections "
                "is the limit" % (pool["sv_active_max"], size), **values))
            continue
        if size <= 0:
            found.append(_finding(
                "pgbouncer_clients_waiting", host,
                head + "): raise pgbouncer_default_pool_size, within PostgreSQL's max_connections", **values))
            continue
        step = max(5, int(math.ceil(size * 0.5)))
        need = step * pools_opened
        if spare is None:
            tail = "; PostgreSQL's max_connections needs %d connections spare for it" % need
        elif spare[2] >= need:
            tail = ("; PostgreSQL on %s has %d connections spare, enough for the %d more this opens"
                    % (spare[0], spare[2], need))
        else:
            tail = ("; PostgreSQL on %s has only %d connections spare of the %d more this opens, so raise its "
                    "max_connections first or send reads to a replica (scale_read_replica_enabled)"
                    % (spare[0], spare[2], need))
        found.append(_finding(
            "pgbouncer_clients_waiting", host,
            head + ", all %d server connections busy): raise pgbouncer_default_pool_size from %d to %d%s"
            % (pool["sv_active_max"], size, size + step, tail), suggested=size + step, spare_needed=need, **values))
    return found


def _postgresql_findings(host, pg, limits):
    found = []
    limit = pg["max_connections"] - pg["reserved_connections"]
    if limit > 0 and pg["used_max"] >= limits["postgresql_connections_ratio"] * limit:
        found.append(_finding(
            "postgresql_connections", host,
            "PostgreSQL used %d of the %d connections non-superusers may open: lower the pools that fill it "
            "(pgbouncer_default_pool_size, or scale_pgbouncer_enabled where Mastodon connects directly) or raise "
            "max_connections in postgresql.conf" % (pg["used_max"], limit),
            used=pg["used_max"], limit=limit))
    for standby in pg.get("standbys", []):
        if standby["replay_lag_s"] is not None and standby["replay_lag_s"] >= limits["replication_lag_s"]:
            found.append(_finding(
                "replication_lag", host,
                "standby %s replays %.0f s behind the primary: reads sent to it are that stale; check its disk "
                "and network before sending it more reads" % (standby["name"], standby["replay_lag_s"]),
                standby=standby["name"], lag_s=standby["replay_lag_s"]))
    if pg.get("in_recovery") and (pg.get("standby_lag_s") or 0) >= limits["replication_lag_s"]:
        found.append(_finding(
            "replication_lag", host,
            "this standby replays %.0f s behind the WAL it has received: reads sent to it are that stale"
            % pg["standby_lag_s"], lag_s=pg["standby_lag_s"]))
    for slot in pg.get("slots", []):
        if not slot["active"] and slot["retained_bytes"] >= limits["slot_retained_bytes"]:
            found.append(_finding(
                "replication_slot_retention", host,
                "replication slot %s is inactive and holds %s of WAL on the primary's disk: bring its standby "
                "back, or drop the slot (read_replica_drop_slots); read_replica_max_slot_wal_keep_size caps it"
                % (slot["name"], _bytes(slot["retained_bytes"])),
                slot=slot["name"], retained_bytes=slot["retained_bytes"]))
    return found


def _sidekiq_findings(host, sk, limits):
    found = []
    queues = sk.get("queues", {})
    processes = sk.get("processes", [])
    late = {name: q for name, q in queues.items() if q["latency_max_s"] >= limits["sidekiq_latency_s"]}
    for name in sorted(late):
        queue = late[name]
        servers = [p for p in processes if name in p["queues"]]
        saturated = [p for p in servers if p["concurrency"] and p["busy_min"] >= p["concurrency"]]
        # A queue no job was ever pushed to is missing from Sidekiq's `queues` set, yet still served: empty.
        served = set(queues) | {q for p in processes for q in p["queues"]}
        others_idle = sorted(n for n in served if n != name and queues.get(n, {}).get("size_max", 0) == 0)
        if not servers:
            advice = "no live Sidekiq process serves %s: add it to a process (sidekiq_queues_processes)" % name
        elif len(servers) == 1 and servers[0]["queues"] != [name]:
            shared = [q for q in servers[0]["queues"] if q != name]
            advice = ("give %s its own process (sidekiq_queues_processes); it now shares %d threads with %s"
                      % (name, servers[0]["concurrency"], ", ".join(shared)))
        else:
            advice = ("give the processes serving %s more threads or add one (sidekiq_queues_processes)" % name)
        while_text = (" while %s %s empty" % (", ".join(others_idle[:3]), "is" if len(others_idle[:3]) == 1 else "are")
                      if others_idle else "")
        found.append(_finding(
            "sidekiq_queue_latency", host,
            "%s queue latency %.0f s (%d jobs waiting)%s: %s"
            % (name, queue["latency_max_s"], queue["size_max"], while_text, advice),
            key=_redis_key(host, sk.get("endpoint", ""), name),
            queue=name, latency_s=queue["latency_max_s"], size=queue["size_max"],
            saturated_processes=[p["identity"] for p in saturated]))
    for proc in processes:
        backlog = [q for q in proc["queues"] if queues.get(q, {}).get("size_max", 0) > 0]
        if proc["concurrency"] and proc["busy_min"] >= proc["concurrency"] and backlog:
            found.append(_finding(
                "sidekiq_threads_busy", host,
                "all %d threads of Sidekiq process %s were busy in every sample while %s had jobs waiting: "
                "raise its threads (sidekiq_queues_processes), keeping DB_POOL at least as large"
                % (proc["concurrency"], proc["identity"], ", ".join(backlog)),
                key=proc["identity"], process=proc["identity"], concurrency=proc["concurrency"]))
    return found


def _cache_findings(host, cache, limits):
    found = []
    maxmemory = cache.get("maxmemory") or 0
    if (cache.get("evicted_delta", 0) > 0 and maxmemory
            and cache["used_memory_max"] >= limits["cache_memory_ratio"] * maxmemory):
        rate = cache["evicted_delta"] / max(cache.get("seconds") or 1, 1e-9)
        found.append(_finding(
            "cache_evicting", host,
            "the cache at %s is full (%s of %s) and evicted %d keys in %.0f s (%.0f/s): raise "
            "redis_cache_maxmemory from %s to %s if the host has the memory"
            % (cache["endpoint"], _bytes(cache["used_memory_max"]), _bytes(maxmemory), cache["evicted_delta"],
               cache.get("seconds") or 0, rate, _mb(maxmemory), _mb(maxmemory * 2)),
            key=_redis_key(host, cache["endpoint"]), evicted=cache["evicted_delta"], maxmemory=maxmemory, suggested=_mb(maxmemory * 2)))
    lookups = cache.get("hits_delta", 0) + cache.get("misses_delta", 0)
    if lookups >= limits["cache_min_lookups"]:
        rate = cache["hits_delta"] / float(lookups)
        if rate < limits["cache_hit_rate"]:
            found.append(_finding(
                "cache_hit_rate_low", host,
                "the cache at %s answered %.0f%% of %d lookups: if it also evicts, raise redis_cache_maxmemory"
                % (cache["endpoint"], rate * 100, lookups), key=_redis_key(host, cache["endpoint"]), hit_rate=round(rate, 3), lookups=lookups))
    if cache.get("policy") and cache["policy"] in ("noeviction",):
        found.append(_finding(
            "cache_noeviction", host,
            "the cache at %s refuses writes when full (maxmemory-policy noeviction): set "
            "redis_cache_maxmemory_policy to allkeys-lru" % cache["endpoint"], key=_redis_key(host, cache["endpoint"]), policy=cache["policy"]))
    return found


def _redis_findings(host, redis, limits):
    found = []
    label = redis["endpoint"]
    key = _redis_key(host, label)
    if redis.get("policy") and redis["policy"] != "noeviction":
        found.append(_finding(
            "redis_eviction_policy", host,
            "the Redis holding Sidekiq's jobs (%s) runs maxmemory-policy %s: it may drop queued jobs when full; "
            "set it to noeviction, and move the cache out of it (scale_redis_cache_enabled)" % (label, redis["policy"]),
            key=key, policy=redis["policy"]))
    if redis.get("save") == "" and redis.get("appendonly") == "no":
        found.append(_finding(
            "redis_persistence", host,
            "the Redis holding Sidekiq's jobs (%s) persists nothing (save \"\" and appendonly no): a restart "
            "loses every queued and scheduled job; turn on RDB snapshots or the AOF" % label, key=key))
    if redis.get("last_bgsave_status") not in (None, "ok"):
        found.append(_finding(
            "redis_persistence", host,
            "the Redis holding Sidekiq's jobs (%s) failed its last snapshot (rdb_last_bgsave_status %s): check "
            "its disk" % (label, redis["last_bgsave_status"]), key=key, status=redis["last_bgsave_status"]))
    maxmemory = redis.get("maxmemory") or 0
    if maxmemory and redis.get("used_memory_max", 0) >= limits["redis_memory_ratio"] * maxmemory:
        found.append(_finding(
            "redis_memory", host,
            "the Redis holding Sidekiq's jobs (%s) uses %s of its maxmemory %s: with noeviction it will refuse "
            "new jobs; raise maxmemory or move the cache out (scale_redis_cache_enabled)"
            % (label, _bytes(redis["used_memory_max"]), _bytes(maxmemory)),
            key=key, used=redis["used_memory_max"], maxmemory=maxmemory))
    return found


def _puma_findings(host, puma):
    found = []
    if puma.get("backlog_samples", 0) and puma["backlog_samples"] * 2 >= puma.get("samples", 1):
        found.append(_finding(
            "puma_backlog", host,
            "Puma had requests waiting for a thread in %d of %d samples (up to %d): raise web_concurrency "
            "(processes) if the host has CPUs and memory spare, or web_max_threads"
            % (puma["backlog_samples"], puma["samples"], puma["backlog_max"]), backlog=puma["backlog_max"]))
    return found


def _host_findings(host, facts, limits):
    found = []
    total = facts.get("mem_total") or 0
    if total and facts.get("mem_available_min", total) < limits["host_memory_available_ratio"] * total:
        found.append(_finding(
            "host_memory", host,
            "only %s of %s memory was available: lower web_concurrency or Sidekiq threads "
            "(sidekiq_queues_processes) on this host, or give it more memory"
            % (_bytes(facts["mem_available_min"]), _bytes(total)),
            available=facts["mem_available_min"], total=total))
    workers = facts.get("puma_workers") or 0
    if workers and facts.get("cpus") and workers > facts["cpus"]:
        found.append(_finding(
            "host_cpus", host,
            "Puma runs %d worker processes on %d CPUs: more processes than CPUs only queue on them; lower "
            "web_concurrency to %d and raise web_max_threads instead" % (workers, facts["cpus"], facts["cpus"]),
            workers=workers, cpus=facts["cpus"]))
    return found


def findings(observations, overrides=None):
    """Every finding of every host's observations ({host: observations}), the same condition seen through
    two hosts (a shared Redis) named once, in host order."""
    limits = thresholds(overrides)
    found = []
    for host in sorted(observations):
        obs = observations[host] or {}
        if obs.get("pgbouncer"):
            found += _pgbouncer_findings(host, obs["pgbouncer"], observations, limits)
        if obs.get("postgresql"):
            found += _postgresql_findings(host, obs["postgresql"], limits)
        if obs.get("sidekiq"):
            found += _sidekiq_findings(host, obs["sidekiq"], limits)
        if obs.get("cache"):
            found += _cache_findings(host, obs["cache"], limits)
        if obs.get("redis"):
            found += _redis_findings(host, obs["redis"], limits)
        if obs.get("puma"):
            found += _puma_findings(host, obs["puma"])
        if obs.get("host"):
            found += _host_findings(host, obs["host"], limits)
    seen = set()
    unique = []
    for item in found:
        if (item["id"], item["key"]) not in seen:
            seen.add((item["id"], item["key"]))
            unique.append(item)
    return unique


def _bytes(count):
    count = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return ("%d %s" % (count, unit)) if unit == "B" else ("%.1f %s" % (count, unit))
        count /= 1024.0
    return "%d B" % count  # pragma: no cover


def _mb(count):
    """A byte count in Redis's mb units (1024 * 1024), rounded up."""
    return "%dmb" % int(math.ceil(count / 1048576.0))


def report_lines(found):
    """The findings as lines for a terminal: one per finding, or one saying that nothing was found."""
    if not found:
        return ["doctor: nothing to change: no signal crossed its threshold during the sample"]
    return ["%s: %s [guide: %s; variable: %s]" % (item["host"], item["message"], item["section"], item["variable"])
            for item in found]
