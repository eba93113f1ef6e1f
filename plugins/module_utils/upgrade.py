# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An upgrade of the whole fleet, as pure functions: what playbooks/upgrade.yml may do, and in which state it is.

The application hosts' checkouts say which release each one has (lib/mastodon/version.rb, read by
mastodon_checkout); their state files say whether an upgrade was under way (`upgrade: {from, to}`, recorded before
the first host's code changed). `plan()` decides, before anything changes, whether upgrading to `target` is allowed:
never a downgrade, never across a release Mastodon's upgrade notes require as a stop (`stops`), and hosts that
disagree only when they are the two ends of the same interrupted upgrade.
"""

from __future__ import annotations

from ansible_collections.fediops.mastodon.plugins.module_utils.mastodon_source import MastodonSourceError, parse_version


class UpgradeError(ValueError):
    """Input that is not an upgrade (the playbook's own data, not the operator's choice)."""


def _version(text, what, problems):
    try:
        return parse_version(text)
    except MastodonSourceError:
        problems.append("%s is %r, which is not a Mastodon version like 4.5.1." % (what, text))
        return None


def _under_way(info):
    upgrade = (info or {}).get("upgrade") or {}
    return (upgrade.get("from"), upgrade.get("to")) if upgrade else None


def _label(parts):
    return "%d.%d.%d" % parts


def plan(hosts, target, stops=()):
    """What upgrading the application hosts to `target` means, or why it must not start.

    `hosts` maps each application host to {version, upgrade} as mastodon_checkout reads them (`upgrade` is the
    interrupted upgrade's {from, to}, or empty). `stops` lists Mastodon's required stops, each {stop, before,
    source}: from a release older than `stop`, an upgrade to `before` or later must pass through `stop` first.

    `upgrade` may also say `code_ready`: the host's steps all finished.

    Returns {from, to, resume, nothing_to_do (every host was at the target when planned), needs_code (hosts whose
    steps must run: checkout not at the target, or steps not all finished in the interrupted upgrade), problems}.
    """
    problems = []
    if not isinstance(hosts, dict) or not hosts:
        raise UpgradeError("hosts must map at least one application host to what its checkout says")
    wanted = _version(target, "mastodon_upgrade_version", problems)
    versions = {}
    for host, info in sorted(hosts.items()):
        versions[host] = _version((info or {}).get("version"), "%s's lib/mastodon/version.rb" % host, problems)
    if problems:
        return {"problems": problems}
    recorded_by = {host: _under_way(info) for host, info in hosts.items()}
    upgrades = set(recorded_by.values()) - {None}
    recorded = dict(zip(("from", "to"), next(iter(upgrades)))) if len(upgrades) == 1 else None
    if len(upgrades) > 1:
        problems.append("the application hosts recorded different upgrades under way (%s): finish the one that was "
                        "started, to its own version, first." % "; ".join("%s to %s" % u for u in sorted(upgrades)))
    distinct = sorted(set(versions.values()))
    origin = min(distinct)
    if recorded:
        start = _version(recorded.get("from"), "the recorded upgrade's starting version", problems)
        end = _version(recorded.get("to"), "the recorded upgrade's target", problems)
        if problems:
            return {"problems": problems}
        if end != wanted:
            problems.append("an upgrade from %s to %s was interrupted on these hosts; run it again to %s to finish it "
                            "(mastodon_upgrade_version: %s) before upgrading further."
                            % (recorded["from"], recorded["to"], recorded["to"], recorded["to"]))
        elif not set(distinct) <= {start, end}:
            problems.append("the application hosts run %s, which are not the two ends of the interrupted upgrade from %s "
                            "to %s: put their checkouts back to one of those." % (
                                ", ".join(_label(v) for v in distinct), recorded["from"], recorded["to"]))
        origin = start
    elif len(distinct) > 1:
        problems.append("the application hosts run different releases (%s) and no upgrade was recorded under way: "
                        "bring every checkout to one release first." % ", ".join(
                            "%s %s" % (host, _label(version)) for host, version in sorted(versions.items())))
    if max(distinct) > wanted:
        problems.append("mastodon_upgrade_version is %s, older than the %s the application hosts run: Mastodon's "
                        "migrations do not run backwards, so a downgrade is refused (restore a backup instead)."
                        % (_label(wanted), _label(max(distinct))))
    for stop in stops or ():
        at = _version(stop.get("stop"), "a required stop", problems)
        before = _version(stop.get("before"), "a required stop's `before`", problems)
        if at and before and origin < at and wanted >= before:
            problems.append(
                "an upgrade from %s to %s skips %s, which Mastodon's upgrade notes require as a stop on the way to %s or "
                "later (%s): upgrade to %s first (mastodon_upgrade_version: %s), then to %s."
                % (_label(origin), _label(wanted), _label(at), _label(before), stop.get("source", "its release notes"),
                   _label(at), _label(at), _label(wanted)))
    # A host whose steps did not all finish runs them again, even when version.rb already says the target (the
    # checkout moved, the assets were not built yet).
    needs_code = sorted(host for host, version in versions.items()
                        if version != wanted or (recorded and not ((hosts[host] or {}).get("upgrade") or {}).get("code_ready")))
    return {
        "from": _label(origin), "to": _label(wanted), "resume": bool(recorded),
        "nothing_to_do": not needs_code and not recorded, "needs_code": needs_code, "problems": problems,
    }


STEPS = ("code", "pre_migrations", "restart")


def step_seconds(marks, end):
    """Seconds each step of playbooks/upgrade.yml took, from the times it noted at the end of the plan and of each
    step (`marks`); the step after the last mark reached (the post-deployment migrations after the restart) ends at
    `end`. Steps not reached are left out."""
    seconds, previous = {}, float(marks["plan"]) if "plan" in marks else None
    for step in STEPS:
        if step not in marks or previous is None:
            return seconds
        seconds[step] = round(float(marks[step]) - previous, 1)
        previous = float(marks[step])
    seconds["post_migrations"] = round(float(end) - previous, 1)
    return seconds
