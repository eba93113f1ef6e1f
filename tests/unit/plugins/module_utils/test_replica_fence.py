"""The replica-lag fence's decisions: lag measured from the primary's WAL samples, the fence on past
read_replica_max_lag_s, and back only after the standby kept up for read_replica_fence_resume_after_s."""

from __future__ import annotations

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from ansible_collections.fediops.mastodon.plugins.module_utils import replica_fence as rf

SETTINGS = {"standby": "10.0.0.3:5432", "max_lag_s": 30, "resume_lag_s": 10, "resume_after_s": 60}


def standby(replay, in_recovery=True):
    return {"in_recovery": in_recovery, "replay_lsn": replay}


class Cluster:
    """A primary writing WAL and a standby replaying it, checked every `period` seconds by the fence."""

    def __init__(self, period=5, settings=None, start=1000.0):
        self.period, self.now, self.lsn, self.replayed = period, start, 100, 100
        self.settings = dict(SETTINGS, **(settings or {}))
        self.state, self.events = None, []
        self.down = False
        self.paused = False

    def write(self, amount=10):
        self.lsn += amount
        if not self.paused:
            self.replayed = self.lsn

    def resume(self):
        self.paused = False
        self.replayed = self.lsn

    def check(self, primary_up=True):
        seen = None if self.down else standby(self.replayed)
        self.state, event = rf.step(self.state, self.now, self.settings, self.lsn if primary_up else None, seen)
        self.events.append((self.now, event))
        return event

    def tick(self, writes=0):
        """One period: the primary writes `writes` times, then the fence checks."""
        for _tick in range(writes):
            self.write()
        self.now += self.period
        return self.check()


@pytest.mark.parametrize("text, value", [
    ("0/0", 0), ("0/16B3748", 0x16B3748), ("16/B374D848", (0x16 << 32) + 0xB374D848), ("FFFFFFFF/FFFFFFFF", 2 ** 64 - 1),
    ("", None), (None, None), ("  1/0 ", 1 << 32),
])
def test_parse_lsn_reads_postgresqls_text(text, value):
    assert rf.parse_lsn(text) == value


@pytest.mark.parametrize("text", ["16-B374D848", "1/2/3", "G/0", "123456789/0", "1/0\n2/0"])
def test_parse_lsn_refuses_what_is_not_one(text):
    with pytest.raises(rf.FenceError):
        rf.parse_lsn(text)


@given(st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1))
def test_lsn_order_is_postgresqls(a_hi, a_lo, b_hi, b_lo):
    a, b = rf.parse_lsn("%X/%X" % (a_hi, a_lo)), rf.parse_lsn("%X/%X" % (b_hi, b_lo))
    assert (a < b) == ((a_hi, a_lo) < (b_hi, b_lo))


@pytest.mark.parametrize("max_lag, interval, resume_lag, resume_after, names", [
    (30, 5, 10, 60, []),
    (30, 5, 30, 60, ["read_replica_max_lag_s"]),
    (30, 5, 40, 60, ["read_replica_max_lag_s"]),
    (30, 10, 10, 60, ["read_replica_fence_interval_s"]),
    (5, 2, 3, 4, []),
    (10, 10, 10, 0, ["read_replica_max_lag_s", "read_replica_fence_interval_s"]),
])
def test_settings_that_cannot_work_together(max_lag, interval, resume_lag, resume_after, names):
    problems = rf.settings_problems(max_lag, interval, resume_lag, resume_after)
    assert len(problems) == len(names)
    for problem, name in zip(problems, names):
        assert name in problem


def test_a_standby_that_keeps_up_has_no_lag_and_stays_unfenced():
    cluster = Cluster()
    for _tick in range(100):
        event = cluster.tick(writes=3)
        assert event == {"fenced": False, "changed": False, "lag_s": 0.0, "message": ""}
    assert cluster.state["samples"] == []


def test_an_idle_primary_is_no_lag():
    """No write for an hour: the standby has replayed everything, whatever time has passed."""
    cluster = Cluster()
    for _tick in range(720):
        assert cluster.tick().get("lag_s") == 0.0
    assert not cluster.state["fenced"]


def test_a_paused_standby_is_fenced_past_max_lag_and_within_max_lag_plus_a_period_of_the_write():
    cluster = Cluster()
    cluster.tick(writes=1)
    cluster.paused = True
    cluster.now += 2  # the write falls between two checks
    written = cluster.now
    cluster.write()
    cluster.now -= 2
    fenced_at = None
    for _tick in range(20):
        event = cluster.tick()
        if event["changed"]:
            fenced_at = cluster.now
            break
        assert not event["fenced"]
    assert fenced_at is not None
    assert event["fenced"] and event["lag_s"] > SETTINGS["max_lag_s"]
    assert "has not replayed what the primary wrote" in event["message"] and "read_replica_max_lag_s 30" in event["message"]
    # Never more than one period late after the first unreplayed write, never before the lag can be past max_lag.
    assert written + SETTINGS["max_lag_s"] - cluster.period <= fenced_at <= written + SETTINGS["max_lag_s"] + cluster.period


def test_the_lag_is_never_more_than_one_period_above_the_true_lag():
    cluster = Cluster(settings={"max_lag_s": 10 ** 6})
    cluster.tick(writes=1)
    cluster.paused = True
    cluster.now += 3
    written = cluster.now
    cluster.write()
    cluster.now -= 3
    for _tick in range(30):
        event = cluster.tick(writes=1)
        true_lag = cluster.now - written
        assert true_lag - cluster.period <= event["lag_s"] <= true_lag + cluster.period


def test_the_fence_returns_only_after_the_standby_kept_up_for_resume_after():
    cluster = Cluster()
    cluster.paused = True
    for _tick in range(10):
        cluster.tick(writes=1)
    assert cluster.state["fenced"]
    cluster.resume()
    kept_up_from = None
    for _tick in range(30):
        event = cluster.tick(writes=1)
        kept_up_from = kept_up_from or cluster.now
        if not event["fenced"]:
            break
    assert event["changed"] and "kept up" in event["message"]
    assert "read_replica_fence_resume_after_s 60" in event["message"]
    assert cluster.now - kept_up_from >= SETTINGS["resume_after_s"]
    # At most one period after resume_after (the timer's step), plus the check that saw it catch up.
    assert cluster.now - kept_up_from <= SETTINGS["resume_after_s"] + cluster.period


def test_a_lag_blip_while_fenced_starts_the_wait_again():
    cluster = Cluster()
    cluster.paused = True
    for _tick in range(10):
        cluster.tick(writes=1)
    cluster.resume()
    for _tick in range(8):  # 40 s of keeping up: not yet 60
        assert cluster.tick(writes=1)["fenced"]
    cluster.paused = True
    for _tick in range(4):  # 20 s behind again: above resume_lag 10
        assert cluster.tick(writes=1)["fenced"]
    assert cluster.state["healthy_since"] is None
    cluster.resume()
    ticks = 0
    while cluster.tick(writes=1)["fenced"]:
        ticks += 1
    assert ticks * cluster.period >= SETTINGS["resume_after_s"]


def test_busy_primary_standby_one_sample_behind_still_returns():
    """A standby that has replayed the previous check's WAL but never the current one shows about one period of
    lag: it keeps up, so reads return (why resume_lag_s must be above the period)."""
    cluster = Cluster()
    cluster.paused = True
    for _tick in range(10):
        cluster.tick(writes=1)
    assert cluster.state["fenced"]
    for _tick in range(20):
        previous = cluster.lsn
        cluster.write()
        cluster.replayed = previous  # everything but the newest write
        cluster.now += cluster.period
        event = cluster.check()
        assert event["lag_s"] <= cluster.period
        if not event["fenced"]:
            break
    assert not event["fenced"]


def test_a_standby_that_does_not_answer_is_fenced_from_its_last_good_check():
    cluster = Cluster()
    cluster.tick(writes=1)
    last_good = cluster.now
    cluster.down = True
    event = cluster.tick(writes=1)
    assert not event["fenced"]  # one failed check is not yet a lag past 30 s
    while not event["changed"]:
        event = cluster.tick(writes=1)
    assert cluster.now - last_good > SETTINGS["max_lag_s"]
    assert cluster.now - last_good <= SETTINGS["max_lag_s"] + cluster.period
    assert "does not answer" in event["message"]
    # Back, and caught up: it has to keep up for resume_after_s before reads return.
    cluster.down = False
    assert cluster.tick(writes=1)["fenced"]


def test_a_promoted_standby_is_never_read():
    cluster = Cluster()
    cluster.tick()
    event = None
    for _tick in range(10):
        cluster.now += cluster.period
        cluster.write()
        cluster.state, event = rf.step(cluster.state, cluster.now, cluster.settings, cluster.lsn, standby(cluster.lsn, False))
    assert event["fenced"] and "not in recovery" in cluster.state["reason"]


def test_without_the_primary_nothing_is_decided():
    cluster = Cluster()
    cluster.paused = True
    for _tick in range(10):
        cluster.tick(writes=1)
    before = dict(cluster.state)
    cluster.now += 100
    event = cluster.check(primary_up=False)
    assert event == {"fenced": True, "changed": False, "lag_s": None, "message": ""}
    assert cluster.state["caught_at"] == before["caught_at"]


def test_the_first_check_starts_from_now_even_when_the_standby_is_behind():
    state, event = rf.step(None, 5000, SETTINGS, 900, standby(100))
    assert not event["fenced"] and event["lag_s"] == 0.0
    # Until it is seen caught up, the fence counts from its first check.
    assert state["caught_at"] == 5000
    state, event = rf.step(state, 5031, SETTINGS, 950, standby(100))
    assert event["fenced"] and event["changed"]


def test_a_new_standby_proves_itself_while_an_active_fence_stays():
    cluster = Cluster()
    cluster.paused = True
    for _tick in range(10):
        cluster.tick(writes=1)
    assert cluster.state["fenced"]
    cluster.settings["standby"] = "10.0.0.9:5432"
    cluster.resume()
    event = cluster.tick(writes=1)
    assert event["fenced"] and cluster.state["standby"] == "10.0.0.9:5432" and cluster.state["since"]


def test_step_does_not_change_the_state_it_is_given():
    state, _event = rf.step(None, 1000, SETTINGS, 100, standby(100))
    frozen = repr(state)
    rf.step(state, 1100, SETTINGS, 200, standby(100))
    assert repr(state) == frozen


def test_samples_are_bounded_while_the_standby_stays_behind():
    cluster = Cluster(period=1, settings={"max_lag_s": 5, "resume_lag_s": 2})
    cluster.paused = True
    for _tick in range(rf.MAX_SAMPLES + 200):
        cluster.tick(writes=1)
    assert len(cluster.state["samples"]) == rf.MAX_SAMPLES
    assert cluster.state["fenced"]


@hsettings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(0, 3)), min_size=1, max_size=120))
def test_the_fence_never_flaps(script):
    """Whatever the standby does, every fence lasts at least resume_after_s, and the fence goes on only past max_lag_s."""
    cluster = Cluster()
    for paused, down, writes in script:
        cluster.paused, cluster.down = paused, down
        if not paused:
            cluster.resume()
        event = cluster.tick(writes=writes)
        if event["changed"] and event["fenced"]:
            assert event["lag_s"] > SETTINGS["max_lag_s"]
    fenced_at = None
    for now, event in cluster.events:
        if event["changed"] and event["fenced"]:
            fenced_at = now
        elif event["changed"]:
            assert now - fenced_at >= SETTINGS["resume_after_s"]


def test_override_text_is_a_comment_until_fenced():
    off = rf.override_text(False, "mastodon_replica", "host=/var/run/postgresql port=5432 dbname=mastodon_production")
    assert "=" not in "".join(line for line in off.splitlines() if not line.startswith(";;"))
    assert all(line.startswith(";;") for line in off.splitlines())
    on = rf.override_text(True, "mastodon_replica", "host=/var/run/postgresql port=5432 dbname=mastodon_production",
                          "2026-12-07 10:00:00 UTC", "the standby\nlags")
    lines = on.splitlines()
    assert lines[-2:] == ["[databases]", "mastodon_replica = host=/var/run/postgresql port=5432 dbname=mastodon_production"]
    # A reason with a line break stays one comment line.
    assert [line for line in lines if not line.startswith(";;")] == lines[-2:]
    assert on == rf.override_text(True, "mastodon_replica", "host=/var/run/postgresql port=5432 dbname=mastodon_production",
                                  "2026-12-07 10:00:00 UTC", "the standby\nlags")
