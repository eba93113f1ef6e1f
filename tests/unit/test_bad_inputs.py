"""The bad-input table: every input here is refused, before any change, with a message that names the
variable (or the setting) to fix. Each case calls the very check a role or module runs first:

- `inputs.problems` behind every role's first validation task (addresses, names, ports, sizes, bounded whole
  numbers, paths, URLs, passwords);
- each role's own checks (PgBouncer [databases], the Sidekiq plan, the cache and Sidekiq's Redis, the read
  replica plan);
- the connection plan, the port clash check of playbooks/scale.yml, and the file writers (pg_hba blocks,
  systemd drop-ins, psql parameters);
- the Redis URLs the doctor and the job move read from .env.production.

Cases are grouped as an attacker or a careless operator would try them: values past what PostgreSQL, PgBouncer,
Redis or systemd accept (issue 26), booleans, floats, padded or non-ASCII digits where a number belongs, a line
break or a NUL byte that would add a line to a file, look-alike letters, addresses that never match or cannot be
written (IPv4-mapped, zone ids), pg_hba.conf keywords as names, secrets by value rather than by name, and
rediss:// where only plain TCP is spoken.

The README's "What is refused" section lists these groups. Molecule proves for a sample (molecule/site,
test_bad_inputs_leave_the_host_untouched) that a refusal leaves every managed file and process alone.
"""

from __future__ import annotations

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import (
    alerts,
    connection_plan as cp,
    doctor,
    inputs,
    pg_hba,
    pg_query,
    pgbouncer_ini,
    read_replica as rr,
    redis_instance as ri,
    sidekiq_plan as sp,
    systemd_unit,
    text_file,
)

ALL_QUEUES = ["default", "push", "ingress", "mailers", "pull", "scheduler"]


def check(variable, kind, value):
    return inputs.problems([[variable, kind, value]])


def sidekiq(processes, **kwargs):
    return sp.check(processes, "4.3.0", **kwargs)


def proc(name, queues, threads=5, **extra):
    return dict({"name": name, "queues": queues, "threads": threads}, **extra)


# The Redis instance model, as its two callers ask: each passes its own variable names (roles/redis_cache and
# roles/sidekiq_redis import roles/redis_instance with these callers).
CACHE_GOOD = {
    "purpose": "cache", "variables": ri.variables("cache", "redis_cache"),
    "server": "redis", "distribution": "Debian", "distribution_major": "12", "instance_name": "cache",
    "port": 6380, "main_port": 6379, "bind": ["127.0.0.1", "-::1"], "maxmemory": "256mb",
    "maxmemory_policy": "allkeys-lru", "env_style": "url", "env_host": "127.0.0.1", "password": False,
    "settings": {}, "mem_total_bytes": 4 * 1024 ** 3,
}
SIDEKIQ_REDIS_GOOD = dict(CACHE_GOOD, purpose="sidekiq", variables=ri.variables("sidekiq", "sidekiq_redis"),
                          instance_name="sidekiq", port=6381, maxmemory="0", maxmemory_policy=None)


def cache(**over):
    return ri.problems(dict(CACHE_GOOD, **over))


def sidekiq_redis(**over):
    return ri.problems(dict(SIDEKIQ_REDIS_GOOD, **over))


def database(**over):
    entry = dict({"name": "mastodon_replica", "host": "10.0.0.2", "port": 5432, "dbname": "mastodon_production"}, **over)
    return pgbouncer_ini.database_problems([entry])


def raises(func, *args, **kwargs):
    try:
        func(*args, **kwargs)
    except (ValueError, cp.ConnectionPlanError) as exc:
        return [str(exc)]
    return []


def redis_url(prefix, url):
    """The endpoint the doctor and sidekiq_jobs_move read from .env.production's PREFIX_REDIS_URL."""
    return raises(doctor.redis_endpoint, {prefix + "REDIS_URL": url}, prefix)


def sidekiq_env(environment):
    """A Sidekiq process whose unit environment is `environment` (unit files are readable by every user)."""
    return sidekiq([proc("all", ALL_QUEUES, environment=environment)])


def slot(name):
    problem = rr.slot_name_problem(name)
    return [problem] if problem else []


def ports(*entries):
    return inputs.port_clashes([list(entry) + ["app1"] for entry in entries])


def basebackup_of_the_primary():
    decision, reason = rr.basebackup_decision(True, False, "7301", "7301", True, "/var/lib/postgresql/15/main")
    return [reason] if decision == rr.REFUSE else []


def makara_without_password():
    data = {"mastodon_version": "4.1.9", "mode": "auto", "primaries": ["db1"], "replicas": ["db2"],
            "play_hosts": ["db1", "db2", "app"], "self": "app", "is_app": True,
            "hosts": {"db1": {"address": "10.0.0.1", "port": 5432}, "db2": {"address": "10.0.0.2", "port": 5432}},
            "app": {"db_user": "mastodon", "db_password": "", "db_name": "mastodon_production",
                    "via_pgbouncer": False}}
    return rr.plan(data)["problems"]


FENCE_GOOD = {
    "database": "mastodon_replica", "user": "mastodon", "password": "pw", "max_lag_s": 30, "interval_s": 5,
    "resume_lag_s": 10, "resume_after_s": 60, "passfile": "/etc/pgbouncer/p", "state_file": "/var/lib/s.json",
    "pgbouncer": {"file": "/etc/pgbouncer/fediops-runtime.ini", "unit": "pgbouncer.service",
                  "databases": [{"name": "mastodon_replica", "host": "10.0.0.3", "port": 5432, "dbname": "mastodon_production"}],
                  "postgresql": {"host": "/var/run/postgresql", "port": 5432}, "client": {"host": "127.0.0.1", "port": 6432}},
}


def fence(**over):
    """The replica-lag fence's own checks (read_replica tasks_from: fence), after each value's range."""
    return rr.fence_config(dict(FENCE_GOOD, **over))["problems"]


# (case id, the check's problems (a list, empty when accepted), text every problem must name)
CASES = [
    # Addresses: pg_hba.conf and PgBouncer match IP addresses; a hostname resolves differently per host.
    ("hostname as replication address", check("read_replica_address", "ip", "db.internal"), "read_replica_address"),
    ("socket path as address", check("read_replica_address", "ip", "/var/run/postgresql"), "read_replica_address"),
    ("hostname with a prefix length", check("read_replica_address", "ip", "db.internal/32"), "read_replica_address"),
    ("hostname among db clients", check("read_replica_db_clients", "cidr_list", ["db.internal/32"]), "read_replica_db_clients"),
    ("prefix length 33", check("read_replica_db_clients", "cidr_list", ["10.0.0.0/33"]), "read_replica_db_clients"),
    ("host bits in a network", check("read_replica_db_clients", "cidr_list", ["10.0.0.1/24"]), "read_replica_db_clients"),
    ("clients not a list", check("read_replica_db_clients", "cidr_list", "10.0.0.1"), "read_replica_db_clients"),
    ("hostname among PgBouncer clients", check("pgbouncer_allowed_clients", "cidr_list", ["app1.example.com"]),
     "pgbouncer_allowed_clients"),
    ("socket path among PostgreSQL clients", check("pgbouncer_postgresql_clients", "cidr_list", ["/var/run/postgresql/32"]),
     "pgbouncer_postgresql_clients"),
    ("listen_addr 999.1.1.1", check("pgbouncer_listen_addr", "pgbouncer_listen_addr", "999.1.1.1"), "pgbouncer_listen_addr"),
    ("listen_addr of commas", check("pgbouncer_listen_addr", "pgbouncer_listen_addr", ",,,"), "pgbouncer_listen_addr"),
    ("listen_addr * and more", check("pgbouncer_listen_addr", "pgbouncer_listen_addr", "*,10.0.0.1"), "pgbouncer_listen_addr"),
    ("listen_addr hostname", check("pgbouncer_listen_addr", "pgbouncer_listen_addr", "pgb.internal"), "pgbouncer_listen_addr"),
    ("PostgreSQL listens on a hostname", check("read_replica_listen_addresses", "listen_addresses", ["db.example.com"]),
     "read_replica_listen_addresses"),
    ("PgBouncer reaches PostgreSQL by name", check("pgbouncer_postgresql_host", "pg_host", "db1.example.com"),
     "pgbouncer_postgresql_host"),
    ("PgBouncer reaches PostgreSQL at a relative socket path", check("pgbouncer_postgresql_host", "pg_host", "run/postgresql"),
     "pgbouncer_postgresql_host"),
    ("socket directory with a space", check("pgbouncer_mastodon_db_host", "pg_host", "/var/run/my sockets"),
     "pgbouncer_mastodon_db_host"),
    ("socket directory with a quote", check("pgbouncer_postgresql_host", "pg_host", "/var/run/'pg"),
     "pgbouncer_postgresql_host"),
    ("streaming binds a quoted address", check("streaming_bind", "ip", '127.0.0.1"'), "streaming_bind"),
    # Names written unquoted into pg_hba.conf, SQL and pgbouncer.ini.
    ("user name with a space", check("read_replica_replication_user", "name", "repl user"), "read_replica_replication_user"),
    ("user name with a quote", check("read_replica_db_user", "name", "mastodon'"), "read_replica_db_user"),
    ("database name with a space", check("read_replica_db_name", "dbname", "mastodon prod"), "read_replica_db_name"),
    ("stats user with capitals and a space", check("pgbouncer_stats_users", "name_list", ["Bad User"]), "pgbouncer_stats_users"),
    ("PgBouncer user with a quote", check("pgbouncer_mastodon_db_user", "name", 'x"y'), "pgbouncer_mastodon_db_user"),
    ("user name ending in a line break", check("read_replica_db_user", "name", "mastodon\n"), "read_replica_db_user"),
    # Passwords: set and one line (never quoted back).
    ("empty replication password", check("read_replica_replication_password", "password", ""),
     "read_replica_replication_password"),
    ("replication password with a line break", check("read_replica_replication_password", "password", "a\nb"),
     "read_replica_replication_password"),
    ("empty PgBouncer admin password", check("pgbouncer_admin_password", "password", ""), "pgbouncer_admin_password"),
    ("PgBouncer password with NUL", check("pgbouncer_mastodon_db_password", "password", "a\x00b"),
     "pgbouncer_mastodon_db_password"),
    # Replication sizes.
    ("max_wal_senders 0", check("read_replica_max_wal_senders", "int>=2", 0), "read_replica_max_wal_senders"),
    ("fewer slots than replicas", check("read_replica_max_replication_slots", "int>=1", 0), "read_replica_max_replication_slots"),
    ("slot WAL 50gb (lower case)", check("read_replica_max_slot_wal_keep_size", "pg_size", "50gb"),
     "read_replica_max_slot_wal_keep_size"),
    ("slot WAL in words", check("read_replica_max_slot_wal_keep_size", "pg_size", "lots"), "read_replica_max_slot_wal_keep_size"),
    ("stream timeout 0", check("read_replica_stream_timeout", "int>=1", 0), "read_replica_stream_timeout"),
    # Ports and pool sizes.
    ("port 0", check("pgbouncer_listen_port", "port", 0), "pgbouncer_listen_port"),
    ("port 70000", check("pgbouncer_listen_port", "port", 70000), "pgbouncer_listen_port"),
    ("port in words", check("pgbouncer_check_port", "port", "x"), "pgbouncer_check_port"),
    ("negative reserve_pool_timeout", check("pgbouncer_reserve_pool_timeout", "int>=0", -1), "pgbouncer_reserve_pool_timeout"),
    ("pool of 0", check("pgbouncer_default_pool_size", "int>=1", 0), "pgbouncer_default_pool_size"),
    ("max_client_conn 0", check("pgbouncer_max_client_conn", "int>=1", 0), "pgbouncer_max_client_conn"),
    # Free-form settings that would write a second line into the file.
    ("extra setting key with a leading space", check("pgbouncer_extra_settings", "settings", {" server_lifetime": 1}),
     "pgbouncer_extra_settings"),
    ("extra setting value with a line break",
     check("pgbouncer_extra_settings", "settings", {"server_lifetime": "1\nauth_type = trust"}), "pgbouncer_extra_settings"),
    ("streaming command with quotes", check("streaming_exec_start", "one_line", '/usr/bin/node "./streaming"'),
     "streaming_exec_start"),
    ("streaming command with a line break", check("streaming_exec_start", "one_line", "node\nExecStartPre=/bin/sh"),
     "streaming_exec_start"),
    # PgBouncer [databases].
    ("database port true", database(port=True), "port"),
    ("database pool_size 0", database(pool_size=0), "pool_size"),
    ("database named pgbouncer", database(name="pgbouncer"), "pgbouncer"),
    ("database host with a space", database(host="db 1"), "host"),
    ("database reserve_pool -1", database(reserve_pool=-1), "reserve_pool"),
    ("database pool_mode typo", database(pool_mode="statement2"), "pool_mode"),
    # The Sidekiq plan.
    ("10,000 Sidekiq threads", sidekiq([proc("all", ALL_QUEUES, threads=10000)]), "threads is 10000"),
    ("0 Sidekiq threads", sidekiq([proc("all", ALL_QUEUES, threads=0)]), "threads is 0"),
    ("a queue in two processes", sidekiq([proc("all", ALL_QUEUES), proc("more", ["default"])]), "Queue default"),
    ("two schedulers", sidekiq([proc("all", ALL_QUEUES), proc("clock", ["scheduler"])]), "scheduler"),
    ("a token in a unit environment", sidekiq([proc("all", ALL_QUEUES, environment={"API_TOKEN": "x"})]), "API_TOKEN"),
    ("DATABASE_URL with a password in a unit",
     sidekiq([proc("all", ALL_QUEUES, environment={"DATABASE_URL": "postgres://m:pw@10.0.0.1/m"})]), "DATABASE_URL"),
    ("scheduler on a second host", sidekiq([proc("all", ALL_QUEUES)], scheduler=False), "sidekiq_queues_scheduler"),
    ("shutdown timeout 0", sidekiq([proc("all", ALL_QUEUES)], shutdown_timeout=0), "sidekiq_queues_shutdown_timeout"),
    ("a queue Mastodon does not have", sidekiq([proc("all", ALL_QUEUES + ["defualt"])]), "defualt"),
    ("DB_POOL below threads", sidekiq([proc("all", ALL_QUEUES, threads=10, db_pool=5)]), "db_pool 5"),
    # The cache.
    ("masterauth in the cache settings", cache(settings={"masterauth": "x"}), "masterauth"),
    ("cache on the main Redis port", cache(port=6379), "redis_cache_port"),
    ("cache off loopback without a password", cache(bind=["10.0.0.5"], env_host="10.0.0.5"), "redis_cache_password"),
    ("cache host not among its addresses", cache(env_host="10.0.0.9"), "redis_cache_env_host"),
    ("cache memory in an unknown unit", cache(maxmemory="1x"), "redis_cache_maxmemory"),
    ("cache that never evicts", cache(maxmemory_policy="noeviction"), "redis_cache_maxmemory_policy"),
    ("cache bind in free-form settings", cache(settings={"bind": "0.0.0.0"}), "bind"),
    # Sidekiq's own Redis (the same instance model, purpose sidekiq): its messages name sidekiq_redis_*. It has
    # no variable for the eviction policy (always noeviction): asked for another, the model names the setting.
    ("Sidekiq's Redis that evicts", sidekiq_redis(maxmemory_policy="allkeys-lru"), "maxmemory-policy"),
    ("Sidekiq's Redis evicting through its free-form settings", sidekiq_redis(settings={"maxmemory-policy": "allkeys-lru"}),
     "sidekiq_redis_settings"),
    ("Sidekiq's Redis on the main Redis port", sidekiq_redis(port=6379), "sidekiq_redis_port"),
    ("Sidekiq's Redis off loopback without a password", sidekiq_redis(bind=["10.0.0.5"], env_host="10.0.0.5"),
     "sidekiq_redis_password"),
    ("Sidekiq's Redis with a limit below 1mb", sidekiq_redis(maxmemory="1000"), "sidekiq_redis_maxmemory"),
    ("AOF switched in Sidekiq's free-form settings", sidekiq_redis(settings={"appendonly": "no"}), "appendonly"),
    ("Sidekiq's Redis removed with its jobs", sidekiq_redis(state="absent", point_mastodon=False),
     "sidekiq_redis_point_mastodon"),
    ("Sidekiq's Redis on the cache's port",
     ports(["redis_cache_port", 6380], ["sidekiq_redis_port", 6380]), "sidekiq_redis_port"),
    # Connection plan.
    ("0 web processes", raises(cp.plan, web={"processes": 0, "threads": 5}), "web"),
    ("0 streaming instances", raises(cp.plan, streaming={"instances": 0}), "streaming"),
    # Port clashes across roles on one host (playbooks/scale.yml checks them before any change).
    ("cache on PgBouncer's port", ports(["pgbouncer_listen_port", 6432], ["redis_cache_port", 6432]), "redis_cache_port"),
    ("cache on web's port", ports(["web (web_health_url)", 3000], ["redis_cache_port", 3000]), "redis_cache_port"),
    ("cache on a streaming port", ports(["streaming_ports 4000", 4000], ["redis_cache_port", 4000]), "redis_cache_port"),
    ("PgBouncer on PostgreSQL's port",
     ports(["PostgreSQL (pgbouncer_postgresql_port)", 5432], ["pgbouncer_listen_port", 5432]), "pgbouncer_listen_port"),
    # Replication safety.
    ("wipe the primary's own data directory", basebackup_of_the_primary(), "never wiped"),
    ("Makara without the replica password", makara_without_password(), "read_replica_db_password"),
    # pg_hba lines.
    ("pg_hba line with a quote", raises(pg_hba.replace_block, "", "read_replica", ['host all "x" 10.0.0.1/32 md5']), "line 1"),
    ("pg_hba line with a line break",
     raises(pg_hba.replace_block, "", "read_replica", ["host all x 10.0.0.1/32 md5\nhost all all 0.0.0.0/0 trust"]),
     "line break"),
    ("pg_hba block name with a space", raises(pg_hba.replace_block, "", "read replica", []), "block name"),

    # Issue 26, item 1: every number has an upper bound PostgreSQL, PgBouncer, Redis or systemd accepts.
    ("100,000 Puma threads", check("web_max_threads", "int:1..200", 100000), "web_max_threads"),
    ("10**12 Puma workers", check("web_concurrency", "int:1..256", 10 ** 12), "web_concurrency"),
    ("max_client_conn past any open-file limit", check("pgbouncer_max_client_conn", "int:1..1048576", 10 ** 12),
     "pgbouncer_max_client_conn"),
    ("pool of 100,000", check("pgbouncer_default_pool_size", "int:1..10000", 100000), "pgbouncer_default_pool_size"),
    ("reserve pool timeout of a day", check("pgbouncer_reserve_pool_timeout", "int:0..3600", 86400),
     "pgbouncer_reserve_pool_timeout"),
    ("open-file cap past fs.nr_open", check("pgbouncer_nofile_cap", "int:1024..1048576", 2 ** 31), "pgbouncer_nofile_cap"),
    ("1,000 PgBouncer processes", check("pgbouncer_processes", "int:1..64", 1000), "pgbouncer_processes"),
    ("streaming pool of a million", check("streaming_db_pool", "int:1..10000", 10 ** 6), "streaming_db_pool"),
    ("100,000 streaming workers", check("streaming_cluster_num", "int:1..256", 100000), "streaming_cluster_num"),
    ("65 streaming instances", check("streaming_ports", "unprivileged_port_list:64", list(range(4000, 4065))),
     "streaming_ports"),
    ("Sidekiq boot timeout of 30 years", check("sidekiq_queues_boot_timeout", "int:1..3600", 10 ** 9),
     "sidekiq_queues_boot_timeout"),
    ("health timeout of 30 years", check("mastodon_services_health_timeout", "int:1..3600", 10 ** 9),
     "mastodon_services_health_timeout"),
    ("slot WAL 99999999999TB", check("read_replica_max_slot_wal_keep_size", "pg_size", "99999999999TB"),
     "read_replica_max_slot_wal_keep_size"),
    ("slot WAL one MB past a C int", check("read_replica_max_slot_wal_keep_size", "pg_size", "2147483648MB"),
     "read_replica_max_slot_wal_keep_size"),
    ("slot WAL 2048TB", check("read_replica_max_slot_wal_keep_size", "pg_size", "2048TB"), "read_replica_max_slot_wal_keep_size"),
    ("slot WAL below its unit", check("read_replica_max_slot_wal_keep_size", "pg_size", "512kB"),
     "read_replica_max_slot_wal_keep_size"),
    # pg_size:kB is a kind no role uses yet: named by the PostgreSQL setting, not by a variable no role has.
    ("a kB setting of 3TB", check("work_mem", "pg_size:kB", "3TB"), "work_mem"),
    ("-1 where the setting has no -1", check("work_mem", "pg_size:kB", "-1"), "work_mem"),
    ("10**12 WAL senders", check("read_replica_max_wal_senders", "int>=2", 10 ** 12), "read_replica_max_wal_senders"),
    ("stream timeout past a C int", check("read_replica_stream_timeout", "int>=1", 2 ** 31), "read_replica_stream_timeout"),
    ("Sidekiq db_pool of 100,000", sidekiq([proc("all", ALL_QUEUES, db_pool=100000)]), "db_pool"),
    ("[databases] pool_size of 100,000", database(pool_size=100000), "pool_size"),
    ("[databases] max_db_connections of 10**12", database(max_db_connections=10 ** 12), "max_db_connections"),

    # Numbers that are not plain whole numbers: booleans, floats, padding, signs, other digits, lists.
    ("a boolean among streaming ports", check("streaming_ports", "unprivileged_port_list:64", [4000, True]),
     "streaming_ports"),
    ("the same streaming port as number and text", check("streaming_ports", "unprivileged_port_list:64", [4000, "4000"]),
     "streaming_ports"),
    ("streaming ports as text", check("streaming_ports", "unprivileged_port_list:64", "4000"), "streaming_ports"),
    ("no streaming port", check("streaming_ports", "unprivileged_port_list:64", []), "streaming_ports"),
    ("threads 5.0", check("web_max_threads", "int:1..200", 5.0), "web_max_threads"),
    ("workers '10 '", check("web_concurrency", "int:1..256", "10 "), "web_concurrency"),
    ("port with a line break", check("pgbouncer_listen_port", "unprivileged_port", "6432\n"), "pgbouncer_listen_port"),
    ("port +6432", check("pgbouncer_listen_port", "unprivileged_port", "+6432"), "pgbouncer_listen_port"),
    ("port 06432", check("pgbouncer_listen_port", "unprivileged_port", "06432"), "pgbouncer_listen_port"),
    ("port in Arabic-Indic digits", check("pgbouncer_check_port", "unprivileged_port", "\u0661\u0666\u0664\u0663\u0662"),
     "pgbouncer_check_port"),
    ("threads as a list", check("web_max_threads", "int:1..200", [5]), "web_max_threads"),
    ("threads empty", check("web_max_threads", "int:1..200", ""), "web_max_threads"),
    ("workers true", check("web_concurrency", "int:1..256", True), "web_concurrency"),
    ("negative reserve pool", check("pgbouncer_reserve_pool_size", "int:0..10000", -1), "pgbouncer_reserve_pool_size"),
    ("streaming pool -1", check("streaming_db_pool", "int:1..10000", -1), "streaming_db_pool"),
    ("[databases] port '5432 '", database(port="5432 "), "port"),
    ("[databases] pool_size 5.0", database(pool_size=5.0), "pool_size"),
    ("cache port true", cache(port=True), "redis_cache_port"),
    ("slot WAL with a line break", check("read_replica_max_slot_wal_keep_size", "pg_size", "10GB\n"),
     "read_replica_max_slot_wal_keep_size"),
    ("slot WAL with a tab", check("read_replica_max_slot_wal_keep_size", "pg_size", "10\tGB"),
     "read_replica_max_slot_wal_keep_size"),
    ("slot WAL true", check("read_replica_max_slot_wal_keep_size", "pg_size", True), "read_replica_max_slot_wal_keep_size"),
    ("-1 with a unit", check("read_replica_max_slot_wal_keep_size", "pg_size", "-1MB"), "read_replica_max_slot_wal_keep_size"),

    # Ports below 1024 for services that run unprivileged (no CAP_NET_BIND_SERVICE).
    ("streaming on port 80", check("streaming_ports", "unprivileged_port_list:64", [80]), "streaming_ports"),
    ("PgBouncer on port 443", check("pgbouncer_listen_port", "unprivileged_port", 443), "pgbouncer_listen_port"),
    ("exporter on port 80", check("metrics_redis_instances[0].port", "unprivileged_port", 80), "metrics_redis_instances[0].port"),
    ("cache on port 80", cache(port=80), "redis_cache_port"),

    # Addresses that never match, cannot be written, or smuggle a second line.
    ("IPv4-mapped PgBouncer client", check("pgbouncer_allowed_clients", "cidr_list", ["::ffff:10.0.0.5"]),
     "pgbouncer_allowed_clients"),
    ("IPv4-mapped replication address", check("read_replica_address", "ip", "::ffff:10.0.0.5"), "read_replica_address"),
    ("IPv4-mapped network", check("read_replica_db_clients", "cidr_list", ["::ffff:10.0.0.0/120"]), "read_replica_db_clients"),
    ("zone id in the cache host", cache(env_host="fe80::1%eth0", bind=["fe80::1%eth0"], password=True),
     "redis_cache_env_host"),
    ("zone id in a cache bind", cache(bind=["127.0.0.1", "-fe80::1%eth0"], password=True), "redis_cache_bind"),
    ("zone id in Sidekiq's Redis host", sidekiq_redis(env_host="fe80::1%eth0", bind=["fe80::1%eth0"], password=True),
     "sidekiq_redis_env_host"),
    ("zone id in Sidekiq's Redis bind", sidekiq_redis(bind=["127.0.0.1", "fe80::1%eth0"], password=True),
     "sidekiq_redis_bind"),
    ("a directive smuggled into a cache bind",
     cache(bind=["127.0.0.1", "::1\nenable-debug-command yes"], password=True), "redis_cache_bind"),
    ("a hostname as a cache bind", cache(bind=["127.0.0.1", "localhost"]), "redis_cache_bind"),
    ("a bare - as a cache bind", cache(bind=["127.0.0.1", "-"], password=True), "redis_cache_bind"),
    ("a cache host by name", cache(env_host="redis.internal", bind=["0.0.0.0"], password=True), "redis_cache_env_host"),
    ("zone id as PostgreSQL's listen address", check("read_replica_listen_addresses", "listen_addresses", ["fe80::1%eth0"]),
     "read_replica_listen_addresses"),
    ("streaming bind with a line break", check("streaming_bind", "ip", "127.0.0.1\n"), "streaming_bind"),
    ("replication address with a leading space", check("read_replica_address", "ip", " 10.0.0.5"), "read_replica_address"),
    ("listen_addr with a line break", check("pgbouncer_listen_addr", "pgbouncer_listen_addr", "127.0.0.1,\n10.0.0.5"),
     "pgbouncer_listen_addr"),
    ("a boolean among clients", check("read_replica_db_clients", "cidr_list", [True]), "read_replica_db_clients"),
    ("an address in full-width digits", check("read_replica_address", "ip", "\uff11\uff10.0.0.5"), "read_replica_address"),

    # The exporters: loopback unless allowed, never public or every address; their Redis addresses.
    ("exporters on a private address without leave", check("metrics_listen_address", "loopback_ip", "10.0.0.5"),
     "metrics_listen_address"),
    ("exporters on every address", check("metrics_listen_address", "private_ip", "0.0.0.0"), "metrics_listen_address"),
    ("exporters on every IPv6 address", check("metrics_listen_address", "private_ip", "::"), "metrics_listen_address"),
    ("exporters on a public address", check("metrics_listen_address", "private_ip", "8.8.8.8"), "metrics_listen_address"),
    ("a password in an exporter's Redis address",
     check("metrics_redis_instances[0].address", "redis_url", "redis://:pw@127.0.0.1:6379"), "metrics_redis_instances[0].address"),
    ("an exporter's Redis by name", check("metrics_redis_instances[0].address", "redis_url", "redis://redis.internal:6379"),
     "metrics_redis_instances[0].address"),
    ("an exporter's Redis on port 0", check("metrics_redis_instances[0].address", "redis_url", "redis://127.0.0.1:0"),
     "metrics_redis_instances[0].address"),
    ("an exporter's Redis over http", check("metrics_redis_instances[0].address", "redis_url", "http://127.0.0.1:6379"),
     "metrics_redis_instances[0].address"),
    ("an exporter named with a line break", check("metrics_redis_instances[0].name", "instance_name", "main\n"),
     "metrics_redis_instances[0].name"),
    ("a scrape host with a quote", check("metrics_scrape_host", "host", '10.0.0.5"'), "metrics_scrape_host"),

    # rediss:// where this collection speaks plain TCP only (the doctor, sidekiq_jobs_move).
    ("rediss:// cache URL", redis_url("CACHE_", "rediss://:pw@10.0.0.5:6380/0"), "CACHE_REDIS_URL in .env.production"),
    ("rediss:// main Redis URL", redis_url("", "rediss://10.0.0.5:6379"), "REDIS_URL in .env.production"),
    ("REDISS:// Sidekiq URL", redis_url("SIDEKIQ_", "REDISS://10.0.0.5:6379"), "SIDEKIQ_REDIS_URL in .env.production"),

    # pg_hba.conf keywords and PostgreSQL's reserved names, as user and database names.
    ("user named all", check("read_replica_db_user", "name", "all"), "read_replica_db_user"),
    ("replication user named replication", check("read_replica_replication_user", "name", "replication"),
     "read_replica_replication_user"),
    ("user named public", check("pgbouncer_mastodon_db_user", "name", "public"), "pgbouncer_mastodon_db_user"),
    ("user named none", check("pgbouncer_admin_user", "name", "none"), "pgbouncer_admin_user"),
    ("user named session_user", check("pgbouncer_stats_user", "name", "session_user"), "pgbouncer_stats_user"),
    ("user with the pg_ prefix", check("pgbouncer_stats_user", "name", "pg_monitor"), "pgbouncer_stats_user"),
    ("database named sameuser", check("read_replica_db_name", "dbname", "sameuser"), "read_replica_db_name"),
    ("database named ALL", check("pgbouncer_mastodon_db_name", "dbname", "ALL"), "pgbouncer_mastodon_db_name"),
    ("database with the pg_ prefix", check("read_replica_db_name", "dbname", "pg_mastodon"), "read_replica_db_name"),
    ("samerole among stats users", check("pgbouncer_stats_users", "name_list", ["pgbouncer_stats", "samerole"]),
     "pgbouncer_stats_users"),
    ("user name with a Cyrillic o", check("read_replica_db_user", "name", "mast\u043edon"), "read_replica_db_user"),
    ("database name with a Cyrillic a", check("read_replica_db_name", "dbname", "m\u0430stodon"), "read_replica_db_name"),

    # "^...$" checked with match() let a final line break through: now every pattern must match whole.
    ("pg_hba block name ending in a line break", raises(pg_hba.replace_block, "", "read_replica\n", []), "block name"),
    ("Sidekiq process named all plus a line break", sidekiq([proc("all\n", ALL_QUEUES)]), "name"),
    ("Sidekiq queue weight of 10**12", sidekiq([proc("all", ALL_QUEUES[1:] + ["default,1000000000000"])]), "default,"),
    ("environment name with a line break", sidekiq_env({"FOO\n": "x"}), "environment name"),
    ("drop-in for a unit name with a line break", raises(systemd_unit.dropin_path, "mastodon-web.service\n", "x"), "unit"),
    ("drop-in name with a line break", raises(systemd_unit.dropin_path, "mastodon-web.service", "x\n"), "drop-in name"),
    ("[databases] name with a line break", database(name="mastodon\n"), "name"),
    ("[databases] host with a line break", database(host="10.0.0.2\n"), "host"),
    ("cache instance name with a line break", cache(instance_name="cache\n"), "redis_cache_instance_name"),
    ("cache setting name with a line break", cache(settings={"hz\n": 10}), "redis_cache_settings"),
    ("cache memory with a line break", cache(maxmemory="256mb\n"), "redis_cache_maxmemory"),
    ("slot name with a line break", slot("replica1\n"), "replication slot name"),
    ("psql parameter name with a line break", raises(pg_query.script, "SELECT 1", {"role\n": "x"}), "parameter name"),

    # Secrets by value, whatever the key: a unit's environment is readable by every user.
    ("an Authorization header in a unit", sidekiq_env({"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Basic dXNlcjpwYXNz"}),
     "OTEL_EXPORTER_OTLP_HEADERS"),
    ("a bearer token in a unit", sidekiq_env({"UPSTREAM_HEADER": "Bearer abcdefghijklmnop"}), "UPSTREAM_HEADER"),
    ("a URL password with a slash in a unit", sidekiq_env({"UPSTREAM": "https://u:pa/ss@example.com"}), "UPSTREAM"),
    ("a token in a URL query in a unit", sidekiq_env({"HOOK": "https://example.com/hook?token=abc"}), "HOOK"),
    ("a credential-named key in the common environment",
     sidekiq([proc("all", ALL_QUEUES)], common_environment={"S3_CREDENTIAL": "x"}), "S3_CREDENTIAL"),

    # Text that ends up in a unit file, a config line or a URL.
    ("streaming URL with a line break", check("streaming_api_base_url", "ws_url", "wss://x.example\nFOO=bar"),
     "streaming_api_base_url"),
    ("streaming URL javascript:", check("streaming_api_base_url", "ws_url", "javascript:alert(1)"), "streaming_api_base_url"),
    ("streaming URL with a password", check("streaming_api_base_url", "ws_url", "wss://u:pw@x.example"),
     "streaming_api_base_url"),
    ("streaming URL over ftp", check("streaming_api_base_url", "ws_url", "ftp://x.example"), "streaming_api_base_url"),
    ("streaming URL on port 0", check("streaming_api_base_url", "ws_url", "wss://x.example:0"), "streaming_api_base_url"),
    ("env file path with a space", check("sidekiq_queues_mastodon_env_file", "plain_path", "/home/x y/.env"),
     "sidekiq_queues_mastodon_env_file"),
    ("env file path with a systemd specifier", check("streaming_mastodon_env_file", "plain_path", "/home/%u/.env"),
     "streaming_mastodon_env_file"),
    ("relative env file path", check("sidekiq_queues_mastodon_env_file", "plain_path", "live/.env.production"),
     "sidekiq_queues_mastodon_env_file"),
    ("env file path climbing out", check("streaming_mastodon_dir", "plain_path", "/home/mastodon/../../etc"),
     "streaming_mastodon_dir"),
    ("unit name with a slash", check("streaming_unit_name", "instance_name", "../mastodon"), "streaming_unit_name"),
    ("extra setting without a value", check("pgbouncer_extra_settings", "settings", {"server_lifetime": None}),
     "pgbouncer_extra_settings"),
    ("extra setting with a list", check("pgbouncer_extra_settings", "settings", {"server_lifetime": [1, 2]}),
     "pgbouncer_extra_settings"),
    ("extra setting name with a Cyrillic i", check("pgbouncer_extra_settings", "settings", {"server_l\u0456fetime": 1}),
     "pgbouncer_extra_settings"),
    ("streaming command with a NUL byte", check("streaming_exec_start", "one_line", "node\x00x"), "streaming_exec_start"),
    ("streaming command as a mapping", check("streaming_exec_start", "one_line", {"a": 1}), "streaming_exec_start"),
    ("password as a list", check("pgbouncer_admin_password", "password", ["x"]), "pgbouncer_admin_password"),
    # The replica-lag fence (issue 30): a fence that could flap, never lift, or fence nothing.
    ("fence lag of 0 s", check("read_replica_max_lag_s", "int:1..86400", 0), "read_replica_max_lag_s"),
    ("fence check every 0 s", check("read_replica_fence_interval_s", "int:1..3600", 0), "read_replica_fence_interval_s"),
    ("fence lag as a boolean", check("read_replica_max_lag_s", "int:1..86400", True), "read_replica_max_lag_s"),
    ("fence returning at the lag that moved it", fence(resume_lag_s=30), "read_replica_fence_resume_lag_s"),
    ("fence returning at a lag under one period", fence(interval_s=10, resume_lag_s=10), "read_replica_fence_interval_s"),
    ("fence without PgBouncer's mastodon_replica", fence(pgbouncer={}), "read_replica_fence_enabled"),
    ("fence without the reading role's password", fence(password=""), "read_replica_db_password"),

    # The alert rules' thresholds and timings (the metrics role's first validation task, through alert_rules).
    ("a negative alert threshold", raises(alerts.rules, {"sidekiq_queue_size": -1}), "doctor_thresholds.sidekiq_queue_size"),
    ("an alert hold that is not a duration", raises(alerts.rules, {}, "5 minutes"), "metrics_alert_for"),
    ("an eviction window with a line break", raises(alerts.rules, {}, "5m", "5m\n"), "metrics_alert_window"),
]


def test_the_table_has_at_least_140_cases():
    assert len(CASES) >= 140


@pytest.mark.parametrize("case, found, names", CASES, ids=[case[0] for case in CASES])
def test_each_bad_input_is_refused_naming_what_to_fix(case, found, names):
    assert found, "%s was accepted" % case
    assert any(names in problem for problem in found), found


def test_secrets_are_never_quoted_back():
    found = check("read_replica_replication_password", "password", "s3cr3t\nmore")
    assert found and "s3cr3t" not in found[0]


@pytest.mark.parametrize("write", [True, False])
def test_files_behind_a_link_are_refused(tmp_path, write):
    target = tmp_path / "target"
    target.write_text("keep\n")
    link = tmp_path / ".env.production"
    link.symlink_to(target)
    with pytest.raises(text_file.TextFileError):
        if write:
            text_file.write_atomically(str(link), "A=1\n")
        else:
            text_file.read_text(str(link))
    assert target.read_text() == "keep\n"


GOOD = [
    ["read_replica_address", "ip", "10.0.0.5"],
    ["read_replica_address", "ip", "fd00::5"],
    ["read_replica_db_clients", "cidr_list", ["10.0.0.0/24", "10.0.1.7"]],
    ["pgbouncer_listen_addr", "pgbouncer_listen_addr", "127.0.0.1,10.0.0.5"],
    ["pgbouncer_listen_addr", "pgbouncer_listen_addr", "*"],
    ["read_replica_listen_addresses", "listen_addresses", ["localhost", "10.0.0.5"]],
    ["read_replica_db_user", "name", "mastodon"],
    ["read_replica_db_name", "dbname", "mastodon_production"],
    ["read_replica_replication_password", "password", "it's:a\\pw %1"],
    ["read_replica_max_slot_wal_keep_size", "pg_size", "10GB"],
    ["read_replica_max_slot_wal_keep_size", "pg_size", "-1"],
    ["read_replica_max_slot_wal_keep_size", "pg_size", "512MB"],
    ["pgbouncer_listen_port", "port", "6432"],
    ["pgbouncer_reserve_pool_timeout", "int>=0", 0],
    ["pgbouncer_extra_settings", "settings", {"server_lifetime": 3600, "application_name_add_host": 1}],
    ["streaming_exec_start", "one_line", "/usr/bin/node ./streaming"],
    ["pgbouncer_postgresql_host", "pg_host", "/var/run/postgresql"],
    ["pgbouncer_postgresql_host", "pg_host", "localhost"],
    ["pgbouncer_postgresql_host", "pg_host", "10.0.0.5"],
    ["pgbouncer_mastodon_db_host", "pg_host", "fd00::5"],
    ["read_replica_max_slot_wal_keep_size", "pg_size", "2147483647MB"],
    ["read_replica_max_slot_wal_keep_size", "pg_size", "2047TB"],
    ["read_replica_max_slot_wal_keep_size", "pg_size", "10 GB"],
    ["read_replica_max_slot_wal_keep_size", "pg_size", 10240],
    ["read_replica_max_wal_senders", "int>=2", 262143],
    ["web_max_threads", "int:1..200", "200"],
    ["web_concurrency", "int:1..256", 1],
    ["streaming_ports", "unprivileged_port_list:64", [4000, "4001", 65535]],
    ["pgbouncer_listen_port", "unprivileged_port", 1024],
    ["metrics_listen_address", "loopback_ip", "::1"],
    ["metrics_listen_address", "private_ip", "10.0.0.5"],
    ["metrics_listen_address", "private_ip", "fd00::5"],
    ["metrics_redis_instances[0].address", "redis_url", "redis://127.0.0.1:6379"],
    ["metrics_redis_instances[0].address", "redis_url", "rediss://[fd00::5]:6380/1"],
    ["metrics_redis_instances[0].address", "redis_url", "unix:///run/redis/redis-server.sock"],
    ["metrics_redis_instances[0].name", "instance_name", "main"],
    ["metrics_scrape_host", "host", "prometheus-target.example.org"],
    ["redis_cache_bind", "redis_bind_list", ["127.0.0.1", "-::1", "*", "-::*", "10.0.0.5"]],
    ["streaming_api_base_url", "ws_url", ""],
    ["streaming_api_base_url", "ws_url", "wss://streaming.example.com"],
    ["streaming_api_base_url", "ws_url", "https://[2001:db8::1]:8443/"],
    ["sidekiq_queues_mastodon_env_file", "plain_path", "/home/mastodon/live/.env.production"],
    ["read_replica_db_user", "name", "mastodon_all"],
    ["read_replica_db_name", "dbname", "mastodon-production.2"],
    ["pgbouncer_stats_users", "name_list", ["pgbouncer_stats", "publicist"]],
]


def test_the_fence_accepts_its_defaults():
    assert fence() == []


def test_what_operators_write_is_accepted():
    """The other side of the table: the checks do not refuse sound values."""
    assert inputs.problems(GOOD) == []
    assert inputs.hba_address("10.0.0.5") == "10.0.0.5/32" and inputs.hba_address("fd00::5") == "fd00::5/128"
    assert inputs.hba_address("10.0.0.0/24") == "10.0.0.0/24"
