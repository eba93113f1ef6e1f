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


def test_existing_processes_are_those_holding_the_roles_dropin(tmp_path):
    for name, dropin in [("default", "sidekiq-queues.conf"), ("push", "sidekiq-queues.conf"), ("mine", "operator.conf")]:
        (tmp_path / ("mastodon-sidekiq@%s.service.d" % name)).mkdir()
        (tmp_path / ("mastodon-sidekiq@%s.service.d" % name) / dropin).write_text("[Service]\n")
    (tmp_path / "mastodon-sidekiq.service.d").mkdir()
    (tmp_path / "mastodon-sidekiq.service.d" / "sidekiq-queues.conf").write_text("[Service]\n")
    assert module.existing_processes("mastodon-sidekiq", "sidekiq-queues", str(tmp_path)) == ["default", "push"]
    assert module.existing_processes("mastodon-sidekiq", "sidekiq-queues", str(tmp_path / "none")) == []


def test_the_single_units_state_comes_with_the_plan(run, monkeypatch):
    show = ("LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n"
            "ExecStart={ path=/usr/local/bin/bundle ; argv[]=/usr/local/bin/bundle exec sidekiq ; }\n")
    monkeypatch.setattr(module.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/bin/systemctl")
    monkeypatch.setattr(module.AnsibleModule, "run_command", lambda self, argv, **kw: (0, show, ""))
    code, result = run({"mastodon_version": "4.4.0"})
    assert code == 0 and result["bundle"] == "/usr/local/bin/bundle"
    assert result["single"] == {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled"}
    assert result["single_actions"] == ["stop", "disable"]
