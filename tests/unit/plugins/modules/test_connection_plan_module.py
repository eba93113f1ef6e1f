from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.fediops.mastodon.plugins.modules import connection_plan as module


def run(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            module.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def test_feasible_plan_returns_the_plan(capsys):
    code, result = run({"web": {"processes": 2, "threads": 5},
                        "sidekiq": [{"name": "push", "threads": 10, "db_pool": 15}],
                        "streaming": {"instances": 1},
                        "pgbouncer": {"max_client_conn": 100, "default_pool_size": 20},
                        "postgresql": {"max_connections": 100}}, capsys)
    assert code == 0
    assert result["changed"] is False and result["feasible"] is True
    assert result["client_connections"] == 30 and result["server_connections"] == 20
    assert [p["db_pool"] for p in result["processes"]] == [5, 15, 10]
    assert result["limits"]["postgresql_available"] == 97


def test_infeasible_plan_fails_with_the_problems(capsys):
    code, result = run({"web": {"processes": 4, "threads": 30}, "postgresql": {"max_connections": 100}}, capsys)
    assert code == 1
    assert result["failed"] is True and result["feasible"] is False
    assert "120 connections straight to PostgreSQL" in result["msg"]
    assert result["problems"]


def test_infeasible_plan_reported_when_told_not_to_fail(capsys):
    code, result = run({"web": {"processes": 4, "threads": 30}, "postgresql": {"max_connections": 100},
                        "fail_on_infeasible": False}, capsys)
    assert code == 0
    assert result["feasible"] is False and len(result["problems"]) == 1


def test_invalid_input_fails_even_when_not_failing_on_infeasible(capsys):
    code, result = run({"sidekiq": [{"name": "push", "threads": 10, "db_pool": 5}],
                        "fail_on_infeasible": False}, capsys)
    assert code == 1
    assert "db_pool 5 is below its 10 threads" in result["msg"]


def test_check_mode_gives_the_same_answer(capsys):
    args = {"sidekiq": [{"name": "a", "threads": 3, "state": "present", "queues": ["push", "pull,2"],
                         "environment": {"SECRET": "hunter2"}}]}
    code, result = run(dict(args, _ansible_check_mode=True), capsys)
    assert code == 0 and result["client_connections"] == 3
    assert "hunter2" not in json.dumps(result)
