from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.fediops.mastodon.plugins.module_utils import connection_plan as cp
from ansible_collections.fediops.mastodon.plugins.module_utils import site_plan as sp

ONE = {
    "web": {"processes": 2, "threads": 5, "db_pool": 5},
    "sidekiq": [{"name": "default", "threads": 10}, {"name": "pull", "threads": 5, "db_pool": 8}],
    "streaming": {"instances": 2, "db_pool": 10},
}


def test_one_host_passes_through():
    assert sp.site_input({"app1": ONE}) == ONE


def test_missing_parts_are_left_out():
    assert sp.site_input({"db1": {}, "app1": {"web": {"processes": 1, "threads": 5}}}) == {
        "web": {"processes": 1, "threads": 5, "db_pool": 5}}
    assert sp.site_input({"db1": {}}) == {}


@pytest.mark.parametrize(
    "second, web, streaming",
    [
        # Same settings: an exact sum.
        (ONE, {"processes": 4, "threads": 5, "db_pool": 5}, {"instances": 4, "db_pool": 10}),
        # More threads on one host: budgeted at the highest, never less.
        ({"web": {"processes": 1, "threads": 8}, "streaming": {"instances": 1}},
         {"processes": 3, "threads": 8, "db_pool": 8}, {"instances": 3, "db_pool": 10}),
        ({"web": {"processes": 1, "threads": 2, "db_pool": 12}, "streaming": {"instances": 1, "db_pool": 20}},
         {"processes": 3, "threads": 5, "db_pool": 12}, {"instances": 3, "db_pool": 20}),
    ],
)
def test_several_hosts(second, web, streaming):
    got = sp.site_input({"app1": ONE, "app2": second})
    assert got["web"] == web
    assert got["streaming"] == streaming


def test_sidekiq_names_carry_the_host():
    got = sp.site_input({"b": ONE, "a": ONE})
    assert [p["name"] for p in got["sidekiq"]] == ["a/default", "a/pull", "b/default", "b/pull"]
    # The input is not changed in place.
    assert ONE["sidekiq"][0]["name"] == "default"


@pytest.mark.parametrize("bad", [["app1"], {"app1": "web"}])
def test_bad_demands(bad):
    with pytest.raises(sp.SitePlanError):
        sp.site_input(bad)


def test_report_and_lines():
    demands = {"app1": ONE, "db1": {}}
    site = cp.plan(**sp.site_input(demands), pgbouncer={"max_client_conn": 100, "default_pool_size": 20},
                   postgresql={"max_connections": 100})
    report = sp.site_report(demands, site, pgbouncer={"mastodon_production": "pool 20"},
                            cache={"port": 6380}, replica=None)
    assert report["hosts"]["app1"]["threads"] == 10 + 15 + 20 == report["total_threads"]
    assert report["hosts"]["db1"] == {"processes": [], "threads": 0}
    text = "\n".join(sp.report_lines(report))
    assert "PgBouncer clients / max_client_conn" in text and "45 of 100 (55 left)" in text
    assert "PostgreSQL conns / available" in text and "20 of 97 (77 left)" in text
    assert "Plan: feasible" in text
    assert "Read replica: not managed by this run" in text
    assert "port: 6380" in text


def test_lines_of_an_infeasible_plan_name_the_problem():
    demands = {"app1": {"web": {"processes": 30, "threads": 5}}}
    site = cp.plan(**sp.site_input(demands), postgresql={"max_connections": 100})
    text = "\n".join(sp.report_lines(sp.site_report(demands, site)))
    assert "NOT feasible" in text and "150" in text
    assert "PostgreSQL conns / available" in text and "150 of 97 (-53 left)" in text


demand = st.fixed_dictionaries({
    "web": st.fixed_dictionaries({"processes": st.integers(1, 8), "threads": st.integers(1, 16)}),
    "sidekiq": st.lists(st.fixed_dictionaries({"threads": st.integers(1, 30)}), max_size=3).map(
        lambda procs: [dict(p, name="q%d" % i) for i, p in enumerate(procs)]),
    "streaming": st.fixed_dictionaries({"instances": st.integers(1, 4), "db_pool": st.integers(1, 20)}),
})


@given(st.dictionaries(st.sampled_from(["app1", "app2", "app3"]), demand, min_size=1))
def test_site_never_undercounts_the_hosts(demands):
    site = cp.plan(**sp.site_input(demands))
    per_host = sum(cp.plan(**d)["total_threads"] for d in demands.values())
    assert site["total_threads"] >= per_host
    if len(demands) == 1:
        assert site["total_threads"] == per_host
    report = sp.site_report(demands, site)
    assert sum(h["threads"] for h in report["hosts"].values()) == per_host


def test_pgbouncer_on_every_app_host_counts_instances_and_the_busiest_host():
    from ansible_collections.fediops.mastodon.plugins.module_utils import site_plan as sp
    demands = {
        "app1": {"web": {"processes": 2, "threads": 5}, "sidekiq": [{"name": "all", "threads": 25}]},
        "app2": {"web": {"processes": 4, "threads": 5}},
    }
    limits = {"max_client_conn": 100, "default_pool_size": 20}
    out = sp.site_input(demands, pgbouncer=limits, pgbouncer_on_app_hosts=True, replica=True)
    assert out["pgbouncer"]["instances"] == 2
    # app1: 10 web + 25 sidekiq, each with a replica pool = 70; app2: 20 web + 20 replica = 40
    assert out["pgbouncer"]["clients_per_instance"] == 70
    assert out["replica"] is True
    single = sp.site_input(demands, pgbouncer=limits)
    assert "instances" not in single["pgbouncer"] and "replica" not in single
    assert "pgbouncer" not in sp.site_input(demands)


# A fleet as fleet.layout() returns it, with only what the plan and the report read.
FLEET = {"primary": "db1", "replicas": ["db2"], "demands": {"app1": ONE},
         "plan_input": {"web": ONE["web"], "sidekiq": ONE["sidekiq"], "streaming": ONE["streaming"]},
         "pgbouncer": {"report": {"placement": "primary"}},
         "settings": {"scale_postgresql_max_connections": None, "scale_postgresql_superuser_reserved_connections": None}}


@pytest.mark.parametrize("settings, live, limits", [
    ({}, ["200", "5"], (200, 5)),
    # The settings win over what the primary says; the reserved ones default to PostgreSQL's 3.
    ({"scale_postgresql_max_connections": 150}, ["200", "5"], (150, 5)),
    ({"scale_postgresql_max_connections": 150, "scale_postgresql_superuser_reserved_connections": 10}, [], (150, 10)),
    ({"scale_postgresql_max_connections": 150}, [], (150, 3)),
])
def test_the_fleet_plan_takes_the_settings_else_the_primarys_limits(settings, live, limits):
    fleet = dict(FLEET, settings=dict(FLEET["settings"], **settings))
    got = sp.fleet_plan(fleet, live)
    assert (got["limits"]["max_connections"], got["limits"]["superuser_reserved_connections"]) == limits
    assert got == cp.plan_from(dict(FLEET["plan_input"], postgresql={"max_connections": limits[0],
                                                                     "superuser_reserved_connections": limits[1]}))


def test_the_fleet_plan_without_any_max_connections_is_refused():
    with pytest.raises(sp.SitePlanError, match="scale_postgresql_max_connections"):
        sp.fleet_plan(FLEET, [])


def test_the_fleet_report_from_what_each_host_read():
    plan = sp.fleet_plan(FLEET, ["200", "3"])
    parts = {"db1": {"cache": None, "cache_port": "6380", "standbys": [["db2", "10.0.0.2", "streaming", "async", "0"]],
                     "in_recovery": ""},
             "db2": {"cache": None, "cache_port": "6380", "standbys": [], "in_recovery": "t"},
             "app1": {"cache": ["maxmemory", "1073741824", "maxmemory-policy", "allkeys-lru"], "cache_port": "6380",
                      "standbys": [], "in_recovery": ""},
             # A preview on a host whose cache does not exist yet: redis-cli printed nothing.
             "app2": {"cache": [], "cache_port": 6390, "standbys": [], "in_recovery": ""}}
    report = sp.fleet_report(FLEET, plan, parts)
    assert report == sp.site_report(FLEET["demands"], plan, pgbouncer={"placement": "primary"},
                                    cache={"app1": {"maxmemory": "1073741824", "maxmemory-policy": "allkeys-lru",
                                                    "port": 6380},
                                           "app2": {"port": 6390}},
                                    replica={"standbys (name client state sync lag_s)": ["db2 10.0.0.2 streaming async 0"],
                                             "replicas in recovery": {"db2": "t"}})


def test_the_fleet_report_takes_the_settings_the_instance_module_read():
    plan = sp.fleet_plan(FLEET, ["200", "3"])
    read = {"maxmemory": "1073741824", "maxmemory-policy": "allkeys-lru"}
    by_module = sp.fleet_report(FLEET, plan, {"app1": {"cache": read, "cache_port": "6380", "standbys": [], "in_recovery": ""}})
    by_cli = sp.fleet_report(FLEET, plan, {"app1": {"cache": ["maxmemory", "1073741824", "maxmemory-policy", "allkeys-lru"],
                                                    "cache_port": "6380", "standbys": [], "in_recovery": ""}})
    assert by_module == by_cli and by_module["cache"] == {"app1": dict(read, port=6380)}


def test_the_fleet_report_names_a_database_host_that_failed_earlier():
    plan = sp.fleet_plan(FLEET, ["200", "3"])
    fleet = dict(FLEET, pgbouncer={"enabled": False})
    report = sp.fleet_report(fleet, plan, {"app1": {"cache": None, "cache_port": 6380, "standbys": [], "in_recovery": ""}})
    assert report["replica"] == {"standbys (name client state sync lag_s)": [],
                                 "replicas in recovery": {"db2": "unknown: the run failed there"}}
    assert report["cache"] == {} and report["pgbouncer"] == {}
    # Without a replica there is nothing to say about one.
    assert sp.fleet_report(dict(FLEET, replicas=[]), plan, {})["replica"] == {}
