from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.fediops.mastodon.plugins.module_utils import sidekiq_plan as sp

BUNDLE = "/usr/bin/bundle"
ALL_43 = ["default", "push", "ingress", "mailers", "pull", "scheduler"]


def proc(name, queues, threads=5, **kw):
    return dict(name=name, queues=queues, threads=threads, **kw)


@pytest.mark.parametrize("version, queues", [
    ("4.3.2", ALL_43),
    ("v4.3.0", ALL_43),
    ("4.2", ALL_43),
    ("4.4.0", ALL_43 + ["fasp"]),
    ("4.4.0-beta.1", ALL_43 + ["fasp"]),
    ("4.5.1", ALL_43 + ["fasp"]),
    ("5.0.0", ALL_43 + ["fasp"]),
])
def test_mastodon_queues(version, queues):
    assert sp.mastodon_queues(version) == queues


@pytest.mark.parametrize("version", ["", None, "four", "4", "latest"])
def test_bad_versions(version):
    with pytest.raises(sp.SidekiqPlanError, match="sidekiq_queues_mastodon_version"):
        sp.mastodon_queues(version)


@pytest.mark.parametrize("spec, parsed", [
    ("default", ("default", None)),
    ("push,6", ("push", 6)),
    (" pull , 2 ", ("pull", 2)),
    ("my.queue-1", ("my.queue-1", None)),
])
def test_parse_queue(spec, parsed):
    assert sp.parse_queue(spec) == parsed


@pytest.mark.parametrize("spec, reason", [
    ("push,0", "from 1 to 100"),
    ("push,101", "from 1 to 100"),
    ("push,06", "from 1 to 100"),
    ("push,x", "whole number"),
    ("push,1,2", "more than one comma"),
    ("", "must be letters"),
    ("a b", "must be letters"),
    ("*", "must be letters"),
    (6, "not a string"),
])
def test_parse_queue_errors(spec, reason):
    with pytest.raises(ValueError, match=reason):
        sp.parse_queue(spec)


@pytest.mark.parametrize("version", ["4.3.0", "4.4.0"])
def test_default_plan_is_valid_and_serves_every_queue(version):
    plan = sp.default_processes(version)
    assert sp.check(plan, version) == []
    built = sp.build(plan, version, BUNDLE)
    assert sorted(built["queue_processes"]) == sorted(sp.mastodon_queues(version))
    assert built["queue_processes"]["scheduler"] == ["mailers"]
    assert [p["name"] for p in built["present"]] == ["default", "push", "pull", "mailers"]


def test_default_plan_has_fasp_only_from_44():
    assert "fasp" not in sp.default_processes("4.3.9")[2]["queues"]
    assert "fasp" in sp.default_processes("4.4.0")[2]["queues"]


VALID = [proc("default", ["default"], 10), proc("push", ["push,6", "ingress,4"], 8, db_pool=12),
         proc("rest", ["mailers,2", "pull", "scheduler"], 3)]


@pytest.mark.parametrize("plan, version, expected", [
    # Two schedulers: named, with the count.
    (VALID + [proc("extra", ["scheduler"])], "4.3.0",
     ["Queue scheduler is served by 2 processes (rest, extra): keep it in exactly one"]),
    # Nobody serves ingress and pull.
    ([proc("a", ["default", "push", "mailers", "scheduler"])], "4.3.0",
     ["No process serves ingress, pull: add them to a process"]),
    ([proc("a", ["default", "push", "mailers", "ingress", "pull"])], "4.3.0",
     ["No process serves scheduler: add it to a process (scheduler to exactly one)"]),
    # fasp is served on 4.4: nobody serves it.
    (VALID, "4.4.0", ["No process serves fasp"]),
    # fasp before 4.4.
    (VALID + [proc("f", ["fasp"])], "4.3.0", ["queue fasp exists from Mastodon 4.4"]),
    (VALID + [proc("x", ["defualt"])], "4.3.0", ["defualt is not a Mastodon queue", "sidekiq_queues_allow_unknown_queues"]),
    (VALID + [proc("x", ["push"], 0)], "4.3.0", ["threads is 0; every process needs at least 1 thread"]),
    (VALID + [proc("x", ["push"], True)], "4.3.0", ["threads is True"]),
    (VALID + [proc("x", ["push"], 10, db_pool=9)], "4.3.0", ["db_pool 9 is below its 10 threads", "at least 10"]),
    (VALID + [proc("push", ["push"])], "4.3.0", ["Process 'push' is listed twice"]),
    (VALID + [proc("Bad Name", ["push"])], "4.3.0", ["becomes mastodon-sidekiq@NAME.service"]),
    (VALID + [proc("x", [])], "4.3.0", ["queues must be a non-empty list"]),
    (VALID + [proc("x", ["push", "push,2"])], "4.3.0", ["lists queue push twice"]),
    (VALID + [proc("x", ["push"], environment={"DB_POOL": 5})], "4.3.0", ["use db_pool instead"]),
    (VALID + [proc("x", ["push"], environment={"1X": "a"})], "4.3.0", ["environment name '1X'"]),
    (VALID + [proc("x", ["push"], environment={"X": "a\nb"})], "4.3.0", ["quotes, backslashes or line breaks"]),
    (VALID + [proc("x", ["push"], environment={"X": 'say "hi"'})], "4.3.0", ["quotes, backslashes or line breaks"]),
    (VALID + [proc("x", ["push"], environment={"X": "a\\b"})], "4.3.0", ["quotes, backslashes or line breaks"]),
    (VALID + [proc("x", ["push"], environment={"X": True})], "4.3.0", ["quote true/false"]),
    (VALID + [proc("x", ["push"], environment={"X": None})], "4.3.0", ["a string or a number"]),
    (VALID + [dict(proc("x", ["push"]), colour="red")], "4.3.0", ["unknown key(s) colour"]),
    (VALID + [proc("x", ["push"], state="maybe")], "4.3.0", ["state 'maybe' must be present or absent"]),
    ([], "4.3.0", ["non-empty list"]),
    (VALID, "latest", ["not a version like 4.4.0"]),
])
def test_check_problems(plan, version, expected):
    problems = sp.check(plan, version)
    text = " ".join(problems)
    for fragment in expected:
        assert fragment in text, text


def test_every_problem_is_reported_at_once():
    plan = [proc("a", ["default", "scheduler"], 0), proc("b", ["scheduler", "nope"], 2, db_pool=1)]
    problems = sp.check(plan, "4.3.0")
    assert len(problems) == 5  # threads, db_pool, unknown queue, two schedulers, unserved queues


def test_unknown_queues_allowed_explicitly():
    plan = VALID + [proc("mine", ["reports,2"])]
    assert sp.check(plan, "4.3.0", allow_unknown_queues=True) == []
    assert sp.build(plan, "4.3.0", BUNDLE, allow_unknown_queues=True)["queue_processes"]["reports"] == ["mine"]


def test_absent_processes_take_no_part():
    plan = VALID + [{"name": "old", "state": "absent"}, proc("old2", ["scheduler"], state="absent")]
    assert sp.check(plan, "4.3.0") == []
    built = sp.build(plan, "4.3.0", BUNDLE)
    assert built["absent"] == ["old", "old2"]
    assert [p["name"] for p in built["present"]] == ["default", "push", "rest"]


def test_build_units():
    built = sp.build(VALID[:2] + [proc("rest", ["mailers,2", "pull", "scheduler"], 3,
                                       environment={"B": "x y", "A": "50%", "N": 3})], "4.3.0", BUNDLE)
    default, push, rest = built["present"]
    assert default["unit"] == "mastodon-sidekiq@default.service"
    assert default["exec_start"] == "/usr/bin/bundle exec sidekiq -c 10 -t 25 -q default"
    assert push["argv"] == [BUNDLE, "exec", "sidekiq", "-c", "8", "-t", "25", "-q", "push,6", "-q", "ingress,4"]
    assert (push["threads"], push["db_pool"], default["db_pool"]) == (8, 12, 10)
    assert push["environment"] == {"DB_POOL": "12"}
    assert rest["environment"] == {"DB_POOL": "3", "A": "50%", "B": "x y", "N": "3"}
    assert built["total_threads"] == 21
    assert not any(p["secret"] for p in built["present"])


@pytest.mark.parametrize("environment", [{"API_TOKEN": "s3cr3t"}, {"DB_PASS": "s3cr3t"},
                                         {"DATABASE_URL": "postgres://mastodon:s3cr3t@10.0.0.1/mastodon"}])
def test_a_secret_in_a_unit_environment_is_refused_by_name(environment):
    """Unit files and `systemctl show` are readable by every user: secrets belong in .env.production."""
    plan = VALID[:2] + [proc("rest", ["mailers", "pull", "scheduler"], environment=environment)]
    problems = sp.check(plan, "4.3.0")
    assert len(problems) == 1 and next(iter(environment)) in problems[0] and ".env.production" in problems[0]
    assert "s3cr3t" not in problems[0]


def test_a_queue_in_two_processes_is_refused():
    plan = VALID + [proc("more", ["default"])]
    (problem,) = sp.check(plan, "4.3.0")
    assert "Queue default is served by 2 processes" in problem


def test_thread_count_is_bounded():
    plan = [proc("all", ["default", "push", "ingress", "mailers", "pull", "scheduler"], threads=10000)]
    (problem,) = sp.check(plan, "4.3.0")
    assert "threads is 10000" in problem and "more processes" in problem


def test_a_host_without_the_scheduler_serves_every_other_queue():
    without = [proc("all", ["default", "push", "ingress", "mailers", "pull"])]
    assert sp.check(without, "4.3.0", scheduler=False) == []
    assert "No process serves scheduler" in " ".join(sp.check(without, "4.3.0"))
    with_it = [proc("all", ["default", "push", "ingress", "mailers", "pull", "scheduler"])]
    (problem,) = sp.check(with_it, "4.3.0", scheduler=False)
    assert "sidekiq_queues_scheduler is false" in problem


@pytest.mark.parametrize("timeout", [0, -1, 3601, "x", True])
def test_shutdown_timeout_is_bounded(timeout):
    plan = [proc("all", ["default", "push", "ingress", "mailers", "pull", "scheduler"])]
    (problem,) = sp.check(plan, "4.3.0", shutdown_timeout=timeout)
    assert "sidekiq_queues_shutdown_timeout" in problem


def test_stop_timeout_leaves_sidekiq_its_shutdown_time():
    plan = [proc("all", ["default", "push", "ingress", "mailers", "pull", "scheduler"])]
    result = sp.build(plan, "4.3.0", BUNDLE, shutdown_timeout=40)
    assert result["present"][0]["argv"][5:7] == ["-t", "40"]
    assert result["stop_timeout"] >= 40 + 5


@pytest.mark.parametrize("bundle", ["bundle", "/usr/bin/my bundle", "/x/$HOME/bundle", 5])
def test_bundle_path_must_be_absolute_and_plain(bundle):
    with pytest.raises(sp.SidekiqPlanError, match="bundle path"):
        sp.build(VALID, "4.3.0", bundle)


def test_build_raises_with_all_problems():
    with pytest.raises(sp.SidekiqPlanError) as err:
        sp.build(VALID + [proc("extra", ["scheduler"])], "4.3.0", BUNDLE)
    assert len(err.value.problems) == 1 and "scheduler" in str(err.value)


def test_bundle_from_execstart():
    text = "{ path=/usr/bin/bundle ; argv[]=/usr/bin/bundle exec sidekiq -c 25 ; ignore_errors=no ; }"
    assert sp.bundle_from_execstart(text) == "/usr/bin/bundle"
    assert sp.bundle_from_execstart("") is None


QUEUES_43 = sp.mastodon_queues("4.3.0")


@st.composite
def valid_plans(draw):
    """Any assignment of Mastodon's queues to 1-5 processes, scheduler in exactly one."""
    count = draw(st.integers(1, 5))
    assignment = {q: draw(st.lists(st.integers(0, count - 1), min_size=1, max_size=1,
                                   unique=True)) for q in QUEUES_43}
    plan = []
    for i in range(count):
        queues = [q for q in QUEUES_43 if i in assignment[q]]
        if not queues:
            continue
        weights = draw(st.lists(st.one_of(st.none(), st.integers(1, 10)), min_size=len(queues), max_size=len(queues)))
        threads = draw(st.integers(1, 50))
        entry = {"name": "p%d" % i, "threads": threads,
                 "queues": [q if w is None else "%s,%d" % (q, w) for q, w in zip(queues, weights)]}
        if draw(st.booleans()):
            entry["db_pool"] = threads + draw(st.integers(0, 10))
        plan.append(entry)
    return plan


@settings(max_examples=300, deadline=None)
@given(plan=valid_plans())
def test_valid_plans_build_and_keep_their_promises(plan):
    assert sp.check(plan, "4.3.0") == []
    built = sp.build(plan, "4.3.0", BUNDLE)
    assert set(built["queue_processes"]) == set(QUEUES_43)
    assert len(built["queue_processes"]["scheduler"]) == 1
    assert built["total_threads"] == sum(p["threads"] for p in plan)
    for given_proc, unit in zip(plan, built["present"]):
        assert unit["db_pool"] == given_proc.get("db_pool", given_proc["threads"]) >= unit["threads"]
        assert unit["argv"][:5] == [BUNDLE, "exec", "sidekiq", "-c", str(given_proc["threads"])]
        assert unit["argv"][5:7] == ["-t", "25"]
        assert unit["argv"][7::2] == ["-q"] * len(given_proc["queues"])
        assert unit["environment"]["DB_POOL"] == str(unit["db_pool"])


@settings(max_examples=300, deadline=None)
@given(plan=valid_plans(), extra=st.integers(0, 4), threads=st.integers(1, 5))
def test_a_second_scheduler_is_always_refused(plan, extra, threads):
    plan = plan + [{"name": "second", "queues": ["scheduler"], "threads": threads}]
    problems = sp.check(plan, "4.3.0")
    assert any("Queue scheduler is served by 2 processes" in p for p in problems)
    with pytest.raises(sp.SidekiqPlanError):
        sp.build(plan, "4.3.0", BUNDLE)


@settings(max_examples=200, deadline=None)
@given(plan=valid_plans(), drop=st.sampled_from(QUEUES_43))
def test_dropping_a_queue_everywhere_is_reported(plan, drop):
    stripped = []
    for entry in plan:
        queues = [q for q in entry["queues"] if sp.parse_queue(q)[0] != drop]
        stripped.append(dict(entry, queues=queues or ["default" if drop != "default" else "push"]))
    problems = sp.check(stripped, "4.3.0")
    assert any(p.startswith("No process serves") and drop in p for p in problems)


def test_common_environment_is_checked_too():
    problems = sp.check(VALID, "4.3.0", common_environment={"DB_POOL": 5, "X": 'a"b'})
    assert len(problems) == 2 and all(p.startswith("The common environment") for p in problems)
    assert sp.check(VALID, "4.3.0", common_environment={"RAILS_ENV": "production", "MALLOC_ARENA_MAX": 2}) == []
    with pytest.raises(sp.SidekiqPlanError, match="common environment"):
        sp.build(VALID, "4.3.0", BUNDLE, common_environment={"A": "x\\y"})
