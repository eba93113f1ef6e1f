from __future__ import annotations

import json

import pytest

from ansible_collections.fediops.mastodon.plugins.modules import connection_plan as module


@pytest.fixture
def run(run_module):
    return lambda args: run_module(module, args)[:2]


def test_feasible_plan_returns_the_plan(run):
    code, result = run({"web": {"processes": 2, "threads": 5},
                        "sidekiq": [{"name": "push", "threads": 10, "db_pool": 15}],
                        "streaming": {"instances": 1},
                        "pgbouncer": {"max_client_conn": 100, "default_pool_size": 20},
                        "postgresql": {"max_connections": 100}})
    assert code == 0
    assert result["changed"] is False and result["feasible"] is True
    assert result["client_connections"] == 30 and result["server_connections"] == 20
    assert [p["db_pool"] for p in result["processes"]] == [5, 15, 10]
    assert result["limits"]["postgresql_available"] == 97


def test_infeasible_plan_fails_with_the_problems(run):
    code, result = run({"web": {"processes": 4, "threads": 30}, "postgresql": {"max_connections": 100}})
    assert code == 1
    assert result["failed"] is True and result["feasible"] is False
    assert "120 connections straight to PostgreSQL" in result["msg"]
    assert result["problems"]


def test_infeasible_plan_reported_when_told_not_to_fail(run):
    code, result = run({"web": {"processes": 4, "threads": 30}, "postgresql": {"max_connections": 100},
                        "fail_on_infeasible": False})
    assert code == 0
    assert result["feasible"] is False and len(result["problems"]) == 1


def test_invalid_input_fails_even_when_not_failing_on_infeasible(run):
    code, result = run({"sidekiq": [{"name": "push", "threads": 10, "db_pool": 5}],
                        "fail_on_infeasible": False})
    assert code == 1
    assert "db_pool 5 is below its 10 threads" in result["msg"]


def test_check_mode_gives_the_same_answer(run):
    args = {"sidekiq": [{"name": "a", "threads": 3, "state": "present", "queues": ["push", "pull,2"],
                         "environment": {"SECRET": "hunter2"}}]}
    code, result = run(dict(args, _ansible_check_mode=True))
    assert code == 0 and result["client_connections"] == 3
    assert "hunter2" not in json.dumps(result)
