from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.fediops.mastodon.plugins.module_utils import connection_plan as cp

WEB = {"processes": 2, "threads": 5}
SIDEKIQ = [{"name": "default", "threads": 25}, {"name": "push", "threads": 10, "db_pool": 15}]


@pytest.mark.parametrize("kwargs, clients, server, feasible", [
    # The guide's single server: 2x5 web, one sidekiq -c 25, one streaming instance (DB_POOL 10).
    ({"web": WEB, "sidekiq": [{"name": "all", "threads": 25}], "streaming": {"instances": 1}}, 45, 45, True),
    # Same without streaming: 10 + 25.
    ({"web": WEB, "sidekiq": [{"name": "all", "threads": 25}]}, 35, 35, True),
    # Exactly at PostgreSQL's limit (100 - 3 reserved).
    ({"web": {"processes": 1, "threads": 97}, "postgresql": {"max_connections": 100}}, 97, 97, True),
    # One above it.
    ({"web": {"processes": 1, "threads": 98}, "postgresql": {"max_connections": 100}}, 98, 98, False),
    # PgBouncer caps the server side at pools x (default_pool_size + reserve_pool_size).
    ({"web": WEB, "sidekiq": SIDEKIQ, "pgbouncer": {"max_client_conn": 100, "default_pool_size": 20},
      "postgresql": {"max_connections": 100}}, 45, 20, True),
    ({"web": WEB, "sidekiq": SIDEKIQ, "pgbouncer": {"max_client_conn": 100, "default_pool_size": 20, "pools": 2,
                                                    "reserve_pool_size": 5}}, 45, 45, True),
    ({"web": WEB, "pgbouncer": {"max_client_conn": 100, "default_pool_size": 20, "pools": 2}}, 10, 10, True),
    # Too many clients for PgBouncer.
    ({"web": WEB, "sidekiq": SIDEKIQ, "pgbouncer": {"max_client_conn": 44, "default_pool_size": 20}}, 45, 20, False),
    # PgBouncer's pools are bigger than what PostgreSQL accepts.
    ({"web": {"processes": 4, "threads": 50}, "pgbouncer": {"max_client_conn": 1000, "default_pool_size": 60, "pools": 2},
      "postgresql": {"max_connections": 100}}, 200, 120, False),
    # Absent Sidekiq processes open nothing; streaming instances x DB_POOL.
    ({"sidekiq": [{"name": "gone", "threads": 50, "state": "absent"}], "streaming": {"instances": 3, "db_pool": 4}},
     12, 12, True),
    ({}, 0, 0, True),
])
def test_plan_table(kwargs, clients, server, feasible):
    result = cp.plan(**kwargs)
    assert result["client_connections"] == clients == result["total_threads"]
    assert result["server_connections"] == server
    assert result["feasible"] is feasible
    assert (result["problems"] == []) is feasible


def test_processes_and_db_pool():
    result = cp.plan(web=WEB, sidekiq=SIDEKIQ, streaming={"instances": 2})
    assert result["processes"] == [
        {"name": "web", "kind": "web", "count": 2, "threads": 5, "db_pool": 5, "connections": 10},
        {"name": "default", "kind": "sidekiq", "count": 1, "threads": 25, "db_pool": 25, "connections": 25},
        {"name": "push", "kind": "sidekiq", "count": 1, "threads": 10, "db_pool": 15, "connections": 10},
        {"name": "streaming", "kind": "streaming", "count": 2, "threads": 10, "db_pool": 10, "connections": 20},
    ]
    assert result["limits"] == {"max_client_conn": None, "pgbouncer_server_capacity": None, "max_connections": None,
                                "superuser_reserved_connections": None, "postgresql_available": None,
                                "pgbouncer_instances": 0, "clients_per_pgbouncer": None}


def test_role_entries_can_be_passed_as_they_are():
    result = cp.plan(sidekiq=[{"name": "push", "queues": ["push"], "threads": 4, "state": "present",
                               "environment": {"X": "1"}}])
    assert result["client_connections"] == 4


def test_problem_sentences_name_numbers_and_fix():
    result = cp.plan(web=WEB, sidekiq=SIDEKIQ, pgbouncer={"max_client_conn": 40, "default_pool_size": 50},
                     postgresql={"max_connections": 40, "superuser_reserved_connections": 5})
    assert not result["feasible"]
    clients, server = result["problems"]
    assert "45 client connections" in clients and "max_client_conn is 40" in clients
    assert "at least 45" in clients and "remove 5 threads" in clients
    assert "web 2 processes x 5 threads" in clients and "sidekiq default 25" in clients
    assert "45 server connections" in server and "leaves 35" in server
    assert "default_pool_size to at most 35" in server and "max_connections to at least 50" in server


def test_problem_without_pgbouncer_suggests_it():
    result = cp.plan(web={"processes": 3, "threads": 40}, postgresql={"max_connections": 100})
    (problem,) = result["problems"]
    assert "120 connections straight to PostgreSQL" in problem
    assert "leaves 97" in problem and "at least 123" in problem and "remove 23 threads" in problem
    assert "PgBouncer" in problem


def test_problem_when_reserve_alone_overflows():
    result = cp.plan(web={"processes": 10, "threads": 10},
                     pgbouncer={"max_client_conn": 500, "default_pool_size": 5, "reserve_pool_size": 10, "pools": 10},
                     postgresql={"max_connections": 100})
    (problem,) = result["problems"]
    assert "pgbouncer_reserve_pool_size, pgbouncer_processes or the number of pools" in problem


@pytest.mark.parametrize("kwargs, message", [
    ({"web": {"processes": 2, "threads": 5, "db_pool": 4}}, "db_pool 4 is below its 5 threads"),
    ({"sidekiq": [{"name": "push", "threads": 10, "db_pool": 9}]}, "set db_pool to at least 10"),
    ({"sidekiq": [{"name": "push", "threads": 0}]}, "threads must be at least 1, got 0"),
    ({"sidekiq": [{"name": "push", "threads": True}]}, "whole number"),
    ({"sidekiq": [{"name": "a", "threads": 1}, {"name": "a", "threads": 2}]}, "listed twice"),
    ({"sidekiq": [{"threads": 1}]}, "name is required"),
    ({"sidekiq": [{"name": "a", "threads": 1, "state": "gone"}]}, "present or absent"),
    ({"sidekiq": [{"name": "a", "thread": 1}]}, "unknown key(s) thread"),
    ({"sidekiq": {"name": "a"}}, "must be a list"),
    ({"web": {"threads": 5}}, "processes is required"),
    ({"web": {"processes": -1, "threads": 5}}, "at least 1, got -1"),
    ({"web": {"processes": 0, "threads": 5}}, "at least 1, got 0"),
    ({"streaming": {"instances": 0}}, "at least 1, got 0"),
    ({"web": {"processes": "two", "threads": 5}}, "whole number"),
    ({"web": [1]}, "must be a mapping"),
    ({"streaming": {"instances": 1, "db_pool": 0}}, "db_pool must be at least 1"),
    ({"pgbouncer": {"max_client_conn": 10}}, "default_pool_size is required"),
    ({"postgresql": {"max_connections": 3}}, "leaves nothing of max_connections 3"),
])
def test_invalid_input(kwargs, message):
    with pytest.raises(cp.ConnectionPlanError) as err:
        cp.plan(**kwargs)
    assert message in str(err.value)


def test_decimal_strings_are_numbers():
    assert cp.plan(web={"processes": "2", "threads": " 5 "})["client_connections"] == 10


def test_plan_from_mapping():
    assert cp.plan_from({"web": WEB})["client_connections"] == 10
    with pytest.raises(cp.ConnectionPlanError, match="unknown key"):
        cp.plan_from({"webs": WEB})


sidekiq_st = st.lists(st.tuples(st.integers(1, 60), st.integers(0, 20)), max_size=8).map(
    lambda items: [{"name": "p%d" % i, "threads": t, "db_pool": t + extra} for i, (t, extra) in enumerate(items)])
web_st = st.one_of(st.none(), st.fixed_dictionaries({"processes": st.integers(1, 16), "threads": st.integers(1, 32)}))
streaming_st = st.one_of(st.none(), st.fixed_dictionaries({"instances": st.integers(1, 8)},
                                                          optional={"db_pool": st.integers(1, 30)}))
pgbouncer_st = st.one_of(st.none(), st.fixed_dictionaries(
    {"max_client_conn": st.integers(1, 2000), "default_pool_size": st.integers(1, 200)},
    optional={"pools": st.integers(1, 4), "reserve_pool_size": st.integers(0, 20)}))
postgresql_st = st.one_of(st.none(), st.integers(4, 1000).flatmap(
    lambda m: st.fixed_dictionaries({"max_connections": st.just(m)},
                                    optional={"superuser_reserved_connections": st.integers(0, m - 1)})))


@settings(max_examples=300, deadline=None)
@given(web=web_st, sidekiq=sidekiq_st, streaming=streaming_st, pgbouncer=pgbouncer_st, postgresql=postgresql_st)
def test_properties(web, sidekiq, streaming, pgbouncer, postgresql):
    result = cp.plan(web=web, sidekiq=sidekiq, streaming=streaming, pgbouncer=pgbouncer, postgresql=postgresql)
    processes = result["processes"]
    # DB_POOL is never below threads, and equals a given db_pool.
    assert all(p["db_pool"] >= p["threads"] for p in processes)
    for given_proc, got in zip(sidekiq, [p for p in processes if p["kind"] == "sidekiq"]):
        assert got["db_pool"] == given_proc["db_pool"]
    # Clients are all threads combined.
    assert result["client_connections"] == sum(p["count"] * p["threads"] for p in processes)
    # PgBouncer never increases what PostgreSQL sees; without it PostgreSQL sees every client.
    if pgbouncer is None:
        assert result["server_connections"] == result["client_connections"]
    else:
        cap = pgbouncer.get("pools", 1) * (pgbouncer["default_pool_size"] + pgbouncer.get("reserve_pool_size", 0))
        assert result["server_connections"] == min(result["client_connections"], cap)
    # The verdict is exactly the two limits.
    too_many_clients = pgbouncer is not None and result["client_connections"] > pgbouncer["max_client_conn"]
    too_many_servers = postgresql is not None and result["server_connections"] > (
        postgresql["max_connections"] - postgresql.get("superuser_reserved_connections", 3))
    assert result["feasible"] == (not too_many_clients and not too_many_servers)
    assert len(result["problems"]) == int(too_many_clients) + int(too_many_servers)
    # Every problem names the client count.
    for problem in result["problems"]:
        assert str(result["server_connections"]) in problem or str(result["client_connections"]) in problem


@settings(max_examples=200, deadline=None)
@given(web=web_st, sidekiq=sidekiq_st, pgbouncer=pgbouncer_st, postgresql=postgresql_st, more=st.integers(1, 500))
def test_more_room_never_makes_a_plan_worse(web, sidekiq, pgbouncer, postgresql, more):
    before = cp.plan(web=web, sidekiq=sidekiq, pgbouncer=pgbouncer, postgresql=postgresql)
    if postgresql is not None:
        postgresql = dict(postgresql, max_connections=postgresql["max_connections"] + more)
    if pgbouncer is not None:
        pgbouncer = dict(pgbouncer, max_client_conn=pgbouncer["max_client_conn"] + more)
    after = cp.plan(web=web, sidekiq=sidekiq, pgbouncer=pgbouncer, postgresql=postgresql)
    assert len(after["problems"]) <= len(before["problems"])
    assert after["client_connections"] == before["client_connections"]


@settings(max_examples=200, deadline=None)
@given(sidekiq=sidekiq_st, threads=st.integers(1, 60))
def test_adding_a_process_adds_its_threads(sidekiq, threads):
    before = cp.plan(sidekiq=sidekiq)
    after = cp.plan(sidekiq=sidekiq + [{"name": "extra", "threads": threads}])
    assert after["client_connections"] == before["client_connections"] + threads


def test_pgbouncer_on_every_app_host_multiplies_the_server_connections():
    from ansible_collections.fediops.mastodon.plugins.module_utils.connection_plan import plan as cp
    result = cp(web={"processes": 4, "threads": 5}, sidekiq=[{"name": "all", "threads": 25}],
                pgbouncer={"max_client_conn": 100, "default_pool_size": 20, "reserve_pool_size": 5, "instances": 2,
                           "clients_per_instance": 45},
                postgresql={"max_connections": 100})
    assert result["limits"]["pgbouncer_server_capacity"] == 2 * 25
    assert result["server_connections"] == 45
    assert result["feasible"]
    tight = cp(web={"processes": 8, "threads": 5}, sidekiq=[{"name": "all", "threads": 25}],
               pgbouncer={"max_client_conn": 100, "default_pool_size": 20, "reserve_pool_size": 5, "instances": 3},
               postgresql={"max_connections": 60})
    assert not tight["feasible"]
    assert "3 PgBouncers x 1 pools" in tight["problems"][0]
    assert "default_pool_size to at most 14" in tight["problems"][0]


def test_busiest_pgbouncer_is_checked_against_max_client_conn():
    from ansible_collections.fediops.mastodon.plugins.module_utils.connection_plan import plan as cp
    result = cp(web={"processes": 10, "threads": 5}, pgbouncer={"max_client_conn": 40, "default_pool_size": 20,
                                                                "instances": 2, "clients_per_instance": 45})
    assert not result["feasible"]
    assert "busiest of 2 PgBouncers gets up to 45" in result["problems"][0]
    assert cp(web={"processes": 10, "threads": 5},
              pgbouncer={"max_client_conn": 25, "default_pool_size": 20, "instances": 2})["feasible"]


def test_a_replica_doubles_the_rails_client_connections_only():
    from ansible_collections.fediops.mastodon.plugins.module_utils.connection_plan import plan as cp
    result = cp(web={"processes": 2, "threads": 5}, sidekiq=[{"name": "all", "threads": 25}],
                streaming={"instances": 1}, replica=True)
    assert result["replica_client_connections"] == 35
    assert result["client_connections"] == 10 + 25 + 10 + 35
    assert cp(web={"processes": 2, "threads": 5}, replica=False)["client_connections"] == 10


def test_every_pgbouncer_process_opens_its_own_pools():
    """pgbouncer_processes: 2 (so_reuseport) doubles what PgBouncer may open; the plan must count it."""
    one = cp.plan(web={"processes": 8, "threads": 10},
                  pgbouncer={"max_client_conn": 400, "default_pool_size": 20, "reserve_pool_size": 5, "pools": 2},
                  postgresql={"max_connections": 100})
    assert one["feasible"] and one["limits"]["pgbouncer_server_capacity"] == 2 * 25
    two = cp.plan(web={"processes": 8, "threads": 10},
                  pgbouncer={"max_client_conn": 400, "default_pool_size": 20, "reserve_pool_size": 5, "pools": 2,
                             "processes": 2},
                  postgresql={"max_connections": 100})
    assert two["limits"]["pgbouncer_server_capacity"] == 2 * 2 * 25 and two["server_connections"] == 80
    # 80 server connections of 97: fits. With 120 threads, 120 > 97: refused, naming the processes.
    assert two["feasible"]
    more = cp.plan(web={"processes": 12, "threads": 10},
                   pgbouncer={"max_client_conn": 400, "default_pool_size": 20, "reserve_pool_size": 5, "pools": 2,
                              "processes": 2},
                   postgresql={"max_connections": 100})
    assert not more["feasible"]
    (problem,) = more["problems"]
    assert "2 processes x 2 pools x (default_pool_size 20 + reserve_pool_size 5)" in problem
    assert "default_pool_size to at most 19" in problem and "pgbouncer_processes" in problem


def test_pgbouncers_with_settings_of_their_own():
    """The app placement: one PgBouncer per application host, each with its own pool size and processes."""
    result = cp.plan(web={"processes": 4, "threads": 5}, pgbouncer={"pools": 2, "hosts": [
        {"name": "app1", "max_client_conn": 100, "default_pool_size": 10, "reserve_pool_size": 0, "processes": 2,
         "clients": 30},
        {"name": "app2", "max_client_conn": 20, "default_pool_size": 5, "clients": 25}]},
        postgresql={"max_connections": 100})
    assert [b["capacity"] for b in result["pgbouncers"]] == [40, 10]
    assert result["limits"]["pgbouncer_server_capacity"] == 50
    # app1: min(30 clients, 40); app2: min(25, 10); never more than the 20 clients in all.
    assert result["server_connections"] == 20
    assert result["problems"] == [
        "the PgBouncer on app2 gets up to 25 client connections (20 in all: web 4 processes x 5 threads) but "
        "PgBouncer's max_client_conn is 20: raise pgbouncer_max_client_conn to at least 25, or remove 5 threads "
        "from the plan."]


def test_server_capacity_is_the_one_formula():
    assert cp.server_capacity(2, 3, 20, 5) == 150
    assert cp.server_capacity("1", "1", "20") == 20
