from __future__ import annotations

import json

import pytest

from ansible_collections.fediops.mastodon.plugins.modules import sidekiq_plan as module


@pytest.fixture
def run(run_module):
    return lambda args: run_module(module, args)[:2]


def test_default_plan_when_processes_are_omitted(run):
    code, result = run({"mastodon_version": "4.4.0", "bundle": "/usr/bin/bundle"})
    assert code == 0 and result["changed"] is False
    assert [p["unit"] for p in result["present"]] == [
        "mastodon-sidekiq@default.service", "mastodon-sidekiq@push.service",
        "mastodon-sidekiq@pull.service", "mastodon-sidekiq@mailers.service"]
    assert result["queue_processes"]["fasp"] == ["pull"]


def test_two_schedulers_fail_with_the_problem(run):
    processes = [{"name": "a", "queues": ["default", "push", "ingress", "mailers", "pull", "scheduler"], "threads": 5},
                 {"name": "b", "queues": ["scheduler"], "threads": 1}]
    code, result = run({"mastodon_version": "4.3.0", "processes": processes, "bundle": "/usr/bin/bundle"})
    assert code == 1
    assert "scheduler is served by 2 processes (a, b)" in result["msg"]
    assert result["problems"]


def test_db_pool_defaults_to_threads_and_absent_entries_need_nothing(run):
    processes = [{"name": "all", "queues": ["default,8", "push,6", "ingress,4", "mailers,2", "pull", "scheduler"],
                  "threads": 7},
                 {"name": "old", "state": "absent"}]
    code, result = run({"mastodon_version": "4.3.0", "processes": processes, "bundle": "/usr/bin/bundle"})
    assert code == 0
    (unit,) = result["present"]
    assert unit["db_pool"] == 7 and unit["environment"] == {"DB_POOL": "7"}
    assert result["absent"] == ["old"]


def test_a_secret_environment_value_is_refused_and_never_shown(run):
    processes = [{"name": "all", "queues": ["default", "push", "ingress", "mailers", "pull", "scheduler"],
                  "threads": 2, "environment": {"FIXTURE_API_TOKEN": "hunter2-token", "PLAIN": "visible"}}]
    code, result = run({"mastodon_version": "4.3.0", "processes": processes, "bundle": "/usr/bin/bundle"})
    assert code == 1
    assert "FIXTURE_API_TOKEN" in result["msg"] and "hunter2-token" not in json.dumps(result)
