from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from ansible_collections.fediops.mastodon.plugins.module_utils import doctor

NOW = 1_800_000_000.0


def idle_host():
    """What the stand-in showed when idle (trimmed): nothing waits, nothing evicts."""
    return {
        "pgbouncer": {"pools": [{"database": "mastodon_production", "user": "mastodon", "pool_size": 20,
                                 "cl_waiting_max": 0, "maxwait_max_s": 0.0, "sv_active_max": 1,
                                 "samples_waiting": 0}], "processes": 1, "stats": {}},
        "postgresql": {"max_connections": 100, "reserved_connections": 3, "used_max": 4, "in_recovery": False,
                       "standbys": [{"name": "db2", "replay_lag_s": None}],
                       "slots": [{"name": "db2", "active": True, "retained_bytes": 4096}], "standby_lag_s": 0},
        "sidekiq": {"endpoint": "localhost:6379",
                    "queues": {"default": {"size_max": 0, "latency_max_s": 0.0}},
                    "processes": [{"identity": "h:1:a", "concurrency": 10, "busy_min": 0, "busy_max": 2,
                                   "queues": ["default", "push"]}]},
        "redis": {"endpoint": "localhost:6379", "policy": "noeviction", "maxmemory": 0, "used_memory_max": 10 ** 6,
                  "save": "3600 1", "appendonly": "no", "last_bgsave_status": "ok"},
        "cache": {"endpoint": "127.0.0.1:6380", "seconds": 10, "policy": "allkeys-lru", "maxmemory": 256 * 2 ** 20,
                  "used_memory_max": 10 ** 6, "evicted_delta": 0, "hits_delta": 0, "misses_delta": 0},
        "host": {"cpus": 2, "mem_total": 8 * 2 ** 30, "mem_available_min": 6 * 2 ** 30, "puma_workers": 2},
    }


def ids(found):
    return sorted(f["id"] for f in found)


def test_an_idle_host_names_nothing():
    assert doctor.findings({"h": idle_host()}) == []
    assert doctor.report_lines([]) == ["doctor: nothing to change: no signal crossed its threshold during the sample"]


def test_waiting_clients_name_the_pool_size_and_the_spare_connections():
    obs = idle_host()
    obs["pgbouncer"]["pools"][0].update(cl_waiting_max=40, maxwait_max_s=2.0, sv_active_max=20)
    obs["postgresql"]["used_max"] = 24
    [found] = doctor.findings({"h": obs})
    assert found["id"] == "pgbouncer_clients_waiting"
    assert found["variable"] == "pgbouncer_default_pool_size"
    assert found["section"] == "Transaction pooling with pgBouncer"
    assert "for 2.0 s" in found["message"]
    assert "raise pgbouncer_default_pool_size from 20 to 30" in found["message"]
    assert "PostgreSQL on h has 73 connections spare" in found["message"]


def test_a_short_wait_is_not_a_finding():
    obs = idle_host()
    obs["pgbouncer"]["pools"][0].update(cl_waiting_max=3, maxwait_max_s=0.4)
    assert doctor.findings({"h": obs}) == []


def test_pgbouncer_advice_reads_the_primary_on_another_host():
    app = idle_host()
    del app["postgresql"]
    app["pgbouncer"]["pools"][0].update(cl_waiting_max=5, maxwait_max_s=3.0, sv_active_max=20)
    primary = {"postgresql": dict(idle_host()["postgresql"], used_max=95)}
    found = doctor.findings({"app1": app, "db1": primary})
    assert ids(found) == ["pgbouncer_clients_waiting", "postgresql_connections"]
    waiting = [f for f in found if f["id"] == "pgbouncer_clients_waiting"][0]
    assert "only 2 connections spare of the 10 more this opens" in waiting["message"]
    assert "max_connections" in waiting["message"]


def test_the_spare_connections_a_larger_pool_needs_count_every_pgbouncer():
    apps = {}
    for name in ("app1", "app2"):
        obs = idle_host()
        del obs["postgresql"]
        obs["pgbouncer"]["processes"] = 2
        obs["pgbouncer"]["pools"][0].update(cl_waiting_max=5, maxwait_max_s=3.0, sv_active_max=20)
        apps[name] = obs
    apps["db1"] = {"postgresql": dict(idle_host()["postgresql"], used_max=60)}  # 37 spare
    found = [f for f in doctor.findings(apps) if f["id"] == "pgbouncer_clients_waiting"]
    assert len(found) == 2  # each host's own PgBouncer
    assert found[0]["values"]["spare_needed"] == 40  # 10 more x 2 processes x 2 hosts
    assert "only 37 connections spare of the 40 more this opens" in found[0]["message"]


def test_waits_with_idle_server_slots_blame_postgresql_not_the_pool():
    obs = idle_host()
    obs["pgbouncer"]["pools"][0].update(cl_waiting_max=10, maxwait_max_s=4.0, sv_active_max=12)
    [found] = doctor.findings({"h": obs})
    assert found["id"] == "pgbouncer_server_connections_refused" and found["variable"] == "max_connections"
    assert "only 12 of its 20 server connections open" in found["message"]
    assert "raise pgbouncer_default_pool_size from" not in found["message"]


def test_an_unknown_pool_size_gives_no_numbers():
    obs = idle_host()
    obs["pgbouncer"]["pools"][0].update(pool_size=0, cl_waiting_max=10, maxwait_max_s=4.0, sv_active_max=3)
    [found] = doctor.findings({"h": obs})
    assert found["id"] == "pgbouncer_clients_waiting" and " from 0 " not in found["message"]


def test_a_late_queue_in_a_shared_process_asks_for_its_own_process():
    obs = idle_host()
    obs["sidekiq"]["queues"] = {"push": {"size_max": 300, "latency_max_s": 45.0},
                                "default": {"size_max": 0, "latency_max_s": 0.0}}
    [found] = doctor.findings({"h": obs})
    assert found["id"] == "sidekiq_queue_latency"
    assert found["message"].startswith("push queue latency 45 s (300 jobs waiting) while default is empty")
    assert "give push its own process (sidekiq_queues_processes)" in found["message"]


def test_saturated_threads_with_a_backlog_are_named():
    obs = idle_host()
    obs["sidekiq"]["queues"] = {"push": {"size_max": 50, "latency_max_s": 2.0}}
    obs["sidekiq"]["processes"] = [{"identity": "h:2:b", "concurrency": 5, "busy_min": 5, "busy_max": 5,
                                    "queues": ["push"]}]
    assert ids(doctor.findings({"h": obs})) == ["sidekiq_threads_busy"]
    obs["sidekiq"]["processes"][0]["busy_min"] = 4  # one sample with a free thread
    assert doctor.findings({"h": obs}) == []


def test_a_queue_nobody_serves():
    obs = idle_host()
    obs["sidekiq"]["queues"] = {"mailers": {"size_max": 7, "latency_max_s": 120.0}}
    [found] = doctor.findings({"h": obs})
    assert "no live Sidekiq process serves mailers" in found["message"]


def test_an_evicting_full_cache_asks_for_twice_the_memory():
    obs = idle_host()
    obs["cache"].update(used_memory_max=256 * 2 ** 20, evicted_delta=5000)
    [found] = doctor.findings({"h": obs})
    assert found["id"] == "cache_evicting" and found["variable"] == "redis_cache_maxmemory"
    assert "from 256mb to 512mb" in found["message"] and "500/s" in found["message"]


def test_evictions_below_the_memory_ratio_are_not_a_finding():
    obs = idle_host()
    obs["cache"].update(used_memory_max=100 * 2 ** 20, evicted_delta=5000)
    assert doctor.findings({"h": obs}) == []


def test_low_hit_rate_needs_enough_lookups():
    obs = idle_host()
    obs["cache"].update(hits_delta=10, misses_delta=90)
    assert doctor.findings({"h": obs}) == []
    obs["cache"].update(hits_delta=100, misses_delta=900)
    assert ids(doctor.findings({"h": obs})) == ["cache_hit_rate_low"]


@pytest.mark.parametrize("change, expected", [
    ({"policy": "allkeys-lru"}, ["redis_eviction_policy"]),
    ({"save": "", "appendonly": "no"}, ["redis_persistence"]),
    ({"save": "", "appendonly": "yes"}, []),
    ({"save": None, "appendonly": "no"}, []),  # CONFIG renamed away: unknown is not a finding
    ({"last_bgsave_status": "err"}, ["redis_persistence"]),
    ({"maxmemory": 100, "used_memory_max": 95}, ["redis_memory"]),
])
def test_main_redis(change, expected):
    obs = idle_host()
    obs["redis"].update(change)
    assert ids(doctor.findings({"h": obs})) == expected


def test_a_shared_redis_is_named_once_and_local_ones_each():
    one, two = idle_host(), idle_host()
    for obs in (one, two):
        obs["redis"].update(policy="volatile-lru", endpoint="10.0.0.5:6379")
        obs["sidekiq"]["endpoint"] = "10.0.0.5:6379"
        obs["sidekiq"]["queues"] = {"push": {"size_max": 9, "latency_max_s": 40.0}}
    two["sidekiq"]["queues"]["push"]["latency_max_s"] = 41.0  # sampled a moment later
    found = doctor.findings({"app1": one, "app2": two})
    assert ids(found) == ["redis_eviction_policy", "sidekiq_queue_latency"]
    assert all(f["host"] == "app1" for f in found)
    # Each host's own Redis on loopback is a condition of each host.
    one, two = idle_host(), idle_host()
    for obs in (one, two):
        obs["redis"]["policy"] = "volatile-lru"
    found = doctor.findings({"app1": one, "app2": two})
    assert [(f["id"], f["host"]) for f in found] == [("redis_eviction_policy", "app1"), ("redis_eviction_policy", "app2")]


@pytest.mark.parametrize("change, expected", [
    ({"postgresql": {"used_max": 88}}, ["postgresql_connections"]),
    ({"postgresql": {"standbys": [{"name": "db2", "replay_lag_s": 31.0}]}}, ["replication_lag"]),
    ({"postgresql": {"slots": [{"name": "old", "active": False, "retained_bytes": 2 * 1024 ** 3}]}},
     ["replication_slot_retention"]),
    ({"postgresql": {"slots": [{"name": "up", "active": True, "retained_bytes": 2 * 1024 ** 3}]}}, []),
    ({"host": {"mem_available_min": 2 ** 29}}, ["host_memory"]),
    ({"host": {"puma_workers": 3}}, ["host_cpus"]),
])
def test_database_and_host_signals(change, expected):
    obs = idle_host()
    for part, values in change.items():
        obs[part].update(values)
    assert ids(doctor.findings({"h": obs})) == expected


def test_a_standby_far_behind_its_received_wal():
    obs = {"postgresql": dict(idle_host()["postgresql"], in_recovery=True, standbys=[], slots=[], standby_lag_s=90.0)}
    assert ids(doctor.findings({"db2": obs})) == ["replication_lag"]


def test_puma_backlog_in_half_the_samples():
    obs = idle_host()
    obs["puma"] = {"samples": 10, "backlog_samples": 5, "backlog_max": 12, "busy_max": 5}
    assert ids(doctor.findings({"h": obs})) == ["puma_backlog"]
    obs["puma"]["backlog_samples"] = 4
    assert doctor.findings({"h": obs}) == []


def test_thresholds_are_checked():
    assert doctor.thresholds({"sidekiq_latency_s": "5"})["sidekiq_latency_s"] == 5.0
    with pytest.raises(doctor.DoctorError, match="unknown threshold 'latency'"):
        doctor.thresholds({"latency": 5})
    with pytest.raises(doctor.DoctorError, match="sidekiq_latency_s: 'soon' is not a number"):
        doctor.thresholds({"sidekiq_latency_s": "soon"})
    with pytest.raises(doctor.DoctorError, match="must be zero or more"):
        doctor.thresholds({"sidekiq_latency_s": -1})


@pytest.mark.parametrize("env, prefix, expected", [
    ({}, "", {"host": "localhost", "port": 6379, "db": 0, "password": ""}),
    ({"REDIS_HOST": "r", "REDIS_PORT": "6390", "REDIS_PASSWORD": "p"}, "", {"host": "r", "port": 6390, "db": 0, "password": "p"}),
    ({"REDIS_URL": "redis://:s%40cret@red:6391/2", "REDIS_HOST": "ignored"}, "",
     {"host": "red", "port": 6391, "db": 2, "password": "s@cret"}),
    # CACHE_/SIDEKIQ_ parts count only with their HOST, and take nothing from REDIS_*.
    ({"REDIS_HOST": "r", "REDIS_PASSWORD": "p", "CACHE_REDIS_PORT": "6380"}, "CACHE_", None),
    ({"REDIS_PASSWORD": "p", "CACHE_REDIS_HOST": "c"}, "CACHE_", {"host": "c", "port": 6379, "db": 0, "password": ""}),
    ({"SIDEKIQ_REDIS_URL": "redis://sk:6400"}, "SIDEKIQ_", {"host": "sk", "port": 6400, "db": 0, "password": ""}),
])
def test_redis_endpoints_as_mastodon_reads_them(env, prefix, expected):
    assert doctor.redis_endpoint(env, prefix) == expected


@pytest.mark.parametrize("fields", [
    {"info": "null", "beat": str(NOW)},
    {"info": json.dumps({"concurrency": "x", "queues": ["a"]}), "beat": str(NOW)},
    {"info": json.dumps({"concurrency": 5, "queues": "default"}), "beat": str(NOW)},
    {"info": json.dumps({"concurrency": 5, "queues": ["a"]}), "busy": "abc", "beat": str(NOW)},
    {"info": "{", "beat": str(NOW)},
    # Sidekiq 8 writes the heartbeat in milliseconds: two minutes old is stale.
    {"info": json.dumps({"concurrency": 5, "queues": ["a"]}), "beat": str((NOW - 120) * 1000)},
])
def test_odd_or_stale_registry_entries_are_left_out(fields):
    assert doctor.sidekiq_process(fields, NOW) is None


def test_a_fresh_millisecond_heartbeat_is_live():
    fields = {"info": json.dumps({"concurrency": 5, "queues": ["a"], "identity": "i"}), "beat": str((NOW - 3) * 1000)}
    assert doctor.sidekiq_process(fields, NOW)["identity"] == "i"


@pytest.mark.parametrize("url", ["redis://:pa/ss@host:6379/0", "redis://:secret@host:notaport", "http://:secret@x"])
def test_an_unreadable_redis_url_is_refused_without_quoting_it(url):
    with pytest.raises(doctor.DoctorError) as info:
        doctor.parse_redis_url(url)
    message = str(info.value)
    assert "secret" not in message and "pa/ss" not in message and "ss@" not in message and ":notaport" not in message


def test_endpoint_label_has_no_password():
    end = doctor.parse_redis_url("redis://user:hunter2@cache:6380/1")
    assert doctor.endpoint_label(end) == "cache:6380" and "hunter2" not in doctor.endpoint_label(end)
    with pytest.raises(doctor.DoctorError):
        doctor.parse_redis_url("http://x")


@pytest.mark.parametrize("payload, expected", [
    (json.dumps({"enqueued_at": 1700000000.5}), 1700000000.5),   # Sidekiq 6 and 7: seconds
    (json.dumps({"enqueued_at": 1700000000500}), 1700000000.5),  # Sidekiq 8: milliseconds
    (json.dumps({"class": "X"}), None),
    ("not json", None),
    (None, None),
])
def test_job_enqueued_at(payload, expected):
    assert doctor.job_enqueued_at(payload) == expected


def test_sidekiq_process_registry_entry():
    fields = {"info": json.dumps({"hostname": "h", "pid": 7, "concurrency": 10, "queues": ["push", "push", "default"],
                                  "identity": "h:7:x"}), "busy": "3", "beat": str(NOW - 5)}
    assert doctor.sidekiq_process(fields, NOW) == {"identity": "h:7:x", "hostname": "h", "pid": 7, "concurrency": 10,
                                                   "busy": 3, "queues": ["default", "push"]}
    fields["beat"] = str(NOW - 120)
    assert doctor.sidekiq_process(fields, NOW) is None


def test_pgbouncer_show_output():
    pools = [["database", "user", "cl_active", "cl_waiting", "sv_active", "maxwait", "maxwait_us", "pool_mode"],
             ["pgbouncer", "pgbouncer", "1", "0", "0", "0", "0", "statement"],
             ["mastodon_production", "mastodon", "20", "40", "20", "1", "500000", "transaction"]]
    assert doctor.pool_waits(pools) == [{"database": "mastodon_production", "user": "mastodon", "cl_waiting": 40,
                                         "sv_active": 20, "maxwait_s": 1.5}]
    databases = [["name", "host", "pool_size"], ["mastodon_production", "", "20"], ["pgbouncer", "", "2"]]
    assert doctor.pool_sizes(databases) == {"mastodon_production": 20}
    summary = doctor.summarize_pools([doctor.pool_waits(pools), doctor.pool_waits(pools[:2])], {"mastodon_production": 20})
    assert summary[0]["cl_waiting_max"] == 40 and summary[0]["pool_size"] == 20


def test_stats_delta_and_summaries():
    before = [{"database": "db", "total_xact_count": "100", "total_wait_time": "0"}]
    after = [{"database": "db", "total_xact_count": "300", "total_wait_time": "400000"}]
    assert doctor.stats_delta([before, after], 10) == {"db": {"xact_per_s": 20.0, "avg_wait_ms": 2.0}}
    queues = doctor.summarize_queues([{"push": (3, NOW - 10)}, {"push": (0, None)}], [NOW, NOW + 1])
    assert queues == {"push": {"size_max": 3, "latency_max_s": 10.0}}
    procs = doctor.summarize_processes([[{"identity": "a", "busy": 2, "concurrency": 5, "queues": []}],
                                        [{"identity": "a", "busy": 5, "concurrency": 5, "queues": []}]])
    assert procs[0]["busy_min"] == 2 and procs[0]["busy_max"] == 5 and "busy" not in procs[0]
    # Sustained lag only: a sample where the standby had caught up (NULL) or was missing counts as 0.
    assert doctor.worst_standbys([{"standbys": [{"name": "s", "replay_lag_s": None}]},
                                  {"standbys": [{"name": "s", "replay_lag_s": 2.0}]}]) == [{"name": "s", "replay_lag_s": 0.0}]
    assert doctor.worst_standbys([{"standbys": [{"name": "s", "replay_lag_s": 40.0}]},
                                  {"standbys": [{"name": "s", "replay_lag_s": 35.0}]}]) == [{"name": "s", "replay_lag_s": 35.0}]
    assert doctor.worst_standbys([{"standbys": []}, {"standbys": [{"name": "s", "replay_lag_s": 35.0}]}]) == \
        [{"name": "s", "replay_lag_s": 0.0}]


def test_puma_load_cluster_and_single():
    cluster = {"worker_status": [{"last_status": {"backlog": 2, "max_threads": 5, "pool_capacity": 0}},
                                 {"last_status": {"backlog": 0, "max_threads": 5, "pool_capacity": 3}}]}
    assert doctor.puma_load(cluster) == (2, 7)
    assert doctor.puma_load({"backlog": 0, "max_threads": 5, "pool_capacity": 5}) == (0, 0)


@given(st.text(alphabet="abc:\r\n#_ 0123456789", max_size=200))
def test_parse_info_never_raises(text):
    assert isinstance(doctor.parse_info(text), dict)


def test_natural_key_orders_processes():
    names = ["/run/postgresql/pgbouncer-10", "/run/postgresql/pgbouncer-2"]
    assert sorted(names, key=doctor.natural_key) == names[::-1]


@pytest.mark.parametrize("env, prefix, key", [
    ({"CACHE_REDIS_URL": "rediss://:s3cret@10.0.0.5:6380/0"}, "CACHE_", "CACHE_REDIS_URL"),
    ({"REDIS_URL": "rediss://10.0.0.5:6379"}, "", "REDIS_URL"),
    ({"SIDEKIQ_REDIS_URL": "RedisS://:s3cret@10.0.0.5:6381"}, "SIDEKIQ_", "SIDEKIQ_REDIS_URL"),
])
def test_rediss_is_refused_naming_the_key_and_the_file(env, prefix, key):
    """This collection's Redis client speaks plain TCP: a TLS URL would send the password in clear."""
    with pytest.raises(doctor.DoctorError) as info:
        doctor.redis_endpoint(env, prefix, source="/home/mastodon/live/.env.production")
    message = str(info.value)
    assert "%s in /home/mastodon/live/.env.production" % key in message and "TLS" in message
    assert "s3cret" not in message


def test_a_unix_socket_url_is_still_read():
    assert doctor.parse_redis_url("unix:///run/redis/redis.sock") == {
        "host": "/run/redis/redis.sock", "port": 0, "db": 0, "password": ""}
