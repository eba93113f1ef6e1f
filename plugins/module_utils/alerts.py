# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus alert rules for the signals the doctor judges, from the doctor's own thresholds.

`rules()` turns `doctor.thresholds(overrides)` into a Prometheus rules file; each alert carries the guide's
section and the variable to change from `doctor.FINDINGS`, so a threshold or an advice changes in one place.
The metric names are those the exporters of the metrics role export (checked against their /metrics):
Debian's prometheus-redis-exporter (1.45 on Debian 12, 1.69 on 13), prometheus-pgbouncer-exporter (0.10 on
Debian 13; Debian 12's cannot read its PgBouncer) and prometheus-postgres-exporter (0.11 on 12, 0.17 on 13),
and the two extras `exporter_extras()` gives them: the PostgreSQL exporter's queries (a standby's replay lag,
each slot's retained WAL, with the doctor's SQL) and a Lua script the Redis exporter runs for each Sidekiq
queue's latency (its oldest job's wait, as Sidekiq's own Queue#latency reads it).
"""

from __future__ import annotations

import re

from ansible_collections.fediops.mastodon.plugins.module_utils import doctor

# redis_script_values{key="<prefix><queue>"}: the Lua script's output, read by the latency rule.
LATENCY_KEY = "sidekiq_queue_latency_seconds:"

# Sidekiq's queues are lists `queue:NAME` (jobs pushed on the left), named in the set `queues`; a job's
# enqueued_at is float seconds up to Sidekiq 7 and milliseconds from 8 (doctor.job_enqueued_at reads it the same
# way; tests/unit/plugins/module_utils/test_alerts.py runs both on the same jobs). The exporter EVALs it with no
# keys and reads a flat list of key, value.
SIDEKIQ_LATENCY_LUA = """-- fediops.mastodon: each Sidekiq queue's latency (the oldest job's wait, in seconds).
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local out = {}
for _, name in ipairs(redis.call('SMEMBERS', 'queues')) do
  local latency = 0
  local job = redis.call('LINDEX', 'queue:' .. name, -1)
  if job then
    local ok, decoded = pcall(cjson.decode, job)
    if ok and type(decoded) == 'table' and type(decoded['enqueued_at']) == 'number' then
      local at = decoded['enqueued_at']
      if at > 1e11 then at = at / 1000 end
      latency = t - at
    end
  end
  table.insert(out, '%s' .. name)
  table.insert(out, string.format('%%.3f', latency))
end
return out
""" % LATENCY_KEY

# The PostgreSQL exporter's own queries (--extend.query-path): metric names are <query>_<column>.
POSTGRESQL_QUERIES = {
    "fediops_pg_standby": {
        "query": "SELECT %s AS replay_lag_seconds" % doctor.STANDBY_REPLAY_LAG_SQL,
        "master": True,
        "metrics": [{"replay_lag_seconds": {"usage": "GAUGE", "description": "Seconds this standby's replay is "
                                            "behind the WAL it has received (0 on a primary)"}}],
    },
    "fediops_pg_slot": {
        "query": ("SELECT slot_name, active::int AS active, %s AS retained_bytes, "
                  "pg_size_bytes(current_setting('max_slot_wal_keep_size')) AS wal_keep_size_bytes "
                  "FROM pg_replication_slots WHERE NOT pg_is_in_recovery()" % doctor.SLOT_RETAINED_BYTES_SQL),
        "master": True,
        "metrics": [
            {"slot_name": {"usage": "LABEL", "description": "The replication slot"}},
            {"active": {"usage": "GAUGE", "description": "1 while a standby streams from the slot"}},
            {"retained_bytes": {"usage": "GAUGE", "description": "WAL the slot keeps on the primary's disk"}},
            {"wal_keep_size_bytes": {"usage": "GAUGE", "description": "max_slot_wal_keep_size (-1: no cap)"}},
        ],
    },
}

# One alert per condition: (alert name, doctor finding id, thresholds it reads, PromQL, summary). The PromQL is a
# format string over the thresholds and `window`; the summary is Prometheus's template text.
ALERTS = [
    ("FediopsPgBouncerClientsWaiting", "pgbouncer_clients_waiting", ["pgbouncer_maxwait_s"],
     'pgbouncer_pools_client_maxwait_seconds{{database!="pgbouncer"}} >= {pgbouncer_maxwait_s}'
     ' and pgbouncer_pools_client_waiting_connections > 0',
     "clients waited {{ $value }} s for a server connection in PgBouncer on {{ $labels.instance }} "
     "({{ $labels.database }}/{{ $labels.user }})"),
    ("FediopsPgBouncerFileDescriptors", "pgbouncer_file_descriptors", ["pgbouncer_fd_ratio"],
     "pgbouncer_process_open_fds / pgbouncer_process_max_fds >= {pgbouncer_fd_ratio}"
     " or pgbouncer_used_clients / pgbouncer_config_max_client_connections >= {pgbouncer_fd_ratio}",
     "PgBouncer on {{ $labels.instance }} uses {{ $value | humanizePercentage }} of its open files or client "
     "connections"),
    ("FediopsPgBouncerUnreachable", "pgbouncer_unreachable", [],
     "pgbouncer_up == 0",
     "the PgBouncer exporter on {{ $labels.instance }} cannot read PgBouncer's console: PgBouncer is down or "
     "refuses its monitoring user"),
    ("FediopsReplicaLag", "replication_lag", ["replication_lag_s"],
     "fediops_pg_standby_replay_lag_seconds >= {replication_lag_s}",
     "the standby on {{ $labels.instance }} replays {{ $value }} s behind the WAL it received: reads sent to it "
     "are that stale"),
    ("FediopsReplicationSlotWAL", "replication_slot_retention", ["slot_retained_bytes", "slot_wal_keep_ratio"],
     "(fediops_pg_slot_retained_bytes >= {slot_retained_bytes} and fediops_pg_slot_active == 0)"
     " or (fediops_pg_slot_retained_bytes >= {slot_wal_keep_ratio} * fediops_pg_slot_wal_keep_size_bytes"
     " and fediops_pg_slot_wal_keep_size_bytes > 0)",
     "replication slot {{ $labels.slot_name }} on {{ $labels.instance }} holds {{ $value | humanize1024 }}B of "
     "WAL; past max_slot_wal_keep_size PostgreSQL drops it and the standby must be rebuilt"),
    ("FediopsSidekiqQueueLatency", "sidekiq_queue_latency", ["sidekiq_latency_s"],
     'label_replace(redis_script_values{{key=~"' + LATENCY_KEY + '.+"}}, "queue", "$1", "key", "'
     + LATENCY_KEY + '(.+)") >= {sidekiq_latency_s}',
     "Sidekiq queue {{ $labels.queue }} ({{ $labels.instance }}): its oldest job has waited {{ $value }} s"),
    ("FediopsSidekiqQueueBacklog", "sidekiq_queue_backlog", ["sidekiq_queue_size"],
     'label_replace(redis_key_size{{key=~"queue:.+"}}, "queue", "$1", "key", "queue:(.+)") >= {sidekiq_queue_size}',
     "Sidekiq queue {{ $labels.queue }} ({{ $labels.instance }}) holds {{ $value }} jobs"),
    ("FediopsCacheEvicting", "cache_evicting", ["cache_memory_ratio"],
     'increase(redis_evicted_keys_total{{redis="cache"}}[{window}]) > 0'
     ' and redis_memory_used_bytes{{redis="cache"}} >= {cache_memory_ratio} * redis_memory_max_bytes{{redis="cache"}}',
     "the cache on {{ $labels.instance }} is full and evicted {{ $value }} keys in {window}"),
    ("FediopsRedisMemory", "redis_memory", ["redis_memory_ratio"],
     'redis_memory_used_bytes{{redis!="cache"}} >= {redis_memory_ratio} * redis_memory_max_bytes{{redis!="cache"}}'
     ' and redis_memory_max_bytes{{redis!="cache"}} > 0',
     "the Redis {{ $labels.redis }} holding Sidekiq's jobs on {{ $labels.instance }} uses {{ $value | humanize1024 }}B, "
     "near its maxmemory: with noeviction it will refuse new jobs"),
    ("FediopsRedisEvictionPolicy", "redis_eviction_policy", [],
     'redis_instance_info{{redis!="cache", maxmemory_policy!="noeviction"}}',
     "the Redis {{ $labels.redis }} holding Sidekiq's jobs on {{ $labels.instance }} runs maxmemory-policy "
     "{{ $labels.maxmemory_policy }}: it may drop queued jobs when full"),
    ("FediopsExporterDown", "exporter_down", [],
     'up{{job=~"mastodon-.+"}} == 0',
     "Prometheus cannot scrape {{ $labels.job }} ({{ $labels.instance }})"),
]

DURATION = re.compile(r"(?:[0-9]+(?:ms|s|m|h|d|w|y))+")


class AlertError(ValueError):
    """Settings the rules cannot be made from."""


def _duration(name, value):
    text = str(value)
    if not DURATION.fullmatch(text):
        raise AlertError("%s: %r is not a Prometheus duration (such as 30s, 5m or 1h30m)" % (name, value))
    return text


def _number(value):
    """A threshold as PromQL reads it, without the exponent %g would use for a byte count."""
    return ("%.6f" % value).rstrip("0").rstrip(".")


def rules(overrides=None, for_="5m", window="5m", group="fediops-mastodon"):
    """The rules file ({groups: [...]}) for `doctor.thresholds(overrides)`. `for_` is how long a condition must
    hold before its alert fires; `window` is the range a counter's increase is read over. Errors name the metrics
    role's variables, as doctor.thresholds names doctor_thresholds."""
    limits = doctor.thresholds(overrides)
    values = dict((name, _number(value)) for name, value in limits.items())
    values["window"] = _duration("metrics_alert_window", window)
    hold = _duration("metrics_alert_for", for_)
    out = []
    for name, finding, used, expr, summary in ALERTS:
        section, variable = doctor.FINDINGS[finding]
        annotations = {
            "summary": summary.replace("{window}", values["window"]),
            "section": doctor.GUIDE[section],
            "variable": variable,
        }
        if used:
            annotations["thresholds"] = ", ".join("doctor_thresholds.%s = %s" % (t, values[t]) for t in used)
        out.append({"alert": name, "expr": expr.format(**values), "for": hold,
                    "labels": {"severity": "warning", "finding": finding}, "annotations": annotations})
    return {"groups": [{"name": group, "rules": out}]}


def alert_names():
    return [entry[0] for entry in ALERTS]


def exporter_extras():
    """What the exporters need for the rules: the PostgreSQL exporter's queries and the Redis exporter's script."""
    return {"postgresql_queries": POSTGRESQL_QUERIES, "redis_script": SIDEKIQ_LATENCY_LUA}
