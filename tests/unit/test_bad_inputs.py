"""The bad-input table: every input here is refused, before any change, with a message that names the
variable (or the setting) to fix. Each case calls the very check a role or module runs first:

- `inputs.problems` behind every role's first validation task (addresses, names, ports, sizes, passwords);
- each role's own checks (PgBouncer [databases], the Sidekiq plan, the cache, the read replica plan);
- the connection plan, the port clash check of playbooks/scale.yml, and the file writers.

The README's "What is refused" section lists these groups. Molecule proves for a sample (molecule/site,
test_bad_inputs_leave_the_host_untouched) that a refusal leaves every managed file and process alone.
"""

from __future__ import annotations

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import (
    connection_plan as cp,
    inputs,
    pg_hba,
    pgbouncer_ini,
    read_replica as rr,
    redis_cache as rc,
    sidekiq_plan as sp,
    text_file,
)

ALL_QUEUES = ["default", "push", "ingress", "mailers", "pull", "scheduler"]


def check(variable, kind, value):
    return inputs.problems([[variable, kind, value]])


def sidekiq(processes, **kwargs):
    return sp.check(processes, "4.3.0", **kwargs)


def proc(name, queues, threads=5, **extra):
    return dict({"name": name, "queues": queues, "threads": threads}, **extra)


CACHE_GOOD = {
    "server": "redis", "distribution": "Debian", "distribution_major": "12", "instance_name": "cache",
    "port": 6380, "main_port": 6379, "bind": ["127.0.0.1", "-::1"], "maxmemory": "256mb",
    "maxmemory_policy": "allkeys-lru", "env_style": "url", "env_host": "127.0.0.1", "password": False,
    "settings": {}, "mem_total_bytes": 4 * 1024 ** 3,
}


def cache(**over):
    return rc.problems(dict(CACHE_GOOD, **over))


def database(**over):
    entry = dict({"name": "mastodon_replica", "host": "10.0.0.2", "port": 5432, "dbname": "mastodon_production"}, **over)
    return pgbouncer_ini.database_problems([entry])


def raises(func, *args, **kwargs):
    try:
        func(*args, **kwargs)
    except (ValueError, cp.ConnectionPlanError) as exc:
        return [str(exc)]
    return []


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
    # Sidekiq's own Redis (the same instance model, purpose sidekiq): its messages name sidekiq_redis_*.
    ("Sidekiq's Redis that evicts", cache(purpose="sidekiq", maxmemory_policy="allkeys-lru"),
     "sidekiq_redis_maxmemory_policy"),
    ("Sidekiq's Redis on the main Redis port", cache(purpose="sidekiq", maxmemory_policy="noeviction", port=6379),
     "sidekiq_redis_port"),
    ("Sidekiq's Redis off loopback without a password",
     cache(purpose="sidekiq", maxmemory_policy="noeviction", bind=["10.0.0.5"], env_host="10.0.0.5"),
     "sidekiq_redis_password"),
    ("Sidekiq's Redis with a limit below 1mb", cache(purpose="sidekiq", maxmemory_policy="noeviction", maxmemory="1000"),
     "sidekiq_redis_maxmemory"),
    ("AOF switched in Sidekiq's free-form settings",
     cache(purpose="sidekiq", maxmemory_policy="noeviction", settings={"appendonly": "no"}), "appendonly"),
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
]


def test_the_table_has_at_least_sixty_cases():
    assert len(CASES) >= 60


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
]


def test_what_operators_write_is_accepted():
    """The other side of the table: the checks do not refuse sound values."""
    assert inputs.problems(GOOD) == []
    assert inputs.hba_address("10.0.0.5") == "10.0.0.5/32" and inputs.hba_address("fd00::5") == "fd00::5/128"
    assert inputs.hba_address("10.0.0.0/24") == "10.0.0.0/24"
