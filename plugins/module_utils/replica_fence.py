# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The replica-lag fence's decisions, as pure functions.

A lagging standby makes Mastodon read stale rows (a post 404s for its author until replay catches up). The
fence (a systemd timer on every host whose PgBouncer serves `mastodon_replica`, see roles/read_replica) checks
the primary and the standby every `interval_s` seconds and calls `step()` with what it read; while the standby
lags past `max_lag_s`, PgBouncer's `mastodon_replica` entry points at the primary (a reload keeps every client),
and it points at the standby again once the standby has kept up for `resume_after_s` seconds.

How lag is measured: every check records the primary's WAL position (its current LSN) with the time. The
standby has caught up with a sample once it has replayed past that sample's LSN, so the standby's lag is the
time since the newest sample it has caught up with ("it has replayed everything the primary had written N
seconds ago"). This needs no clock of either server, no write anywhere, and no idle primary makes it look late;
a standby that stopped receiving WAL (network, walreceiver down), stopped replaying (a conflict, a pause), is
down or is no longer in recovery counts as caught up with nothing new, so its lag grows from its last good
check. The lag is measured in steps of the timer's period: a standby that keeps up with a busy primary shows
about one period, an idle one zero; it is never more than one period above the true lag, so the fence acts at
most one period early, and a write the standby misses is read from the primary within `max_lag_s` plus one
period.

This file is copied as it is onto the hosts that run the fence (next to the program of
roles/read_replica/files/fediops_replica_fence.py), so it imports nothing but the standard library.
"""

from __future__ import annotations

import re

# Samples kept while the standby is behind: an hour of checks at the default period. Past it the oldest go,
# which only makes the lag look larger until the standby passes a kept sample (the fence is on by then).
MAX_SAMPLES = 720
LSN_RE = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


class FenceError(ValueError):
    """A value the fence cannot read (an LSN that is not one)."""


def parse_lsn(text):
    """PostgreSQL's `pg_lsn` text ("16/B374D848") as one integer; None for an empty value (no WAL replayed yet)."""
    text = (text or "").strip()
    if not text:
        return None
    match = LSN_RE.fullmatch(text)
    if not match:
        raise FenceError("%r is not a WAL position (pg_lsn)" % text)
    return (int(match.group(1), 16) << 32) + int(match.group(2), 16)


def settings_problems(max_lag_s, interval_s, resume_lag_s, resume_after_s):
    """Sentences for settings that cannot work together (each value's own range is checked by the role)."""
    problems = []
    if resume_lag_s >= max_lag_s:
        problems.append(
            "read_replica_fence_resume_lag_s (%d) must be below read_replica_max_lag_s (%d): reads return to the "
            "standby only once its lag is well under the one that moved them, or the fence flaps." % (resume_lag_s, max_lag_s))
    if resume_lag_s <= interval_s:
        problems.append(
            "read_replica_fence_resume_lag_s (%d) must be above read_replica_fence_interval_s (%d): the lag is measured "
            "in steps of the timer's period, so a standby that keeps up with a busy primary shows about one period, "
            "and reads would never return to it." % (resume_lag_s, interval_s))
    if resume_after_s < 0:
        problems.append("read_replica_fence_resume_after_s (%d) must not be negative." % resume_after_s)
    return problems


def new_state(standby, now):
    """The state of a fence that starts watching `standby` ("host:port") at `now`: not fenced, caught up now."""
    return {"standby": standby, "caught_at": float(now), "samples": [], "fenced": False, "since": None,
            "healthy_since": None, "reason": "", "problem": ""}


def usable(standby):
    """Whether the standby as read (or None: it did not answer) can serve reads: in recovery, with a replay LSN."""
    return bool(standby) and standby.get("in_recovery") is True and standby.get("replay_lsn") is not None


def _standby_words(name, standby):
    if not standby:
        return "the standby %s does not answer" % name
    if standby.get("in_recovery") is not True:
        return "the standby %s is not in recovery (promoted, or not a standby)" % name
    return "the standby %s has replayed no WAL yet" % name


def step(state, now, settings, primary_lsn, standby):
    """One check of the fence. Returns (new state, event); the state passed in is not changed.

    state: what the previous check returned, or None. settings: {standby ("host:port"), max_lag_s, resume_lag_s,
    resume_after_s}. primary_lsn: the primary's current LSN as an integer, or None when the primary did not answer
    (then nothing is decided: with no primary to read from, the fence stays as it is). standby: {in_recovery,
    replay_lsn (integer or None)}, or None when it did not answer.

    event: {fenced, changed (the fence went on or off), lag_s (None without a primary), message (a sentence for
    the journal when it changed, else "")}.
    """
    now = float(now)
    name = settings["standby"]
    state = dict(state) if isinstance(state, dict) else None
    if state is None or state.get("standby") != name or not isinstance(state.get("caught_at"), (int, float)):
        # A new standby (or the first check) proves itself from now on; an active fence stays on meanwhile.
        fenced = bool(state and state.get("fenced"))
        kept = {key: state.get(key) for key in ("fenced", "since", "reason")} if fenced else {}
        state = new_state(name, now)
        state.update(kept)
    state["samples"] = [list(sample) for sample in state.get("samples") or []]
    if primary_lsn is None:
        return state, {"fenced": bool(state["fenced"]), "changed": False, "lag_s": None, "message": ""}

    samples = state["samples"] + [[now, int(primary_lsn)]]
    if usable(standby):
        caught = [t for t, lsn in samples if lsn <= standby["replay_lsn"]]
        if caught:
            state["caught_at"] = max(state["caught_at"], *caught)
    samples = [sample for sample in samples if sample[0] > state["caught_at"]]
    state["samples"] = samples[-MAX_SAMPLES:]
    lag = max(0.0, now - state["caught_at"])

    event = {"fenced": bool(state["fenced"]), "changed": False, "lag_s": lag, "message": ""}
    if not state["fenced"]:
        if lag > settings["max_lag_s"]:
            if usable(standby):
                why = "the standby %s has not replayed what the primary wrote %d s ago" % (name, lag)
            else:
                why = "%s, %d s after its last good check" % (_standby_words(name, standby), lag)
            state.update(fenced=True, since=now, healthy_since=None,
                         reason="%s (read_replica_max_lag_s %d)" % (why, settings["max_lag_s"]))
            event.update(fenced=True, changed=True,
                         message="%s: mastodon_replica reads from the primary until it has kept up for %d s."
                                 % (state["reason"], settings["resume_after_s"]))
        return state, event

    if usable(standby) and lag <= settings["resume_lag_s"]:
        if state.get("healthy_since") is None:
            state["healthy_since"] = now
        if now - state["healthy_since"] >= settings["resume_after_s"]:
            message = ("the standby %s has kept up (lag at most read_replica_fence_resume_lag_s %d s) for %d s "
                       "(read_replica_fence_resume_after_s %d): mastodon_replica reads from it again after %d s on "
                       "the primary." % (name, settings["resume_lag_s"], now - state["healthy_since"],
                                         settings["resume_after_s"], now - (state.get("since") or now)))
            state.update(fenced=False, since=None, healthy_since=None, reason="")
            event.update(fenced=False, changed=True, message=message)
    else:
        state["healthy_since"] = None
    return state, event


def override_text(fenced, database, connstr, since="", reason=""):
    """The file PgBouncer %includes at the end of [databases]: while fenced, a line that points `database`
    at the primary (`connstr`, the right-hand side of its [databases] line); otherwise no line, so the
    entry of pgbouncer.ini (the standby) holds. Stable while nothing changes: no time but `since`."""
    head = (";; Written by fediops-replica-fence (fediops.mastodon read_replica), the replica-lag fence; do not edit.\n"
            ";; PgBouncer reads it at the end of [databases]: a line here wins over pgbouncer.ini's line of that name.\n")
    if not fenced:
        return head + ";; The standby keeps %s's reads: nothing to override.\n" % database
    return (head + ";; Fenced since %s: %s\n" % (since, " ".join(str(reason).split()))
            + "[databases]\n%s = %s\n" % (database, connstr))
