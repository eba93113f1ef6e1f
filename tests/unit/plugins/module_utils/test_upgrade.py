"""upgrade.plan: what playbooks/upgrade.yml may do, decided before anything changes."""

from __future__ import annotations

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import upgrade

STOPS = [{"stop": "4.2.0", "before": "4.3.0", "source": "mastodon/mastodon#33089"}]


def hosts(*versions, upgrade_to=None, upgrade_from=None):
    state = {"from": upgrade_from, "to": upgrade_to} if upgrade_to else {}
    return {"app%d" % (i + 1): {"version": v, "upgrade": state} for i, v in enumerate(versions)}


def test_a_plain_upgrade():
    out = upgrade.plan(hosts("4.5.0", "4.5.0"), "4.5.1", STOPS)
    assert out == {"from": "4.5.0", "to": "4.5.1", "resume": False, "nothing_to_do": False, "needs_code": ["app1", "app2"],
                   "problems": []}


def test_a_rerun_after_success_has_nothing_to_do():
    out = upgrade.plan(hosts("4.5.1", "4.5.1"), "4.5.1", STOPS)
    assert out["nothing_to_do"] and out["problems"] == [] and out["needs_code"] == []


@pytest.mark.parametrize("versions", [("4.5.1", "4.5.0"), ("4.5.1", "4.5.1"), ("4.5.0", "4.5.0")])
def test_an_interrupted_upgrade_resumes_at_any_step(versions):
    out = upgrade.plan(hosts(*versions, upgrade_from="4.5.0", upgrade_to="4.5.1"), "4.5.1", STOPS)
    assert out["problems"] == [] and out["resume"] and not out["nothing_to_do"] and out["from"] == "4.5.0"


def test_hosts_that_disagree_without_an_upgrade_under_way_are_refused():
    problems = upgrade.plan(hosts("4.5.1", "4.5.0"), "4.5.1", STOPS)["problems"]
    assert problems and "app1 4.5.1, app2 4.5.0" in problems[0]


def test_a_different_target_while_one_is_under_way_is_refused():
    problems = upgrade.plan(hosts("4.5.1", "4.5.0", upgrade_from="4.5.0", upgrade_to="4.5.1"), "4.6.0", STOPS)["problems"]
    assert "run it again to 4.5.1 to finish it (mastodon_upgrade_version: 4.5.1)" in problems[0]


def test_a_downgrade_is_refused():
    problems = upgrade.plan(hosts("4.5.0", "4.5.0"), "4.4.3", STOPS)["problems"]
    assert problems == ["mastodon_upgrade_version is 4.4.3, older than the 4.5.0 the application hosts run: Mastodon's "
                        "migrations do not run backwards, so a downgrade is refused (restore a backup instead)."]


def test_a_skip_across_a_required_stop_is_refused():
    problems = upgrade.plan(hosts("4.1.22", "4.1.22"), "4.3.5", STOPS)["problems"]
    assert len(problems) == 1 and "skips 4.2.0" in problems[0] and "mastodon/mastodon#33089" in problems[0]
    assert "upgrade to 4.2.0 first (mastodon_upgrade_version: 4.2.0), then to 4.3.5" in problems[0]
    assert upgrade.plan(hosts("4.1.22"), "4.2.9", STOPS)["problems"] == []
    assert upgrade.plan(hosts("4.2.0"), "4.3.5", STOPS)["problems"] == []


def test_nonsense_is_a_problem_naming_what():
    problems = upgrade.plan(hosts("4.5.0"), "latest", STOPS)["problems"]
    assert problems == ["mastodon_upgrade_version is 'latest', which is not a Mastodon version like 4.5.1."]


def test_the_required_stops_data_file_names_its_sources():
    import os
    import yaml
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
    with open(os.path.join(top, "roles", "mastodon_upgrade", "vars", "main.yml"), encoding="utf-8") as handle:
        stops = yaml.safe_load(handle)["__mastodon_upgrade_required_stops"]
    assert stops and all(set(stop) >= {"stop", "before", "source"} and stop["source"] for stop in stops)
    assert upgrade.plan(hosts("4.1.22"), "4.4.0", stops)["problems"]


def test_a_host_whose_steps_did_not_all_finish_runs_them_again():
    state = hosts("4.5.1", "4.5.1", upgrade_from="4.5.0", upgrade_to="4.5.1")
    state["app1"]["upgrade"] = dict(state["app1"]["upgrade"], code_ready=True)
    out = upgrade.plan(state, "4.5.1", STOPS)
    # app2's checkout says 4.5.1, but its assets may not be built: only the host that finished is skipped.
    assert out["problems"] == [] and out["resume"] and out["needs_code"] == ["app2"]


def test_the_step_times():
    marks = {"plan": 100.0, "code": 130.0, "pre_migrations": 135.5, "restart": 200.0}
    assert upgrade.step_seconds(marks, 210.0) == {
        "code": 30.0, "pre_migrations": 5.5, "restart": 64.5, "post_migrations": 10.0}
    assert upgrade.step_seconds({"plan": 100.0, "code": 130.0}, 140.0) == {"code": 30.0}
