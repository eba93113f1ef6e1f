"""The fleet model: the layout of the whole inventory, worked out once."""

from __future__ import annotations

import time

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import fleet
from ansible_collections.fediops.mastodon.plugins.module_utils.connection_plan import plan

PG = {"listen_port": 6432, "check_port": 16432, "postgresql_port": 5432, "max_client_conn": 400,
      "default_pool_size": 20, "reserve_pool_size": 5, "processes": 1, "listen_addr": "127.0.0.1",
      "db_name": "mastodon_production"}
CACHE = {"port": 6380, "bind": ["127.0.0.1", "-::1"], "main_port": 6379, "password_set": True}
SIDEKIQ_REDIS = {"port": 6381, "bind": ["127.0.0.1", "-::1"], "password_set": True}
SIDEKIQ = [{"name": "default", "threads": 10}, {"name": "push", "threads": 10}, {"name": "pull", "threads": 10},
           {"name": "mailers", "threads": 5}]


def app_host(address, **over):
    host = {"address": address, "pgbouncer": dict(PG), "redis_cache": dict(CACHE), "sidekiq_redis": dict(SIDEKIQ_REDIS),
            "web": {"port": 3000, "demand": {"processes": 2, "threads": 5, "db_pool": 5}},
            "streaming": {"ports": [4000, 4001], "demand": {"instances": 2, "db_pool": 10}},
            "sidekiq": SIDEKIQ, "version": "4.5.0", "env_keys": ["LOCAL_DOMAIN", "DB_PASS"],
            "media": {"storage": "s3", "s3": {"S3_BUCKET": "files", "S3_ENDPOINT": "http://10.0.0.2:5000"}}}
    host.update(over)
    return host


def db_host(address, **over):
    host = {"address": address, "pgbouncer": dict(PG, listen_addr=address)}
    host.update(over)
    return host


def one_host(**settings):
    return {"groups": {"mastodon_db_primary": ["doc1"], "mastodon_app": ["doc1"]},
            "settings": settings, "hosts": {"doc1": app_host("10.0.0.9")}}


def split(**settings):
    return {"groups": {"mastodon_db_primary": ["db1"], "mastodon_db_replica": ["db2"],
                       "mastodon_app": ["app1", "app2"], "mastodon_cache": []},
            "settings": dict({"scale_sidekiq_redis_enabled": True}, **settings),
            "hosts": {"db1": db_host("10.0.0.1"), "db2": db_host("10.0.0.2"),
                      "app1": app_host("10.0.0.3"), "app2": app_host("10.0.0.4")}}


def test_one_host_keeps_everything_on_loopback():
    out = fleet.layout(one_host())
    assert out["problems"] == []
    doc1 = out["hosts"]["doc1"]
    assert doc1["runs"] == ["postgresql", "mastodon", "pgbouncer", "cache"]
    assert doc1["pgbouncer"] == {"host": "doc1", "local": True, "port": 6432}
    assert doc1["cache"]["address"] == "127.0.0.1" and not doc1["cache"]["shared"]
    assert doc1["depends_on"] == [] and doc1["scheduler"] and not doc1["remove_own_cache"]
    assert out["plan_input"]["pgbouncer"] == {"pools": 1, "hosts": [
        {"name": "doc1", "processes": 1, "default_pool_size": 20, "reserve_pool_size": 5, "max_client_conn": 400}]}
    assert not out["native_replica"] and out["sidekiq_redis"] is None


def test_split_with_pgbouncer_on_the_primary():
    out = fleet.layout(split())
    assert out["problems"] == []
    assert out["pgbouncer"]["hosts"] == ["db1"]
    assert out["hosts"]["app2"]["pgbouncer"] == {"host": "db1", "local": False, "address": "10.0.0.1", "port": 6432}
    # One cache for both: on the first application host, on its private address, with a password.
    assert out["cache"] == {"host": "app1", "bind": ["127.0.0.1", "-::1", "10.0.0.3"], "address": "10.0.0.3",
                            "port": 6380, "shared": True}
    assert out["hosts"]["app2"]["cache"] is out["cache"] and out["hosts"]["app2"]["remove_own_cache"]
    assert not out["hosts"]["app1"]["remove_own_cache"]
    assert out["sidekiq_redis"]["address"] == "10.0.0.3"
    assert out["hosts"]["app2"]["depends_on"] == ["app1", "db1", "db2"]
    assert out["hosts"]["app1"]["depends_on"] == ["db1", "db2"]
    assert out["native_replica"] and out["pgbouncer"]["databases"] == [
        {"name": "mastodon_replica", "host": "10.0.0.2", "port": 5432, "dbname": "mastodon_production"}]
    assert out["plan_input"]["replica"] is True and out["plan_input"]["pgbouncer"]["pools"] == 2
    assert [h["scheduler"] for h in (out["hosts"]["app1"], out["hosts"]["app2"])] == [True, False]
    result = plan(postgresql={"max_connections": 100}, **out["plan_input"])
    # 2 hosts x (10 web + 35 Sidekiq) twice (replica pools) + 2 x 2 x 10 streaming.
    assert result["client_connections"] == 2 * 45 * 2 + 40
    assert result["limits"]["pgbouncer_server_capacity"] == 2 * 25 and result["feasible"]


def test_split_with_pgbouncer_on_every_application_host_uses_their_own_pool_sizes():
    data = split(scale_pgbouncer_placement="app")
    data["hosts"]["app1"]["pgbouncer"]["default_pool_size"] = 10
    data["hosts"]["app2"]["pgbouncer"].update(default_pool_size=15, processes=2)
    out = fleet.layout(data)
    assert out["problems"] == [] and out["pgbouncer"]["hosts"] == ["app1", "app2"]
    assert out["hosts"]["app2"]["pgbouncer"] == {"host": "app2", "local": True, "port": 6432}
    hosts = out["plan_input"]["pgbouncer"]["hosts"]
    assert [(h["name"], h["default_pool_size"], h["processes"], h["clients"]) for h in hosts] == [
        ("app1", 10, 1, 110), ("app2", 15, 2, 110)]
    result = plan(postgresql={"max_connections": 100}, **out["plan_input"])
    # app1: 2 pools x (10 + 5) = 30; app2: 2 processes x 2 pools x (15 + 5) = 80.
    assert result["limits"]["pgbouncer_server_capacity"] == 110
    assert not result["feasible"] and "app2: 2 processes x 2 pools" in result["problems"][0]


def test_pgbouncer_processes_double_the_server_connections_and_a_plan_over_max_connections_is_refused():
    data = one_host()
    data["hosts"]["doc1"]["pgbouncer"].update(processes=2, default_pool_size=45, reserve_pool_size=5)
    data["hosts"]["doc1"]["web"]["demand"] = {"processes": 10, "threads": 10}
    out = fleet.layout(data)
    result = plan(postgresql={"max_connections": 100}, **out["plan_input"])
    assert result["limits"]["pgbouncer_server_capacity"] == 2 * 50
    assert not result["feasible"]
    data["hosts"]["doc1"]["pgbouncer"]["processes"] = 1
    assert plan(postgresql={"max_connections": 100}, **fleet.layout(data)["plan_input"])["feasible"]


def test_a_cache_host_of_its_own():
    data = split()
    data["groups"]["mastodon_cache"] = ["cache1"]
    data["hosts"]["cache1"] = {"address": "10.0.0.7", "redis_cache": dict(CACHE, bind=["127.0.0.1", "10.0.0.7"])}
    out = fleet.layout(data)
    assert out["problems"] == []
    assert out["cache"]["host"] == "cache1" and out["cache"]["address"] == "10.0.0.7"
    assert out["cache"]["bind"] == ["127.0.0.1", "10.0.0.7"]
    assert out["hosts"]["cache1"]["runs"] == ["cache"] and out["hosts"]["cache1"]["ports"] == [["redis_cache_port", 6380]]
    assert all(out["hosts"][h]["remove_own_cache"] for h in ("app1", "app2"))
    assert "cache1" in out["hosts"]["app1"]["depends_on"]


def test_sidekiq_redis_on_a_named_host():
    data = split(scale_sidekiq_redis_host="app2")
    out = fleet.layout(data)
    assert out["sidekiq_redis"]["host"] == "app2" and out["sidekiq_redis"]["address"] == "10.0.0.4"
    assert "sidekiq_redis" in out["hosts"]["app2"]["runs"] and "app2" in out["hosts"]["app1"]["depends_on"]
    data["settings"]["scale_sidekiq_redis_host"] = "db1"
    assert "scale_sidekiq_redis_host is db1" in fleet.layout(data)["problems"][0]


@pytest.mark.parametrize("change, message", [
    ({"settings": {"scale_cache_per_host": True}},
     "scale_cache_per_host is true, but 2 application hosts would each keep a Rails.cache of their own"),
    ({"settings": {"scale_pgbouncer_placment": "app"}}, "scale_pgbouncer_placment is not a setting of playbooks/scale.yml"),
    ({"settings": {"scale_pgbouncer_placement": "everywhere"}}, "scale_pgbouncer_placement must be primary or app"),
    ({"settings": {"scale_sidekiq_scheduler_host": "db2"}}, "scale_sidekiq_scheduler_host must be one of"),
    ({"settings": {"scale_redis_cache_enabled": "maybe"}}, "scale_redis_cache_enabled must be true or false"),
    ({"settings": {"scale_cache_host": "db2"}}, "scale_cache_host is db2, which is in neither"),
    ({"cache_password": False}, "app1 runs the shared cache for other hosts too, which reach it over the network: set "
                                "redis_cache_password"),
    ({"sidekiq_password": False}, "set sidekiq_redis_password"),
    ({"db1_listen": "127.0.0.1"}, "the primary's pgbouncer_listen_addr is an address they can reach (it is 127.0.0.1)"),
    ({"app2_port": 6380}, "streaming_ports 6380 and redis_cache_port both use port 6380 on app1"),
    ({"versions": ("4.4.0", "4.5.0")}, "the application hosts run Mastodon 4.4.0 and 4.5.0"),
    ({"groups": {"mastodon_db_primary": []}}, "exactly one host in mastodon_db_primary (it has 0)"),
])
def test_what_cannot_work_is_refused_naming_the_variable(change, message):
    data = split()
    data["settings"].update(change.get("settings", {}))
    data["groups"].update(change.get("groups", {}))
    if change.get("cache_password") is False:
        data["hosts"]["app1"]["redis_cache"]["password_set"] = False
    if change.get("sidekiq_password") is False:
        data["hosts"]["app1"]["sidekiq_redis"]["password_set"] = False
    if "db1_listen" in change:
        data["hosts"]["db1"]["pgbouncer"]["listen_addr"] = change["db1_listen"]
    if "app2_port" in change:
        data["hosts"]["app1"]["streaming"]["ports"] = [4000, change["app2_port"]]
    if "versions" in change:
        data["hosts"]["app1"]["version"], data["hosts"]["app2"]["version"] = change["versions"]
    problems = fleet.layout(data)["problems"]
    assert any(message in problem for problem in problems), problems


def test_a_per_host_cache_is_fine_on_one_host():
    out = fleet.layout(one_host(scale_cache_per_host=True))
    assert out["problems"] == [] and out["hosts"]["doc1"]["cache"]["address"] == "127.0.0.1"


def test_one_hundred_application_hosts_two_replicas_and_a_cache_host_in_under_a_second():
    apps = ["app%03d" % i for i in range(100)]
    data = {"groups": {"mastodon_db_primary": ["db1"], "mastodon_db_replica": ["db2", "db3"], "mastodon_app": apps,
                       "mastodon_cache": ["cache1"]},
            "settings": {"scale_sidekiq_redis_enabled": True, "scale_sidekiq_redis_host": "cache1",
                         "scale_pgbouncer_placement": "app"},
            "hosts": dict({"db1": db_host("10.0.0.1"), "db2": db_host("10.0.0.2"), "db3": db_host("10.0.0.3"),
                           "cache1": {"address": "10.0.0.4", "redis_cache": dict(CACHE),
                                      "sidekiq_redis": dict(SIDEKIQ_REDIS)}},
                          **{name: app_host("10.1.%d.%d" % divmod(i, 256)) for i, name in enumerate(apps)})}
    start = time.monotonic()
    out = fleet.layout(data)
    result = plan(postgresql={"max_connections": 5000}, **out["plan_input"])
    took = time.monotonic() - start
    assert took < 1.0, took
    assert out["problems"] == []
    # 100 x (10 web + 35 Sidekiq) x 2 (replica) + 100 x 2 x 10 streaming.
    assert result["client_connections"] == 100 * 45 * 2 + 100 * 20
    # 100 PgBouncers x 2 pools x (20 + 5).
    assert result["limits"]["pgbouncer_server_capacity"] == 100 * 2 * 25
    assert result["server_connections"] == 5000 and not result["feasible"]
    assert all(out["hosts"][a]["depends_on"] == ["cache1", "db1", "db2", "db3"] for a in apps)
    assert out["cache"]["host"] == "cache1" and out["sidekiq_redis"]["host"] == "cache1"


# One Mastodon across every application host (issue 28).
def with_front(data, front="db1"):
    data["groups"]["mastodon_front"] = [front]
    return data


def test_a_front_door_on_another_host_gets_every_web_and_streaming_process_on_its_own_address():
    out = fleet.layout(with_front(split()))
    assert out["problems"] == []
    assert out["front"] == {"hosts": ["db1"],
                            "web": [["app1", "10.0.0.3", 3000], ["app2", "10.0.0.4", 3000]],
                            "streaming": [["app1", "10.0.0.3", 4000], ["app1", "10.0.0.3", 4001],
                                          ["app2", "10.0.0.4", 4000], ["app2", "10.0.0.4", 4001]]}
    assert out["hosts"]["app1"]["web_bind"] == "10.0.0.3" and out["hosts"]["app2"]["streaming_bind"] == "10.0.0.4"
    assert "front" in out["hosts"]["db1"]["runs"] and out["batch"] == 1


def test_without_a_front_door_nothing_changes_from_today():
    out = fleet.layout(split())
    assert out["front"] is None
    assert out["hosts"]["app1"]["web_bind"] == "" and out["hosts"]["app1"]["web_address"] == "127.0.0.1"


def test_the_operators_own_bind_address_wins_and_the_upstream_uses_it():
    data = with_front(split())
    data["hosts"]["app2"]["streaming"]["bind"] = "10.9.0.4"
    out = fleet.layout(data)
    assert ["app2", "10.9.0.4", 4001] in out["front"]["streaming"]


@pytest.mark.parametrize("batch, keep, message", [
    (2, "50%", "scale_restart_batch restarts 2 of 2 application hosts at once, which leaves the front door without"),
    ("100%", "50%", "scale_restart_batch restarts 2 of 2"),
    (1, "60%", "which leaves less than scale_restart_keep_serving (60%) of them serving"),
    ("0", "50%", "scale_restart_batch must be a whole number of at least 1"),
    (True, "50%", "scale_restart_batch must be a whole number of at least 1"),
])
def test_a_batch_that_would_leave_the_front_door_without_enough_hosts_is_refused(batch, keep, message):
    out = fleet.layout(with_front(split(scale_restart_batch=batch, scale_restart_keep_serving=keep)))
    assert any(message in problem for problem in out["problems"]), out["problems"]


def test_a_batch_as_a_share_of_a_large_fleet():
    data = with_front(split(scale_restart_batch="25%"))
    for i in range(3, 9):
        data["groups"]["mastodon_app"].append("app%d" % i)
        data["hosts"]["app%d" % i] = app_host("10.0.1.%d" % i)
    out = fleet.layout(data)
    assert out["problems"] == [] and out["batch"] == 2


@pytest.mark.parametrize("keys, settings, message", [
    (["DATABASE_URL"], {}, "app2's .env.production sets DATABASE_URL, which wins over every DB_*"),
    (["REPLICA_DATABASE_URL"], {}, "sets REPLICA_DATABASE_URL"),
    (["REDIS_NAMESPACE"], {}, "app2's .env.production sets REDIS_NAMESPACE, and Mastodon 4.5.0 refuses to start with it"),
])
def test_settings_that_override_ours_are_refused(keys, settings, message):
    data = split(**settings)
    data["hosts"]["app2"]["env_keys"] += keys
    assert any(message in problem for problem in fleet.layout(data)["problems"])


def test_a_leftover_database_url_goes_when_the_operator_says_so():
    data = split(scale_remove_database_url=True)
    data["hosts"]["app2"]["env_keys"] += ["DATABASE_URL"]
    assert fleet.layout(data)["problems"] == []


def test_redis_namespace_on_4_3_is_a_warning():
    data = split()
    for host in ("app1", "app2"):
        data["hosts"][host].update(version="4.3.8", env_keys=["REDIS_NAMESPACE"])
    out = fleet.layout(data)
    assert out["problems"] == [] and len(out["warnings"]) == 2


@pytest.mark.parametrize("media, message", [
    ({"storage": "local"}, "2 application hosts keep uploads on their own disk"),
    ({"storage": "s3", "s3": {"S3_BUCKET": "other"}}, "the media_s3_* settings differ between the application hosts"),
])
def test_media_that_one_host_would_not_see_is_refused(media, message):
    data = split()
    data["hosts"]["app2"]["media"] = media
    if media["storage"] == "local":
        data["hosts"]["app1"]["media"] = media
    assert any(message in problem for problem in fleet.layout(data)["problems"])


def test_local_media_in_a_shared_folder_and_on_one_host_are_fine():
    data = split()
    for host in ("app1", "app2"):
        data["hosts"][host]["media"] = {"storage": "local", "shared_dir": "/srv/media"}
    assert fleet.layout(data)["problems"] == []
    one = one_host()
    one["hosts"]["doc1"]["media"] = {"storage": "local"}
    assert fleet.layout(one)["problems"] == []


def test_every_problem_at_once():
    data = split(scale_cache_per_host=True)
    data["hosts"]["app1"]["env_keys"] += ["DATABASE_URL"]
    data["hosts"]["app2"]["env_keys"] += ["REDIS_NAMESPACE"]
    for host in ("app1", "app2"):
        data["hosts"][host]["media"] = {"storage": "local"}
    problems = fleet.layout(data)["problems"]
    assert len(problems) == 4, problems


def test_a_shared_media_folder_that_is_not_shared_is_refused():
    data = split()
    for host in ("app1", "app2"):
        data["hosts"][host]["media"] = {"storage": "local", "shared_dir": "/srv/media", "shared_proven": host == "app1"}
    problems = fleet.layout(data)["problems"]
    assert problems == ["media_shared_dir is not shared: the marker app1 wrote into it is not there on app2. Mount the "
                        "same folder on every application host, or use object storage (media_storage: s3)."]


def test_a_fleet_half_way_through_an_upgrade_follows_its_target():
    data = split()
    data["hosts"]["app1"]["version"] = "4.5.1"
    for host in ("app1", "app2"):
        data["hosts"][host]["upgrade"] = {"from": "4.5.0", "to": "4.5.1"}
    out = fleet.layout(data)
    assert out["problems"] == [] and out["version"] == "4.5.1"
    data["hosts"]["app2"]["upgrade"] = {}
    assert "the application hosts run Mastodon 4.5.0 and 4.5.1" in fleet.layout(data)["problems"][0]


def test_the_replica_lag_fence_runs_beside_every_pgbouncer_that_serves_the_replica():
    out = fleet.layout(split())
    assert out["pgbouncer"]["fence_hosts"] == ["db1"] and "replica_fence" in out["hosts"]["db1"]["runs"]
    out = fleet.layout(split(scale_pgbouncer_placement="app"))
    assert out["pgbouncer"]["fence_hosts"] == ["app1", "app2"]
    assert "replica_fence" not in out["hosts"]["db1"]["runs"]
    # The plan already counts mastodon_replica as a pool of every PgBouncer against the primary's max_connections,
    # which is where the fence sends it: no budget changes.
    assert out["plan_input"]["pgbouncer"]["pools"] == 2


def test_a_host_can_go_without_the_fence_and_without_a_replica_there_is_none():
    data = split(scale_pgbouncer_placement="app")
    data["hosts"]["app2"]["read_replica"] = {"fence": False}
    assert fleet.layout(data)["pgbouncer"]["fence_hosts"] == ["app1"]
    data = split()
    data["groups"]["mastodon_db_replica"] = []
    assert fleet.layout(data)["pgbouncer"]["fence_hosts"] == []


def test_the_fence_without_pgbouncer_is_a_warning_naming_both_settings():
    out = fleet.layout(split(scale_pgbouncer_enabled=False))
    assert out["problems"] == [] and out["pgbouncer"]["fence_hosts"] == []
    assert any("scale_pgbouncer_enabled: true" in w and "read_replica_fence_enabled: false" in w for w in out["warnings"])
    data = split(scale_pgbouncer_enabled=False)
    for host in ("app1", "app2"):
        data["hosts"][host]["read_replica"] = {"fence": False}
    assert fleet.layout(data)["warnings"] == []


# What each host's plays apply, read from the layout instead of worked out in playbooks/scale.yml.

def test_where_each_host_reaches_pgbouncer_for_the_replica():
    out = fleet.layout(split())
    # The primary's PgBouncer over the network, else one beside it; hosts without Mastodon keep the loopback.
    assert {h: out["hosts"][h]["pgbouncer_host"] for h in ("db1", "db2", "app1", "app2")} == {
        "db1": "127.0.0.1", "db2": "127.0.0.1", "app1": "10.0.0.1", "app2": "10.0.0.1"}
    out = fleet.layout(split(scale_pgbouncer_placement="app"))
    assert out["hosts"]["app1"]["pgbouncer_host"] == "127.0.0.1"
    out = fleet.layout(split(scale_pgbouncer_enabled=False))
    assert out["hosts"]["app1"]["pgbouncer_host"] == "127.0.0.1"


def test_what_each_pgbouncer_is_given():
    out = fleet.layout(split())
    # On the primary, its own setting (PostgreSQL's socket) stays; the fence repoints the replica's entry.
    assert out["hosts"]["db1"]["pgbouncer_server"] == {"postgresql_host": None, "runtime_databases": ["mastodon_replica"]}
    assert out["hosts"]["app1"]["pgbouncer_server"] is None and out["hosts"]["db2"]["pgbouncer_server"] is None
    out = fleet.layout(split(scale_pgbouncer_placement="app"))
    assert out["hosts"]["app2"]["pgbouncer_server"] == {
        "postgresql_host": "10.0.0.1", "runtime_databases": ["mastodon_replica"]}
    assert out["hosts"]["db1"]["pgbouncer_server"] is None
    data = split(scale_pgbouncer_placement="app")
    data["hosts"]["app2"]["read_replica"] = {"fence": False}
    assert fleet.layout(data)["hosts"]["app2"]["pgbouncer_server"]["runtime_databases"] == []
    assert fleet.layout(one_host())["hosts"]["doc1"]["pgbouncer_server"] == {"postgresql_host": None,
                                                                             "runtime_databases": []}


def test_what_each_host_exports_without_passwords():
    out = fleet.layout(split())
    # Sidekiq has its own Redis on app1: its queue sizes come from there, not from the main Redis.
    assert out["hosts"]["app1"]["metrics"] == {"pgbouncer": False, "postgresql": False, "redis_instances": [
        {"name": "main", "address": "redis://127.0.0.1:6379", "port": 9121, "queues": False},
        {"name": "sidekiq", "address": "redis://127.0.0.1:6381", "port": 9123, "queues": True},
        {"name": "cache", "address": "redis://127.0.0.1:6380", "port": 9122, "queues": False}]}
    assert [r["name"] for r in out["hosts"]["app2"]["metrics"]["redis_instances"]] == ["main"]
    assert out["hosts"]["db2"]["metrics"] == {"pgbouncer": False, "postgresql": True, "redis_instances": []}
    # PgBouncer's exporter needs the monitoring user's password.
    assert not out["hosts"]["db1"]["metrics"]["pgbouncer"]
    data = split(scale_sidekiq_redis_enabled=False)
    data["hosts"]["db1"]["pgbouncer"]["stats_password_set"] = True
    data["hosts"]["app1"]["redis_cache"] = dict(CACHE, main_port=6390, port=6391)
    out = fleet.layout(data)
    assert out["hosts"]["db1"]["metrics"]["pgbouncer"]
    assert out["hosts"]["app1"]["metrics"]["redis_instances"] == [
        {"name": "main", "address": "redis://127.0.0.1:6390", "port": 9121, "queues": True},
        {"name": "cache", "address": "redis://127.0.0.1:6391", "port": 9122, "queues": False}]
    assert "password" not in repr(out["hosts"]["app1"]["metrics"])


def test_a_checkout_fills_in_what_the_roles_are_not_asked_to_change():
    data = split()
    for host in ("app1", "app2"):
        info = data["hosts"][host]
        for key in ("version", "env_keys"):
            info.pop(key)
        info["media"] = {"storage": "", "shared_dir": "", "s3": {}, "shared_proven": True}
        info["checkout"] = {"version": "4.5.0", "upgrade": {}, "env_keys": ["DATABASE_URL"], "media_storage": "local",
                            "paperclip_root_path": "/srv/media", "path": "/home/mastodon/live"}
    out = fleet.layout(data)
    assert out["version"] == "4.5.0"
    assert any("DATABASE_URL" in p for p in out["problems"])
    # Local uploads in the folder .env.production names, proven shared: no media problem.
    assert not any("media" in p for p in out["problems"])
    # What the role is asked for wins over what the checkout says now.
    data["hosts"]["app1"]["media"]["storage"] = "s3"
    assert any("media_storage differs" in p for p in fleet.layout(data)["problems"])
    # A host without a checkout (a database host) stores nothing.
    assert fleet._published({"checkout": {}})["media"] == {"storage": "local", "shared_dir": ""}
