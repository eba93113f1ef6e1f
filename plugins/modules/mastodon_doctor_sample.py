#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: mastodon_doctor_sample
short_description: Sample a Mastodon host's live saturation signals for some seconds, changing nothing
description:
  - Reads, once every O(interval) seconds for O(duration) seconds, what tells an operator that a Mastodon server
    has outgrown its settings, and returns a summary of each signal (RV(observations)). Judging them is the
    P(fediops.mastodon.doctor_findings#filter) filter's job, on the controller, over every host at once.
  - "PgBouncer (O(pgbouncer)): C(SHOW POOLS) each sample (clients waiting, the longest wait), C(SHOW DATABASES) for the
    pool sizes and C(SHOW STATS) at both ends, through the admin console's Unix socket."
  - "PostgreSQL (O(postgresql)), as the C(postgres) user over its socket: connections in use against
    C(max_connections) less the reserved ones, each standby's replay lag, each replication slot's retained WAL,
    and on a standby its own replay lag."
  - "Redis (O(redis)), at the addresses Mastodon's environment file names, read the way Mastodon reads them:
    Sidekiq's Redis (C(SIDEKIQ_REDIS_*), else C(REDIS_*)): each queue's size and its oldest job's wait, each live
    process's busy threads against its concurrency (Sidekiq's own process registry), the eviction policy,
    memory and persistence; the cache (C(CACHE_REDIS_*)): memory against maxmemory, evictions and hits."
  - "The host: CPUs, memory available at its lowest, and Puma's worker processes; Puma's own backlog when
    O(puma_stats_url) names its control app."
  - Reads only, so check mode runs it whole. Passwords travel in the environment or in Redis's C(AUTH), never on
    a command line, and never come back in the result.
version_added: 0.1.0
options:
  duration:
    description: Seconds to sample for.
    type: int
    default: 10
  interval:
    description: Seconds between samples.
    type: float
    default: 1.0
  env_file:
    description: Mastodon's environment file, for the Redis addresses. Missing means no Redis to sample.
    type: path
    default: /home/mastodon/live/.env.production
  pgbouncer:
    description: Sample PgBouncer.
    type: bool
    default: false
  pgbouncer_sockets:
    description:
      - The admin console's socket directory of each PgBouncer process on this host.
      - "Empty finds them: C(/var/run/postgresql) and the extra processes' C(/run/postgresql/pgbouncer-N) of
        C(pgbouncer_processes), each where PgBouncer's socket for O(pgbouncer_port) is."
    type: list
    elements: path
    default: []
  pgbouncer_port:
    description: PgBouncer's port.
    type: int
    default: 6432
  pgbouncer_user:
    description: A user in PgBouncer's C(stats_users) or C(admin_users).
    type: str
    default: pgbouncer
  pgbouncer_password:
    description: That user's password. Never logged.
    type: str
    default: ""
  postgresql:
    description: Sample the PostgreSQL server on this host.
    type: bool
    default: false
  postgresql_port:
    description: PostgreSQL's port.
    type: int
    default: 5432
  redis:
    description: Sample the Redis servers that O(env_file) names.
    type: bool
    default: false
  puma_stats_url:
    description: Puma's control app C(/stats) URL, when Puma runs one (Mastodon's C(config/puma.rb) does not).
    type: str
    default: ""
  puma_control_token:
    description: The control app's token. Never logged.
    type: str
    default: ""
extends_documentation_fragment:
  - fediops.mastodon.attributes
attributes:
  check_mode:
    details: Reads only; runs whole in check mode.
  diff_mode:
    details: Nothing to show.
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Sample the PgBouncer and the Redis servers of an application host for 10 seconds
  fediops.mastodon.mastodon_doctor_sample:
    duration: 10
    pgbouncer: true
    pgbouncer_user: pgbouncer_stats
    pgbouncer_password: "{{ vault_pgbouncer_stats_password }}"
    redis: true
  register: sample
"""

RETURN = r"""
observations:
  description: One key per signal that was sampled (V(pgbouncer), V(postgresql), V(sidekiq), V(redis), V(cache),
    V(puma), V(host)), each a summary over the samples; the input of P(fediops.mastodon.doctor_findings#filter).
  returned: always
  type: dict
errors:
  description: Signals that could not be read, each with the reason (a server that is down, a refused login).
  returned: always
  type: list
  elements: str
samples:
  description: How many samples were taken.
  returned: always
  type: int
"""

import glob
import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.fediops.mastodon.plugins.module_utils import doctor, text_file
from ansible_collections.fediops.mastodon.plugins.module_utils.env_file import parse as parse_env
from ansible_collections.fediops.mastodon.plugins.module_utils.pg_query import argv, conninfo, parse_rows, script
from ansible_collections.fediops.mastodon.plugins.module_utils.redis_wire import Connection, RedisError

POSTGRESQL_SQL = """
SELECT json_build_object(
  'max_connections', current_setting('max_connections')::int,
  'reserved_connections', current_setting('superuser_reserved_connections')::int
      + coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int,
  'used', (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
  'in_recovery', pg_is_in_recovery(),
  'standbys', (SELECT coalesce(json_agg(json_build_object(
      'name', application_name, 'replay_lag_s', extract(epoch FROM replay_lag))), '[]') FROM pg_stat_replication),
  'slots', CASE WHEN pg_is_in_recovery() THEN '[]'::json ELSE (SELECT coalesce(json_agg(json_build_object(
      'name', slot_name, 'active', active,
      'retained_bytes', %(slot_retained)s)), '[]')
      FROM pg_replication_slots) END,
  'standby_lag_s', %(standby_lag)s)
""" % {"slot_retained": doctor.SLOT_RETAINED_BYTES_SQL, "standby_lag": doctor.STANDBY_REPLAY_LAG_SQL}


class Sampler:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.errors = []
        self.psql = module.get_bin_path("psql") if (self.p["pgbouncer"] or self.p["postgresql"]) else None

    def fail_soft(self, what, message):
        text = "%s: %s" % (what, message)
        if text not in self.errors:
            self.errors.append(text)

    # ---- PgBouncer --------------------------------------------------------------------------------
    def pgbouncer_show(self, socket_dir, command):
        cmd = argv(self.psql, conninfo("pgbouncer", self.p["pgbouncer_port"], socket_dir, self.p["pgbouncer_user"]),
                   header=True)
        environ = {"PGPASSWORD": self.p["pgbouncer_password"]} if self.p["pgbouncer_password"] else {}
        rc, out, err = self.module.run_command(cmd, data=script(command, read_only=False), binary_data=True,
                                               environ_update=environ, check_rc=False, cwd="/")
        if rc != 0:
            raise RuntimeError(err.strip() or "psql exited with %d" % rc)
        return parse_rows(out)

    def pgbouncer_sockets(self):
        given = self.p["pgbouncer_sockets"] or (
            ["/var/run/postgresql"] + sorted(glob.glob("/run/postgresql/pgbouncer-*"), key=doctor.natural_key))
        found = [d for d in given if os.path.exists(os.path.join(d, ".s.PGSQL.%d" % self.p["pgbouncer_port"]))]
        if not found:
            self.fail_soft("pgbouncer", "no PgBouncer socket for port %d in %s" % (self.p["pgbouncer_port"], ", ".join(given)))
        return found

    # ---- PostgreSQL -------------------------------------------------------------------------------
    def postgresql_read(self):
        cmd = argv(self.psql, conninfo("postgres", self.p["postgresql_port"]), "postgres")
        rc, out, err = self.module.run_command(cmd, data=script(POSTGRESQL_SQL), binary_data=True, check_rc=False,
                                               cwd="/")
        if rc != 0:
            raise RuntimeError(err.strip() or "psql exited with %d" % rc)
        return json.loads(parse_rows(out)[0][0])

    # ---- Redis ------------------------------------------------------------------------------------
    @staticmethod
    def info(conn):
        return doctor.parse_info(conn.call("INFO"))

    @staticmethod
    def sidekiq(conn, now):
        queues = {}
        for name in sorted(conn.call("SMEMBERS", "queues") or []):
            size = conn.call("LLEN", "queue:" + name)
            oldest = doctor.job_enqueued_at(conn.call("LINDEX", "queue:" + name, -1)) if size else None
            queues[name] = (size, oldest)
        processes = []
        for identity in sorted(conn.call("SMEMBERS", "processes") or []):
            flat = conn.call("HGETALL", identity) or []
            proc = doctor.sidekiq_process(dict(zip(flat[0::2], flat[1::2])), now)
            if proc:
                proc["identity"] = identity
                processes.append(proc)
        return queues, processes

    @staticmethod
    def config_get(conn, name):
        try:
            reply = conn.call("CONFIG", "GET", name)
        except RedisError:
            return None  # CONFIG renamed away: the INFO fields are what there is
        return reply[1] if reply and len(reply) == 2 else None

    # ---- the host ---------------------------------------------------------------------------------
    @staticmethod
    def meminfo():
        values = {}
        with open("/proc/meminfo") as handle:
            for line in handle:
                key, _sep, rest = line.partition(":")
                values[key] = int(rest.split()[0]) * 1024
        return values.get("MemTotal", 0), values.get("MemAvailable", 0)

    @staticmethod
    def puma_workers():
        count = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as handle:
                    if handle.read().startswith(b"puma: cluster worker"):
                        count += 1
            except OSError:
                continue
        return count

    def puma_stats(self):
        url = self.p["puma_stats_url"]
        if self.p["puma_control_token"]:
            url += ("&" if "?" in url else "?") + "token=" + self.p["puma_control_token"]
        return json.loads(open_url(url, timeout=5).read())

    # ---- the loop ---------------------------------------------------------------------------------
    def run(self):
        p = self.p
        env = {}
        if p["redis"]:
            try:
                # The checkout belongs to the mastodon user: the safe walk, never a plain open.
                env = parse_env(text_file.read_text(p["env_file"]))
            except text_file.TextFileError as exc:
                self.fail_soft("redis", "cannot read %s: %s" % (p["env_file"], exc))
        sidekiq_end = cache_end = None
        if p["redis"] and env:
            try:
                sidekiq_end = doctor.redis_endpoint(env, "SIDEKIQ_") or doctor.redis_endpoint(env, "")
                cache_end = doctor.redis_endpoint(env, "CACHE_")
            except (doctor.DoctorError, ValueError) as exc:
                self.fail_soft("redis", str(exc))
        conns = {}
        for name, end in (("sidekiq", sidekiq_end), ("cache", cache_end)):
            if end:
                try:
                    conns[name] = Connection(end["host"], end["port"], end["password"], end["db"])
                except RedisError as exc:
                    self.fail_soft(name, str(exc))

        pool_samples, sizes, stats = [], {}, []
        pg_samples, queue_samples, queue_times, proc_samples = [], [], [], []
        info = {"sidekiq": [], "cache": []}
        mem_available, puma = [], {"samples": 0, "backlog_samples": 0, "backlog_max": 0, "busy_max": 0}
        sockets = self.pgbouncer_sockets() if p["pgbouncer"] else []
        if p["pgbouncer"]:
            for socket_dir in sockets[:1]:
                try:
                    sizes = doctor.pool_sizes(self.pgbouncer_show(socket_dir, "SHOW DATABASES"))
                    stats.append(doctor.rows_as_dicts(self.pgbouncer_show(socket_dir, "SHOW STATS")))
                except RuntimeError as exc:
                    self.fail_soft("pgbouncer", str(exc))
                    sockets = []
        count = max(1, int(round(p["duration"] / p["interval"])) + 1)
        started = time.time()
        for index in range(count):
            now = time.time()
            if sockets:
                sample = []
                for socket_dir in sockets:
                    try:
                        sample += doctor.pool_waits(self.pgbouncer_show(socket_dir, "SHOW POOLS"))
                    except RuntimeError as exc:
                        self.fail_soft("pgbouncer", str(exc))
                pool_samples.append(sample)
            if p["postgresql"] and self.psql:
                try:
                    pg_samples.append(self.postgresql_read())
                except (RuntimeError, ValueError, IndexError) as exc:
                    self.fail_soft("postgresql", str(exc))
            for name in list(conns):
                try:
                    info[name].append(self.info(conns[name]))
                    if name == "sidekiq":
                        queues, processes = self.sidekiq(conns[name], now)
                        queue_samples.append(queues)
                        queue_times.append(now)
                        proc_samples.append(processes)
                except RedisError as exc:
                    self.fail_soft(name, str(exc))
                    conns.pop(name).close()
                except (TypeError, ValueError, AttributeError, IndexError) as exc:
                    # Something in Redis that Sidekiq would not have written: say so, keep sampling the rest.
                    self.fail_soft(name, "unexpected data in Redis: %s" % type(exc).__name__)
            mem_available.append(self.meminfo()[1])
            if p["puma_stats_url"]:
                try:
                    backlog, busy = doctor.puma_load(self.puma_stats())
                    puma["samples"] += 1
                    puma["backlog_max"] = max(puma["backlog_max"], backlog)
                    puma["busy_max"] = max(puma["busy_max"], busy)
                    puma["backlog_samples"] += 1 if backlog else 0
                except Exception as exc:  # pylint: disable=broad-except
                    self.fail_soft("puma", "cannot read %s: %s" % (p["puma_stats_url"].split("?")[0], exc))
            if index + 1 < count:
                time.sleep(max(0.0, started + (index + 1) * p["interval"] - time.time()))
        seconds = round(time.time() - started, 3)
        if sockets and stats:
            try:
                stats.append(doctor.rows_as_dicts(self.pgbouncer_show(sockets[0], "SHOW STATS")))
            except RuntimeError as exc:
                self.fail_soft("pgbouncer", str(exc))
        for conn in conns.values():
            conn.close()

        obs = {}
        if pool_samples:
            obs["pgbouncer"] = {"pools": doctor.summarize_pools(pool_samples, sizes), "processes": len(sockets),
                                "stats": doctor.stats_delta(stats, seconds)}
        if pg_samples:
            last = pg_samples[-1]
            obs["postgresql"] = {
                "max_connections": last["max_connections"], "reserved_connections": last["reserved_connections"],
                "used_max": max(s["used"] for s in pg_samples), "in_recovery": last["in_recovery"],
                "standbys": doctor.worst_standbys(pg_samples), "slots": last["slots"],
                # Sustained: behind in every sample, not once while a burst of WAL was replayed.
                "standby_lag_s": min((s["standby_lag_s"] or 0) for s in pg_samples)}
        if info["sidekiq"]:
            first, last = info["sidekiq"][0], info["sidekiq"][-1]
            obs["sidekiq"] = {"endpoint": doctor.endpoint_label(sidekiq_end),
                              "queues": doctor.summarize_queues(queue_samples, queue_times),
                              "processes": doctor.summarize_processes(proc_samples)}
            obs["redis"] = {"endpoint": doctor.endpoint_label(sidekiq_end),
                            "policy": last.get("maxmemory_policy"), "maxmemory": last.get("maxmemory", 0),
                            "used_memory_max": max(i.get("used_memory", 0) for i in info["sidekiq"]),
                            "save": self._save_setting(sidekiq_end), "appendonly": "yes" if last.get("aof_enabled") else "no",
                            "last_bgsave_status": last.get("rdb_last_bgsave_status"),
                            "evicted_delta": last.get("evicted_keys", 0) - first.get("evicted_keys", 0)}
        if info["cache"]:
            first, last = info["cache"][0], info["cache"][-1]
            obs["cache"] = {"endpoint": doctor.endpoint_label(cache_end), "seconds": seconds,
                            "policy": last.get("maxmemory_policy"), "maxmemory": last.get("maxmemory", 0),
                            "used_memory_max": max(i.get("used_memory", 0) for i in info["cache"]),
                            "evicted_delta": last.get("evicted_keys", 0) - first.get("evicted_keys", 0),
                            "hits_delta": last.get("keyspace_hits", 0) - first.get("keyspace_hits", 0),
                            "misses_delta": last.get("keyspace_misses", 0) - first.get("keyspace_misses", 0)}
        if puma["samples"]:
            obs["puma"] = puma
        total, _available = self.meminfo()
        obs["host"] = {"cpus": os.cpu_count() or 1, "mem_total": total, "mem_available_min": min(mem_available),
                       "puma_workers": self.puma_workers()}
        return obs, count, seconds

    def _save_setting(self, end):
        try:
            conn = Connection(end["host"], end["port"], end["password"], end["db"])
        except RedisError:
            return None
        try:
            return self.config_get(conn, "save")
        finally:
            conn.close()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            duration=dict(type="int", default=10),
            interval=dict(type="float", default=1.0),
            env_file=dict(type="path", default="/home/mastodon/live/.env.production"),
            pgbouncer=dict(type="bool", default=False),
            pgbouncer_sockets=dict(type="list", elements="path", default=[]),
            pgbouncer_port=dict(type="int", default=6432),
            pgbouncer_user=dict(type="str", default="pgbouncer"),
            pgbouncer_password=dict(type="str", default="", no_log=True),
            postgresql=dict(type="bool", default=False),
            postgresql_port=dict(type="int", default=5432),
            redis=dict(type="bool", default=False),
            puma_stats_url=dict(type="str", default=""),
            puma_control_token=dict(type="str", default="", no_log=True),
        ),
        supports_check_mode=True,
    )
    if module.params["duration"] < 0:
        module.fail_json(msg="duration: %d must be zero or more" % module.params["duration"])
    if module.params["interval"] <= 0:
        module.fail_json(msg="interval: %s must be more than zero" % module.params["interval"])
    sampler = Sampler(module)
    observations, count, seconds = sampler.run()
    module.exit_json(changed=False, observations=observations, errors=sampler.errors, samples=count, seconds=seconds)


if __name__ == "__main__":
    main()
